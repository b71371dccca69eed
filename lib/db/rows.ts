/**
 * Turning node:sqlite rows into rqlite result values: declared types
 * lower-cased, expression types inferred from the first row, and the
 * go-sqlite3 driver conversions rqlite inherits (rqlite-api.md §3).
 *
 * Rows arrive as arrays read with `setReadBigInts(true)`, so the storage
 * class is visible in the JavaScript type: `bigint` = INTEGER, `number` =
 * REAL, `string` = TEXT, `Uint8Array` = BLOB, `null` = NULL.
 *
 * @module
 */

import { formatTimeInteger, formatTimeText } from "./go_time.ts";
import type { Value } from "./result.ts";

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const MIN_SAFE = -MAX_SAFE;

/** An INTEGER as a `number` when exact, else the `bigint`. */
export function intValue(v: bigint): number | bigint {
  return v >= MIN_SAFE && v <= MAX_SAFE ? Number(v) : v;
}

/**
 * rqlite returns BLOB values as text in columns of these types (and in
 * untyped expression columns), as Go `string([]byte)`.
 */
export function isTextType(t: string): boolean {
  return t === "text" || t === "json" || t === "" || t.startsWith("varchar") ||
    t.startsWith("varying character") || t.startsWith("nchar") ||
    t.startsWith("native character") || t.startsWith("nvarchar") || t.startsWith("clob") ||
    t.startsWith("character");
}

const PLAIN = 0;
const DATE = 1;
const BOOL = 2;
const TEXT_BLOB = 4;

const utf8 = new TextDecoder();

/** Column metadata as node:sqlite's `StatementSync.columns()` reports it. */
export interface ColumnInfo {
  readonly name: string;
  readonly table: string | null;
  readonly type: string | null;
}

/** Names and lower-cased declared types ("" for expressions). */
export function columnHeader(
  cols: readonly ColumnInfo[],
  qualify: boolean,
): { columns: string[]; decl: string[] } {
  const n = cols.length;
  const columns = new Array<string>(n);
  const decl = new Array<string>(n);
  for (let i = 0; i < n; i++) {
    const c = cols[i]!;
    columns[i] = qualify && c.table ? `${c.table}.${c.name}` : c.name;
    decl[i] = c.type === null ? "" : c.type.toLowerCase();
  }
  return { columns, decl };
}

function inferType(v: unknown): string {
  switch (typeof v) {
    case "bigint":
      return "integer";
    case "number":
      return "real";
    case "string":
      return "text";
    default:
      return v instanceof Uint8Array ? "text" : "";
  }
}

/**
 * Computes the result types and converts `rows` in place into result values.
 * Throws {@link GoTimeError} when a date value cannot be marshalled (as
 * rqlite fails the statement).
 */
export function convertRows(decl: readonly string[], rows: unknown[][]): {
  types: string[];
  values: Value[][];
} {
  const n = decl.length;
  const types = decl.slice();
  const first = rows[0];
  if (first !== undefined) {
    for (let i = 0; i < n; i++) if (types[i] === "") types[i] = inferType(first[i]);
  }
  const kinds = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    const d = decl[i]!;
    let k = PLAIN;
    if (d === "date" || d === "datetime" || d === "timestamp") k |= DATE;
    else if (d === "boolean") k |= BOOL;
    if (isTextType(types[i]!)) k |= TEXT_BLOB;
    kinds[i] = k;
  }
  for (const row of rows) {
    for (let i = 0; i < n; i++) {
      const v = row[i];
      const k = kinds[i]!;
      if (typeof v === "bigint") {
        row[i] = (k & DATE) !== 0 ? formatTimeInteger(v) : (k & BOOL) !== 0 ? v > 0n : intValue(v);
      } else if (typeof v === "string") {
        if ((k & DATE) !== 0) row[i] = formatTimeText(v);
      } else if (v instanceof Uint8Array) {
        if ((k & TEXT_BLOB) !== 0) row[i] = utf8.decode(v);
      }
    }
  }
  return { types, values: rows as Value[][] };
}
