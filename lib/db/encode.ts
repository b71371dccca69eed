/**
 * Results → rqlite's JSON text, byte for byte (rqlite-api.md §3): Go's
 * `encoding/json` output for rqlite's response structs, built directly as a
 * string (no intermediate tree, exact 64-bit integers).
 *
 * Go rules reproduced:
 * - struct field order and `omitempty` (zero numbers, empty strings and
 *   empty slices are left out);
 * - map keys (associative rows and types) sorted by byte order;
 * - strings: `\"`, `\\`, `\b`, `\f`, `\n`, `\r`, `\t`, other control
 *   characters as `\u00XX` (lower-case hex), HTML-safe escapes `\u003c`,
 *   `\u003e`, `\u0026`, and `\u2028`, `\u2029`; invalid UTF-16 (a lone
 *   surrogate, Go's invalid UTF-8) as `\ufffd`;
 * - float64: shortest round-trip digits, exponent form below 1e-6 and from
 *   1e21 (`1e-7`, `1e+21`), `-0` kept; NaN and ±Inf cannot be encoded
 *   ({@link JsonEncodeError}, as Go's `json: unsupported value: +Inf`);
 * - `pretty`: `json.MarshalIndent(v, "", "    ")` layout (empty arrays and
 *   objects stay `[]`/`{}`), no trailing newline.
 *
 * @module
 */

import { isQueryResult, type QueryResult, type StatementResult, type Value } from "./result.ts";

/** How to render results (rqlite query parameters). */
export interface EncodeOptions {
  /** `associative`: rows as objects keyed by column. */
  associative?: boolean;
  /** `blob_array`: BLOBs as arrays of byte values instead of base64. */
  blobArray?: boolean;
  /** `pretty`: 4-space indentation. */
  pretty?: boolean;
}

/** The top-level response (rqlite `http.Response`). */
export interface ResponseBody {
  results: readonly StatementResult[];
  error?: string;
  /** Seconds (only with `timings`). */
  timeSec?: number;
  sequenceNumber?: number | bigint;
  raftIndex?: number | bigint;
}

/** A value Go's encoder refuses (NaN, ±Inf); the message is Go's. */
export class JsonEncodeError extends Error {
  override name = "JsonEncodeError";
}

// deno-lint-ignore no-control-regex
const NEEDS_ESCAPE = /["\\\u0000-\u001f<>&\u2028\u2029\ud800-\udfff]/;
const HEX = "0123456789abcdef";

/** A JSON string literal exactly as Go's `json.Marshal` writes it. */
export function jsonString(s: string): string {
  if (!NEEDS_ESCAPE.test(s)) return `"${s}"`;
  let out = '"';
  let start = 0;
  const n = s.length;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    let esc: string | undefined;
    if (c < 0x20) {
      switch (c) {
        case 0x08:
          esc = "\\b";
          break;
        case 0x0c:
          esc = "\\f";
          break;
        case 0x0a:
          esc = "\\n";
          break;
        case 0x0d:
          esc = "\\r";
          break;
        case 0x09:
          esc = "\\t";
          break;
        default:
          esc = "\\u00" + HEX[c >> 4] + HEX[c & 0xf];
      }
    } else if (c === 0x22) esc = '\\"';
    else if (c === 0x5c) esc = "\\\\";
    else if (c === 0x3c) esc = "\\u003c";
    else if (c === 0x3e) esc = "\\u003e";
    else if (c === 0x26) esc = "\\u0026";
    else if (c === 0x2028) esc = "\\u2028";
    else if (c === 0x2029) esc = "\\u2029";
    else if (c >= 0xd800 && c <= 0xdfff) {
      const d = s.charCodeAt(i + 1);
      if (c <= 0xdbff && d >= 0xdc00 && d <= 0xdfff) {
        i++; // a valid pair: copied as is
        continue;
      }
      esc = "\\ufffd";
    }
    if (esc !== undefined) {
      out += s.slice(start, i) + esc;
      start = i + 1;
    }
  }
  return out + s.slice(start) + '"';
}

/** A float64 exactly as Go's `json.Marshal` writes it. */
export function jsonNumber(n: number): string {
  if (!Number.isFinite(n)) {
    const g = Number.isNaN(n) ? "NaN" : n > 0 ? "+Inf" : "-Inf";
    throw new JsonEncodeError(`json: unsupported value: ${g}`);
  }
  // JavaScript's Number#toString picks the same shortest digits and switches
  // to exponent form at the same bounds (< 1e-6, >= 1e21) with the same
  // exponent spelling as Go after its e-0X cleanup; only -0 differs.
  if (n === 0) return Object.is(n, -0) ? "-0" : "0";
  return String(n);
}

/** Standard base64 with padding. */
export function base64(b: Uint8Array): string {
  let bin = "";
  const CHUNK = 0x8000;
  for (let i = 0; i < b.length; i += CHUNK) {
    bin += String.fromCharCode.apply(null, b.subarray(i, i + CHUNK) as unknown as number[]);
  }
  return btoa(bin);
}

/** One result value. */
export function jsonValue(v: Value, blobArray: boolean): string {
  switch (typeof v) {
    case "number":
      return jsonNumber(v);
    case "bigint":
      return v.toString();
    case "string":
      return jsonString(v);
    case "boolean":
      return v ? "true" : "false";
    default:
      if (v === null) return "null";
      return blobArray ? `[${v.join(",")}]` : `"${base64(v)}"`;
  }
}

function isZero(v: number | bigint | undefined): boolean {
  return v === undefined || v === 0 || v === 0n;
}

function stringArray(a: readonly string[]): string {
  let s = "[";
  for (let i = 0; i < a.length; i++) s += (i === 0 ? "" : ",") + jsonString(a[i]!);
  return s + "]";
}

/** Go's map key order: byte order of the UTF-8 encodings (= code point order). */
function compareKeys(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.codePointAt(i)!;
    const y = b.codePointAt(i)!;
    if (x !== y) return x - y;
    if (x > 0xffff) i++;
  }
  return a.length - b.length;
}

/** Unique column names sorted like Go map keys, each with its last index (later duplicates win). */
function sortedColumns(columns: readonly string[]): [string, number][] {
  const last = new Map<string, number>();
  for (let i = 0; i < columns.length; i++) last.set(columns[i]!, i);
  return [...last.entries()].sort((a, b) => compareKeys(a[0], b[0]));
}

function rowsValues(r: QueryResult, blobArray: boolean): string {
  let s = "[";
  for (let i = 0; i < r.values.length; i++) {
    const row = r.values[i]!;
    s += i === 0 ? "[" : ",[";
    for (let j = 0; j < row.length; j++) s += (j === 0 ? "" : ",") + jsonValue(row[j]!, blobArray);
    s += "]";
  }
  return s + "]";
}

function tail(r: StatementResult): string {
  let s = "";
  if (r.error !== undefined && r.error !== "") s += `,"error":${jsonString(r.error)}`;
  if (r.timeSec) s += `,"time":${jsonNumber(r.timeSec)}`;
  return s;
}

/** Trims the leading comma of a field list and wraps it in braces. */
function object(fields: string): string {
  return `{${fields.length > 0 ? fields.slice(1) : ""}}`;
}

/** One per-statement result object (compact). */
export function encodeResult(r: StatementResult, opts: EncodeOptions = {}): string {
  const blobArray = opts.blobArray ?? false;
  if (!opts.associative) {
    if (isQueryResult(r)) {
      let s = "";
      if (r.columns.length > 0) s += `,"columns":${stringArray(r.columns)}`;
      if (r.types.length > 0) s += `,"types":${stringArray(r.types)}`;
      if (r.values.length > 0) s += `,"values":${rowsValues(r, blobArray)}`;
      return object(s + tail(r));
    }
    let s = "";
    if (!isZero(r.lastInsertId)) s += `,"last_insert_id":${r.lastInsertId}`;
    if (!isZero(r.rowsAffected)) s += `,"rows_affected":${r.rowsAffected}`;
    return object(s + tail(r));
  }
  if (r.error !== undefined && r.error !== "") return object(tail(r));
  if (isQueryResult(r)) {
    const cols = sortedColumns(r.columns);
    let s = '{"types":{';
    for (let k = 0; k < cols.length; k++) {
      const [name, i] = cols[k]!;
      s += `${k === 0 ? "" : ","}${jsonString(name)}:${jsonString(r.types[i] ?? "")}`;
    }
    s += '},"rows":[';
    const keys = cols.map(([name, i]) => [jsonString(name) + ":", i] as const);
    for (let j = 0; j < r.values.length; j++) {
      const row = r.values[j]!;
      s += j === 0 ? "{" : ",{";
      for (let k = 0; k < keys.length; k++) {
        const [key, i] = keys[k]!;
        s += (k === 0 ? "" : ",") + key + jsonValue(row[i] ?? null, blobArray);
      }
      s += "}";
    }
    return s + "]" + tail(r) + "}";
  }
  let s = "";
  if (!isZero(r.lastInsertId)) s += `,"last_insert_id":${r.lastInsertId}`;
  if (!isZero(r.rowsAffected)) s += `,"rows_affected":${r.rowsAffected}`;
  return object(s + tail(r) + ',"rows":null');
}

/** The `results` array (compact). */
export function encodeResults(
  results: readonly StatementResult[],
  opts: EncodeOptions = {},
): string {
  let s = "[";
  for (let i = 0; i < results.length; i++) {
    s += (i === 0 ? "" : ",") + encodeResult(results[i]!, opts);
  }
  return s + "]";
}

/** The whole response body, compact or pretty. */
export function encodeResponse(body: ResponseBody, opts: EncodeOptions = {}): string {
  let s = `{"results":${encodeResults(body.results, opts)}`;
  if (body.error !== undefined && body.error !== "") s += `,"error":${jsonString(body.error)}`;
  if (body.timeSec) s += `,"time":${jsonNumber(body.timeSec)}`;
  if (!isZero(body.sequenceNumber)) s += `,"sequence_number":${body.sequenceNumber}`;
  if (!isZero(body.raftIndex)) s += `,"raft_index":${body.raftIndex}`;
  s += "}";
  return opts.pretty ? indentJson(s) : s;
}

/**
 * Go's `json.Indent(dst, src, "", indent)` over compact JSON text: newline
 * and indentation after `{`, `[` and `,`, `": "` after keys, and empty
 * objects and arrays kept as `{}` and `[]`.
 */
export function indentJson(src: string, indent = "    "): string {
  let out = "";
  let depth = 0;
  let needIndent = false;
  let i = 0;
  const n = src.length;
  const newline = (d: number) => "\n" + indent.repeat(d);
  while (i < n) {
    const c = src[i]!;
    if (c === " " || c === "\t" || c === "\n" || c === "\r") {
      i++;
      continue;
    }
    if (needIndent && c !== "}" && c !== "]") {
      needIndent = false;
      depth++;
      out += newline(depth);
    }
    if (c === '"') {
      let j = i + 1;
      while (j < n) {
        const d = src.charCodeAt(j);
        if (d === 0x5c) j += 2;
        else if (d === 0x22) break;
        else j++;
      }
      out += src.slice(i, j + 1);
      i = j + 1;
      continue;
    }
    switch (c) {
      case "{":
      case "[":
        needIndent = true;
        out += c;
        break;
      case ",":
        out += "," + newline(depth);
        break;
      case ":":
        out += ": ";
        break;
      case "}":
      case "]":
        if (needIndent) needIndent = false;
        else {
          depth--;
          out += newline(depth);
        }
        out += c;
        break;
      default: {
        // A run of literal characters (number, true, false, null).
        let j = i + 1;
        while (j < n && !",:]} \t\n\r".includes(src[j]!)) j++;
        out += src.slice(i, j);
        i = j;
        continue;
      }
    }
    i++;
  }
  return out;
}
