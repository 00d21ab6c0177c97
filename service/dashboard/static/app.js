// The dashboard: hash routes to views, the key field, and the poll of /v1/stats and /v1/overview.
import { api, apiKey, setApiKey } from "./api.js";
import { h } from "./dom.js";
import { Series } from "./series.js";
import { renderOverview } from "./overview.js";
import { renderCluster } from "./cluster.js";
import { renderItem } from "./item.js";
import { renderUser } from "./user.js";

const VIEWS = { "": renderOverview, clusters: renderCluster, items: renderItem, users: renderUser };
const NAV = { "": "overview", clusters: "clusters", items: "items", users: "users" };
// ?poll=SECONDS sets the poll period (tests poll fast); 5 s otherwise.
const POLL_S = Math.max(Number(new URLSearchParams(location.search).get("poll")) || 5, 0.2);

const state = { latest: null, series: new Series(), polls: 0, error: null };
const main = document.getElementById("view");
const banner = document.getElementById("banner");
const status = document.getElementById("status");
let renders = 0;

function route() {
  const [, name = "", ...rest] = location.hash.replace(/^#/, "").split("/");
  const known = name in VIEWS ? name : "";
  return { name: known, param: decodeURIComponent(rest.join("/")) };
}

function showError(err) {
  if (err.status === 401) {
    banner.hidden = false;
    banner.replaceChildren(h("span", { "data-testid": "auth-needed" },
      "This service needs its API key: enter it above (it is kept in this tab only)."));
  }
  return h("p", { class: "error", "data-testid": "error" }, `${err.code}: ${err.message}`);
}

async function render() {
  const token = ++renders;
  const { name, param } = route();
  for (const link of document.querySelectorAll("[data-nav]")) {
    link.classList.toggle("active", link.dataset.nav === NAV[name]);
  }
  let node;
  if (name === "" && !state.latest) {
    node = state.error ? showError(state.error) : h("p", {}, "Waiting for the first poll…");
  } else {
    try {
      node = await VIEWS[name]({ param, state });
    } catch (err) {
      node = showError(err);
    }
  }
  // A slower render of a view the user already left must not replace the newer one.
  if (token !== renders) return;
  main.replaceChildren(node);
  main.dataset.view = name || "overview";
  main.dataset.renders = String(token);
}

// One poll: record it in the series, or keep the error for the overview to show.
async function refresh() {
  try {
    const [stats, overview] = await Promise.all([api("v1/stats"), api("v1/overview")]);
    state.series.record(Date.now(), stats, overview);
    state.latest = { stats, overview };
    state.error = null;
    state.polls += 1;
    banner.hidden = true;
    status.textContent = `updated ${new Date().toTimeString().slice(0, 8)}`;
    document.body.dataset.polls = String(state.polls);
  } catch (err) {
    state.error = err;
    status.textContent = `poll failed: ${err.code}`;
  }
}

async function poll() {
  await refresh();
  if (route().name === "") await render();
  setTimeout(poll, POLL_S * 1000);
}

const keyInput = document.getElementById("api-key");
keyInput.value = apiKey();
document.getElementById("key-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  setApiKey(keyInput.value.trim());
  banner.hidden = true;
  // Poll now with the new key, so the overview does not show the old refusal meanwhile.
  await refresh();
  render();
});
window.addEventListener("hashchange", render);
render();
poll();
