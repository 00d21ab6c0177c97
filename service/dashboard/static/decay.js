// The seen decay from /v1/stats (field seen_decay): the fixed decay times its learned
// correction, as a curve and the bucket grid.
import { h, num, panel, table } from "./dom.js";
import { count, fixed } from "./format.js";

function bandLabel([from, to]) {
  return to === null ? `> ${from} h` : `${from}-${to} h`;
}

// The age band with the most evidence: the one whose curve says most.
export function busiestBand(field) {
  const totals = field.age_bands_h.map((_, a) =>
    field.cells.reduce((sum, row) => sum + row[a].impressions, 0));
  return totals.indexOf(Math.max(...totals));
}

// Points {x, y, lo, hi} of one age band: fresh (1) then 1..4+ unclicked impressions.
export function decayPoints(field, band) {
  return [{ x: 0, y: 1, lo: 1, hi: 1 }, ...field.unclicked.map((n, row) => {
    const cell = field.cells[row][band];
    return { x: n, y: cell.multiplier, lo: cell.ci90[0], hi: cell.ci90[1] };
  })];
}

function grid(field) {
  const last = field.unclicked.length - 1;
  const rows = field.cells.map((row, r) => [
    `${field.unclicked[r]}${r === last ? "+" : ""}`,
    ...row.map((cell, a) => h("span", { title: `fixed decay ${fixed(cell.prior, 2)} x ` +
        `correction ${fixed(cell.correction, 2)}; ` +
        `${count(cell.impressions)} impressions, ${count(cell.clicks)} clicks, ` +
        `${fixed(cell.expected, 1)} expected` },
      num(`seen-decay-${r}-${a}`, cell.multiplier, fixed(cell.multiplier, 2)),
      h("span", { class: "sub" }, ` ${fixed(cell.ci90[0], 2)}-${fixed(cell.ci90[1], 2)}`),
      h("div", { class: "sub" }, num(`seen-decay-${r}-${a}-imp`, cell.impressions,
        count(cell.impressions)), " imp")))]);
  return table(["unclicked \\ since last", ...field.age_bands_h.map(bandLabel)], rows);
}

export function seenDecaySection(stats, curve) {
  const field = stats.seen_decay;
  if (field === undefined || field === null) return null;
  const band = busiestBand(field);
  return panel("Seen decay",
    h("p", {}, "Mode ", num("seen-decay-mode", field.mode, field.mode), "; fresh items: ",
      num("seen-decay-fresh-imp", field.fresh.impressions, count(field.fresh.impressions)),
      " impressions, ", count(field.fresh.clicks), " clicks."),
    curve(decayPoints(field, band), { testid: "seen-decay-chart",
      xLabel: `unclicked impressions (last ${bandLabel(field.age_bands_h[band])} ago)`,
      yLabel: "click chance multiplier" }),
    h("div", { "data-testid": "seen-decay-grid" }, grid(field)),
    h("p", { class: "note" }, "How a user's click chance on an item changes after unclicked ",
      "impressions of it and recovers with time since the last, relative to fresh items: ",
      "the fixed decay times a correction learned from this service's feedback (posterior ",
      "mean and 90% band); buckets with little evidence stay near the fixed decay (the ",
      `correction's prior, 1, is worth ${count(field.prior_strength)} impressions).`));
}
