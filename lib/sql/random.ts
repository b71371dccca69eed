/**
 * Random sources for statement rewriting. Production uses the system CSPRNG
 * ({@link cryptoRandom}); tests and the simulator inject
 * {@link seededRandom} so a rewrite is reproducible from a seed.
 *
 * @module
 */

/** Where `RANDOM()` and `RANDOMBLOB(N)` rewrites get their values. */
export interface RandomSource {
  /** A uniformly distributed signed 64-bit integer (SQLite's `random()` range). */
  int64(): bigint;
  /** `n` uniformly distributed bytes. */
  bytes(n: number): Uint8Array;
}

/** `crypto.getRandomValues` fills at most 65536 bytes per call. */
const CRYPTO_CHUNK = 65_536;

/** The system CSPRNG (`crypto.getRandomValues`). */
export const cryptoRandom: RandomSource = {
  int64(): bigint {
    const a = new BigInt64Array(1);
    crypto.getRandomValues(a);
    return a[0] as bigint;
  },
  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let off = 0; off < n; off += CRYPTO_CHUNK) {
      crypto.getRandomValues(out.subarray(off, Math.min(n, off + CRYPTO_CHUNK)));
    }
    return out;
  },
};

/** A deterministic SplitMix64 generator: same seed, same sequence. */
export function seededRandom(seed: bigint | number): RandomSource {
  let state = BigInt.asUintN(64, BigInt(seed));
  const next = (): bigint => {
    state = BigInt.asUintN(64, state + 0x9e3779b97f4a7c15n);
    let z = state;
    z = BigInt.asUintN(64, (z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n);
    z = BigInt.asUintN(64, (z ^ (z >> 27n)) * 0x94d049bb133111ebn);
    return z ^ (z >> 31n);
  };
  return {
    int64: () => BigInt.asIntN(64, next()),
    bytes(n: number): Uint8Array {
      const out = new Uint8Array(n);
      for (let off = 0; off < n; off += 8) {
        let v = next();
        for (let k = off; k < Math.min(n, off + 8); k++) {
          out[k] = Number(v & 0xffn);
          v >>= 8n;
        }
      }
      return out;
    },
  };
}
