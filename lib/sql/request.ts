/**
 * Request bodies to statements, as rqlite's `http/request_parser.go`
 * (rqlite-api.md §2).
 *
 * A JSON body is an array whose elements are SQL strings or
 * `[sql, param...]` arrays. A JSON object among the params contributes named
 * params (one per key); anything else is one positional param. Typing:
 * integer literals that fit int64 → `bigint` (exact, any size up to int64);
 * every other number (`1.0`, `1e2`, `2^63`) → `number` (REAL); `true`/`false`
 * → boolean; `null` → NULL; a string that is a hex blob literal `x'..'`
 * (after trimming, even count of hex digits) → `Uint8Array`, else text; an
 * array of integers 0..255 → `Uint8Array`.
 *
 * Errors are the exact 400 texts: `invalid JSON body`, `invalid request`,
 * `no statements`, `unsupported type` (rqlite's `ErrUnsupportedType`; a number
 * too large for float64 gets Go's `strconv.ParseFloat` message). Syntax is checked over the whole
 * body before the shape, as Go decodes first and inspects after.
 *
 * Empty-string statements are dropped here (rqlite skips them at execution,
 * producing no result entry); `[]` is still `no statements` while `[""]` is
 * a valid, empty batch.
 *
 * @module
 */

import { JsonNumber, JsonObject, JsonSyntaxError, parseJsonExact } from "./json.ts";
import type { JsonValue } from "./json.ts";
import type { Param, Statement } from "./types.ts";

/** Default bound on statements per request body. */
export const DEFAULT_MAX_STATEMENTS = 100_000;

/** rqlite's request-parser error texts. */
export const ERR_INVALID_JSON = "invalid JSON body";
export const ERR_INVALID_REQUEST = "invalid request";
export const ERR_NO_STATEMENTS = "no statements";
export const ERR_UNSUPPORTED_TYPE = "unsupported type";

/** Options for {@link parseJsonRequest}. */
export interface ParseRequestOptions {
  /** Most statements one body may carry (counting empty ones); default {@link DEFAULT_MAX_STATEMENTS}. */
  readonly maxStatements?: number;
}

/** Parsed statements, or the 400 text body (without the `\n`). */
export type RequestResult =
  | { readonly ok: true; readonly statements: Statement[] }
  | { readonly ok: false; readonly error: string };

const INT64_MIN = -(1n << 63n);
const INT64_MAX = (1n << 63n) - 1n;

/** Go's `unicode.IsSpace` (for `strings.TrimSpace`): ASCII space class, U+0085, U+00A0 and Unicode White_Space. */
function isGoSpace(c: number): boolean {
  if (c <= 0xff) {
    return c === 0x20 || (c >= 0x09 && c <= 0x0d) || c === 0x85 || c === 0xa0;
  }
  return c === 0x1680 || (c >= 0x2000 && c <= 0x200a) || c === 0x2028 || c === 0x2029 ||
    c === 0x202f || c === 0x205f || c === 0x3000;
}

/** Go's `strings.TrimSpace`. */
export function goTrimSpace(s: string): string {
  let start = 0;
  let end = s.length;
  while (start < end && isGoSpace(s.charCodeAt(start))) start++;
  while (end > start && isGoSpace(s.charCodeAt(end - 1))) end--;
  return s.slice(start, end);
}

/**
 * The bytes of a SQLite hex blob literal (`x'DEADBEEF'`, `X'00'`, `x''`),
 * after Go's `TrimSpace`; `undefined` when `s` is not one (odd digit count or
 * a non-hex digit leaves the string as text).
 */
export function parseHexBlobLiteral(s: string): Uint8Array | undefined {
  const t = goTrimSpace(s);
  if (t.length < 3) return undefined;
  const x = t.charCodeAt(0);
  if ((x !== 120 && x !== 88) || t[1] !== "'" || t[t.length - 1] !== "'") return undefined;
  const hex = t.slice(2, -1);
  if (hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) return undefined;
  const out = new Uint8Array(hex.length / 2);
  for (let k = 0; k < out.length; k++) out[k] = parseInt(hex.slice(2 * k, 2 * k + 2), 16);
  return out;
}

/** Go's `json.Number.Int64()` then `Float64()`: int64 when the literal is an in-range integer, else float64. */
function numberValue(raw: string): bigint | number | { error: string } {
  if (/^-?[0-9]+$/.test(raw)) {
    const v = BigInt(raw);
    if (v >= INT64_MIN && v <= INT64_MAX) return v;
  }
  const f = Number(raw);
  if (!Number.isFinite(f)) {
    return { error: `strconv.ParseFloat: parsing "${raw}": value out of range` };
  }
  return f;
}

/** One parameter value, as rqlite's `makeParameter`. */
function paramValue(v: JsonValue): Param["value"] | { error: string } {
  if (v === null || typeof v === "boolean") return v;
  if (typeof v === "string") return parseHexBlobLiteral(v) ?? v;
  if (v instanceof JsonNumber) return numberValue(v.raw);
  if (Array.isArray(v)) {
    const bytes = new Uint8Array(v.length);
    for (let k = 0; k < v.length; k++) {
      const e = v[k];
      const b = e instanceof JsonNumber && /^-?[0-9]+$/.test(e.raw) ? Number(e.raw) : -1;
      if (!(b >= 0 && b <= 255)) return { error: ERR_UNSUPPORTED_TYPE };
      bytes[k] = b;
    }
    return bytes;
  }
  return { error: ERR_UNSUPPORTED_TYPE };
}

/** `[sql, p1, p2, ...]` → a statement, or an error text. */
function parameterized(element: JsonValue[]): Statement | string {
  const sql = element[0];
  if (typeof sql !== "string") return ERR_INVALID_REQUEST;
  const params: Param[] = [];
  for (let k = 1; k < element.length; k++) {
    const p = element[k] as JsonValue;
    if (p instanceof JsonObject) {
      for (const [name, v] of p.entries) {
        const value = paramValue(v);
        if (value !== null && typeof value === "object" && "error" in value) return value.error;
        params.push({ name, value });
      }
    } else {
      const value = paramValue(p);
      if (value !== null && typeof value === "object" && "error" in value) return value.error;
      params.push({ value });
    }
  }
  return { sql, params };
}

/**
 * Parses a JSON request body (already decoded as UTF-8 text). A zero-length
 * body and `null` are `no statements` (rqlite reads them as an empty list).
 */
export function parseJsonRequest(body: string, options: ParseRequestOptions = {}): RequestResult {
  const maxStatements = options.maxStatements ?? DEFAULT_MAX_STATEMENTS;
  if (body.length === 0) return { ok: false, error: ERR_NO_STATEMENTS };
  let root: JsonValue;
  try {
    root = parseJsonExact(body);
  } catch (e) {
    if (e instanceof JsonSyntaxError) return { ok: false, error: ERR_INVALID_JSON };
    throw e;
  }
  if (root === null) return { ok: false, error: ERR_NO_STATEMENTS };
  if (!Array.isArray(root)) return { ok: false, error: ERR_INVALID_REQUEST };
  if (root.length === 0) return { ok: false, error: ERR_NO_STATEMENTS };
  if (root.length > maxStatements) {
    return {
      ok: false,
      error: `too many statements: ${root.length} (at most ${maxStatements} per request)`,
    };
  }
  const statements: Statement[] = [];
  for (const element of root) {
    let stmt: Statement | string;
    if (typeof element === "string") {
      stmt = { sql: element, params: [] };
    } else if (Array.isArray(element) && element.length > 0) {
      stmt = parameterized(element);
    } else {
      stmt = ERR_INVALID_REQUEST;
    }
    if (typeof stmt === "string") return { ok: false, error: stmt };
    if (stmt.sql !== "") statements.push(stmt);
  }
  return { ok: true, statements };
}

/**
 * A `text/plain` body (POST /db/execute, /db/query) or a `q` value: the whole
 * text is one statement; empty text gives no statement.
 */
export function parseTextRequest(body: string): Statement[] {
  return body === "" ? [] : [{ sql: body, params: [] }];
}
