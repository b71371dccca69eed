/**
 * Go `time.Duration` text, both ways: {@link parseGoDuration} follows
 * `time.ParseDuration` exactly (grammar, units, overflow rules, the float
 * arithmetic for fractions) and {@link formatGoDuration} follows
 * `Duration.String()` exactly. rqlite validates its duration query
 * parameters with the first and prints `time_s`, timeouts and intervals in
 * /nodes and /status with the second, so both must match Go byte for byte.
 *
 * Durations are carried as `bigint` nanoseconds (Go's int64) so nothing is
 * lost to floating point; {@link nsToMs} converts for timers.
 *
 * @module
 */

/** Go's `1<<63`, the overflow bound used throughout `time.ParseDuration`. */
const LIMIT = 1n << 63n;

/** Nanoseconds per unit; the keys are the exact unit spellings Go accepts. */
const UNITS: ReadonlyMap<string, bigint> = new Map([
  ["ns", 1n],
  ["us", 1_000n],
  ["\u00b5s", 1_000n], // U+00B5 micro sign
  ["\u03bcs", 1_000n], // U+03BC Greek small letter mu
  ["ms", 1_000_000n],
  ["s", 1_000_000_000n],
  ["m", 60_000_000_000n],
  ["h", 3_600_000_000_000n],
]);

/** Result of {@link parseGoDuration}: nanoseconds, or Go's error text. */
export type DurationResult =
  | { readonly ok: true; readonly ns: bigint }
  | { readonly ok: false; readonly error: string };

/** Go's `time.quote`: the string in double quotes with `"` and `\` escaped. */
function goQuote(s: string): string {
  return `"${s.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

function isDigit(c: string | undefined): boolean {
  return c !== undefined && c >= "0" && c <= "9";
}

/**
 * Parses `text` with the grammar of Go's `time.ParseDuration`:
 * `[-+]?([0-9]*(\.[0-9]*)?[a-z]+)+`, units `ns us µs μs ms s m h`, and the
 * special case of a bare `0` (with optional sign). `300ms`, `-1.5h`, `2h45m`,
 * `1us`, `.5s`, `1.s` are valid; `1`, `00`, `0.0`, `1 s`, `1S`, `` are not.
 * The error texts are Go's (`time: invalid duration "x"`, ...).
 */
export function parseGoDuration(text: string): DurationResult {
  const invalid = (): DurationResult => ({
    ok: false,
    error: `time: invalid duration ${goQuote(text)}`,
  });
  let s = text;
  let neg = false;
  if (s !== "" && (s[0] === "-" || s[0] === "+")) {
    neg = s[0] === "-";
    s = s.slice(1);
  }
  if (s === "0") return { ok: true, ns: 0n };
  if (s === "") return invalid();
  let total = 0n;
  while (s !== "") {
    if (!(s[0] === "." || isDigit(s[0]))) return invalid();
    // Leading integer part; Go fails on overflow past 1<<63.
    let i = 0;
    let v = 0n;
    while (isDigit(s[i])) {
      if (v > LIMIT / 10n) return invalid();
      v = v * 10n + BigInt(s.charCodeAt(i) - 48);
      if (v > LIMIT) return invalid();
      i++;
    }
    const pre = i > 0;
    s = s.slice(i);
    // Optional fraction; Go stops accumulating precision on overflow instead of failing.
    let f = 0n;
    let scale = 1;
    let post = false;
    if (s !== "" && s[0] === ".") {
      s = s.slice(1);
      let j = 0;
      let overflow = false;
      while (isDigit(s[j])) {
        if (!overflow) {
          if (f > (LIMIT - 1n) / 10n) {
            overflow = true;
          } else {
            const y = f * 10n + BigInt(s.charCodeAt(j) - 48);
            if (y > LIMIT) {
              overflow = true;
            } else {
              f = y;
              scale *= 10;
            }
          }
        }
        j++;
      }
      post = j > 0;
      s = s.slice(j);
    }
    if (!pre && !post) return invalid();
    // Unit: everything up to the next digit or '.'.
    let k = 0;
    while (k < s.length && !(s[k] === "." || isDigit(s[k]))) k++;
    if (k === 0) return { ok: false, error: `time: missing unit in duration ${goQuote(text)}` };
    const unitText = s.slice(0, k);
    s = s.slice(k);
    const unit = UNITS.get(unitText);
    if (unit === undefined) {
      return {
        ok: false,
        error: `time: unknown unit ${goQuote(unitText)} in duration ${goQuote(text)}`,
      };
    }
    if (v > LIMIT / unit) return invalid();
    v *= unit;
    if (f > 0n) {
      // Go: v += uint64(float64(f) * (float64(unit) / scale)); same IEEE arithmetic here.
      v += BigInt(Math.trunc(Number(f) * (Number(unit) / scale)));
      if (v > LIMIT) return invalid();
    }
    total += v;
    if (total > LIMIT) return invalid();
  }
  if (neg) return { ok: true, ns: -total };
  if (total > LIMIT - 1n) return invalid();
  return { ok: true, ns: total };
}

/** True when `text` is a valid Go duration. */
export function isGoDuration(text: string): boolean {
  return parseGoDuration(text).ok;
}

/** Nanoseconds to (possibly fractional) milliseconds, for timers. */
export function nsToMs(ns: bigint): number {
  return Number(ns) / 1e6;
}

/**
 * Go's `fmtFrac`: the digits of `v / 10**prec` after the point, trailing zeros
 * (and the point itself when all are zero) omitted. Returns the text and the
 * integer part.
 */
function fmtFrac(v: bigint, prec: number): [string, bigint] {
  let out = "";
  let print = false;
  for (let i = 0; i < prec; i++) {
    const digit = v % 10n;
    print = print || digit !== 0n;
    if (print) out = String(digit) + out;
    v /= 10n;
  }
  return [print ? `.${out}` : "", v];
}

/**
 * Formats nanoseconds as Go's `Duration.String()`: `0s`, `1ns`, `1.5µs`,
 * `100µs`, `1.5ms`, `10s`, `1m0s`, `2h45m0s`, `-1.5s`. Values outside int64
 * are clamped to it (Go's type cannot hold them).
 */
export function formatGoDurationNs(ns: bigint): string {
  const min = -(1n << 63n);
  const max = (1n << 63n) - 1n;
  if (ns < min) ns = min;
  if (ns > max) ns = max;
  const neg = ns < 0n;
  let u = neg ? -ns : ns;
  let out: string;
  if (u < 1_000_000_000n) {
    if (u === 0n) return "0s";
    let prec: number;
    let unit: string;
    if (u < 1_000n) {
      prec = 0;
      unit = "ns";
    } else if (u < 1_000_000n) {
      prec = 3;
      unit = "\u00b5s";
    } else {
      prec = 6;
      unit = "ms";
    }
    const [frac, whole] = fmtFrac(u, prec);
    out = `${whole}${frac}${unit}`;
  } else {
    const [frac, secondsTotal] = fmtFrac(u, 9);
    u = secondsTotal;
    out = `${u % 60n}${frac}s`;
    u /= 60n;
    if (u > 0n) {
      out = `${u % 60n}m${out}`;
      u /= 60n;
      if (u > 0n) out = `${u}h${out}`;
    }
  }
  return neg ? `-${out}` : out;
}

/**
 * Formats milliseconds (a JS timer value, possibly fractional) as Go's
 * `Duration.String()`: `formatGoDuration(10000)` is `10s`, `60000` is `1m0s`,
 * `1.5` is `1.5ms`, `0.1` is `100µs`, `0` is `0s`. The value is rounded to
 * whole nanoseconds first; non-finite input throws (it is a caller bug).
 */
export function formatGoDuration(ms: number): string {
  if (!Number.isFinite(ms)) throw new RangeError(`formatGoDuration: not a finite number: ${ms}`);
  // Whole and fractional parts separately so large whole values stay exact.
  const whole = Math.trunc(ms);
  return formatGoDurationNs(BigInt(whole) * 1_000_000n + BigInt(Math.round((ms - whole) * 1e6)));
}
