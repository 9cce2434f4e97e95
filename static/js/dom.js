// Small DOM and number-formatting helpers shared by the demo pages' modules.

const SVG_NS = "http://www.w3.org/2000/svg";

/** An HTML element with an optional class and text (never HTML: text only). */
export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = text;
  return node;
}

/** An SVG element with attributes and optional text. */
export function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

const reducedMotion = window.matchMedia("(prefers-reduced-motion: reduce)");

/** How a demo page scrolls something into view: smoothly, unless the visitor asked for less
 * motion. */
export function scrollBehavior() {
  return reducedMotion.matches ? "auto" : "smooth";
}

const integer = new Intl.NumberFormat("en");

/** A count with thousands separators, or a dash for anything that is not a finite number. */
export function formatCount(value) {
  return typeof value === "number" && Number.isFinite(value) ? integer.format(Math.round(value)) : "—";
}
