/**
 * A FIFO of asynchronous I/O operations run one at a time, completing
 * through callbacks.
 *
 * Every store funnels its writes through one queue, so there is never more
 * than one write in flight per store and completions arrive in call order.
 * Each `done` runs exactly once, after its operation settled, never inside
 * the call that queued it. The first failure stops the queue: memory (which
 * the stores update when an operation is called) and disk may then
 * disagree, so every later operation fails with {@link StorageFailedError}.
 *
 * @module
 */

import type { Done } from "../node/interfaces.ts";
import { check, StorageFailedError, toError } from "./errors.ts";

interface Op {
  readonly run: () => Promise<void>;
  readonly done: Done;
}

/** Serializes one store's asynchronous operations. */
export class IoQueue {
  readonly #name: string;
  readonly #ops: Op[] = [];
  #running = false;
  #failed: Error | undefined;
  #closed = false;
  #idle: (() => void)[] = [];

  constructor(name: string) {
    this.#name = name;
  }

  /** The first failure, if any. */
  get failed(): Error | undefined {
    return this.#failed;
  }

  /** Operations queued or running. */
  get pending(): number {
    return this.#ops.length + (this.#running ? 1 : 0);
  }

  /** Queues `run`; `done` follows once it settled (or at once, asynchronously, after a failure). */
  push(run: () => Promise<void>, done: Done): void {
    check(!this.#closed, () => `${this.#name}: used after close()`);
    this.#ops.push({ run, done });
    if (!this.#running) {
      this.#running = true;
      // Not inside the caller's stack: `done` never runs before push returns.
      queueMicrotask(() => void this.#drain());
    }
  }

  /** Waits for every queued operation, then refuses new ones. */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#running) await new Promise<void>((resolve) => this.#idle.push(resolve));
  }

  async #drain(): Promise<void> {
    for (;;) {
      const op = this.#ops.shift();
      if (op === undefined) break;
      let err: Error | undefined;
      if (this.#failed !== undefined) err = new StorageFailedError(this.#name, this.#failed);
      else {
        try {
          await op.run();
        } catch (e) {
          err = toError(e);
          this.#failed = err;
        }
      }
      complete(op.done, err);
    }
    this.#running = false;
    const idle = this.#idle;
    this.#idle = [];
    for (const resolve of idle) resolve();
  }
}

/** Runs `done` once; an exception from it is a caller bug and is rethrown outside the queue. */
function complete(done: Done, err: Error | undefined): void {
  try {
    done(err);
  } catch (e) {
    queueMicrotask(() => {
      throw e;
    });
  }
}
