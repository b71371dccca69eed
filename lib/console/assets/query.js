/**
 * The Query view: an editor whose statements run through POST /db/request
 * (reads and writes in one call, at the chosen consistency level), and one
 * result card per statement: a paginated table for rows, rows affected and
 * last insert id for writes, the SQLite error text for failures.
 *
 * Keys: Ctrl/Cmd+Enter runs (the selection, if any, else everything);
 * Alt+Up/Down walks the history. A run can be cancelled (its request is
 * aborted; a write the node already accepted still happens, as with any
 * HTTP client).
 */

import { describeFailure, request } from "./api.js";
import { byId, h, replace } from "./dom.js";
import { cellView, formatSeconds, parseJson, plural } from "./format.js";
import { QueryHistory } from "./history.js";
import { splitStatements } from "./sql.js";

/** Rows per page of a result table. */
export const PAGE_ROWS = 100;
/** Statements sent in one run (the node's own limit may be lower). */
const STATEMENTS_MAX = 1000;
const LEVEL_KEY = "raftlite.console.level";
const LEVELS = ["none", "weak", "linearizable", "strong", "auto"];
/** Declared types whose column is right-aligned (SQLite's INTEGER and REAL affinities). */
const NUMERIC_TYPE = /int|real|floa|doub|num|dec/i;

/** Wires up the Query view. */
export function initQuery() {
  const editor = byId("sql");
  const runButton = byId("run");
  const level = byId("level");
  const info = byId("run-info");
  const results = byId("results");
  const historyList = byId("history-list");
  const history = new QueryHistory(localStorage);
  /** @type {AbortController | null} */
  let running = null;

  if (/Mac|iPhone|iPad/.test(navigator.platform)) {
    runButton.querySelector("kbd").textContent = "⌘ ⏎";
  }
  const saved = localStorage.getItem(LEVEL_KEY);
  if (saved && LEVELS.includes(saved)) level.value = saved;
  level.addEventListener("change", () => localStorage.setItem(LEVEL_KEY, level.value));

  const load = (text) => {
    if (text === undefined) return;
    editor.value = text;
    editor.focus();
    editor.setSelectionRange(text.length, text.length);
  };
  const showHistory = () =>
    renderHistory(historyList, history, (q) => {
      history.pos = history.entries.length;
      load(q);
      historyList.hidden = true;
    });

  async function run() {
    if (running) {
      running.abort();
      return;
    }
    const selected = editor.value.slice(editor.selectionStart, editor.selectionEnd);
    const text = selected.trim() !== "" ? selected : editor.value;
    const statements = splitStatements(text);
    if (statements.length === 0) {
      replace(results, notice("Type one or more SQL statements, then press Run (Ctrl+Enter)."));
      return;
    }
    if (statements.length > STATEMENTS_MAX) {
      replace(
        results,
        errorCard(`${statements.length} statements; run at most ${STATEMENTS_MAX} at once.`),
      );
      return;
    }
    history.add(text);
    if (!historyList.hidden) showHistory();
    running = new AbortController();
    setRunning(true);
    try {
      const path = `/db/request?timings&blob_array&level=${encodeURIComponent(level.value)}`;
      const reply = await request(path, { json: statements, signal: running.signal });
      renderReply(results, info, statements, reply);
    } catch (err) {
      info.textContent = "";
      replace(results, errorCard(err instanceof Error ? err.message : String(err)));
    } finally {
      running = null;
      setRunning(false);
    }
  }

  function setRunning(on) {
    runButton.classList.toggle("busy", on);
    byId("run-label").textContent = on ? "Cancel" : "Run";
    results.setAttribute("aria-busy", String(on));
    if (on) info.textContent = "Running…";
  }

  runButton.addEventListener("click", run);
  editor.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      run();
    } else if (e.altKey && e.key === "ArrowUp") {
      e.preventDefault();
      load(history.back(editor.value));
    } else if (e.altKey && e.key === "ArrowDown") {
      e.preventDefault();
      load(history.forward());
    }
  });
  byId("hist-prev").addEventListener("click", () => load(history.back(editor.value)));
  byId("hist-next").addEventListener("click", () => load(history.forward()));
  byId("hist-toggle").addEventListener("click", () => {
    historyList.hidden = !historyList.hidden;
    byId("hist-toggle").setAttribute("aria-expanded", String(!historyList.hidden));
    if (!historyList.hidden) showHistory();
  });
  replace(
    results,
    notice("Results appear here. Separate statements with ; — each gets its own result."),
  );
}

function renderHistory(list, history, pick) {
  const items = history.entries.slice().reverse();
  replace(
    list,
    items.length === 0 ? h("li", { class: "muted" }, "No queries yet.") : items.map((q) =>
      h(
        "li",
        {},
        h("button", { type: "button", class: "history-item", title: q, onclick: () => pick(q) }, q),
      )
    ),
  );
}

/** Renders the reply to one run: a card per statement, or the whole request's error. */
function renderReply(results, info, statements, reply) {
  if (reply.status !== 200) {
    info.textContent = "";
    replace(results, errorCard(describeFailure(reply)));
    return;
  }
  const body = parseJson(reply.text);
  const parts = body.time === undefined ? [] : [`server ${formatSeconds(body.time)}`];
  parts.push(`round trip ${Math.round(reply.ms)} ms`);
  const servedBy = reply.headers.get("X-RQLITE-SERVED-BY");
  if (servedBy) parts.push(`served by ${servedBy}`);
  info.textContent = parts.join(" · ");
  const cards = [];
  if (body.error) cards.push(errorCard(body.error));
  (body.results ?? []).forEach((r, i) => cards.push(resultCard(r, i, statements[i] ?? "")));
  if (cards.length === 0) cards.push(notice("The node returned no results."));
  replace(results, cards);
}

function resultCard(result, index, sql) {
  const meta = [];
  let content;
  if (result.error !== undefined) {
    content = h(
      "div",
      { class: "error-box", role: "alert" },
      h("strong", {}, "Error: "),
      result.error,
    );
  } else if (result.columns !== undefined) {
    const rows = result.values ?? [];
    meta.push(plural(rows.length, "row"));
    content = resultTable(result.columns, result.types ?? [], rows);
  } else {
    const affected = result.rows_affected ?? 0;
    content = h(
      "div",
      { class: "write-summary" },
      h("span", { class: "big" }, plural(Number(affected), "row")),
      " affected",
      result.last_insert_id !== undefined
        ? h("span", { class: "muted" }, ` · last insert id ${result.last_insert_id}`)
        : null,
    );
  }
  if (result.time !== undefined) meta.push(formatSeconds(result.time));
  return h(
    "article",
    { class: `card result${result.error !== undefined ? " failed" : ""}` },
    h(
      "header",
      { class: "result-head" },
      h("span", { class: "stmt-no" }, `#${index + 1}`),
      h("code", { class: "stmt-sql", title: sql }, sql),
      h("span", { class: "result-meta" }, meta.join(" · ")),
    ),
    content,
  );
}

/** A table of `rows`, PAGE_ROWS at a time. */
function resultTable(columns, types, rows) {
  const tbody = h("tbody");
  const pager = h("div", { class: "pager" });
  const pages = Math.max(1, Math.ceil(rows.length / PAGE_ROWS));
  const numeric = columns.map((_, i) => NUMERIC_TYPE.test(types[i] ?? ""));
  let page = 0;
  const show = (p) => {
    page = Math.min(Math.max(0, p), pages - 1);
    const start = page * PAGE_ROWS;
    replace(
      tbody,
      rows.slice(start, start + PAGE_ROWS).map((row, i) => rowElement(row, start + i, numeric)),
    );
    if (rows.length === 0) {
      replace(
        tbody,
        h("tr", {}, h("td", { class: "empty", colspan: columns.length + 1 }, "No rows")),
      );
    }
    renderPager(pager, page, pages, rows.length, show);
  };
  const table = h(
    "table",
    { class: "grid" },
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        h("th", { class: "rownum", scope: "col" }, "#"),
        columns.map((c, i) =>
          h(
            "th",
            { scope: "col", class: numeric[i] ? "num" : undefined },
            h("span", { class: "col-name" }, c),
            types[i] ? h("span", { class: "col-type" }, types[i]) : null,
          )
        ),
      ),
    ),
    tbody,
  );
  show(0);
  return h("div", { class: "table-block" }, h("div", { class: "table-scroll" }, table), pager);
}

function rowElement(row, n, numeric) {
  return h(
    "tr",
    {},
    h("td", { class: "rownum" }, String(n + 1)),
    row.map((v, i) => {
      const view = cellView(v);
      const cls = `cell-${view.kind}${numeric[i] ? " num" : ""}`;
      const td = h("td", { class: cls, title: view.title || undefined });
      if (view.kind === "null") td.append(h("span", { class: "null-badge" }, "NULL"));
      else if (view.kind === "blob") {
        td.append(
          h("span", { class: "blob-badge" }, `BLOB ${v.length} B`),
          " ",
          h("code", {}, view.text),
        );
      } else td.textContent = view.text;
      return td;
    }),
  );
}

function renderPager(pager, page, pages, total, show) {
  if (pages <= 1) {
    replace(pager);
    pager.hidden = true;
    return;
  }
  pager.hidden = false;
  const first = page * PAGE_ROWS + 1;
  const last = Math.min(total, first + PAGE_ROWS - 1);
  const btn = (label, title, p, disabled) =>
    h("button", { type: "button", class: "small", title, disabled, onclick: () => show(p) }, label);
  replace(
    pager,
    h(
      "span",
      { class: "muted" },
      `Rows ${first.toLocaleString("en-US")}–${last.toLocaleString("en-US")} of ${
        total.toLocaleString("en-US")
      }`,
    ),
    h(
      "span",
      { class: "pager-buttons" },
      btn("«", "First page", 0, page === 0),
      btn("‹ Prev", "Previous page", page - 1, page === 0),
      h("span", { class: "page-no" }, `Page ${page + 1} / ${pages}`),
      btn("Next ›", "Next page", page + 1, page === pages - 1),
      btn("»", "Last page", pages - 1, page === pages - 1),
    ),
  );
}

function errorCard(message) {
  return h(
    "article",
    { class: "card result failed" },
    h("div", { class: "error-box", role: "alert" }, h("strong", {}, "Error: "), message),
  );
}

function notice(text) {
  return h("p", { class: "notice muted" }, text);
}
