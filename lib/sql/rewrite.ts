/**
 * Statement rewriting for determinism (rqlite-api.md §7,
 * `command/sql/processor.go`). Every node executes the same SQL text, so the
 * receiving node replaces what would differ between nodes before the
 * statement enters the Raft log:
 *
 * - `RANDOM()` → a signed 64-bit integer literal;
 * - `RANDOMBLOB(N)`, N a decimal integer literal (min 1) → `x'<2N HEX>'`;
 * - `'now'` (a string, or a bare/quoted identifier, any case) as the first
 *   argument of `date`/`time`/`datetime`/`julianday`/`unixepoch`, the second
 *   of `strftime`, either of `timediff` → the Julian day number with 6
 *   decimals, one clock reading per statement;
 *
 * nothing inside an ORDER BY term (so `ORDER BY RANDOM()` stays random), and
 * flags RETURNING (→ run as a query) and a leading EXPLAIN (→ read-only).
 *
 * Deliberate difference from rqlite: rqlite parses with its own SQL parser
 * and, when it rewrites anything, re-renders the whole statement from the
 * AST (quoting identifiers, normalising spacing). We rewrite at the token
 * level with SQLite's own token rules and keep every other byte of the text
 * as sent: same semantics, original formatting and comments kept. A side
 * effect is that statements rqlite's parser cannot parse (and so leaves
 * unrewritten) are still rewritten here, and `random ()` with a space is
 * recognised too.
 *
 * A second deliberate difference: inside CREATE and ALTER statements
 * (column DEFAULTs, CHECKs, trigger bodies, views) nothing is rewritten by
 * default, because a literal there would freeze one value into the schema
 * (every row's `DEFAULT (random())` equal, a trigger's `datetime('now')`
 * fixed forever); the SELECT of `CREATE TABLE ... AS SELECT`, which runs
 * once at creation, is rewritten. `rewriteInCreate` restores rqlite's
 * rewrite-everywhere.
 *
 * @module
 */

import type { RandomSource } from "./random.ts";
import { isIdChar, tokenize, unquote } from "./tokenizer.ts";
import type { Token } from "./tokenizer.ts";
import type { Statement } from "./types.ts";

/** Options of one rewrite. `random` and `nowMs` are injected so results are reproducible. */
export interface RewriteOptions {
  /** Leave `RANDOM()`/`RANDOMBLOB()` alone (`norwrandom`). */
  readonly norwrandom?: boolean;
  /** Leave `'now'` alone (`norwtime`). */
  readonly norwtime?: boolean;
  /** Skip all processing: no rewriting, no RETURNING/EXPLAIN detection (`noparse`). */
  readonly noparse?: boolean;
  /** Source of `RANDOM()`/`RANDOMBLOB()` values. */
  readonly random: RandomSource;
  /** Wall clock in Unix milliseconds; read at most once per statement. */
  readonly nowMs: () => number;
  /** Also rewrite inside CREATE/ALTER statements, as rqlite does (default false, see module doc). */
  readonly rewriteInCreate?: boolean;
  /** Largest `RANDOMBLOB(N)` rewritten; above it the rewrite fails. Default {@link DEFAULT_MAX_RANDOMBLOB_BYTES}. */
  readonly maxRandomBlobBytes?: number;
}

/** Default bound on `RANDOMBLOB(N)` rewriting (the literal is 2N hex digits in the log). */
export const DEFAULT_MAX_RANDOMBLOB_BYTES = 1 << 20;

/** The outcome of rewriting one SQL text. */
export interface RewriteResult {
  /** The SQL to execute (the input itself when nothing was rewritten). */
  readonly sql: string;
  /** True when at least one token was replaced. */
  readonly rewritten: boolean;
  /** RETURNING at the top level of an INSERT/UPDATE/DELETE/REPLACE/WITH statement. */
  readonly forceQuery: boolean;
  /** The first keyword is EXPLAIN. */
  readonly explain: boolean;
  /** SQLite's message for the first unrecognised token (`unrecognized token: "'abc"`), if any. */
  readonly lexError?: string;
}

/** A rewrite that must not proceed (e.g. an oversized RANDOMBLOB). Message starts `SQL rewrite: `. */
export class RewriteError extends Error {
  constructor(message: string) {
    super(`SQL rewrite: ${message}`);
    this.name = "RewriteError";
  }
}

/** Cheap pre-filter: only texts containing one of these (any case) are tokenized. */
const PREFILTER = /random|date|time|julianday|unixepoch|returning|explain/i;

/** Time functions and which argument positions may be `'now'`. */
const TIME_ARGS: ReadonlyMap<string, readonly number[]> = new Map([
  ["date", [0]],
  ["time", [0]],
  ["datetime", [0]],
  ["julianday", [0]],
  ["unixepoch", [0]],
  ["strftime", [1]],
  ["timediff", [0, 1]],
]);

/** A name right after one of these is a table/CTE/index name, not a function call. */
const NOT_A_CALL_AFTER = new Set([
  "into",
  "from",
  "join",
  "update",
  "table",
  "view",
  "index",
  "trigger",
  "references",
  "exists",
  "on",
  "using",
  "with",
  "recursive",
]);

/** Keywords that end an ORDER BY clause at the same parenthesis level. */
const ORDER_BY_END = new Set([
  "limit",
  "offset",
  "union",
  "intersect",
  "except",
  "rows",
  "range",
  "groups",
  "returning",
  "on",
]);

/** What a CREATE statement creates (the first of these words after CREATE). */
const CREATE_OBJECTS = new Set(["table", "view", "trigger", "index"]);

/** Statements whose top-level RETURNING makes them return rows. */
const RETURNING_STATEMENTS = new Set(["insert", "replace", "update", "delete", "with"]);

interface Edit {
  readonly start: number;
  readonly end: number;
  readonly text: string;
}

const HEX = "0123456789ABCDEF";

function hexUpper(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += HEX[b >> 4]! + HEX[b & 15]!;
  return s;
}

/** Julian day number of a Unix-ms instant, formatted as Go's `%f` (6 decimals). */
export function julianDayText(unixMs: number): string {
  return (unixMs / 86_400_000 + 2_440_587.5).toFixed(6);
}

/** Applies non-overlapping edits, adding a space where the literal would fuse with a neighbour. */
function applyEdits(sql: string, edits: Edit[]): string {
  edits.sort((a, b) => a.start - b.start);
  // Parts joined once at the end: repeated `+=` then `endsWith` would flatten a rope per edit.
  const parts: string[] = [];
  let pos = 0;
  let lastChar = "";
  for (const e of edits) {
    if (e.start > pos) {
      parts.push(sql.slice(pos, e.start));
      lastChar = sql[e.start - 1]!;
    }
    let text = e.text;
    // `5-random()` must not become `5--123` (a comment).
    if (text.startsWith("-") && lastChar === "-") text = ` ${text}`;
    // `random()AS x` must not become `-123AS x` (one illegal token).
    if (e.end < sql.length) {
      const after = sql.charCodeAt(e.end);
      if (isIdChar(after) || after === 46 || after === 39 || after === 34) text += " ";
    }
    parts.push(text);
    lastChar = text[text.length - 1]!;
    pos = e.end;
  }
  parts.push(sql.slice(pos));
  return parts.join("");
}

/**
 * Rewrites one SQL text (which may hold several `;`-separated statements;
 * they share one clock reading). Throws {@link RewriteError} only for a
 * RANDOMBLOB above the size bound. Text that SQLite cannot tokenize is
 * rewritten up to the bad token and left as is after it; `lexError` says
 * what was wrong (SQLite will fail the same way when it runs the text).
 */
export function rewriteSql(sql: string, options: RewriteOptions): RewriteResult {
  if (options.noparse || !PREFILTER.test(sql)) {
    return { sql, rewritten: false, forceQuery: false, explain: false };
  }
  return rewriteTokens(sql, options);
}

function rewriteTokens(sql: string, options: RewriteOptions): RewriteResult {
  const tokens = tokenize(sql);
  const sig: Token[] = [];
  let lexError: string | undefined;
  for (const t of tokens) {
    if (t.kind === "ws" || t.kind === "comment") continue;
    if (t.kind === "illegal") {
      lexError = `unrecognized token: "${sql.slice(t.start, t.end)}"`;
      break;
    }
    sig.push(t);
  }
  const rwRandom = !options.norwrandom;
  const rwTime = !options.norwtime;
  const maxBlob = options.maxRandomBlobBytes ?? DEFAULT_MAX_RANDOMBLOB_BYTES;
  const text = (t: Token | undefined) => t === undefined ? "" : sql.slice(t.start, t.end);
  const word = (t: Token | undefined) => t?.kind === "ident" ? text(t).toLowerCase() : "";
  const isPunct = (t: Token | undefined, p: string) => t?.kind === "punct" && text(t) === p;

  let julian: string | undefined;
  const now = () => julian ??= julianDayText(options.nowMs());
  const edits: Edit[] = [];
  let explain = false;
  let forceQuery = false;

  // Per parenthesis level: is an ORDER BY clause open at that level?
  let orderBy: boolean[] = [false];
  // Current sub-statement.
  let atStart = true;
  let first = "";
  let frozen = false; // inside CREATE/ALTER and not rewriteInCreate
  let createObject = ""; // table | view | trigger | index, once seen after CREATE
  let inTriggerBody = false;
  let caseDepth = 0;

  for (let k = 0; k < sig.length; k++) {
    const t = sig[k]!;
    if (t.kind === "punct") {
      const p = text(t);
      if (p === "(") orderBy.push(false);
      else if (p === ")") {
        if (orderBy.length > 1) orderBy.pop();
      } else if (p === ";") {
        orderBy = [false];
        if (!inTriggerBody) {
          atStart = true;
          first = "";
          frozen = false;
          createObject = "";
          caseDepth = 0;
        }
      }
      continue;
    }
    if (t.kind !== "ident") continue;
    const w = word(t);
    const top = orderBy.length - 1;

    if (atStart) {
      if (w === "explain") {
        if (k === 0) explain = true;
        if (word(sig[k + 1]) === "query" && word(sig[k + 2]) === "plan") k += 2;
        continue;
      }
      atStart = false;
      first = w;
      frozen = (w === "create" || w === "alter") && !options.rewriteInCreate;
      continue;
    }
    if (first === "create" && top === 0) {
      if (createObject === "" && CREATE_OBJECTS.has(w)) createObject = w;
      else if (createObject === "trigger" && !inTriggerBody && w === "begin") {
        inTriggerBody = true;
        continue;
      } else if (createObject === "table" && w === "as") {
        // CREATE TABLE ... AS SELECT runs its SELECT once, now: rewrite it like any query.
        frozen = false;
      }
    }
    if (inTriggerBody) {
      if (w === "case") caseDepth++;
      else if (w === "end") {
        if (caseDepth > 0) caseDepth--;
        else inTriggerBody = false;
      }
    }
    if (w === "order" && word(sig[k + 1]) === "by") {
      orderBy[top] = true;
      k++;
      continue;
    }
    if (ORDER_BY_END.has(w)) orderBy[top] = false;
    if (w === "returning" && top === 0 && RETURNING_STATEMENTS.has(first)) forceQuery = true;

    // Function calls we may rewrite: NAME ( args ).
    const isRandom = w === "random" || w === "randomblob";
    const timeArgs = TIME_ARGS.get(w);
    if (!isRandom && timeArgs === undefined) continue;
    if (frozen || !isPunct(sig[k + 1], "(") || orderBy.includes(true)) continue;
    const prev = sig[k - 1];
    if (isPunct(prev, ".") || NOT_A_CALL_AFTER.has(word(prev))) continue;
    const call = callArgs(sig, k + 1, text);
    if (call === undefined) continue;
    const { args, close } = call;
    // `WITH a AS (...), date(now) AS (...)`: a CTE definition, not a call.
    if (word(sig[close + 1]) === "as") {
      const after = sig[close + 2];
      if (isPunct(after, "(") || word(after) === "not" || word(after) === "materialized") continue;
    }
    if (isRandom) {
      if (!rwRandom) continue;
      if (w === "random") {
        if (args.length !== 0) continue;
        edits.push({
          start: t.start,
          end: sig[close]!.end,
          text: options.random.int64().toString(),
        });
      } else {
        const arg = args.length === 1 && args[0]!.length === 1 ? args[0]![0]! : undefined;
        if (arg?.kind !== "number" || !/^[0-9]+$/.test(text(arg))) continue;
        const n = Math.max(1, Number(text(arg)));
        if (n > maxBlob) {
          throw new RewriteError(
            `randomblob(${
              text(arg)
            }) is larger than the ${maxBlob}-byte limit for replicated rewriting`,
          );
        }
        edits.push({
          start: t.start,
          end: sig[close]!.end,
          text: `x'${hexUpper(options.random.bytes(n))}'`,
        });
      }
      k = close;
      continue;
    }
    if (!rwTime) continue;
    for (const index of timeArgs!) {
      const arg = args[index];
      if (arg === undefined || arg.length !== 1) continue;
      const a = arg[0]!;
      const isNow = (a.kind === "string" || a.kind === "quoted" || a.kind === "ident") &&
        unquote(text(a)).toLowerCase() === "now";
      if (isNow) edits.push({ start: a.start, end: a.end, text: now() });
    }
  }

  const rewritten = edits.length > 0;
  return {
    sql: rewritten ? applyEdits(sql, edits) : sql,
    rewritten,
    forceQuery,
    explain,
    ...(lexError === undefined ? {} : { lexError }),
  };
}

/**
 * The arguments of the call whose `(` is `sig[open]`: one token list per
 * comma-separated argument (empty list for `f()`), and the index of the
 * matching `)`; undefined when the parenthesis is never closed.
 */
function callArgs(
  sig: readonly Token[],
  open: number,
  text: (t: Token) => string,
): { args: Token[][]; close: number } | undefined {
  const args: Token[][] = [];
  let current: Token[] = [];
  let depth = 0;
  for (let j = open + 1; j < sig.length; j++) {
    const t = sig[j]!;
    const p = t.kind === "punct" ? text(t) : "";
    if (p === "(") depth++;
    else if (p === ")") {
      if (depth === 0) {
        if (current.length > 0 || args.length > 0) args.push(current);
        return { args, close: j };
      }
      depth--;
    } else if (p === ";") {
      return undefined;
    } else if (p === "," && depth === 0) {
      args.push(current);
      current = [];
      continue;
    }
    current.push(t);
  }
  return undefined;
}

/** Result of {@link processStatements}: new statements, or the rewrite failure. */
export type ProcessResult =
  | { readonly ok: true; readonly statements: Statement[] }
  | { readonly ok: false; readonly error: string };

/**
 * Rewrites a batch for replication and sets `forceQuery`/`explain`. Inputs
 * are not modified; statements that need no change are returned as is.
 * With `noparse` the batch is returned untouched.
 */
export function processStatements(
  statements: readonly Statement[],
  options: RewriteOptions,
): ProcessResult {
  if (options.noparse) return { ok: true, statements: [...statements] };
  const out: Statement[] = [];
  for (const stmt of statements) {
    let r: RewriteResult;
    try {
      r = rewriteSql(stmt.sql, options);
    } catch (e) {
      if (e instanceof RewriteError) return { ok: false, error: e.message };
      throw e;
    }
    if (!r.rewritten && !r.forceQuery && !r.explain) {
      out.push(stmt);
      continue;
    }
    out.push({
      ...stmt,
      sql: r.sql,
      ...(r.forceQuery ? { forceQuery: true } : {}),
      ...(r.explain ? { explain: true } : {}),
    });
  }
  return { ok: true, statements: out };
}

/** One entry of a /db/sql response: `rewritten` when the text tokenizes, else `error`. */
export interface Analysis {
  readonly original: string;
  readonly rewritten?: string;
  readonly error?: string;
}

/**
 * The /db/sql analysis of one statement: what would be executed, without
 * executing. Respects `norwrandom`/`norwtime`; always tokenizes (no
 * pre-filter, `noparse` ignored) so lexical errors are reported.
 */
export function analyze(sql: string, options: RewriteOptions): Analysis {
  let r: RewriteResult;
  try {
    r = rewriteTokens(sql, { ...options, noparse: false });
  } catch (e) {
    if (e instanceof RewriteError) return { original: sql, error: e.message };
    throw e;
  }
  if (r.lexError !== undefined) return { original: sql, error: r.lexError };
  return { original: sql, rewritten: r.sql };
}
