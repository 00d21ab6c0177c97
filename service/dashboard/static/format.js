// How numbers are shown; the raw value stays in data-value.
export const DASH = "–";

export function pct(x, digits = 2) {
  return x === null || x === undefined ? DASH : `${(100 * x).toFixed(digits)}%`;
}

export function fixed(x, digits = 3) {
  return x === null || x === undefined ? DASH : Number(x).toFixed(digits);
}

export function count(x) {
  if (x === null || x === undefined) return DASH;
  return Number.isInteger(x) ? x.toLocaleString("en-US") : x.toFixed(2);
}

export function seconds(x) {
  if (x === null || x === undefined) return DASH;
  if (x < 60) return `${x.toFixed(1)} s`;
  if (x < 3600) return `${(x / 60).toFixed(1)} min`;
  return `${(x / 3600).toFixed(1)} h`;
}

export function clock(unixSeconds) {
  if (!unixSeconds) return DASH;
  return new Date(unixSeconds * 1000).toISOString().replace("T", " ").slice(0, 19) + " UTC";
}
