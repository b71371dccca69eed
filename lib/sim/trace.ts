/**
 * A run's trace: one line per state change (roles, commits, applies,
 * faults, client operations), prefixed with the simulated time.
 *
 * Off by default (formatting every event costs more than the simulation).
 * When on, every line feeds a running hash, so two runs of one seed can be
 * compared exactly, and at most `capLines` lines are kept or printed.
 *
 * @module
 */

import { fnv1a32 } from "./prng.ts";

/** Where trace lines go. */
export interface TraceOptions {
  /** Lines kept (or printed) at most; later lines are only hashed and counted. */
  capLines: number;
  /** Called with each kept line (e.g. console.log); when absent lines are stored. */
  sink?: (line: string) => void;
}

/** Collects or prints trace lines; a disabled tracer costs one branch per call site. */
export class Tracer {
  readonly lines: string[] = [];
  #hash = 0x811c9dc5;
  #count = 0;

  constructor(
    readonly enabled: boolean,
    readonly now: () => number,
    readonly options: TraceOptions = { capLines: 100_000 },
  ) {}

  /** Lines traced (including those beyond the cap). */
  get count(): number {
    return this.#count;
  }

  /** Hash of every line traced so far (hex). */
  get hash(): string {
    return (this.#hash >>> 0).toString(16).padStart(8, "0") + ":" + this.#count;
  }

  /** Records one line (call only when {@link enabled}, to skip formatting otherwise). */
  line(text: string): void {
    if (!this.enabled) return;
    const full = `${this.now().toFixed(3).padStart(11)} ${text}`;
    this.#hash = fnv1a32(full + "\n", this.#hash);
    this.#count++;
    if (this.#count <= this.options.capLines) {
      if (this.options.sink) this.options.sink(full);
      else this.lines.push(full);
    } else if (this.#count === this.options.capLines + 1) {
      const note = `... trace capped at ${this.options.capLines} lines (hash continues)`;
      if (this.options.sink) this.options.sink(note);
      else this.lines.push(note);
    }
  }
}
