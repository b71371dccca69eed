/**
 * `DbClient`: the main thread's handle on the SQLite state machine, which
 * runs in Deno Workers so that long SQLite calls (a 5-second query, a large
 * restore) never stall the event loop that drives Raft heartbeats.
 *
 * Workers and connections:
 * - One **write worker** holds the only write connection. It runs
 *   {@link DbClient.execute}, {@link DbClient.request},
 *   {@link DbClient.applyCommands} (log entries, including strong reads),
 *   serialize / restore / load and stateHash, one at a time in call order
 *   (the driver's log order).
 * - `readWorkers` **read workers** (default 1) each hold a read-only
 *   connection (`readOnly`, `query_only`, busy timeout) on the same file in
 *   WAL mode and serve {@link DbClient.query} and {@link DbClient.classify}.
 *   An apply never waits behind a read.
 * - Ordering: a read is sent to a read worker only once every write-side
 *   request called before it that can change the database has finished
 *   (usually at once, or after the apply batch in progress: those are
 *   short, since they never wait for reads; serialize, stateHash and
 *   batches of only strong reads are not waited for). So a read sees every
 *   write called before it — the order a single worker gave — and, being a
 *   WAL reader that starts its snapshot after those commits, nothing
 *   half-done.
 * - With `path: ":memory:"` the database is private to the write
 *   connection, so there are no read workers and reads run on the write
 *   worker in call order, as before (for tests).
 *
 * Restores: {@link DbClient.restore}, {@link DbClient.restoreFromFile},
 * {@link DbClient.load} and any
 * {@link DbClient.applyCommands} batch holding a `load` command replace the
 * database file. They are *exclusive*: from the call on, reads are held in
 * the client; the reads already running finish (on the old database); the
 * read workers close their connections; the write worker replaces the file
 * (checked image, written beside it, renamed over it); the read workers
 * reopen; then held reads go out. So no read sees a closed or half-replaced
 * database, and every read called after the restore sees the restored one.
 * Writes called after an exclusive operation wait for it.
 *
 * Bounds: write-side requests queued or running are bounded by
 * `maxInFlight`, reads queued or running by `maxReadQueue`; beyond them
 * calls reject at once with {@link DbOverloadedError}. If any worker dies,
 * every pending and later call rejects with {@link DbWorkerError}.
 *
 * Files: without a `path` the database is a fresh RAM-backed file (see
 * files.ts) created at open and deleted, with its `-wal`/`-shm`, at close
 * or on failure.
 *
 * @module
 */

import { type Command, peekCommandKind, type Statement } from "./command.ts";
import {
  type BackupOptions,
  type CloseReport,
  DbError,
  type EngineOptions,
  RestoreError,
  type RestoreFileOptions,
  type SnapshotFileResult,
} from "./engine.ts";
import { createRamDbFile, type RamDbFile, removeRamDbFile } from "./files.ts";
import type { WorkerReply, WorkerRequest } from "./protocol.ts";
import type { CommandOutcome, StatementResult } from "./result.ts";

/** Client settings: the engine's plus where the database lives, workers and bounds. */
export interface DbClientOptions extends Omit<EngineOptions, "readOnly" | "path"> {
  /**
   * Where the database lives:
   * - omitted or `""`: a fresh RAM-backed file (`/dev/shm`, else a temporary
   *   directory) created by this client and deleted at close — the node's
   *   "in memory" mode, rebuilt from the log at every start;
   * - a file path: that file in WAL mode (created if missing, kept at close);
   * - `":memory:"`: a private in-memory database; reads then run on the
   *   write worker (`readWorkers` is ignored). For tests.
   */
  path?: string;
  /** Read workers, each with a read-only connection (default 1; 0 = reads on the write worker). */
  readWorkers?: number;
  /** Most write-side requests queued or running at once (default 1024). */
  maxInFlight?: number;
  /** Most reads (query, classify) queued or running at once (default `maxInFlight`). */
  maxReadQueue?: number;
}

/** Too many requests queued. Retry later or shed load. */
export class DbOverloadedError extends Error {
  override name = "DbOverloadedError";
}

/** A worker failed or the client is closed. */
export class DbWorkerError extends Error {
  override name = "DbWorkerError";
}

/** Reads sent to one read worker before it answers (the rest wait in the client). */
const READ_PIPELINE = 32;

type Pending = { resolve: (v: unknown) => void; reject: (e: Error) => void };
// deno-lint-ignore no-explicit-any
type Msg = any;

interface Job extends Pending {
  msg: Msg;
  transfer: Transferable[];
  exclusive: boolean;
  /** Reads: the number of write-side requests called before this one. */
  after: number;
}

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

/** One worker and its outstanding requests. */
class Channel {
  private readonly worker: Worker;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private dead: Error | undefined;

  constructor(what: string, onFail: (e: Error) => void) {
    this.worker = new Worker(new URL("./worker.ts", import.meta.url), { type: "module" });
    this.worker.onmessage = (e: MessageEvent<WorkerReply>) => this.onReply(e.data);
    this.worker.onerror = (e: ErrorEvent) => {
      e.preventDefault();
      onFail(new DbWorkerError(`${what} failed: ${e.message}`));
    };
    this.worker.onmessageerror = () => {
      onFail(new DbWorkerError(`${what} sent an unreadable message`));
    };
  }

  /** Requests sent and not yet answered. */
  get size(): number {
    return this.pending.size;
  }

  private onReply(r: WorkerReply): void {
    const p = this.pending.get(r.id);
    if (p === undefined) return;
    this.pending.delete(r.id);
    if (r.ok) p.resolve(r.value);
    else p.reject(rebuildError(r.name, r.message));
  }

  send<T>(msg: Msg, transfer: Transferable[] = []): Promise<T> {
    if (this.dead !== undefined) return Promise.reject(this.dead);
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.worker.postMessage({ ...msg, id } as WorkerRequest, transfer);
    });
  }

  /** Rejects everything outstanding with `err` and stops the worker. */
  kill(err: Error): void {
    if (this.dead !== undefined) return;
    this.dead = err;
    const all = [...this.pending.values()];
    this.pending.clear();
    for (const p of all) p.reject(err);
    this.worker.terminate();
  }
}

/** Promise-based access to the SQLite state machine in its workers. */
export class DbClient {
  /** The database file (or `":memory:"`). */
  readonly path: string;
  private readonly writer: Channel;
  private readonly readers: Channel[] = [];
  private readonly readerOptions: EngineOptions;
  private readonly file: RamDbFile | undefined;
  private readonly maxInFlight: number;
  private readonly maxReadQueue: number;
  private failure: Error | undefined;
  private closing: Promise<CloseReport> | undefined;

  /** Write-side jobs not sent yet (they wait only behind an exclusive job). */
  private readonly writeQueue: Job[] = [];
  /** An exclusive job is running: write-side jobs wait in {@link writeQueue}. */
  private writeBlocked = false;
  /** Exclusive jobs queued or running: reads are held while this is > 0. */
  private exclusivePending = 0;
  /** Reads not sent to a read worker yet. */
  private readonly readQueue: Job[] = [];
  /** Reads sent to a read worker and not answered yet. */
  private readsRunning = 0;
  private idleWaiters: (() => void)[] = [];
  /** Write-side requests that may change the database, called so far. */
  private writesCalled = 0;
  /** Of those, the number finished (they finish in call order). */
  private writesDone = 0;

  private constructor(
    path: string,
    file: RamDbFile | undefined,
    engine: EngineOptions,
    readWorkers: number,
    maxInFlight: number,
    maxReadQueue: number,
  ) {
    this.path = path;
    this.file = file;
    this.maxInFlight = maxInFlight;
    this.maxReadQueue = maxReadQueue;
    this.readerOptions = { ...engine, path, readOnly: true };
    const onFail = (e: Error) => this.fail(e);
    this.writer = new Channel("database write worker", onFail);
    for (let i = 0; i < readWorkers; i++) {
      this.readers.push(new Channel(`database read worker ${i + 1}`, onFail));
    }
  }

  /** Creates the database file if needed, starts the workers and opens the database in them. */
  static async open(options: DbClientOptions = {}): Promise<DbClient> {
    const { maxInFlight, maxReadQueue, readWorkers, path, ...engine } = options;
    const file = path === undefined || path === "" ? await createRamDbFile() : undefined;
    const dbPath = file?.path ?? path!;
    const readers = dbPath === ":memory:" ? 0 : Math.max(0, Math.floor(readWorkers ?? 1));
    const max = maxInFlight ?? 1024;
    const c = new DbClient(dbPath, file, engine, readers, max, maxReadQueue ?? max);
    try {
      await c.writer.send({ op: "open", options: { ...engine, path: dbPath } });
      await Promise.all(c.readers.map((r) => r.send({ op: "open", options: c.readerOptions })));
    } catch (e) {
      c.fail(new DbWorkerError("database client closed"));
      throw e;
    }
    return c;
  }

  /** Number of read workers (0: reads run on the write worker). */
  get readWorkers(): number {
    return this.readers.length;
  }

  /** Requests queued or running, reads and writes. */
  get inFlight(): number {
    return this.writer.size + this.writeQueue.length + this.readQueue.length + this.readsRunning;
  }

  private fail(err: Error): void {
    if (this.failure !== undefined) return;
    this.failure = err;
    this.writer.kill(err);
    for (const r of this.readers) r.kill(err);
    for (const j of this.writeQueue.splice(0)) j.reject(err);
    for (const j of this.readQueue.splice(0)) j.reject(err);
    this.wakeIdle();
    if (this.file !== undefined) removeRamDbFile(this.file);
  }

  private refuse(): Error | undefined {
    if (this.failure !== undefined) return this.failure;
    if (this.closing !== undefined) return new DbWorkerError("database client closed");
    return undefined;
  }

  // ---- write side ------------------------------------------------------------

  private write<T>(
    msg: Msg,
    opts: {
      transfer?: Transferable[];
      exclusive?: boolean;
      internal?: boolean;
      /** False for requests that cannot change the database: later reads need not wait. */
      mutates?: boolean;
    } = {},
  ): Promise<T> {
    const refused = opts.internal ? this.failure : this.refuse();
    if (refused !== undefined) return Promise.reject(refused);
    const queued = this.writer.size + this.writeQueue.length;
    if (!opts.internal && queued >= this.maxInFlight) {
      return Promise.reject(
        new DbOverloadedError(
          `database write worker overloaded: ${queued} requests in flight (limit ${this.maxInFlight})`,
        ),
      );
    }
    const exclusive = opts.exclusive ?? false;
    const seq = opts.mutates === false ? 0 : ++this.writesCalled;
    return new Promise<T>((resolve, reject) => {
      if (exclusive) this.exclusivePending++;
      this.writeQueue.push({
        msg,
        transfer: opts.transfer ?? [],
        exclusive,
        after: 0,
        resolve: (v) => {
          this.writeDone(seq);
          resolve(v as T);
        },
        reject: (e) => {
          this.writeDone(seq);
          reject(e);
        },
      });
      this.pumpWrites();
    });
  }

  private writeDone(seq: number): void {
    if (seq > this.writesDone) this.writesDone = seq;
    if (this.readQueue.length > 0) this.pumpReads();
  }

  /** Sends queued write-side jobs in order, up to the next exclusive one. */
  private pumpWrites(): void {
    while (!this.writeBlocked && this.failure === undefined && this.writeQueue.length > 0) {
      const job = this.writeQueue.shift()!;
      if (!job.exclusive) {
        this.writer.send(job.msg, job.transfer).then(job.resolve, job.reject);
        continue;
      }
      this.writeBlocked = true;
      this.runExclusive(job).finally(() => {
        this.writeBlocked = false;
        this.exclusivePending--;
        this.pumpWrites();
        this.pumpReads();
      });
    }
  }

  /** Runs a job that replaces the database file with the read workers detached. */
  private async runExclusive(job: Job): Promise<void> {
    try {
      if (this.readers.length > 0) {
        await this.readsSettled(false);
        await Promise.all(this.readers.map((r) => r.send({ op: "close" })));
      }
      let value: unknown;
      let error: Error | undefined;
      try {
        value = await this.writer.send(job.msg, job.transfer);
      } catch (e) {
        error = e as Error;
      }
      if (this.readers.length > 0 && this.failure === undefined) {
        try {
          await Promise.all(
            this.readers.map((r) => r.send({ op: "open", options: this.readerOptions })),
          );
        } catch (e) {
          this.fail(
            new DbWorkerError(
              `database read workers could not reopen the database after a restore: ${
                (e as Error).message
              }`,
            ),
          );
        }
      }
      if (error !== undefined) job.reject(error);
      else if (this.failure !== undefined) job.reject(this.failure);
      else job.resolve(value);
    } catch (e) {
      job.reject(e as Error);
    }
  }

  // ---- read side -------------------------------------------------------------

  private read<T>(msg: Msg): Promise<T> {
    if (this.readers.length === 0) return this.write(msg);
    const refused = this.refuse();
    if (refused !== undefined) return Promise.reject(refused);
    const n = this.readQueue.length + this.readsRunning;
    if (n >= this.maxReadQueue) {
      return Promise.reject(
        new DbOverloadedError(
          `database read workers overloaded: ${n} reads queued or running (limit ${this.maxReadQueue})`,
        ),
      );
    }
    return new Promise<T>((resolve, reject) => {
      this.readQueue.push({
        msg,
        transfer: [],
        exclusive: false,
        after: this.writesCalled,
        resolve: resolve as (v: unknown) => void,
        reject,
      });
      this.pumpReads();
    });
  }

  /**
   * Sends held reads to the least busy read workers, in call order, once the
   * writes called before each have finished, unless a restore holds them.
   */
  private pumpReads(): void {
    if (this.exclusivePending > 0 || this.failure !== undefined) return;
    while (this.readQueue.length > 0 && this.readQueue[0]!.after <= this.writesDone) {
      let best: Channel | undefined;
      for (const r of this.readers) {
        if (r.size < READ_PIPELINE && (best === undefined || r.size < best.size)) best = r;
      }
      if (best === undefined) return;
      const job = this.readQueue.shift()!;
      this.readsRunning++;
      best.send(job.msg).then((v) => {
        this.readDone();
        job.resolve(v);
      }, (e) => {
        this.readDone();
        job.reject(e);
      });
    }
  }

  private readDone(): void {
    this.readsRunning--;
    this.pumpReads();
    this.wakeIdle();
  }

  private wakeIdle(): void {
    const w = this.idleWaiters;
    this.idleWaiters = [];
    for (const f of w) f();
  }

  /** Resolves once no read is running (and, with `queued`, none is held either). */
  private async readsSettled(queued: boolean): Promise<void> {
    while (
      this.failure === undefined &&
      (this.readsRunning > 0 || (queued && this.readQueue.length > 0))
    ) {
      await new Promise<void>((r) => this.idleWaiters.push(r));
    }
  }

  // ---- API -------------------------------------------------------------------

  /** See {@link SqliteEngine.execute}. Write worker. */
  execute(command: Command): Promise<StatementResult[]> {
    return this.write({ op: "execute", command });
  }

  /**
   * See {@link SqliteEngine.query}. Read-only queries (the default) run on a
   * read worker; `readOnly: false` runs on the write worker.
   */
  query(command: Command, opts: { readOnly?: boolean } = {}): Promise<StatementResult[]> {
    const readOnly = opts.readOnly ?? true;
    const msg = { op: "query", command, readOnly };
    return readOnly ? this.read(msg) : this.write(msg);
  }

  /** See {@link SqliteEngine.classify}. Read worker. */
  classify(statements: readonly Statement[]): Promise<boolean[]> {
    return this.read({ op: "classify", statements });
  }

  /**
   * See {@link SqliteEngine.request}. Write worker (a request may write; the
   * store serves all-read requests as queries after {@link classify}).
   */
  request(command: Command): Promise<StatementResult[]> {
    return this.write({ op: "request", command });
  }

  /**
   * Applies encoded commands (log entries) in order, in one worker round
   * trip; one outcome per command (a command that does not decode gets an
   * outcome with `error`). The inputs are copied, not transferred. A batch
   * holding a `load` command is exclusive (see the module note).
   */
  applyCommands(
    encoded: readonly Uint8Array[],
    opts: { results?: boolean } = {},
  ): Promise<CommandOutcome[]> {
    const results = opts.results ?? true;
    let total = 0;
    let load = false;
    let mutates = false;
    for (const e of encoded) {
      total += e.length;
      const kind = peekCommandKind(e);
      if (kind === "load") load = true;
      if (kind !== "query" && kind !== "noop") mutates = true;
    }
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
    const reply = this.write<CommandOutcome[] | number>({ op: "apply", buffer, lengths, results }, {
      transfer: [buffer, lengths.buffer],
      exclusive: load,
      mutates,
    });
    if (results) return reply as Promise<CommandOutcome[]>;
    // Outcomes nobody waits for: the same count of empty ones.
    return reply.then((n) => Array.from({ length: Number(n) }, () => ({ results: [] })));
  }

  /**
   * Replaces the database with an image (see {@link SqliteEngine.restore});
   * exclusive (see the module note). With `transfer`, the bytes' buffer
   * moves to the worker (and is detached here) instead of being copied.
   */
  restore(bytes: Uint8Array, opts: { transfer?: boolean } = {}): Promise<void> {
    return this.write({ op: "restore", bytes }, {
      transfer: transferList(bytes, opts.transfer),
      exclusive: true,
    });
  }

  /** A replicated load of a database image; same as {@link restore}. */
  load(bytes: Uint8Array, opts: { transfer?: boolean } = {}): Promise<void> {
    return this.write({ op: "load", bytes }, {
      transfer: transferList(bytes, opts.transfer),
      exclusive: true,
    });
  }

  /** The database image (see {@link SqliteEngine.serialize}). Write worker, in order. */
  serialize(): Promise<Uint8Array> {
    return this.write({ op: "serialize" }, { mutates: false });
  }

  /**
   * Writes a self-contained SQLite file at `path` (rollback-journal header,
   * fsynced; the caller renames it into place) holding exactly the state
   * after every command called before. Write worker, in order; memory
   * bounded. See {@link SqliteEngine.snapshotToFile}.
   */
  snapshotToFile(path: string): Promise<SnapshotFileResult> {
    return this.write({ op: "snapshotToFile", path }, { mutates: false });
  }

  /**
   * Replaces the database with a copy of the SQLite file at `path` (left in
   * place), checked per `opts.check` (default `header`); a bad file rejects
   * with {@link RestoreError} and changes nothing. Exclusive, like
   * {@link restore}. See {@link SqliteEngine.restoreFromFile}.
   */
  restoreFromFile(path: string, opts: RestoreFileOptions = {}): Promise<void> {
    return this.write({ op: "restoreFromFile", path, options: { check: opts.check } }, {
      exclusive: true,
    });
  }

  /**
   * A backup file at `path` in rqlite's `binary`, `delete` or `sql` format
   * (see {@link SqliteEngine.backupToFile}). Write worker, in order (one
   * consistent state); memory bounded.
   */
  backupToFile(path: string, opts: BackupOptions): Promise<{ sizeBytes: number }> {
    const options: BackupOptions = {
      format: opts.format,
      vacuum: opts.vacuum ?? false,
      tables: opts.tables === undefined ? undefined : [...opts.tables],
    };
    return this.write({ op: "backupToFile", path, options }, { mutates: false });
  }

  /**
   * Checks a database image as a load would (header, `quick_check`) without
   * touching the database; rejects with {@link RestoreError}. Runs on a
   * read worker when there is one, so applies do not wait for it.
   */
  checkImage(bytes: Uint8Array): Promise<void> {
    return this.read({ op: "checkImage", bytes });
  }

  /**
   * Checkpoints the WAL into the main database file and truncates it (a
   * short wait for readers); true when complete. Write worker, in order.
   * See {@link SqliteEngine.checkpoint}.
   */
  checkpoint(): Promise<boolean> {
    return this.write({ op: "checkpoint" }, { mutates: false });
  }

  /** See {@link SqliteEngine.stateHash}. Write worker, in order. */
  stateHash(): Promise<string> {
    return this.write({ op: "stateHash" }, { mutates: false });
  }

  /**
   * Lets every request called before finish, closes the database (read
   * connections first, then the write connection), stops the workers and
   * deletes a RAM-backed file. Later calls fail with {@link DbWorkerError}.
   * Safe to call twice.
   */
  close(): Promise<CloseReport> {
    if (this.failure !== undefined) return Promise.resolve({});
    return this.closing ??= (async () => {
      try {
        await this.readsSettled(true);
        await Promise.all(this.readers.map((r) => r.send({ op: "close" })));
        return await this.write<CloseReport>({ op: "close" }, { internal: true });
      } finally {
        this.fail(new DbWorkerError("database client closed"));
      }
    })();
  }
}

function transferList(bytes: Uint8Array, transfer: boolean | undefined): Transferable[] {
  if (!transfer) return [];
  const whole = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength;
  return whole ? [bytes.buffer as ArrayBuffer] : [];
}
