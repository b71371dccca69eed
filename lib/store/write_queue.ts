/**
 * rqlite's queued writes (`POST /db/execute?queue`, rqlite-api.md §4): a
 * bounded in-memory queue of write requests and one background drainer that
 * writes them in batches, each batch ONE execute command (one Raft entry).
 *
 * - Every accepted request gets a sequence number: the node's start time in
 *   Unix nanoseconds plus one per request (rqlite's `queue.Write` increments
 *   before use, so the first is start + 1). BigInt, so JSON digits are exact.
 * - Capacity (`-write-queue-capacity`) counts requests held by the queue,
 *   waiting or in the batch being written; a byte bound keeps huge bodies in
 *   check too. A full queue makes the request wait for room (FIFO) up to its
 *   deadline, then {@link QueueFullError}; at most `capacity` requests wait,
 *   beyond that (or beyond 4096) the refusal is immediate. Memory is
 *   therefore bounded by about two capacities' worth of requests.
 * - A batch is sent when it holds `-write-queue-batch-size` requests (as
 *   rqlite counts: requests, never split), or `-write-queue-timeout` after
 *   its oldest request arrived, or at once when a request asked to `wait`
 *   (a flush). `-write-queue-tx` wraps each batch in a transaction: the
 *   first failing statement then rolls the whole batch back (rqlite's
 *   `transaction` semantics). Otherwise statement errors are ignored and
 *   the other statements apply.
 * - One batch is written at a time, in sequence order. A write that fails
 *   for want of a leader or a connection is retried every second (rqlite:
 *   forever; here until shutdown). A batch the leader refuses for good
 *   ({@link BatchRejectedError}: malformed or too large) is logged and
 *   skipped instead of wedging the queue. A retry after a timeout may write
 *   a batch twice (at-least-once, as rqlite).
 * - Durability: queued requests live only in memory. A crash loses them (as
 *   in rqlite); a graceful shutdown first tries to write them, within a
 *   bound, and logs what it had to drop.
 *
 * @module
 */

import type { Command, Statement } from "../db/mod.ts";
import { type Log, NO_LOG } from "../log/mod.ts";

/** The queue holds `capacity` requests (or its byte bound) and the deadline passed. */
export class QueueFullError extends Error {
  override readonly name = "QueueFullError";
}

/** The node is shutting down: the queue accepts nothing more. */
export class QueueClosedError extends Error {
  override readonly name = "QueueClosedError";
  constructor() {
    super("the write queue is shutting down; send the write to another node");
  }
}

/** The batch can never be written (the leader refused it for good): skipped, not retried. */
export class BatchRejectedError extends Error {
  override readonly name = "BatchRejectedError";
}

/**
 * Writes one batch through the normal execute path. Resolves with the
 * command's top-level error text, if any (the entry is in the log either
 * way); throws {@link BatchRejectedError} for a batch that can never be
 * written, anything else for a failure worth retrying.
 */
export type BatchWriter = (cmd: Command) => Promise<string | undefined>;

export interface WriteQueueOptions {
  /** Requests held at most (waiting plus being written). */
  readonly capacity: number;
  /** Requests per batch at most. */
  readonly batchSize: number;
  /** A batch is sent at the latest this long after its oldest request arrived. */
  readonly timeoutMs: number;
  /** Wrap each batch in a transaction. */
  readonly transaction: boolean;
  /** The sequence number before the first request (the node's start time in Unix ns). */
  readonly startSequence: bigint;
  readonly write: BatchWriter;
  /** Body bytes held at most (one larger request is still taken when the queue is empty). */
  readonly maxQueuedBytes?: number;
  /** Body bytes per batch at most (one larger request still goes alone). */
  readonly maxBatchBytes?: number;
  /** Pause between attempts to write a batch that failed; default 1 s (rqlite). */
  readonly retryDelayMs?: number;
  /** Where the queue reports drops and retries (default: nowhere). */
  readonly log?: Log;
}

/** What became of the batch holding a request. */
export interface Written {
  /** Unset: written (statement errors are not reported). Set: why it was not. */
  readonly error?: string;
}

/** An accepted request. */
export interface Ticket {
  readonly sequence: bigint;
  /** With `wait`: settles when the request's batch is written (or dropped). */
  readonly done?: Promise<Written>;
}

/** Options of {@link WriteQueue.enqueue}. */
export interface EnqueueOptions {
  /** Size of the request body, for the byte bounds. */
  readonly bytes: number;
  /** Flush at once and hand back a `done` promise. */
  readonly wait: boolean;
  /** How long to wait for room when the queue is full. */
  readonly admitTimeoutMs: number;
}

interface Entry {
  readonly seq: bigint;
  readonly statements: readonly Statement[];
  readonly bytes: number;
  readonly arrivedMs: number;
  done: ((w: Written) => void) | undefined;
}

interface Admission {
  readonly statements: readonly Statement[];
  readonly options: EnqueueOptions;
  readonly resolve: (t: Ticket) => void;
  readonly reject: (e: Error) => void;
  timer: ReturnType<typeof setTimeout> | undefined;
}

const DEFAULT_MAX_QUEUED_BYTES = 256 << 20;
const DEFAULT_MAX_BATCH_BYTES = 64 << 20;
/** Requests waiting for room at most (besides `capacity`): beyond, refused at once. */
const MAX_WAITING_FOR_ROOM = 4096;
/** Log a failing batch at its first failure and then every this many attempts. */
const LOG_EVERY_ATTEMPTS = 30;

/** Counters for /status (`http.queue._default`). */
export interface WriteQueueStats {
  readonly sequenceNumber: bigint;
  readonly depth: number;
  readonly batches: number;
  readonly statements: number;
  readonly failedAttempts: number;
  readonly rejectedBatches: number;
  readonly dropped: number;
  readonly refusedFull: number;
}

export class WriteQueue {
  readonly #o: Required<WriteQueueOptions>;
  /** Accepted requests not yet in a batch, in sequence order. */
  #pending: Entry[] = [];
  #pendingBytes = 0;
  /** The batch being written. */
  #inFlight: Entry[] = [];
  #inFlightBytes = 0;
  #admissions: Admission[] = [];
  #lastSeq: bigint;
  /** Last sequence number whose batch was written (0 before any). */
  #writtenSeq = 0n;
  /** Requests up to this sequence number go out without waiting for a full batch. */
  #flushThrough = 0n;
  #closed = false;
  #dropping = false;
  #closing: Promise<void> | undefined;
  /** Wakes the drainer from an idle or batching pause. */
  #wakeIdle: (() => void) | undefined;
  /** Wakes the drainer from a retry pause (shutdown only). */
  #wakeRetry: (() => void) | undefined;
  #idleWaiters: (() => void)[] = [];
  readonly #loop: Promise<void>;
  #stats = {
    batches: 0,
    statements: 0,
    failedAttempts: 0,
    rejectedBatches: 0,
    dropped: 0,
    refusedFull: 0,
  };

  constructor(options: WriteQueueOptions) {
    for (const k of ["capacity", "batchSize"] as const) {
      if (!(Number.isInteger(options[k]) && options[k] >= 1)) {
        throw new RangeError(`write queue ${k} must be an integer >= 1, got ${options[k]}`);
      }
    }
    if (!(options.timeoutMs > 0)) {
      throw new RangeError(`write queue timeout must be > 0, got ${options.timeoutMs}`);
    }
    this.#o = {
      maxQueuedBytes: DEFAULT_MAX_QUEUED_BYTES,
      maxBatchBytes: DEFAULT_MAX_BATCH_BYTES,
      retryDelayMs: 1_000,
      log: NO_LOG,
      ...options,
    };
    this.#lastSeq = options.startSequence;
    this.#loop = this.#run();
  }

  get options(): Readonly<WriteQueueOptions> {
    return this.#o;
  }

  /** Requests held: waiting plus being written. */
  get depth(): number {
    return this.#pending.length + this.#inFlight.length;
  }

  stats(): WriteQueueStats {
    return { sequenceNumber: this.#writtenSeq, depth: this.depth, ...this.#stats };
  }

  /**
   * Accepts a request: a {@link Ticket} at once when there is room, else a
   * promise that settles when room frees up (or rejects with
   * {@link QueueFullError} after `admitTimeoutMs`). Throws
   * {@link QueueClosedError} after {@link close}, and {@link QueueFullError}
   * at once when `capacity` (at most 4096) requests already wait for room.
   */
  enqueue(statements: readonly Statement[], options: EnqueueOptions): Ticket | Promise<Ticket> {
    if (this.#closed) throw new QueueClosedError();
    if (this.#admissions.length === 0 && this.#hasRoom(options.bytes)) {
      return this.#accept(statements, options);
    }
    if (this.#admissions.length >= Math.min(this.#o.capacity, MAX_WAITING_FOR_ROOM)) {
      this.#stats.refusedFull++;
      throw this.#fullError();
    }
    return new Promise<Ticket>((resolve, reject) => {
      const a: Admission = { statements, options, resolve, reject, timer: undefined };
      a.timer = setTimeout(() => {
        const i = this.#admissions.indexOf(a);
        if (i >= 0) this.#admissions.splice(i, 1);
        this.#stats.refusedFull++;
        reject(this.#fullError());
      }, Math.max(0, options.admitTimeoutMs));
      this.#admissions.push(a);
    });
  }

  /**
   * Stops accepting requests and writes what is queued, for at most
   * `drainMs`; what is left then is dropped (and logged). Idempotent.
   */
  close(drainMs: number): Promise<void> {
    return this.#closing ??= this.#close(drainMs);
  }

  /** Resolves when the drainer has stopped (after {@link close}). */
  get stopped(): Promise<void> {
    return this.#loop;
  }

  async #close(drainMs: number): Promise<void> {
    this.#closed = true;
    for (const a of this.#admissions.splice(0)) {
      clearTimeout(a.timer);
      a.reject(new QueueClosedError());
    }
    this.#wakeIdle?.();
    if (this.depth > 0) {
      // A leader may turn up (or come back) within the bound: try again faster.
      this.#wakeRetry?.();
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        new Promise<void>((resolve) => this.#idleWaiters.push(resolve)),
        new Promise<void>((resolve) => timer = setTimeout(resolve, drainMs)),
      ]);
      clearTimeout(timer);
    }
    this.#dropping = true;
    const left = [...this.#inFlight, ...this.#pending];
    if (left.length > 0) {
      this.#stats.dropped += left.length;
      this.#o.log.warn(
        `write queue: dropped ${left.length} queued requests (sequence numbers ` +
          `${left[0]!.seq}..${left.at(-1)!.seq}) at shutdown: no leader wrote them within ` +
          `${drainMs} ms; queued writes live only in memory`,
      );
      for (const e of left) settle(e, { error: "dropped at shutdown before it was written" });
    }
    this.#wakeIdle?.();
    this.#wakeRetry?.();
  }

  #hasRoom(bytes: number): boolean {
    const depth = this.depth;
    if (depth === 0) return true;
    return depth < this.#o.capacity &&
      this.#pendingBytes + this.#inFlightBytes + bytes <= this.#o.maxQueuedBytes;
  }

  #fullError(): QueueFullError {
    return new QueueFullError(
      `write queue full (${this.depth} requests queued, capacity ${this.#o.capacity}); ` +
        `retry shortly`,
    );
  }

  #accept(statements: readonly Statement[], options: EnqueueOptions): Ticket {
    const seq = ++this.#lastSeq;
    const entry: Entry = {
      seq,
      statements,
      bytes: options.bytes,
      arrivedMs: performance.now(),
      done: undefined,
    };
    let done: Promise<Written> | undefined;
    if (options.wait) {
      done = new Promise<Written>((resolve) => entry.done = resolve);
      this.#flushThrough = seq;
    }
    this.#pending.push(entry);
    this.#pendingBytes += entry.bytes;
    // Wake the drainer only when it has something new to decide.
    if (
      this.#pending.length === 1 || options.wait || this.#pending.length === this.#o.batchSize
    ) {
      this.#wakeIdle?.();
    }
    return done === undefined ? { sequence: seq } : { sequence: seq, done };
  }

  /** Moves waiting requests in while there is room. */
  #admit(): void {
    while (this.#admissions.length > 0 && !this.#closed) {
      const a = this.#admissions[0]!;
      if (!this.#hasRoom(a.options.bytes)) return;
      this.#admissions.shift();
      clearTimeout(a.timer);
      a.resolve(this.#accept(a.statements, a.options));
    }
  }

  #batchDue(): boolean {
    const head = this.#pending[0];
    if (head === undefined) return false;
    return this.#closed || head.seq <= this.#flushThrough ||
      this.#pending.length >= this.#o.batchSize || this.#pendingBytes >= this.#o.maxBatchBytes;
  }

  async #run(): Promise<void> {
    for (;;) {
      if (this.#dropping) {
        this.#pending = [];
        this.#pendingBytes = 0;
        return;
      }
      const head = this.#pending[0];
      if (head === undefined) {
        if (this.#closed) return;
        await this.#pause();
        continue;
      }
      if (!this.#batchDue()) {
        const dueInMs = head.arrivedMs + this.#o.timeoutMs - performance.now();
        if (dueInMs > 0) {
          await this.#pause(dueInMs);
          continue;
        }
      }
      this.#takeBatch();
      const written = await this.#writeBatch(this.#inFlight);
      this.#finishBatch(written);
    }
  }

  /** Sleeps until woken by a new request / close, or for `ms`. */
  #pause(ms?: number): Promise<void> {
    return new Promise<void>((resolve) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      this.#wakeIdle = () => {
        this.#wakeIdle = undefined;
        clearTimeout(timer);
        resolve();
      };
      if (ms !== undefined) timer = setTimeout(() => this.#wakeIdle?.(), Math.ceil(ms));
    });
  }

  #takeBatch(): void {
    let n = 0;
    let bytes = 0;
    const max = Math.min(this.#o.batchSize, this.#pending.length);
    while (n < max) {
      const b = this.#pending[n]!.bytes;
      if (n > 0 && bytes + b > this.#o.maxBatchBytes) break;
      bytes += b;
      n++;
    }
    this.#inFlight = this.#pending.splice(0, n);
    this.#inFlightBytes = bytes;
    this.#pendingBytes -= bytes;
  }

  async #writeBatch(batch: readonly Entry[]): Promise<Written> {
    const statements: Statement[] = [];
    for (const e of batch) for (const s of e.statements) statements.push(s);
    // Only flush checkpoints (`wait` with no statements): nothing to write.
    if (statements.length === 0) return {};
    const cmd: Command = {
      kind: "execute",
      statements,
      transaction: this.#o.transaction,
      dbTimeoutMs: 0,
    };
    const range = `${batch[0]!.seq}..${batch.at(-1)!.seq}`;
    for (let attempt = 1;; attempt++) {
      if (this.#dropping) return { error: "dropped at shutdown before it was written" };
      try {
        const error = await this.#o.write(cmd);
        this.#stats.batches++;
        this.#stats.statements += statements.length;
        if (attempt > 1) {
          this.#o.log.info(`write queue: batch ${range} written after ${attempt} attempts`);
        }
        return error === undefined || error === "" ? {} : { error };
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        if (err instanceof BatchRejectedError) {
          this.#stats.rejectedBatches++;
          this.#o.log.warn(
            `write queue: batch ${range} (${statements.length} statements) skipped: ${message}`,
          );
          return { error: message };
        }
        this.#stats.failedAttempts++;
        if (attempt === 1 || attempt % LOG_EVERY_ATTEMPTS === 0) {
          this.#o.log.warn(
            `write queue: cannot write batch ${range} (attempt ${attempt}): ${message}; ` +
              `retrying every ${this.#o.retryDelayMs} ms`,
          );
        }
        if (this.#dropping) return { error: "dropped at shutdown before it was written" };
        await this.#retryPause();
      }
    }
  }

  /** The pause between attempts; shutdown shortens it (the drain bound applies). */
  #retryPause(): Promise<void> {
    const ms = this.#closed ? Math.min(100, this.#o.retryDelayMs) : this.#o.retryDelayMs;
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.#wakeRetry = undefined;
        resolve();
      }, ms);
      this.#wakeRetry = () => {
        this.#wakeRetry = undefined;
        clearTimeout(timer);
        resolve();
      };
    });
  }

  #finishBatch(written: Written): void {
    const batch = this.#inFlight;
    this.#inFlight = [];
    this.#inFlightBytes = 0;
    if (!this.#dropping || written.error === undefined) this.#writtenSeq = batch.at(-1)!.seq;
    for (const e of batch) settle(e, written);
    this.#admit();
    if (this.depth === 0) { for (const w of this.#idleWaiters.splice(0)) w(); }
  }
}

function settle(e: Entry, w: Written): void {
  const done = e.done;
  e.done = undefined;
  done?.(w);
}
