// Small SVG charts: axes, time series with interval bands, bars, interval rows, densities.
import { svg } from "./dom.js";
import { betaPdf } from "./beta.js";

export const COLORS = ["#2563eb", "#d97706", "#059669", "#db2777", "#7c3aed", "#0891b2",
  "#65a30d", "#dc2626"];
export const POLICY_COLORS = { bandit: "#2563eb", explore: "#d97706", baseline: "#059669" };

const MARGIN = { left: 46, right: 12, top: 10, bottom: 24 };

function niceStep(span, count) {
  const raw = span / Math.max(count, 1);
  const power = 10 ** Math.floor(Math.log10(raw));
  const unit = raw / power;
  return power * (unit < 1.5 ? 1 : unit < 3 ? 2 : unit < 7 ? 5 : 10);
}

function ticks(lo, hi, count) {
  if (!(hi > lo)) return [lo];
  const step = niceStep(hi - lo, count);
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(v);
  return out;
}

// A frame with axes; returns the svg element, the scales and a group to draw into.
function frame({ width, height, x, y, xFormat, yFormat, testid, xLabel, yLabel }) {
  const root = svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, "data-testid": testid });
  const left = MARGIN.left, right = width - MARGIN.right;
  const top = MARGIN.top, bottom = height - MARGIN.bottom;
  const sx = (v) => left + ((v - x[0]) / (x[1] - x[0] || 1)) * (right - left);
  const sy = (v) => bottom - ((v - y[0]) / (y[1] - y[0] || 1)) * (bottom - top);
  for (const v of ticks(y[0], y[1], 4)) {
    root.append(svg("line", { class: "grid", x1: left, x2: right, y1: sy(v), y2: sy(v) }));
    root.append(svg("text", { x: left - 4, y: sy(v) + 4, "text-anchor": "end" }, yFormat(v)));
  }
  const xTicks = x.ticks || ticks(x[0], x[1], 5);
  xTicks.forEach((v, i) => {
    // The end labels stay inside the frame.
    const edge = x.ticks && xTicks.length > 1 ? (i === 0 ? "start" : i === xTicks.length - 1 ? "end" : null) : null;
    const anchor = edge || (sx(v) > right - 20 ? "end" : "middle");
    root.append(svg("text", { x: sx(v), y: bottom + 15, "text-anchor": anchor }, xFormat(v)));
  });
  root.append(svg("line", { class: "axis", x1: left, x2: right, y1: bottom, y2: bottom }));
  root.append(svg("line", { class: "axis", x1: left, x2: left, y1: top, y2: bottom }));
  if (xLabel) root.append(svg("text", { x: right, y: bottom - 4, "text-anchor": "end" }, xLabel));
  if (yLabel) root.append(svg("text", { x: left + 4, y: top + 10 }, yLabel));
  const layer = svg("g", {});
  root.append(layer);
  return { root, sx, sy, layer };
}

function path(points) {
  return points.map(([px, py], i) => `${i ? "L" : "M"}${px.toFixed(1)},${py.toFixed(1)}`).join("");
}

// series: [{name, color, points: [{t (ms), y, lo, hi}]}]
export function timeSeries(series, { width = 620, height = 220, yFormat, testid } = {}) {
  const all = series.flatMap((s) => s.points);
  const t0 = Math.min(...all.map((p) => p.t)), t1 = Math.max(...all.map((p) => p.t));
  const top = Math.max(...all.map((p) => (p.hi ?? p.y) || 0), 1e-3) * 1.1;
  const x = [t0, t1 > t0 ? t1 : t0 + 1000];
  x.ticks = [x[0], x[1]];
  const time = (t) => new Date(t).toTimeString().slice(0, 8);
  const f = frame({ width, height, x, y: [0, top], xFormat: time, yFormat, testid });
  for (const s of series) {
    const pts = s.points.filter((p) => p.y !== null && p.y !== undefined);
    const band = pts.filter((p) => p.lo !== null && p.lo !== undefined);
    if (band.length > 1) {
      const upper = band.map((p) => [f.sx(p.t), f.sy(p.hi)]);
      const lower = band.map((p) => [f.sx(p.t), f.sy(p.lo)]).reverse();
      f.layer.append(svg("path", { d: `${path([...upper, ...lower])}Z`, fill: s.color,
        "fill-opacity": 0.15, stroke: "none" }));
    }
    if (pts.length > 1) {
      f.layer.append(svg("path", { d: path(pts.map((p) => [f.sx(p.t), f.sy(p.y)])),
        fill: "none", stroke: s.color, "stroke-width": 2, "data-series": s.name }));
    }
    const last = pts[pts.length - 1];
    if (last) f.layer.append(svg("circle", { cx: f.sx(last.t), cy: f.sy(last.y), r: 3, fill: s.color }));
  }
  return f.root;
}

// bars: [{label, value, href, color}]
export function bars(items, { width = 360, height = 180, testid, yFormat = String } = {}) {
  const top = Math.max(...items.map((b) => b.value), 1) * 1.1;
  const x = [0, items.length];
  x.ticks = [];
  const f = frame({ width, height, x, y: [0, top], xFormat: String, yFormat, testid });
  const slot = (f.sx(1) - f.sx(0));
  items.forEach((b, i) => {
    const rect = svg("rect", { x: f.sx(i) + slot * 0.15, width: slot * 0.7, y: f.sy(b.value),
      height: Math.max(f.sy(0) - f.sy(b.value), 0), fill: b.color, rx: 2 },
    svg("title", {}, `${b.label}: ${b.value}`));
    const label = svg("text", { x: f.sx(i + 0.5), y: f.sy(0) + 15, "text-anchor": "middle" }, b.label);
    f.layer.append(b.href ? svg("a", { href: b.href }, rect, label) : svg("g", {}, rect, label));
  });
  return f.root;
}

// rows: [{label, mean, lo, hi}] drawn as a dot and its interval, one row each.
export function intervals(rows, { width = 360, testid, xFormat } = {}) {
  const rowHeight = 18;
  const height = MARGIN.top + MARGIN.bottom + rowHeight * Math.max(rows.length, 1);
  const hi = Math.max(...rows.map((r) => r.hi), 1e-3) * 1.05;
  const f = frame({ width, height, x: [0, hi], y: [0, rows.length || 1], xFormat,
    yFormat: () => "", testid });
  rows.forEach((r, i) => {
    const cy = f.sy(rows.length - i - 0.5);
    f.layer.append(svg("text", { x: MARGIN.left - 4, y: cy + 4, "text-anchor": "end" },
      r.label.length > 7 ? `${r.label.slice(0, 6)}…` : r.label));
    f.layer.append(svg("line", { x1: f.sx(r.lo), x2: f.sx(r.hi), y1: cy, y2: cy,
      stroke: r.color || COLORS[0], "stroke-width": 2 }));
    f.layer.append(svg("circle", { cx: f.sx(r.mean), cy, r: 3.5, fill: r.color || COLORS[0] },
      svg("title", {}, `${r.label}: ${r.mean.toFixed(4)} [${r.lo.toFixed(4)}, ${r.hi.toFixed(4)}]`)));
  });
  return f.root;
}

// curves: [{name, color, alpha, beta, lo, hi, dashed}]: Beta densities on a shared x range.
export function densities(curves, { width = 620, height = 240, testid } = {}) {
  const lo = Math.min(...curves.map((c) => c.lo)), hi = Math.max(...curves.map((c) => c.hi));
  const span = Math.max(hi - lo, 0.02);
  const x0 = Math.max(0, lo - span * 0.6), x1 = Math.min(1, hi + span * 0.6);
  const steps = 240;
  const xs = Array.from({ length: steps + 1 }, (_, i) => x0 + ((x1 - x0) * i) / steps);
  const values = curves.map((c) => xs.map((v) => betaPdf(v, c.alpha, c.beta)));
  const top = Math.max(...values.flat().filter(Number.isFinite), 1e-6) * 1.08;
  const f = frame({ width, height, x: [x0, x1], y: [0, top], xFormat: (v) => `${(v * 100).toFixed(1)}%`,
    yFormat: (v) => v.toFixed(v >= 10 ? 0 : 1), testid, xLabel: "click-through rate",
    yLabel: "posterior density" });
  curves.forEach((c, i) => {
    const pts = xs.map((v, j) => [f.sx(v), f.sy(Math.min(values[i][j], top))]);
    f.layer.append(svg("path", { d: path(pts), fill: "none", stroke: c.color, "stroke-width": 2,
      "stroke-dasharray": c.dashed ? "5 4" : null, "data-testid": `density-${c.name}` },
    svg("title", {}, `${c.name}: Beta(${c.alpha.toFixed(2)}, ${c.beta.toFixed(2)})`)));
  });
  return f.root;
}

// points: [{x, y, lo, hi}]: a curve with an optional band (the learned seen decay).
export function curve(points, { width = 420, height = 200, testid, xLabel, yLabel } = {}) {
  const xMax = Math.max(...points.map((p) => p.x), 1);
  const yMax = Math.max(...points.map((p) => p.hi ?? p.y), 1) * 1.05;
  const f = frame({ width, height, x: [0, xMax], y: [0, yMax], xFormat: (v) => String(+v.toFixed(2)),
    yFormat: (v) => v.toFixed(2), testid, xLabel, yLabel });
  const band = points.filter((p) => p.lo !== null && p.lo !== undefined && p.hi !== null && p.hi !== undefined);
  if (band.length > 1) {
    const upper = band.map((p) => [f.sx(p.x), f.sy(p.hi)]);
    const lower = band.map((p) => [f.sx(p.x), f.sy(p.lo)]).reverse();
    f.layer.append(svg("path", { d: `${path([...upper, ...lower])}Z`, fill: COLORS[0],
      "fill-opacity": 0.15 }));
  }
  f.layer.append(svg("path", { d: path(points.map((p) => [f.sx(p.x), f.sy(p.y)])), fill: "none",
    stroke: COLORS[0], "stroke-width": 2 }));
  for (const p of points) f.layer.append(svg("circle", { cx: f.sx(p.x), cy: f.sy(p.y), r: 2.5, fill: COLORS[0] }));
  return f.root;
}
