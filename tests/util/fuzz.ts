/**
 * Seeded mutation for the hostile-input tests: byte-level mutators in the
 * style of AFL/libFuzzer (flip, overwrite, insert, delete, duplicate,
 * truncate, splice in "interesting" values) over a deterministic Prng, so a
 * failing run replays exactly from its seed.
 *
 * The seed comes from `FUZZ_SEED` (to explore: `FUZZ_SEED=123 deno test
 * ...`) or the test's fixed default; {@link withSeed} puts it in front of
 * every failure message.
 *
 * @module
 */

import { Prng } from "../../lib/sim/prng.ts";

export { Prng };

/** Bytes backed by a plain ArrayBuffer (what `fetch` and `Deno.Conn.write` take). */
export type Bytes = Uint8Array<ArrayBuffer>;

/** The seed of this run: `FUZZ_SEED` when set, else `fallback`. */
export function fuzzSeed(fallback: number): number {
  const env = Deno.env.get("FUZZ_SEED");
  if (env === undefined || env === "") return fallback;
  const seed = Number(env);
  if (!Number.isSafeInteger(seed)) throw new Error(`FUZZ_SEED must be an integer, got "${env}"`);
  return seed;
}

/** Runs `fn`; a failure is rethrown with the seed in front of its message, so it can be replayed. */
export async function withSeed(seed: number, fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
  } catch (err) {
    const how = `[fuzz seed ${seed}: replay with FUZZ_SEED=${seed}]`;
    console.error(how);
    if (err instanceof Error) {
      err.message = `${how} ${err.message}`;
      throw err;
    }
    throw new Error(`${how} ${String(err)}`);
  }
}

/** `n` random bytes. */
export function randomBytes(rng: Prng, n: number): Bytes {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = rng.nextInt(256);
  return out;
}

/** The concatenation of `parts`. */
export function concat(...parts: Uint8Array[]): Bytes {
  const out = new Uint8Array(parts.reduce((s, p) => s + p.byteLength, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.byteLength;
  }
  return out;
}

const enc = new TextEncoder();

/** Byte sequences that tend to hit edge cases in parsers (lengths, signs, UTF-8, JSON tokens). */
const INTERESTING: readonly Uint8Array[] = [
  [0x00],
  [0xff],
  [0x7f],
  [0x80],
  [0xff, 0xff, 0xff, 0xff],
  [0x00, 0x00, 0x00, 0x00],
  [0x7f, 0xff, 0xff, 0xff],
  [0x80, 0x00, 0x00, 0x00],
  [0xc3, 0x28], // invalid UTF-8 continuation
  [0xed, 0xa0, 0x80], // UTF-8 encoded surrogate
  [0xf4, 0x90, 0x80, 0x80], // beyond U+10FFFF
  [0xc0, 0xaf], // overlong "/"
].map((b) => new Uint8Array(b)).concat(
  [
    '"',
    "\\",
    "[",
    "]",
    "{",
    "}",
    ",",
    ":",
    "null",
    "-0",
    "1e999",
    "9223372036854775808",
    "-9223372036854775809",
    "18446744073709551616",
    "\\u0000",
    "\\ud800",
    '\\"',
    "'",
    ";",
    "%00",
    "%zz",
  ].map((s) => enc.encode(s)),
);

/** One random mutation of `b` (a new array; `b` is untouched). */
export function mutateOnce(rng: Prng, b: Uint8Array): Bytes {
  const at = (extra = 0) => rng.nextInt(b.byteLength + extra);
  switch (rng.nextInt(b.byteLength === 0 ? 1 : 8)) {
    case 0: { // insert random bytes
      const i = at(1);
      return concat(b.subarray(0, i), randomBytes(rng, 1 + rng.nextInt(8)), b.subarray(i));
    }
    case 1: { // flip one bit
      const out = b.slice();
      out[at()]! ^= 1 << rng.nextInt(8);
      return out;
    }
    case 2: { // overwrite one byte
      const out = b.slice();
      out[at()] = rng.nextInt(256);
      return out;
    }
    case 3: { // delete a range
      const i = at();
      return concat(b.subarray(0, i), b.subarray(Math.min(b.byteLength, i + 1 + rng.nextInt(16))));
    }
    case 4: // truncate
      return b.slice(0, at());
    case 5: { // duplicate a range in place
      const i = at();
      const j = Math.min(b.byteLength, i + 1 + rng.nextInt(32));
      return concat(b.subarray(0, j), b.subarray(i, j), b.subarray(j));
    }
    case 6: { // splice in an interesting value
      const i = at(1);
      return concat(b.subarray(0, i), rng.pick(INTERESTING), b.subarray(i));
    }
    default: { // overwrite with an interesting value
      const v = rng.pick(INTERESTING);
      const i = at();
      return concat(b.subarray(0, i), v, b.subarray(Math.min(b.byteLength, i + v.byteLength)));
    }
  }
}

/** 1 to `maxOps` mutations of `b`. */
export function mutate(rng: Prng, b: Uint8Array, maxOps = 4): Bytes {
  let out = mutateOnce(rng, b);
  const ops = rng.nextInt(maxOps);
  for (let i = 0; i < ops; i++) out = mutateOnce(rng, out);
  return out;
}

/**
 * Connects to `hostname:port`, sends `bytes` (then half-closes when asked)
 * and reads until the peer closes. Resolves `closed (EOF after N bytes)`,
 * `closed (<error name>)`, or `open` when the connection is still open
 * after `boundMs`; the connection is always closed before returning.
 */
export async function sendUntilClosed(
  addr: { hostname: string; port: number },
  bytes: Uint8Array,
  halfClose: boolean,
  boundMs: number,
): Promise<string> {
  const conn = await Deno.connect(addr);
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const writing = (async () => {
      try {
        let off = 0;
        while (off < bytes.byteLength) off += await conn.write(bytes.subarray(off));
        if (halfClose) await conn.closeWrite();
      } catch {
        // The peer may close before reading everything (reset): that is a close too.
      }
    })();
    const reading = (async () => {
      const buf = new Uint8Array(4096);
      let got = 0;
      try {
        for (;;) {
          const n = await conn.read(buf);
          if (n === null) return `closed (EOF after ${got} bytes)`;
          got += n;
        }
      } catch (err) {
        return `closed (${(err as Error).name})`;
      }
    })();
    const timeout = new Promise<string>((r) => (timer = setTimeout(() => r("open"), boundMs)));
    const how = await Promise.race([reading, timeout]);
    try {
      conn.close();
    } catch {
      // closed by the peer
    }
    await Promise.all([writing, reading]);
    return how;
  } finally {
    clearTimeout(timer);
  }
}
