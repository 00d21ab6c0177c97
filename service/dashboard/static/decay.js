// The learned seen-decay curve, shown once /v1/stats reports one (field seen_decay).
import { h, panel } from "./dom.js";

const X_KEYS = ["unclicked", "n", "impressions", "seen"];
const Y_KEYS = ["multiplier", "lift", "ratio", "mean", "value"];

// Points {x, y, lo, hi} from a list of [x, y] pairs or objects, or null if it has none.
export function decayPoints(field) {
  const list = Array.isArray(field) ? field
    : Array.isArray(field.curve) ? field.curve
    : Array.isArray(field.points) ? field.points : null;
  if (!list) return null;
  const points = list.map((p) => {
    if (Array.isArray(p)) return typeof p[0] === "number" && typeof p[1] === "number" ? { x: p[0], y: p[1] } : null;
    if (!p || typeof p !== "object") return null;
    const x = X_KEYS.find((k) => typeof p[k] === "number");
    const y = Y_KEYS.find((k) => typeof p[k] === "number");
    if (x === undefined || y === undefined) return null;
    const ci = Array.isArray(p.ci95) ? p.ci95 : null;
    return { x: p[x], y: p[y], lo: ci ? ci[0] : null, hi: ci ? ci[1] : null };
  }).filter(Boolean);
  return points.length ? points : null;
}

export function seenDecaySection(stats, curve) {
  const field = stats.seen_decay;
  if (field === undefined || field === null) return null;
  const points = decayPoints(field);
  return panel("Learned seen decay",
    points
      ? curve(points, { testid: "seen-decay-chart", xLabel: "unclicked impressions",
        yLabel: "click chance multiplier" })
      : h("pre", { "data-testid": "seen-decay-raw" }, JSON.stringify(field, null, 1)),
    h("p", { class: "note" }, "How a user's click chance on an item changes after unclicked ",
      "impressions of it, learned from this service's feedback (/v1/stats seen_decay)."));
}
