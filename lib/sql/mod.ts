/**
 * lib/sql — the pure text layer between HTTP and the store: query strings,
 * request bodies and SQL statements in, typed values out. No I/O, no clock,
 * no ambient randomness (the clock and random source are injected), so every
 * function is a plain input → output mapping and is unit-tested as such.
 *
 * What it owns and why:
 * - `params.ts`: rqlite's query-string rules (presence flags, first value
 *   wins, Go `url.ParseQuery` errors) and the exact 400 texts.
 * - `duration.ts`: Go `time.ParseDuration` / `Duration.String()`, exact,
 *   because rqlite validates durations with the one and prints /status and
 *   /nodes times with the other.
 * - `json.ts` + `request.ts`: request bodies. JSON numbers must keep their
 *   source text (`9223372036854775807` stays exact, `1.0` stays REAL), which
 *   `JSON.parse` cannot do cheaply, so a small exact parser does it.
 * - `tokenizer.ts` + `rewrite.ts`: statement rewriting for determinism
 *   (RANDOM, RANDOMBLOB, 'now'), RETURNING/EXPLAIN detection, and /db/sql
 *   analysis. Rewriting happens on the receiving node before Raft, so all
 *   nodes apply identical text.
 *
 * Invariants: rewriting only replaces the tokens it must and keeps every
 * other byte (rqlite re-renders the whole statement instead; see
 * rewrite.ts); nothing inside a string, quoted identifier, blob literal,
 * comment or ORDER BY term is rewritten; errors are values (`{ok: false,
 * error}`) carrying the exact text the HTTP layer sends.
 *
 * How the HTTP layer uses it (400 = `textError(400, error)`):
 *
 * ```ts
 * const qp = parseQueryParams(url.search);             // !ok → 400 qp.error
 * const body = isTextPlain
 *   ? { ok: true, statements: parseTextRequest(text) } // execute/query only
 *   : parseJsonRequest(text, { maxStatements });        // !ok → 400 body.error
 * // execute/request: rewrite per flags; query: rewrite only at level=strong,
 * // but RETURNING/EXPLAIN detection always (unless noparse).
 * const rewrite = endpoint !== "query" || qp.params.level === "strong";
 * const out = processStatements(statements, {
 *   norwrandom: qp.params.norwrandom || !rewrite,
 *   norwtime: qp.params.norwtime || !rewrite,
 *   noparse: qp.params.noparse,
 *   random: cryptoRandom,
 *   nowMs: Date.now,
 * });                                                   // !ok → 500 out.error ("SQL rewrite: ...")
 * ```
 *
 * @module
 */

export type { Param, ParamValue, Statement } from "./types.ts";
export {
  type DurationResult,
  formatGoDuration,
  formatGoDurationNs,
  isGoDuration,
  nsToMs,
  parseGoDuration,
} from "./duration.ts";
export {
  type BackupFormat,
  type ConsistencyLevel,
  parseQueryParams,
  parseRawQuery,
  type QueryParams,
  type QueryParamsResult,
} from "./params.ts";
export {
  DEFAULT_MAX_STATEMENTS,
  ERR_INVALID_JSON,
  ERR_INVALID_REQUEST,
  ERR_NO_STATEMENTS,
  ERR_UNSUPPORTED_TYPE,
  parseHexBlobLiteral,
  parseJsonRequest,
  type ParseRequestOptions,
  parseTextRequest,
  type RequestResult,
} from "./request.ts";
export { cryptoRandom, type RandomSource, seededRandom } from "./random.ts";
export {
  type Analysis,
  analyze,
  DEFAULT_MAX_RANDOMBLOB_BYTES,
  julianDayText,
  type ProcessResult,
  processStatements,
  RewriteError,
  type RewriteOptions,
  type RewriteResult,
  rewriteSql,
} from "./rewrite.ts";
export { type Token, tokenize, type TokenKind } from "./tokenizer.ts";
