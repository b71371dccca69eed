/**
 * A tiny element builder. Every text from the database or the server goes
 * in as a text node, never as HTML, so data cannot inject markup.
 */

/**
 * Creates `<tag>` with attributes (`class`, `data-*`, `on*` handlers,
 * anything else as an attribute; false/undefined/null skip it) and children
 * (nodes or text; null/undefined/false skipped).
 * @param {string} tag
 * @param {Record<string, any>} [attrs]
 * @param {...any} children
 * @returns {HTMLElement}
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : String(c));
  }
}

/**
 * Replaces the children of `el`.
 * @param {Element} el
 * @param {...any} children
 */
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
}

/**
 * The element with `id` (throws if the page lacks it: a broken build).
 * @param {string} id
 * @returns {any}
 */
export function byId(id) {
  const el = document.getElementById(id);
  if (el === null) throw new Error(`console page has no #${id}`);
  return el;
}

/**
 * "3 s ago" style age of a time in ms.
 * @param {number} thenMs
 */
export function ago(thenMs) {
  const s = Math.max(0, Math.round((Date.now() - thenMs) / 1000));
  return s < 2 ? "just now" : s < 120 ? `${s} s ago` : `${Math.round(s / 60)} min ago`;
}
