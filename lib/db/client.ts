/**
 * `DbClient`: the main thread's handle on a {@link SqliteEngine} running in
 * its own Deno Worker, so that long SQLite calls (a 5-second query, a large
 * restore) never stall the event loop that drives Raft heartbeats.
 *
 * The worker handles one request at a time in arrival order, so requests
 * sent by one client are applied in the order they were sent (the driver's
 * log order). {@link DbClient.applyCommands} hands a whole batch of encoded
 * log entries over in one message (one copied, transferred buffer) and gets
 * one outcome per entry back.
 *
 * In-flight requests are bounded (`maxInFlight`); beyond it calls reject at
 * once with {@link DbOverloadedError} instead of queueing without limit. If
 * the worker dies, every pending and later call rejects with
 * {@link DbWorkerError}.
 *
 * @module
 */

import type { Command, Statement } from "./command.ts";
import { DbError, type EngineOptions, RestoreError } from "./engine.ts";
import type { WorkerReply, WorkerRequest } from "./protocol.ts";
import type { CommandOutcome, StatementResult } from "./result.ts";

/** Client settings: the engine's plus the in-flight bound. */
export interface DbClientOptions extends EngineOptions {
  /** Most requests waiting for the worker at once (default 1024). */
  maxInFlight?: number;
}

/** Too many requests in flight. Retry later or shed load. */
export class DbOverloadedError extends Error {
  override name = "DbOverloadedError";
}

/** The worker failed or the client is closed. */
export class DbWorkerError extends Error {
  override name = "DbWorkerError";
}

type Pending = { resolve: (v: unknown) => void; reject: (e: Error) => void };

function rebuildError(name: string, message: string): Error {
  switch (name) {
    case "DbError":
      return new DbError(message);
    case "RestoreError":
      return new RestoreError(message);
    default: {
      const e = new Error(message);
      e.name = name;
      return e;
    }
  }
}

/** Promise-based access to a SQLite engine in a worker. */
export class DbClient {
  private readonly worker: Worker;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private failure: Error | undefined;
  private readonly maxInFlight: number;

  private constructor(maxInFlight: number) {
    this.maxInFlight = maxInFlight;
    this.worker = new Worker(new URL("./worker.ts", import.meta.url), { type: "module" });
    this.worker.onmessage = (e: MessageEvent<WorkerReply>) => this.onReply(e.data);
    this.worker.onerror = (e: ErrorEvent) => {
      e.preventDefault();
      this.fail(new DbWorkerError(`database worker failed: ${e.message}`));
    };
    this.worker.onmessageerror = () => {
      this.fail(new DbWorkerError("database worker sent an unreadable message"));
    };
  }

  /** Starts a worker and opens the database in it. */
  static async open(options: DbClientOptions = {}): Promise<DbClient> {
    const { maxInFlight, ...engineOptions } = options;
    const c = new DbClient(maxInFlight ?? 1024);
    try {
      await c.call({ op: "open", options: engineOptions });
    } catch (e) {
      c.terminate();
      throw e;
    }
    return c;
  }

  /** Requests sent and not yet answered. */
  get inFlight(): number {
    return this.pending.size;
  }

  private onReply(r: WorkerReply): void {
    const p = this.pending.get(r.id);
    if (p === undefined) return;
    this.pending.delete(r.id);
    if (r.ok) p.resolve(r.value);
    else p.reject(rebuildError(r.name, r.message));
  }

  private fail(err: Error): void {
    if (this.failure === undefined) this.failure = err;
    const all = [...this.pending.values()];
    this.pending.clear();
    for (const p of all) p.reject(err);
    this.worker.terminate();
  }

  private terminate(): void {
    this.fail(new DbWorkerError("database client closed"));
  }

  // deno-lint-ignore no-explicit-any
  private call<T>(msg: any, transfer: Transferable[] = [], bounded = true): Promise<T> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    if (bounded && this.pending.size >= this.maxInFlight) {
      return Promise.reject(
        new DbOverloadedError(
          `database worker overloaded: ${this.pending.size} requests in flight (limit ${this.maxInFlight})`,
        ),
      );
    }
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.worker.postMessage({ ...msg, id } as WorkerRequest, transfer);
    });
  }

  /** See {@link SqliteEngine.execute}. */
  execute(command: Command): Promise<StatementResult[]> {
    return this.call({ op: "execute", command });
  }

  /** See {@link SqliteEngine.query}. */
  query(command: Command, opts: { readOnly?: boolean } = {}): Promise<StatementResult[]> {
    return this.call({ op: "query", command, readOnly: opts.readOnly ?? true });
  }

  /** See {@link SqliteEngine.classify}. */
  classify(statements: readonly Statement[]): Promise<boolean[]> {
    return this.call({ op: "classify", statements });
  }

  /** See {@link SqliteEngine.request}. */
  request(command: Command): Promise<StatementResult[]> {
    return this.call({ op: "request", command });
  }

  /**
   * Applies encoded commands (log entries) in order, in one worker round
   * trip; one outcome per command (a command that does not decode gets an
   * outcome with `error`). The inputs are copied, not transferred.
   */
  applyCommands(encoded: readonly Uint8Array[]): Promise<CommandOutcome[]> {
    let total = 0;
    for (const e of encoded) total += e.length;
    const buffer = new ArrayBuffer(total);
    const all = new Uint8Array(buffer);
    const lengths = new Uint32Array(encoded.length);
    let off = 0;
    for (let i = 0; i < encoded.length; i++) {
      const e = encoded[i]!;
      all.set(e, off);
      lengths[i] = e.length;
      off += e.length;
    }
    return this.call({ op: "apply", buffer, lengths }, [buffer, lengths.buffer]);
  }

  /**
   * Replaces the database with an image (see {@link SqliteEngine.restore}).
   * With `transfer`, the bytes' buffer moves to the worker (and is detached
   * here) instead of being copied.
   */
  restore(bytes: Uint8Array, opts: { transfer?: boolean } = {}): Promise<void> {
    return this.call({ op: "restore", bytes }, transferList(bytes, opts.transfer));
  }

  /** A replicated load of a database image; same as {@link restore}. */
  load(bytes: Uint8Array, opts: { transfer?: boolean } = {}): Promise<void> {
    return this.call({ op: "load", bytes }, transferList(bytes, opts.transfer));
  }

  /** The database image (see {@link SqliteEngine.serialize}). */
  serialize(): Promise<Uint8Array> {
    return this.call({ op: "serialize" });
  }

  /** See {@link SqliteEngine.stateHash}. */
  stateHash(): Promise<string> {
    return this.call({ op: "stateHash" });
  }

  /**
   * Closes the database after every request sent before, then stops the
   * worker. Safe to call twice.
   */
  async close(): Promise<void> {
    if (this.failure !== undefined) return;
    try {
      await this.call({ op: "close" }, [], false);
    } finally {
      this.terminate();
    }
  }
}

function transferList(bytes: Uint8Array, transfer: boolean | undefined): Transferable[] {
  if (!transfer) return [];
  const whole = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength;
  return whole ? [bytes.buffer as ArrayBuffer] : [];
}
