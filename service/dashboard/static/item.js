// One item: its arm in every cluster and the global arm, with their posterior Beta densities.
import { api } from "./api.js";
import { h, num, panel, table, swatch, lookup } from "./dom.js";
import { densities, COLORS } from "./charts.js";
import { pct, count, fixed } from "./format.js";

function armRow(key, label, arm, color) {
  return [
    h("span", {}, swatch(color), " ", label),
    num(`arm-${key}-impressions`, arm.impressions, count(arm.impressions)),
    num(`arm-${key}-clicks`, arm.clicks, count(arm.clicks)),
    num(`arm-${key}-alpha`, arm.alpha, fixed(arm.alpha, 2)),
    num(`arm-${key}-beta`, arm.beta, fixed(arm.beta, 2)),
    num(`arm-${key}-mean`, arm.mean, pct(arm.mean)),
    h("span", {}, "[", num(`arm-${key}-lo`, arm.ci95[0], pct(arm.ci95[0])), ", ",
      num(`arm-${key}-hi`, arm.ci95[1], pct(arm.ci95[1])), "]"),
  ];
}

export async function renderItem({ param }) {
  if (!param) {
    return h("div", { "data-testid": "view-item" }, panel("Item", lookup("item", ""),
      h("p", { class: "note" }, "An item's arms across clusters; pick one from a cluster's top arms.")));
  }
  const arms = await api(`v1/arms/${encodeURIComponent(param)}`);
  const global = arms.global;
  const rows = [armRow("global", "global", global, "#334e68")];
  const curves = [{ name: "global", color: "#334e68", alpha: global.alpha, beta: global.beta,
    lo: global.ci95[0], hi: global.ci95[1], dashed: true }];
  for (const arm of arms.clusters) {
    const color = COLORS[arm.cluster % COLORS.length];
    rows.push(armRow(`c${arm.cluster}`, h("a", { href: `#/clusters/${arm.cluster}` }, `cluster #${arm.cluster}`), arm, color));
    curves.push({ name: `c${arm.cluster}`, color, alpha: arm.alpha, beta: arm.beta, lo: arm.ci95[0], hi: arm.ci95[1] });
  }
  return h("div", { "data-testid": "view-item" },
    panel(null, lookup("item", param)),
    panel(h("span", {}, "Item ", h("span", { "data-testid": "item-id" }, arms.item_id),
      " · generation ", num("item-gen", arms.gen, String(arms.gen))),
    table(["arm", "impressions", "clicks", "alpha", "beta", "mean", "95% interval"], rows)),
    panel("Posterior densities: Beta(alpha, beta) of each arm", densities(curves, { testid: "density-chart" }),
      h("p", { class: "note" }, "Dashed: the global arm. A narrow peak is an arm the bandit is sure of; ",
        "a wide one is still being explored.")));
}
