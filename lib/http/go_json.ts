/**
 * Encodes plain values the way Go's encoding/json encodes rqlite's
 * `map[string]interface{}` status objects: object keys sorted, strings with
 * Go's escaping, numbers as Go prints them, `pretty` as json.MarshalIndent
 * with 4 spaces. Used by /status, /nodes, /leader and /debug/vars.
 *
 * @module
 */

import { indentJson, jsonNumber, jsonString } from "../db/encode.ts";

/** Options: `sortKeys` false keeps insertion order (Go structs keep field order). */
export interface GoJsonOptions {
  readonly pretty?: boolean;
  readonly sortKeys?: boolean;
}

/** Go-compatible JSON text of `value`. */
export function goJson(value: unknown, options: GoJsonOptions = {}): string {
  const text = encode(value, options.sortKeys ?? true);
  return options.pretty ? indentJson(text) : text;
}

function encode(v: unknown, sortKeys: boolean): string {
  if (v === null || v === undefined) return "null";
  switch (typeof v) {
    case "string":
      return jsonString(v);
    case "number":
      return Number.isFinite(v) ? jsonNumber(v) : "null";
    case "bigint":
      return v.toString();
    case "boolean":
      return v ? "true" : "false";
    case "object":
      break;
    default:
      return "null";
  }
  if (Array.isArray(v)) return `[${v.map((x) => encode(x, sortKeys)).join(",")}]`;
  const entries = Object.entries(v as Record<string, unknown>).filter(([, x]) => x !== undefined);
  if (sortKeys) entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, x]) => `${jsonString(k)}:${encode(x, sortKeys)}`).join(",")}}`;
}
