/**
 * The DATE/DATETIME/TIMESTAMP conversions rqlite inherits from its
 * go-sqlite3 driver, reproduced exactly:
 *
 * - TEXT is parsed with Go's `time.ParseInLocation(layout, s, time.UTC)`
 *   against the driver's `SQLiteTimestampFormats` after stripping one
 *   trailing `Z`; unparseable text becomes Go's zero time.
 * - INTEGER is Unix seconds, or Unix milliseconds when |v| > 1e12
 *   (multiplied into int64 nanoseconds with Go's wrap-around), in UTC.
 * - The `time.Time` is then written with `MarshalText` (RFC 3339 with
 *   nanoseconds, trailing zeros trimmed; `Z` for UTC, else `±hh:mm`), which
 *   fails for years outside [0,9999] and zone hours of 24.
 *
 * @module
 */

/** Thrown when Go's `Time.MarshalText` would fail; the message is Go's. */
export class GoTimeError extends Error {
  override name = "GoTimeError";
}

/** Go's zero `time.Time` as rqlite prints it. */
export const GO_ZERO_TIME = "0001-01-01T00:00:00Z";

interface Fields {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
  nsec: number;
  /** Offset east of UTC in seconds; 0 prints as `Z`. */
  offsetSec: number;
}

function isLeap(y: number): boolean {
  return y % 4 === 0 && (y % 100 !== 0 || y % 400 === 0);
}

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

function daysIn(month: number, year: number): number {
  return month === 2 && isLeap(year) ? 29 : DAYS_IN_MONTH[month - 1]!;
}

function digit(s: string, i: number): number {
  const c = s.charCodeAt(i) - 0x30;
  return c >= 0 && c <= 9 ? c : -1;
}

/** Go's getnum: one or two digits (exactly two when `fixed`). Returns [value, next] or undefined. */
function getnum(s: string, i: number, fixed: boolean): [number, number] | undefined {
  const a = digit(s, i);
  if (a < 0) return undefined;
  const b = digit(s, i + 1);
  if (b < 0) return fixed ? undefined : [a, i + 1];
  return [a * 10 + b, i + 2];
}

/**
 * Parses `s` (already stripped of one trailing `Z`) the way the driver's
 * layouts do; undefined when no layout matches.
 */
function parseFields(s: string): Fields | undefined {
  // 2006-01-02
  if (s.length < 10) return undefined;
  for (let i = 0; i < 4; i++) if (digit(s, i) < 0) return undefined;
  const year = Number(s.slice(0, 4));
  if (s[4] !== "-") return undefined;
  const mo = getnum(s, 5, true);
  if (mo === undefined || mo[0] < 1 || mo[0] > 12 || s[7] !== "-") return undefined;
  const dd = getnum(s, 8, true);
  if (dd === undefined) return undefined;
  const f: Fields = {
    year,
    month: mo[0],
    day: dd[0],
    hour: 0,
    minute: 0,
    second: 0,
    nsec: 0,
    offsetSec: 0,
  };
  if (f.day < 1 || f.day > daysIn(f.month, year)) return undefined;
  let i = 10;
  if (i === s.length) return f;
  // " 15:04" or "T15:04"
  if (s[i] !== " " && s[i] !== "T") return undefined;
  const hh = getnum(s, i + 1, false);
  if (hh === undefined || hh[0] >= 24) return undefined;
  f.hour = hh[0];
  i = hh[1];
  if (s[i] !== ":") return undefined;
  const mm = getnum(s, i + 1, true);
  if (mm === undefined || mm[0] >= 60) return undefined;
  f.minute = mm[0];
  i = mm[1];
  if (i === s.length) return f;
  // ":05" with optional fraction
  if (s[i] !== ":") return undefined;
  const ss = getnum(s, i + 1, true);
  if (ss === undefined || ss[0] >= 60) return undefined;
  f.second = ss[0];
  i = ss[1];
  if ((s[i] === "." || s[i] === ",") && digit(s, i + 1) >= 0) {
    let j = i + 1;
    while (digit(s, j) >= 0) j++;
    // Go keeps at most 9 digits and scales to nanoseconds.
    const frac = s.slice(i + 1, Math.min(j, i + 10));
    f.nsec = Number(frac) * 10 ** (9 - frac.length);
    i = j;
  }
  if (i === s.length) return f;
  // "-07:00"
  const sign = s[i];
  if ((sign !== "+" && sign !== "-") || s.length - i !== 6 || s[i + 3] !== ":") return undefined;
  const zh = getnum(s, i + 1, true);
  const zm = getnum(s, i + 4, true);
  if (zh === undefined || zm === undefined || zh[0] > 24 || zm[0] > 60) return undefined;
  const off = (zh[0] * 60 + zm[0]) * 60;
  f.offsetSec = sign === "-" ? -off : off;
  return f;
}

function pad(n: number, width: number): string {
  return String(n).padStart(width, "0");
}

/** Go `Time.MarshalText` (strict RFC 3339 with trimmed nanoseconds). */
function marshalText(f: Fields): string {
  if (f.year < 0 || f.year > 9999) {
    throw new GoTimeError("Time.MarshalText: year outside of range [0,9999]");
  }
  let out = `${pad(f.year, 4)}-${pad(f.month, 2)}-${pad(f.day, 2)}T${pad(f.hour, 2)}:${
    pad(f.minute, 2)
  }:${pad(f.second, 2)}`;
  if (f.nsec !== 0) out += "." + pad(f.nsec, 9).replace(/0+$/, "");
  if (f.offsetSec === 0) return out + "Z";
  const abs = Math.abs(f.offsetSec);
  const zh = Math.floor(abs / 3600);
  if (zh >= 24) throw new GoTimeError("Time.MarshalText: timezone hour outside of range [0,23]");
  const zm = Math.floor((abs % 3600) / 60);
  return `${out}${f.offsetSec < 0 ? "-" : "+"}${pad(zh, 2)}:${pad(zm, 2)}`;
}

/** The RFC 3339 text rqlite returns for a TEXT value in a date-typed column. */
export function formatTimeText(text: string): string {
  const s = text.endsWith("Z") ? text.slice(0, -1) : text;
  const f = parseFields(s);
  return f === undefined ? GO_ZERO_TIME : marshalText(f);
}

/** Civil date from days since 1970-01-01 (H. Hinnant's algorithm). */
function civilFromDays(z: number): [number, number, number] {
  z += 719468;
  const era = Math.floor(z / 146097);
  const doe = z - era * 146097;
  const yoe = Math.floor(
    (doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) -
      Math.floor(doe / 146096)) / 365,
  );
  const y = yoe + era * 400;
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const d = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const m = mp < 10 ? mp + 3 : mp - 9;
  return [m <= 2 ? y + 1 : y, m, d];
}

const NS_PER_MS = 1_000_000n;
const NS_PER_S = 1_000_000_000n;

/** The RFC 3339 text rqlite returns for an INTEGER value in a date-typed column. */
export function formatTimeInteger(v: bigint): string {
  let sec: bigint;
  let nsec = 0n;
  if (v > 1_000_000_000_000n || v < -1_000_000_000_000n) {
    // Go: val *= int64(time.Millisecond) wraps on overflow; then time.Unix(0, val).
    const ns = BigInt.asIntN(64, v * NS_PER_MS);
    sec = ns / NS_PER_S;
    nsec = ns % NS_PER_S;
    if (nsec < 0n) {
      nsec += NS_PER_S;
      sec -= 1n;
    }
  } else {
    sec = v;
  }
  // Years 0..9999 span about ±3.2e11 seconds around 1970; anything further
  // fails MarshalText, and checking first keeps the arithmetic in doubles.
  if (sec < -62_167_219_200n || sec > 253_402_300_799n) {
    throw new GoTimeError("Time.MarshalText: year outside of range [0,9999]");
  }
  const s = Number(sec);
  const days = Math.floor(s / 86400);
  const rem = s - days * 86400;
  const [year, month, day] = civilFromDays(days);
  return marshalText({
    year,
    month,
    day,
    hour: Math.floor(rem / 3600),
    minute: Math.floor((rem % 3600) / 60),
    second: rem % 60,
    nsec: Number(nsec),
    offsetSec: 0,
  });
}
