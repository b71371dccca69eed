/**
 * Logs a recurring failure once per key (a peer address) instead of once
 * per attempt: a peer whose certificate is refused retries every few
 * seconds, and the log must stay readable. The first failure of a key is
 * logged at once; later ones are counted and logged at most every
 * `repeatMs`, with the count of those suppressed meanwhile.
 *
 * Bounds: at most `maxKeys` keys are remembered; beyond, the key logged longest
 * ago is forgotten (so a flood of distinct addresses costs memory up
 * to the bound and, at worst, a log line per new address).
 *
 * @module
 */

/** Default number of keys remembered. */
export const DEFAULT_FAILURE_LOG_KEYS = 1024;
/** Default pause between two lines for the same key. */
export const DEFAULT_FAILURE_LOG_REPEAT_MS = 5 * 60_000;

interface Entry {
  lastLoggedMs: number;
  suppressed: number;
}

/** Options of {@link FailureLog}. */
export interface FailureLogOptions {
  readonly maxKeys?: number;
  readonly repeatMs?: number;
  /** Milliseconds clock (default `performance.now`). */
  readonly nowMs?: () => number;
}

/** Once-per-key failure logging (see the module note). */
export class FailureLog {
  readonly #log: (line: string) => void;
  readonly #maxKeys: number;
  readonly #repeatMs: number;
  readonly #nowMs: () => number;
  readonly #entries = new Map<string, Entry>();

  constructor(log: (line: string) => void, options: FailureLogOptions = {}) {
    this.#log = log;
    this.#maxKeys = options.maxKeys ?? DEFAULT_FAILURE_LOG_KEYS;
    this.#repeatMs = options.repeatMs ?? DEFAULT_FAILURE_LOG_REPEAT_MS;
    this.#nowMs = options.nowMs ?? (() => performance.now());
    if (!(Number.isInteger(this.#maxKeys) && this.#maxKeys > 0)) {
      throw new RangeError(`maxKeys must be a positive integer, got ${this.#maxKeys}`);
    }
  }

  /** Records a failure of `key`; logs `message` unless `key` was logged within `repeatMs`. */
  note(key: string, message: string): void {
    const now = this.#nowMs();
    const entry = this.#entries.get(key);
    if (entry !== undefined && now - entry.lastLoggedMs < this.#repeatMs) {
      entry.suppressed++;
      return;
    }
    const more = entry !== undefined && entry.suppressed > 0
      ? ` (${entry.suppressed} more like it since the last report)`
      : "";
    this.#log(`${message}${more}`);
    // Re-insert so the Map's order is least recently logged first.
    this.#entries.delete(key);
    this.#entries.set(key, { lastLoggedMs: now, suppressed: 0 });
    if (this.#entries.size > this.#maxKeys) {
      const oldest = this.#entries.keys().next().value;
      if (oldest !== undefined) this.#entries.delete(oldest);
    }
  }

  /** Keys remembered now (for tests and /status). */
  get size(): number {
    return this.#entries.size;
  }
}
