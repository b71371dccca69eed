/**
 * Seeded pseudo-random numbers for the simulator.
 *
 * sfc32 (Chris Doty-Humphrey's Small Fast Chaotic generator, 128-bit state)
 * seeded through splitmix32. One master seed derives any number of
 * independent streams by name ({@link Prng.derive}), so adding a consumer of
 * randomness (a new fault, a new client) never shifts the numbers another
 * consumer sees: a seed keeps replaying the same run as the world grows.
 *
 * Nothing here reads the clock or `Math.random`.
 *
 * @module
 */

import type { RandomSource } from "../raft/types.ts";

const TWO_POW_32 = 4294967296;

/** One step of splitmix32 over `state`; returns [next state, output]. */
function splitmix32(state: number): [number, number] {
  const next = (state + 0x9e3779b9) | 0;
  let z = next;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  z ^= z >>> 16;
  return [next, z >>> 0];
}

/** FNV-1a (32-bit) of a string, used to turn stream names into seeds. */
export function fnv1a32(text: string, hash = 0x811c9dc5): number {
  let h = hash >>> 0;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** A seeded generator; implements the core's {@link RandomSource}. */
export class Prng implements RandomSource {
  #a: number;
  #b: number;
  #c: number;
  #d: number;

  /** `seed` is any integer; only its low 32 bits matter. */
  constructor(readonly seed: number) {
    let state = seed | 0;
    const words: number[] = [];
    for (let i = 0; i < 4; i++) {
      const [next, out] = splitmix32(state);
      state = next;
      words.push(out);
    }
    this.#a = words[0] ?? 0;
    this.#b = words[1] ?? 0;
    this.#c = words[2] ?? 0;
    this.#d = words[3] ?? 1;
    // Warm up: sfc32's first outputs are correlated with the seed.
    for (let i = 0; i < 12; i++) this.nextUint32();
  }

  /** A new generator whose stream is independent of this one's and of other names. */
  derive(name: string): Prng {
    return new Prng(fnv1a32(name, fnv1a32(String(this.seed >>> 0))) ^ 0x5bd1e995);
  }

  /** Uniform 32-bit unsigned integer. */
  nextUint32(): number {
    const t = (((this.#a + this.#b) | 0) + this.#d) | 0;
    this.#d = (this.#d + 1) | 0;
    this.#a = this.#b ^ (this.#b >>> 9);
    this.#b = (this.#c + (this.#c << 3)) | 0;
    this.#c = (this.#c << 21) | (this.#c >>> 11);
    this.#c = (this.#c + t) | 0;
    return t >>> 0;
  }

  /** Uniform float in [0, 1). */
  float(): number {
    return this.nextUint32() / TWO_POW_32;
  }

  /** Uniform integer in [0, n); `n` must be a positive integer below 2^32. */
  nextInt(n: number): number {
    if (!(n > 0 && n <= TWO_POW_32 && Number.isInteger(n))) {
      throw new RangeError(`nextInt needs an integer in (0, 2^32], got ${n}`);
    }
    return Math.floor(this.float() * n);
  }

  /** Uniform integer in [lo, hi] (both inclusive). */
  range(lo: number, hi: number): number {
    if (hi < lo) throw new RangeError(`range(${lo}, ${hi}) is empty`);
    return lo + this.nextInt(hi - lo + 1);
  }

  /** Uniform float in [lo, hi). */
  floatRange(lo: number, hi: number): number {
    return lo + this.float() * (hi - lo);
  }

  /** True with probability `p` (p <= 0: never, p >= 1: always, no randomness consumed). */
  chance(p: number): boolean {
    if (p <= 0) return false;
    if (p >= 1) return true;
    return this.float() < p;
  }

  /** A uniformly chosen element of a non-empty array. */
  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError("pick from an empty array");
    return items[this.nextInt(items.length)] as T;
  }

  /** An element chosen with probability proportional to its weight. */
  weighted<T>(choices: readonly (readonly [T, number])[]): T {
    let total = 0;
    for (const [, weight] of choices) total += Math.max(0, weight);
    if (total <= 0) throw new RangeError("weighted choice with no positive weight");
    let x = this.float() * total;
    for (const [item, weight] of choices) {
      x -= Math.max(0, weight);
      if (x < 0) return item;
    }
    return (choices[choices.length - 1] as readonly [T, number])[0];
  }

  /** An exponentially distributed float with the given mean. */
  exponential(mean: number): number {
    return -Math.log(1 - this.float()) * mean;
  }

  /** Fisher-Yates shuffle of a copy of `items`. */
  shuffle<T>(items: readonly T[]): T[] {
    const out = [...items];
    for (let i = out.length - 1; i > 0; i--) {
      const j = this.nextInt(i + 1);
      const tmp = out[i] as T;
      out[i] = out[j] as T;
      out[j] = tmp;
    }
    return out;
  }
}
