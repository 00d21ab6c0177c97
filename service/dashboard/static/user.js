// One user: clusters and weights, recent clicks, seen-decay penalties, and a live list preview.
import { api } from "./api.js";
import { h, num, panel, table, swatch, lookup } from "./dom.js";
import { COLORS } from "./charts.js";
import { pct, fixed, clock } from "./format.js";

function preview(userId) {
  const out = h("div", { "data-testid": "preview-result" });
  const k = h("input", { type: "number", min: 1, max: 100, value: 5, "aria-label": "k", "data-testid": "preview-k" });
  const run = async () => {
    out.replaceChildren("Asking for a list…");
    try {
      const rec = await api("v1/recommend", { method: "POST", body: { user_id: userId, k: Number(k.value) } });
      out.replaceChildren(
        h("p", {}, "rec_id ", h("code", { "data-testid": "preview-rec-id" }, rec.rec_id), " · policy ",
          h("span", { "data-testid": "preview-policy" }, rec.policy), rec.stale ? " · stale snapshot" : ""),
        table(["#", "item", "score", "propensity"], rec.items.map((item, i) => [
          String(i + 1),
          h("a", { href: `#/items/${encodeURIComponent(item.item_id)}`, "data-testid": `preview-item-${i}` }, item.item_id),
          fixed(item.score, 4),
          item.propensity === null ? "–" : fixed(item.propensity, 3),
        ])));
    } catch (err) {
      out.replaceChildren(h("p", { class: "error", "data-testid": "preview-error" }, `${err.code}: ${err.message}`));
    }
  };
  return h("section", { class: "panel preview" }, h("h2", {}, "Live preview: a real recommend call"),
    h("p", { class: "warn" }, "This calls POST /v1/recommend: the service logs the list under a new ",
      "rec_id and counts it in the lists served by its policy. Send no feedback for it; it changes no arm."),
    h("div", { class: "lookup" }, "k ", k,
      h("button", { type: "button", onclick: run, "data-testid": "preview-button" }, "Recommend now")),
    out);
}

export async function renderUser({ param }) {
  if (!param) {
    return h("div", { "data-testid": "view-user" }, panel("User", lookup("user", ""),
      h("p", { class: "note" }, "A user's clusters, clicks and seen-decay penalties.")));
  }
  const user = await api(`v1/users/${encodeURIComponent(param)}`);
  const weights = user.membership.map((m) => [
    h("span", {}, swatch(COLORS[m.cluster % COLORS.length]), " ",
      h("a", { href: `#/clusters/${m.cluster}` }, `cluster #${m.cluster}`)),
    num(`membership-${m.cluster}`, m.weight, pct(m.weight, 1)),
  ]);
  const clicks = user.recent_clicks.map((item, i) => [
    String(i + 1), h("a", { href: `#/items/${encodeURIComponent(item)}`, "data-testid": `recent-click-${i}` }, item),
  ]);
  const seen = user.seen.map((s, i) => [
    h("a", { href: `#/items/${encodeURIComponent(s.item_id)}`, "data-testid": `seen-${i}-item` }, s.item_id),
    num(`seen-${i}-unclicked`, s.unclicked, fixed(s.unclicked, 2)),
    num(`seen-${i}-multiplier`, s.multiplier, fixed(s.multiplier, 3)),
    pct(1 - s.multiplier, 1),
    clock(s.updated),
  ]);
  return h("div", { "data-testid": "view-user" },
    panel(null, lookup("user", param)),
    h("div", { class: "row" },
      panel(h("span", {}, "User ", h("span", { "data-testid": "user-id" }, user.user_id)),
        h("p", {}, "Top cluster: ", num("user-cluster", user.cluster, user.cluster === null ? "none yet" : `#${user.cluster}`),
          " · generation ", num("user-gen", user.gen, String(user.gen))),
        weights.length ? table(["cluster", "weight"], weights) : h("p", { class: "note" }, "No membership yet.")),
      panel(`Recent clicks (${user.recent_clicks.length})`,
        clicks.length ? table(["#", "item"], clicks) : h("p", { class: "note" }, "No clicks yet.")),
      panel(`Seen without a click (${user.seen.length})`,
        seen.length ? table(["item", "unclicked", "multiplier", "penalty", "last seen"], seen)
          : h("p", { class: "note" }, "No unclicked impressions."),
        h("p", { class: "note" }, "The multiplier scales the item's sampled CTR for this user; ",
          "it fades back to 1 with time and a click lifts it."))),
    preview(user.user_id));
}
