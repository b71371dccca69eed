/**
 * How values from the HTTP API are read and shown: exact 64-bit integers
 * (JSON.parse would round anything beyond 2^53), BLOBs (byte arrays, as
 * the console asks with `blob_array`) as a size badge plus hex, NULL as a
 * distinct marker, durations and byte counts for people.
 * Pure: no DOM, so Deno unit tests import it directly.
 */

/**
 * JSON.parse that keeps integers beyond 2^53 exact (as BigInt), using the
 * reviver's source text where the engine provides it (V8 does).
 * @param {string} text
 * @returns {any}
 */
export function parseJson(text) {
  return JSON.parse(text, (_key, value, context) => {
    if (typeof value === "number" && !Number.isSafeInteger(value) && context?.source) {
      if (/^-?\d+$/.test(context.source)) return BigInt(context.source);
    }
    return value;
  });
}

/** Most bytes of a BLOB shown as hex in a cell. */
export const BLOB_PREVIEW_BYTES = 16;

/**
 * What a result cell shows: `kind` picks the style (null, blob, num, bool,
 * text), `text` the content, `title` the hover text (full value, bounded).
 * @param {unknown} value
 * @returns {{kind: string, text: string, title: string}}
 */
export function cellView(value) {
  if (value === null || value === undefined) return { kind: "null", text: "NULL", title: "NULL" };
  if (Array.isArray(value)) {
    const hex = hexOf(value, BLOB_PREVIEW_BYTES);
    const more = value.length > BLOB_PREVIEW_BYTES ? "…" : "";
    return {
      kind: "blob",
      text: `x'${hex}${more}'`,
      title: `BLOB, ${formatBytes(value.length)}: x'${hexOf(value, 512)}${
        value.length > 512 ? "…" : ""
      }'`,
    };
  }
  if (typeof value === "number" || typeof value === "bigint") {
    return { kind: "num", text: String(value), title: String(value) };
  }
  if (typeof value === "boolean") return { kind: "bool", text: String(value), title: "" };
  if (typeof value === "object") {
    const json = JSON.stringify(value);
    return { kind: "text", text: json, title: json.slice(0, 2000) };
  }
  const s = String(value);
  return { kind: "text", text: s, title: s.length > 60 ? s.slice(0, 2000) : "" };
}

/**
 * Lower-case hex of the first `max` bytes.
 * @param {number[]} bytes
 * @param {number} max
 */
export function hexOf(bytes, max) {
  let out = "";
  const end = Math.min(bytes.length, max);
  for (let i = 0; i < end; i++) out += (bytes[i] & 0xff).toString(16).padStart(2, "0");
  return out;
}

/**
 * `512 B`, `1.5 KiB`, `3.2 MiB`.
 * @param {number} n
 */
export function formatBytes(n) {
  if (n < 1024) return `${n} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let v = n / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[u]}`;
}

/**
 * Seconds (rqlite's `time` fields) for people: `850 µs`, `12.3 ms`, `1.42 s`.
 * @param {number} seconds
 */
export function formatSeconds(seconds) {
  if (!(seconds >= 0)) return "";
  if (seconds < 0.001) return `${Math.round(seconds * 1e6)} µs`;
  if (seconds < 1) return `${(seconds * 1000).toFixed(seconds < 0.01 ? 2 : 1)} ms`;
  return `${seconds.toFixed(2)} s`;
}

/**
 * `1 row`, `2 rows`.
 * @param {number} n
 * @param {string} noun
 */
export function plural(n, noun) {
  return `${n.toLocaleString("en-US")} ${noun}${n === 1 ? "" : "s"}`;
}
