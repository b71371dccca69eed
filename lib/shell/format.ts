/**
 * Query results as text in the four `.mode`s:
 *
 * - `column` (default): rqlite's boxed ASCII table (`+----+` borders, a
 *   header row), columns as wide as their widest cell in terminal columns
 *   (text_width.ts), numbers right-aligned, cells with line breaks spread
 *   over several lines (`.schema` stays readable), NULL shown as `NULL`.
 * - `csv`: RFC 4180 quoting, a header line, NULL as an empty field.
 * - `json`: one JSON object per row in an array, as sqlite3's `.mode json`;
 *   integers beyond 2^53 keep their exact digits, NULL is `null`.
 * - `line`: sqlite3's `.mode line`, `name = value` per column, right-aligned
 *   names, a blank line between rows.
 *
 * Pure functions from a result set to a string, unit-tested directly.
 *
 * @module
 */

import { displayWidth, pad } from "./text_width.ts";

/** The output modes `.mode` accepts. */
export const MODES = ["column", "csv", "json", "line"] as const;

/** One of {@link MODES}. */
export type Mode = (typeof MODES)[number];

/** The rows part of an rqlite result. */
export interface ResultSet {
  readonly columns: readonly string[];
  readonly types?: readonly string[];
  readonly values?: readonly (readonly unknown[])[];
}

/** `rs` as text in `mode`, ending with a newline (empty string when there are no columns). */
export function formatResult(rs: ResultSet, mode: Mode): string {
  if (rs.columns.length === 0) return "";
  switch (mode) {
    case "column":
      return formatColumn(rs);
    case "csv":
      return formatCsv(rs);
    case "json":
      return formatJson(rs);
    case "line":
      return formatLine(rs);
  }
}

const REAL_TYPES = new Set(["real", "float", "double", "double precision"]);

/** A value as plain text; `null` for SQL NULL (each mode shows it its own way). */
export function valueText(v: unknown, type?: string): string | null {
  if (v === null || v === undefined) return null;
  if (typeof v === "string") return v;
  if (typeof v === "bigint") return v.toString();
  if (typeof v === "number") {
    // JSON has no 1.0: show a REAL column's whole numbers as SQLite prints them.
    if (Number.isInteger(v) && type !== undefined && REAL_TYPES.has(type.toLowerCase())) {
      return v.toFixed(1);
    }
    return String(v);
  }
  if (typeof v === "boolean") return v ? "true" : "false";
  return jsonValue(v);
}

/** JSON text of a value, integers beyond 2^53 (bigint) as exact digits. */
export function jsonValue(v: unknown): string {
  if (typeof v === "bigint") return v.toString();
  if (v === undefined) return "null";
  if (Array.isArray(v)) return `[${v.map(jsonValue).join(",")}]`;
  if (v !== null && typeof v === "object") {
    const parts = Object.entries(v).map(([k, x]) => `${JSON.stringify(k)}:${jsonValue(x)}`);
    return `{${parts.join(",")}}`;
  }
  return JSON.stringify(v);
}

function rows(rs: ResultSet): readonly (readonly unknown[])[] {
  return rs.values ?? [];
}

function isNumeric(v: unknown): boolean {
  return typeof v === "number" || typeof v === "bigint";
}

/** Control characters would break the table: tabs become spaces, others `\xNN`. */
function visible(line: string): string {
  return line.replace(/\t/g, "    ").replace(
    // deno-lint-ignore no-control-regex
    /[\x00-\x08\x0b-\x1f\x7f]/g,
    (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`,
  );
}

function cellLines(v: unknown, type?: string): string[] {
  const text = valueText(v, type) ?? "NULL";
  return text.split(/\r?\n/).map(visible);
}

function formatColumn(rs: ResultSet): string {
  const header = rs.columns.map((c) => [visible(c)]);
  const body = rows(rs).map((row) => rs.columns.map((_, i) => cellLines(row[i], rs.types?.[i])));
  const widths = rs.columns.map((_, i) => {
    let w = displayWidth(header[i]![0]!);
    for (const r of body) for (const l of r[i]!) w = Math.max(w, displayWidth(l));
    return w;
  });
  const rule = `+${widths.map((w) => "-".repeat(w + 2)).join("+")}+`;
  const out = [rule, ...renderRow(header, widths, () => false), rule];
  rows(rs).forEach((row, r) => {
    out.push(...renderRow(body[r]!, widths, (i) => isNumeric(row[i])));
  });
  if (body.length > 0) out.push(rule);
  return out.join("\n") + "\n";
}

function renderRow(
  cells: string[][],
  widths: number[],
  right: (i: number) => boolean,
): string[] {
  const height = Math.max(1, ...cells.map((c) => c.length));
  const lines: string[] = [];
  for (let l = 0; l < height; l++) {
    const parts = cells.map((c, i) => pad(c[l] ?? "", widths[i]!, right(i)));
    lines.push(`| ${parts.join(" | ")} |`);
  }
  return lines;
}

function csvField(s: string | null): string {
  if (s === null) return "";
  return /[",\r\n]|^\s|\s$/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

function formatCsv(rs: ResultSet): string {
  const out = [rs.columns.map(csvField).join(",")];
  for (const row of rows(rs)) {
    out.push(rs.columns.map((_, i) => csvField(valueText(row[i], rs.types?.[i]))).join(","));
  }
  return out.join("\n") + "\n";
}

function formatJson(rs: ResultSet): string {
  const keys = rs.columns.map((c) => JSON.stringify(c));
  const objs = rows(rs).map((row) =>
    `{${keys.map((k, i) => `${k}:${jsonValue(row[i] ?? null)}`).join(",")}}`
  );
  return `[${objs.join(",\n")}]\n`;
}

function formatLine(rs: ResultSet): string {
  const width = Math.max(...rs.columns.map((c) => displayWidth(c)));
  const blocks = rows(rs).map((row) =>
    rs.columns.map((c, i) =>
      `${pad(c, width, true)} = ${valueText(row[i], rs.types?.[i]) ?? "NULL"}`
    )
      .join("\n")
  );
  return blocks.length === 0 ? "" : blocks.join("\n\n") + "\n";
}
