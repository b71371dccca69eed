/**
 * rqlite's query-string rules (`http/query_params.go`, rqlite-api.md §0/§1).
 *
 * The raw query is split exactly as Go's `url.ParseQuery` does (`&`
 * separators, `+` is a space, percent escapes, a `;` in a pair is an error,
 * the first malformed escape is reported), the first value of each key wins,
 * keys are case-sensitive and unknown keys are ignored. Flags are presence
 * flags: `?pretty`, `?pretty=false` and `?pretty=0` all turn `pretty` on.
 * Then the validations rqlite runs on every request, with its exact 400
 * texts, in this order: `freshness_strict requires freshness`,
 * `<name> is not a valid duration`, `<name> is not a valid integer`,
 * `query parameter not set`.
 *
 * @module
 */

import { nsToMs, parseGoDuration } from "./duration.ts";

/** Read consistency level (`level`), already case-folded; unknown or absent is `weak`. */
export type ConsistencyLevel = "none" | "weak" | "strong" | "linearizable" | "auto";

/** Backup format (`fmt`): `sql` and `delete` exactly, anything else (or absent) is `binary`. */
export type BackupFormat = "binary" | "sql" | "delete";

/** The parsed query string. Durations are milliseconds (fractional below 1 ms). */
export interface QueryParams {
  /** First value of every key, decoded; what Go's `QueryParams` map holds. */
  readonly raw: ReadonlyMap<string, string>;

  readonly pretty: boolean;
  readonly timings: boolean;
  readonly transaction: boolean;
  readonly queue: boolean;
  readonly wait: boolean;
  readonly associative: boolean;
  readonly blobArray: boolean;
  readonly qualifyColumns: boolean;
  readonly norwrandom: boolean;
  readonly norwtime: boolean;
  readonly noparse: boolean;
  readonly redirect: boolean;
  readonly noleader: boolean;
  readonly nonvoters: boolean;
  readonly freshnessStrict: boolean;
  readonly raftIndex: boolean;
  readonly compress: boolean;
  readonly vacuum: boolean;
  readonly sync: boolean;
  readonly bypass: boolean;

  /** `level`, case-insensitive; unknown or absent → `weak`. */
  readonly level: ConsistencyLevel;
  /** `ver` as given (`"2"` selects the /nodes array form). */
  readonly ver: string | undefined;
  /** `fmt` mapped as rqlite's `BackupFormat()` (exact, case-sensitive match). */
  readonly backupFormat: BackupFormat;
  /** `tables` split on `,` exactly as Go's `strings.Split` (no trimming, empties kept). */
  readonly tables: readonly string[] | undefined;
  /** `key` (status sub-key / expvar name). */
  readonly key: string | undefined;
  /** `q`; never `""` (that is rejected with `query parameter not set`). */
  readonly q: string | undefined;

  /** `timeout` in ms (may be negative or fractional); absent → undefined (rqlite default 30s). */
  readonly timeoutMs: number | undefined;
  /** `freshness` in ms; absent → undefined (0 = never stale). */
  readonly freshnessMs: number | undefined;
  /** `db_timeout` in ms; absent → undefined (none). */
  readonly dbTimeoutMs: number | undefined;
  /** `linearizable_timeout` in ms; absent → undefined (HTTP default 10s). */
  readonly linearizableTimeoutMs: number | undefined;
  /** `retries`; absent → undefined (default 0). */
  readonly retries: number | undefined;
  /** `trailing_logs`; absent → undefined. */
  readonly trailingLogs: number | undefined;
}

/** Outcome of {@link parseQueryParams}: params, or the 400 text body (without the `\n`). */
export type QueryParamsResult =
  | { readonly ok: true; readonly params: QueryParams }
  | { readonly ok: false; readonly error: string };

/** Duration-valued parameters, in the order rqlite validates them. */
const DURATION_KEYS = ["timeout", "freshness", "db_timeout", "linearizable_timeout"] as const;
/** Integer-valued parameters, in the order rqlite validates them. */
const INTEGER_KEYS = ["retries", "trailing_logs"] as const;

/** Go's `strconv.Quote` for the short ASCII snippets `url.EscapeError` carries. */
function goQuote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const c = ch.codePointAt(0) ?? 0;
    if (ch === '"' || ch === "\\") out += `\\${ch}`;
    else if (c >= 0x20 && c < 0x7f) out += ch;
    else if (c < 0x80) out += `\\x${c.toString(16).padStart(2, "0")}`;
    else out += ch;
  }
  return `${out}"`;
}

function isHex(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102);
}

/** Go's `url.QueryUnescape`: `+` → space, `%XX` → byte; bytes decoded as UTF-8 (lossy, as Go strings print). */
function queryUnescape(s: string): { ok: true; value: string } | { ok: false; error: string } {
  for (let i = 0; i < s.length; i++) {
    if (s.charCodeAt(i) !== 37 /* % */) continue;
    if (i + 2 >= s.length || !isHex(s.charCodeAt(i + 1)) || !isHex(s.charCodeAt(i + 2))) {
      return { ok: false, error: `invalid URL escape ${goQuote(s.slice(i, i + 3))}` };
    }
    i += 2;
  }
  if (!s.includes("%")) return { ok: true, value: s.replaceAll("+", " ") };
  const bytes: number[] = [];
  const enc = new TextEncoder();
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 37) {
      bytes.push(parseInt(s.slice(i + 1, i + 3), 16));
      i += 2;
    } else if (c === 43 /* + */) {
      bytes.push(32);
    } else if (c < 0x80) {
      bytes.push(c);
    } else {
      // Non-ASCII raw characters (not normally present: URLs percent-encode them).
      const cp = s.codePointAt(i) ?? c;
      for (const b of enc.encode(String.fromCodePoint(cp))) bytes.push(b);
      if (cp > 0xffff) i++;
    }
  }
  return { ok: true, value: new TextDecoder().decode(new Uint8Array(bytes)) };
}

/**
 * Go's `url.ParseQuery` into a first-value-wins map. Returns the map and the
 * error Go would return (parsing continues past errors, as in Go; rqlite
 * answers 400 with the error text).
 */
export function parseRawQuery(rawQuery: string): {
  values: Map<string, string>;
  error: string | undefined;
} {
  const values = new Map<string, string>();
  let error: string | undefined;
  for (const pair of rawQuery.split("&")) {
    if (pair.includes(";")) {
      // Go overwrites any earlier error with this one.
      error = "invalid semicolon separator in query";
      continue;
    }
    if (pair === "") continue;
    const eq = pair.indexOf("=");
    const rawKey = eq < 0 ? pair : pair.slice(0, eq);
    const rawValue = eq < 0 ? "" : pair.slice(eq + 1);
    const key = queryUnescape(rawKey);
    if (!key.ok) {
      error ??= key.error;
      continue;
    }
    const value = queryUnescape(rawValue);
    if (!value.ok) {
      error ??= value.error;
      continue;
    }
    if (!values.has(key.value)) values.set(key.value, value.value);
  }
  return { values, error };
}

/** Go's `strconv.Atoi` on a 64-bit platform: optional sign, decimal digits, int64 range. */
function parseGoInt(text: string): number | undefined {
  if (!/^[+-]?[0-9]+$/.test(text)) return undefined;
  const v = BigInt(text);
  if (v < -(1n << 63n) || v > (1n << 63n) - 1n) return undefined;
  return Number(v);
}

function toLevel(value: string | undefined): ConsistencyLevel {
  switch (value?.toLowerCase()) {
    case "none":
      return "none";
    case "strong":
      return "strong";
    case "linearizable":
      return "linearizable";
    case "auto":
      return "auto";
    default:
      return "weak";
  }
}

function toBackupFormat(value: string | undefined): BackupFormat {
  if (value === "sql" || value === "delete") return value;
  return "binary";
}

/**
 * Parses a raw query string (`URL.search`, with or without the leading `?`)
 * the rqlite way. On failure the result carries the exact 400 text body.
 */
export function parseQueryParams(rawQuery: string): QueryParamsResult {
  const { values, error } = parseRawQuery(rawQuery.startsWith("?") ? rawQuery.slice(1) : rawQuery);
  if (error !== undefined) return { ok: false, error };

  if (values.has("freshness_strict") && !values.has("freshness")) {
    return { ok: false, error: "freshness_strict requires freshness" };
  }
  const durations = new Map<string, number>();
  for (const key of DURATION_KEYS) {
    const text = values.get(key);
    if (text === undefined) continue;
    const d = parseGoDuration(text);
    if (!d.ok) return { ok: false, error: `${key} is not a valid duration` };
    durations.set(key, nsToMs(d.ns));
  }
  const integers = new Map<string, number>();
  for (const key of INTEGER_KEYS) {
    const text = values.get(key);
    if (text === undefined) continue;
    const n = parseGoInt(text);
    if (n === undefined) return { ok: false, error: `${key} is not a valid integer` };
    integers.set(key, n);
  }
  const q = values.get("q");
  if (q === "") return { ok: false, error: "query parameter not set" };

  const flag = (key: string) => values.has(key);
  const tables = values.get("tables");
  const params: QueryParams = {
    raw: values,
    pretty: flag("pretty"),
    timings: flag("timings"),
    transaction: flag("transaction"),
    queue: flag("queue"),
    wait: flag("wait"),
    associative: flag("associative"),
    blobArray: flag("blob_array"),
    qualifyColumns: flag("qualify_columns"),
    norwrandom: flag("norwrandom"),
    norwtime: flag("norwtime"),
    noparse: flag("noparse"),
    redirect: flag("redirect"),
    noleader: flag("noleader"),
    nonvoters: flag("nonvoters"),
    freshnessStrict: flag("freshness_strict"),
    raftIndex: flag("raft_index"),
    compress: flag("compress"),
    vacuum: flag("vacuum"),
    sync: flag("sync"),
    bypass: flag("bypass"),
    level: toLevel(values.get("level")),
    ver: values.get("ver"),
    backupFormat: toBackupFormat(values.get("fmt")),
    tables: tables === undefined ? undefined : tables.split(","),
    key: values.get("key"),
    q,
    timeoutMs: durations.get("timeout"),
    freshnessMs: durations.get("freshness"),
    dbTimeoutMs: durations.get("db_timeout"),
    linearizableTimeoutMs: durations.get("linearizable_timeout"),
    retries: integers.get("retries"),
    trailingLogs: integers.get("trailing_logs"),
  };
  return { ok: true, params };
}
