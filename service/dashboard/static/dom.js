// Elements built without innerHTML: text is always text, and the page's CSP allows no inline code.
const SVG_NS = "http://www.w3.org/2000/svg";

function build(el, attrs, children) {
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

export function h(tag, attrs, ...children) {
  return build(document.createElement(tag), attrs, children);
}

export function svg(tag, attrs, ...children) {
  return build(document.createElementNS(SVG_NS, tag), attrs, children);
}

// A number as shown, with the API's value in data-value so that tests compare the two.
export function num(testid, value, text) {
  return h("span", { "data-testid": testid, "data-value": JSON.stringify(value) }, text);
}

export function panel(title, ...children) {
  return h("section", { class: "panel" }, title ? h("h2", {}, title) : null, ...children);
}

export function card(label, value, sub) {
  return h("div", { class: "card" }, h("div", { class: "label" }, label),
    h("div", { class: "value" }, value), sub ? h("div", { class: "sub" }, sub) : null);
}

export function table(headers, rows) {
  return h("table", {}, h("thead", {}, h("tr", {}, headers.map((t) => h("th", {}, t)))),
    h("tbody", {}, rows.map((cells) => h("tr", {}, cells.map((c) => h("td", {}, c))))));
}

export function swatch(color) {
  return svg("svg", { width: 10, height: 10, class: "swatch-svg" },
    svg("rect", { width: 10, height: 10, rx: 2, fill: color }));
}

// A form that opens the view of one item or user by id.
export function lookup(kind, value) {
  const input = h("input", { name: "id", value: value || "", placeholder: `${kind} id`,
    "data-testid": `${kind}-lookup`, "aria-label": `${kind} id` });
  return h("form", { class: "lookup", onsubmit: (event) => {
    event.preventDefault();
    if (input.value) location.hash = `#/${kind}s/${encodeURIComponent(input.value.trim())}`;
  } }, input, h("button", { type: "submit" }, "Show"));
}
