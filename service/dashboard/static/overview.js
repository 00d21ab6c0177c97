// Overview: catalog, clusters, generation, snapshot age, events/s, CTR per policy over time.
import { h, num, panel, card, table, swatch } from "./dom.js";
import { bars, timeSeries, curve, COLORS, POLICY_COLORS } from "./charts.js";
import { pct, count, seconds, fixed, clock } from "./format.js";
import { seenDecaySection } from "./decay.js";

function policyRows(stats) {
  return Object.entries(stats.policies).map(([name, p]) => [
    h("span", {}, swatch(POLICY_COLORS[name] || COLORS[5]), " ", name),
    num(`policy-${name}-lists`, p.lists, count(p.lists)),
    num(`policy-${name}-impressions`, p.impressions, count(p.impressions)),
    num(`policy-${name}-clicks`, p.clicks, count(p.clicks)),
    num(`policy-${name}-ctr`, p.ctr, pct(p.ctr)),
    h("span", {}, "[", num(`policy-${name}-ctr-lo`, p.ctr_ci95 && p.ctr_ci95[0], pct(p.ctr_ci95 && p.ctr_ci95[0])),
      ", ", num(`policy-${name}-ctr-hi`, p.ctr_ci95 && p.ctr_ci95[1], pct(p.ctr_ci95 && p.ctr_ci95[1])), "]"),
  ]);
}

function viewRows(view, prefix) {
  return Object.entries(view).map(([name, p]) => [
    name,
    num(`${prefix}-${name}-impressions`, p.impressions, count(p.impressions)),
    num(`${prefix}-${name}-clicks`, p.clicks, count(p.clicks)),
    num(`${prefix}-${name}-ctr`, p.ctr, pct(p.ctr)),
    h("span", {}, `[${pct(p.ctr_ci95 && p.ctr_ci95[0])}, ${pct(p.ctr_ci95 && p.ctr_ci95[1])}]`),
  ]);
}

function ctrPanel(stats, series) {
  const lines = series.ctrSeries().map((s) => ({ ...s, color: POLICY_COLORS[s.name] || COLORS[5] }));
  const drawn = lines.some((s) => s.points.length > 0);
  return panel("Click-through rate per serving policy",
    table(["policy", "lists", "impressions", "clicks", "CTR", "95% interval"], policyRows(stats)),
    drawn ? timeSeries(lines, { testid: "ctr-chart", yFormat: (v) => pct(v, 1) }) : null,
    h("p", { class: "note" }, "Cumulative CTR since ",
      stats.since ? clock(stats.since) : "the first feedback",
      ", with its 95% interval, as polled by this page (",
      num("series-points", series.points.length, String(series.points.length)), " polls kept in this tab)."));
}

function clusterPanel(clusters) {
  if (clusters.gen === 0) {
    return panel("Clusters", h("p", {}, "No clustering fitted yet: every user is in one cluster ",
      "(POST /v1/admin/clusters/fit)."));
  }
  const items = clusters.sizes.map((size, c) => ({ label: String(c), value: size, href: `#/clusters/${c}`,
    color: COLORS[c % COLORS.length] }));
  return panel("Users per cluster at the fit",
    bars(items, { testid: "cluster-sizes-chart" }),
    h("p", { class: "note" }, "Sizes: ", clusters.sizes.map((size, c) => [c ? ", " : "",
      h("a", { href: `#/clusters/${c}` }, `#${c} `), num(`cluster-size-${c}`, size, count(size))]),
    ". Fitted ", clock(clusters.fitted_at), "."));
}

function liftRow(id, label, row) {
  return [
    label,
    num(`lift-${id}-traffic`, row.traffic, count(row.traffic)),
    num(`lift-${id}-cluster-ctr`, row.cluster_ctr, pct(row.cluster_ctr)),
    num(`lift-${id}-global-ctr`, row.global_ctr, pct(row.global_ctr)),
    h("span", {}, num(`lift-${id}-lift`, row.lift, fixed(row.lift, 2)), "×"),
  ];
}

// What the cluster arms add over one global ranking, and the affinity prior's fit.
function liftPanel(stats) {
  const lift = stats.cluster_lift;
  if (!lift) return null;
  const total = { ...lift, traffic: lift.clusters.reduce((sum, c) => sum + c.traffic, 0) };
  const rows = [
    ...lift.clusters.map((c) => liftRow(c.cluster,
      h("a", { href: `#/clusters/${c.cluster}` }, `#${c.cluster}`), c)),
    liftRow("all", "all (by traffic)", total),
  ];
  const prior = stats.affinity_prior;
  return panel(`Cluster arms against the global arms (top ${lift.top_m})`,
    table(["cluster", "impressions", "CTR of its top", "CTR of the global top", "lift"], rows),
    h("p", { class: "note" }, "Both tops judged by the cluster's posterior means (generation ",
      num("lift-gen", lift.gen, String(lift.gen)), ")."),
    prior ? h("p", { class: "note" }, "Affinity prior: slope ",
      num("affinity-slope", prior.slope, fixed(prior.slope, 3)), ", cluster arms' prior worth ",
      num("affinity-strength", prior.cluster_strength, fixed(prior.cluster_strength, 1)),
      prior.strength_fitted ? " impressions (fitted)" : " impressions (not fitted yet)",
      ", personal tilt ", num("affinity-tilt", prior.personal_tilt, fixed(prior.personal_tilt, 2)),
      ".") : null);
}

export function renderOverview({ state }) {
  const { stats, overview } = state.latest;
  const { catalog, clusters, events } = overview;
  const rate = state.series.eventsPerSecond();
  const cards = h("div", { class: "cards" },
    card("Items", num("catalog-active", catalog.active, count(catalog.active)),
      h("span", {}, "active of ", num("catalog-items", catalog.items, count(catalog.items)))),
    card("Clusters", num("clusters-k", clusters.k, count(clusters.k)),
      h("span", {}, "generation ", num("clusters-gen", clusters.gen, String(clusters.gen)))),
    card("Snapshot age", num("snapshot-age", overview.snapshot_age_s, seconds(overview.snapshot_age_s)),
      "this worker's copy"),
    card("Events / s", num("events-rate", rate, rate === null ? "…" : fixed(rate, 1)),
      "over the last 10 s of polls"),
    card("Impressions", num("events-impressions", events.impressions, count(events.impressions)),
      h("span", {}, num("events-clicks", events.clicks, count(events.clicks)), " clicks, ",
        num("events-conversions", events.conversions, count(events.conversions)), " conversions")),
    card("Serving", num("mode", stats.mode, stats.mode),
      h("span", {}, "exploration ", num("exploration", stats.exploration, pct(stats.exploration, 0)))));
  const views = [];
  if (Object.keys(stats.replay).length) {
    views.push(panel("Replay on exploration lists (unbiased CTR per policy)",
      table(["policy", "impressions", "clicks", "CTR", "95% interval"], viewRows(stats.replay, "replay"))));
  }
  const lift = liftPanel(stats);
  if (lift) views.push(lift);
  if (Object.keys(stats.agreement).length) {
    views.push(panel("Agreement on other policies' lists",
      table(["policy", "impressions", "clicks", "CTR", "95% interval"], viewRows(stats.agreement, "agreement"))));
  }
  return h("div", { "data-testid": "view-overview" }, cards,
    h("div", { class: "row" }, ctrPanel(stats, state.series), clusterPanel(clusters)),
    views.length ? h("div", { class: "row" }, views) : null,
    seenDecaySection(stats, curve));
}
