/**
 * A per-connection queue of outgoing frames: callers push payloads at any
 * time; one writer at a time drains everything queued so far with a single
 * coalesced {@link writeFrames} call, so pipelined requests or responses
 * leave in as few syscalls as possible and frames never interleave.
 *
 * @module
 */

import { type ByteWriter, writeFrames } from "../transport/frame.ts";

/** Called once per pushed payload when its batch was written (err = the write failed). */
export type WrittenFn = (err?: Error) => void;

export class FrameQueue {
  #queue: Uint8Array[] = [];
  #callbacks: (WrittenFn | undefined)[] = [];
  #writing: Promise<void> | undefined;
  #failed: Error | undefined;

  constructor(
    private readonly conn: ByteWriter,
    private readonly maxFrameBytes: number,
    /** Called once, on the first write failure (the owner closes the connection). */
    private readonly onError: (err: Error) => void,
  ) {}

  /** Payloads queued and not yet handed to the socket. */
  get queued(): number {
    return this.#queue.length;
  }

  /** Queues one frame payload. After a failure, `written` is called with that failure at once. */
  push(payload: Uint8Array, written?: WrittenFn): void {
    if (this.#failed !== undefined) {
      written?.(this.#failed);
      return;
    }
    this.#queue.push(payload);
    this.#callbacks.push(written);
    this.#writing ??= this.#drain();
  }

  /** Resolves when nothing is being written (never rejects). */
  async flushed(): Promise<void> {
    while (this.#writing !== undefined) await this.#writing;
  }

  async #drain(): Promise<void> {
    try {
      while (this.#queue.length > 0 && this.#failed === undefined) {
        const batch = this.#queue;
        const callbacks = this.#callbacks;
        this.#queue = [];
        this.#callbacks = [];
        let error: Error | undefined;
        try {
          await writeFrames(this.conn, batch, this.maxFrameBytes);
        } catch (err) {
          error = err instanceof Error ? err : new Error(String(err));
          this.#failed = error;
        }
        for (const cb of callbacks) cb?.(error);
        if (error !== undefined) {
          const rest = this.#callbacks;
          this.#queue = [];
          this.#callbacks = [];
          for (const cb of rest) cb?.(error);
          this.onError(error);
        }
      }
    } finally {
      this.#writing = undefined;
    }
  }
}
