// One cluster: its top arms with posterior mean and 95% interval, and the exploration share.
import { api } from "./api.js";
import { h, num, panel, card, table } from "./dom.js";
import { intervals, COLORS } from "./charts.js";
import { pct, count, fixed } from "./format.js";

const TOP = 20;

function picker(k, current) {
  const links = [h("a", { href: "#/clusters/global", class: current === null ? "active" : null }, "global")];
  for (let c = 0; c < k; c++) {
    links.push(h("a", { href: `#/clusters/${c}`, class: current === c ? "active" : null }, `#${c}`));
  }
  return h("div", { class: "pills", "data-testid": "cluster-picker" }, links);
}

function exploreShare(stats) {
  const lists = Object.values(stats.policies).reduce((sum, p) => sum + p.lists, 0);
  return lists ? (stats.policies.explore ? stats.policies.explore.lists : 0) / lists : null;
}

export async function renderCluster({ param }) {
  const cluster = param === "global" || param === "" ? null : Number(param);
  const query = cluster === null ? "" : `&cluster=${cluster}`;
  const [overview, stats, page] = await Promise.all([
    api("v1/overview"), api("v1/stats"), api(`v1/arms?limit=${TOP}${query}`),
  ]);
  const { clusters } = overview;
  const size = cluster === null ? null : clusters.sizes[cluster];
  const color = cluster === null ? COLORS[0] : COLORS[cluster % COLORS.length];
  const observed = exploreShare(stats);
  const rows = page.arms.map((arm, i) => [
    h("a", { href: `#/items/${encodeURIComponent(arm.item_id)}`, "data-testid": `arm-${i}-item` }, arm.item_id),
    num(`arm-${i}-impressions`, arm.impressions, count(arm.impressions)),
    num(`arm-${i}-clicks`, arm.clicks, count(arm.clicks)),
    num(`arm-${i}-mean`, arm.mean, pct(arm.mean)),
    h("span", {}, "[", num(`arm-${i}-lo`, arm.ci95[0], pct(arm.ci95[0])), ", ",
      num(`arm-${i}-hi`, arm.ci95[1], pct(arm.ci95[1])), "]"),
  ]);
  const chart = intervals(page.arms.map((arm) => ({ label: arm.item_id, mean: arm.mean, lo: arm.ci95[0],
    hi: arm.ci95[1], color })), { testid: "arms-chart", xFormat: (v) => pct(v, 0) });
  return h("div", { "data-testid": "view-cluster" },
    picker(clusters.k, cluster),
    h("div", { class: "cards" },
      card("Cluster", num("cluster-id", cluster, cluster === null ? "global" : `#${cluster}`),
        h("span", {}, "generation ", num("cluster-gen", page.gen, String(page.gen)))),
      card("Users at the fit", num("cluster-size", size ?? null, size === undefined || size === null ? "–" : count(size))),
      card("Arms", num("arms-total", page.total, count(page.total)), "items with a posterior"),
      card("Exploration", num("exploration-configured", stats.exploration, pct(stats.exploration, 0)),
        h("span", {}, "of lists; served so far ", num("exploration-observed", observed, pct(observed, 1))))),
    h("div", { class: "row" },
      panel(`Top ${page.arms.length} arms by posterior mean`,
        table(["item", "impressions", "clicks", "mean", "95% interval"], rows),
        h("p", { class: "note" }, cluster === null
          ? "Global arms: every cluster's feedback counted together."
          : "Counts in a cluster are fractional when users belong to several clusters.")),
      panel("Posterior mean and 95% interval", chart,
        h("p", { class: "note" }, `Exploration share ${fixed(stats.exploration, 2)} is set by `,
          "BANDITREC_EXPLORATION for all clusters; the served share counts every cluster's lists."))));
}
