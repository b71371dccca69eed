/**
 * The Status view: this node's GET /status as a collapsible tree (objects
 * and arrays fold; the top-level sections start folded except `store`),
 * with a filter that keeps the paths whose key or value contains the text,
 * and a copy of the raw JSON.
 */

import { requestJson } from "./api.js";
import { ago, byId, h, replace } from "./dom.js";

/** Nodes rendered at most (a filter narrows bigger documents). */
const TREE_NODES_MAX = 5000;

/** Wires up the Status view. */
export function initStatus() {
  const tree = byId("status-tree");
  const filter = byId("status-filter");
  const updated = byId("status-updated");
  let doc = null;
  let fetchedAt = 0;

  async function refresh() {
    try {
      const { body } = await requestJson("/status");
      doc = body;
      fetchedAt = Date.now();
      render();
    } catch (err) {
      replace(
        tree,
        h("div", { class: "error-box", role: "alert" }, h("strong", {}, "Error: "), err.message),
      );
    }
  }

  function render() {
    if (doc === null) return;
    const needle = filter.value.trim().toLowerCase();
    const budget = { left: TREE_NODES_MAX };
    const shown = needle ? prune(doc, needle) : doc;
    replace(
      tree,
      shown === undefined
        ? h("p", { class: "muted" }, `Nothing matches "${filter.value}".`)
        : children(shown, needle !== "", 0, budget),
      budget.left <= 0
        ? h("p", { class: "muted" }, "Output cut short; use the filter to narrow it.")
        : null,
    );
    updated.textContent = `fetched ${ago(fetchedAt)}`;
  }

  byId("status-refresh").addEventListener("click", refresh);
  byId("status-expand").addEventListener("click", () => setAll(tree, true));
  byId("status-collapse").addEventListener("click", () => setAll(tree, false));
  byId("status-copy").addEventListener("click", async (e) => {
    if (doc === null) return;
    const text = JSON.stringify(doc, (_k, v) => (typeof v === "bigint" ? v.toString() : v), 4);
    try {
      await navigator.clipboard.writeText(text);
      flash(e.currentTarget, "Copied");
    } catch {
      flash(e.currentTarget, "Copy blocked");
    }
  });
  filter.addEventListener("input", render);
  return { show: refresh };
}

function flash(button, text) {
  const old = button.textContent;
  button.textContent = text;
  setTimeout(() => (button.textContent = old), 1200);
}

function setAll(tree, open) {
  for (const d of tree.querySelectorAll("details")) d.open = open;
}

/** The parts of `value` whose path or leaf text contains `needle`; undefined when none. */
function prune(value, needle) {
  if (!isBranch(value)) return String(value).toLowerCase().includes(needle) ? value : undefined;
  const out = Array.isArray(value) ? [] : {};
  let any = false;
  for (const [k, v] of Object.entries(value)) {
    const kept = k.toLowerCase().includes(needle) ? v : prune(v, needle);
    if (kept !== undefined) {
      if (Array.isArray(out)) out.push(kept);
      else out[k] = kept;
      any = true;
    }
  }
  return any ? out : undefined;
}

function isBranch(v) {
  return v !== null && typeof v === "object";
}

function children(value, open, depth, budget) {
  const list = h("ul", { class: "tree-list" });
  for (const [k, v] of Object.entries(value)) {
    if (budget.left-- <= 0) break;
    list.append(h("li", {}, entry(k, v, open || (depth === 0 && k === "store"), depth, budget)));
  }
  return list;
}

function entry(key, value, open, depth, budget) {
  if (!isBranch(value)) {
    return h(
      "div",
      { class: "leaf" },
      h("span", { class: "key" }, key),
      h("span", { class: `val val-${value === null ? "null" : typeof value}` }, leafText(value)),
    );
  }
  const size = Object.keys(value).length;
  const summary = Array.isArray(value) ? `[${size}]` : `{${size}}`;
  const details = h(
    "details",
    { open: open || (depth > 0 && size <= 4) },
    h("summary", {}, h("span", { class: "key" }, key), h("span", { class: "muted" }, summary)),
  );
  details.append(children(value, open, depth + 1, budget));
  return details;
}

function leafText(v) {
  if (v === null) return "null";
  if (typeof v === "string") return JSON.stringify(v);
  return String(v);
}
