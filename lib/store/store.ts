/**
 * The store: rqlite's service layer over the Raft driver and the SQLite
 * worker. It turns execute / query / request commands into log entries or
 * local reads according to the read consistency level (rqlite-api.md §5),
 * waits for their outcome with a bound, and reports status.
 *
 * Invariants: a write is answered only after its entry is applied on this
 * node (so it was durable on a quorum); `strong` reads go through the log;
 * `linearizable` reads wait for a ReadIndex confirmed by a quorum and for the
 * local state machine to reach it; `weak` reads are served only while this
 * node is leader; `none` reads are served by any node.
 *
 * @module
 */

import { type Command, type CommandOutcome, type DbClient, encodeCommand } from "../db/mod.ts";
import { CommandEncodeError } from "../db/command.ts";
import { leadingKeyword } from "../db/sql_text.ts";
import { DriverStoppedError, OutcomeUnknownError, type RaftDriver } from "../node/driver.ts";
import { NotLeaderError, ProposalDroppedError } from "../raft/errors.ts";
import type { ConsistencyLevel } from "../sql/params.ts";
import type { SqliteStateMachine } from "./fsm.ts";

/** No leader is known, or this node is not it (rqlite: `not leader` / `leader not found`). */
export class NotLeaderStoreError extends Error {
  override readonly name = "NotLeaderStoreError";
  constructor(readonly leaderId: string) {
    super(leaderId === "" ? "leader not found" : "not leader");
  }
}

/** A `level=none` read with `freshness` on a node that has not heard from a leader recently. */
export class StaleReadError extends Error {
  override readonly name = "StaleReadError";
  constructor() {
    super("stale read");
  }
}

/** The request did not complete within its time limit; a write may still apply later. */
export class StoreTimeoutError extends Error {
  override readonly name = "StoreTimeoutError";
}

/** The node is overloaded: too many requests pending. Retry shortly. */
export class StoreBusyError extends Error {
  override readonly name = "StoreBusyError";
}

/**
 * The command is larger, encoded, than one log entry may be: a Raft message
 * carrying it would exceed the frame limit and never reach the followers,
 * so it is refused before it is proposed (nothing written).
 */
export class CommandTooLargeError extends CommandEncodeError {
  override name = "CommandTooLargeError";
  constructor(readonly bytes: number, readonly maxBytes: number) {
    super(
      `the request is ${bytes} bytes once encoded, more than the ${maxBytes}-byte limit ` +
        `of one log entry; send fewer statements or parameters per request, or raise ` +
        `-raft-max-frame-bytes`,
    );
  }
}

/**
 * A command's encoding is at most this many bytes per character of the
 * JSON it came from (the worst case, a parameter `1,`, is 5 bytes for 2;
 * text is at most 3 UTF-8 bytes per character).
 */
export const ENCODED_BYTES_PER_SOURCE_CHAR = 3;

/** Outcome of a command with the Raft index it went through (0 for local reads). */
export interface StoreOutcome {
  readonly outcome: CommandOutcome;
  readonly raftIndex: number;
}

/** Read options from the query string. */
export interface ReadOptions {
  readonly level: ConsistencyLevel;
  readonly freshnessMs?: number;
  readonly freshnessStrict?: boolean;
  readonly linearizableTimeoutMs?: number;
  readonly timeoutMs?: number;
}

export interface StoreOptions {
  readonly nodeId: string;
  readonly raftAddr: string;
  readonly driver: RaftDriver;
  readonly db: DbClient;
  readonly fsm: SqliteStateMachine;
  /** How long a write waits to be applied before the client gets a timeout. */
  readonly applyTimeoutMs: number;
  /** Whether this node votes (non-voters serve `auto` as `none`). */
  readonly voter: boolean;
  /** Largest encoded command proposed (default: unlimited); must fit in a Raft frame. */
  readonly maxEntryBytes?: number;
}

/** Keywords that may start a read-only statement (the worker then decides exactly). */
const READ_KEYWORDS = new Set(["SELECT", "EXPLAIN", "VALUES", "WITH", "PRAGMA"]);

export class Store {
  readonly startedMs = Date.now();
  #strongReadTerm = 0;

  constructor(readonly options: StoreOptions) {}

  get driver(): RaftDriver {
    return this.options.driver;
  }

  /** The leader's node id, or "" when none is known. */
  leaderId(): string {
    return this.driver.leader();
  }

  isLeader(): boolean {
    return this.driver.isLeader();
  }

  /**
   * Throws {@link CommandTooLargeError} when `cmd` could not be one log
   * entry. Given the length of the JSON it came from, a command that is
   * certainly small enough is passed without encoding it.
   */
  checkEntrySize(cmd: Command, sourceChars?: number): void {
    const max = this.options.maxEntryBytes ?? Infinity;
    if (sourceChars !== undefined && sourceChars * ENCODED_BYTES_PER_SOURCE_CHAR <= max) return;
    const bytes = encodeCommand(cmd).byteLength;
    if (bytes > max) throw new CommandTooLargeError(bytes, max);
  }

  /** Writes through the log (rqlite `Execute`). */
  execute(cmd: Command, timeoutMs = this.options.applyTimeoutMs): Promise<StoreOutcome> {
    return this.#propose(cmd, timeoutMs);
  }

  /** Reads at `opts.level` (rqlite `Query`). */
  async query(cmd: Command, opts: ReadOptions): Promise<StoreOutcome> {
    const level = this.#resolveLevel(opts.level);
    switch (level) {
      case "none":
        this.#checkFreshness(opts);
        return this.#local(cmd);
      case "weak":
        this.#requireLeader();
        return this.#local(cmd);
      case "strong": {
        const out = await this.#propose({ ...cmd, kind: "query" }, opts.timeoutMs);
        this.#strongReadTerm = this.driver.status().term;
        return out;
      }
      case "linearizable":
        await this.#readBarrier(opts.linearizableTimeoutMs ?? 10_000);
        return this.#local(cmd);
      default:
        throw new Error(`unreachable level ${level}`);
    }
  }

  /**
   * The unified endpoint: all-read batches are served like queries (without
   * resolving `auto`, as rqlite), anything with a write, or `strong`, goes
   * through the log as one `request` command.
   */
  async request(cmd: Command, opts: ReadOptions): Promise<StoreOutcome> {
    if (opts.level !== "strong" && await this.#allReads(cmd)) {
      const level = opts.level === "auto" ? "none" : opts.level;
      return this.query({ ...cmd, kind: "query" }, { ...opts, level });
    }
    return this.#propose({ ...cmd, kind: "request" }, opts.timeoutMs);
  }

  /** Exact, side-effect-free classification by SQLite itself (authorizer at prepare time). */
  async #allReads(cmd: Command): Promise<boolean> {
    if (!cmd.statements.every(maybeRead)) return false;
    const reads = await this.options.db.classify(cmd.statements);
    return reads.every((r) => r);
  }

  #resolveLevel(level: ConsistencyLevel): Exclude<ConsistencyLevel, "auto"> {
    if (level !== "auto") return level;
    // As rqlite's IsVoter: this node's suffrage in the current configuration.
    const voter = this.options.voter &&
      this.driver.conf().voters.includes(this.options.nodeId);
    return voter ? "weak" : "none";
  }

  /**
   * rqlite §5: with `freshness`, a non-leader refuses to serve data older
   * than that since it last heard from the leader (the leader is always fresh).
   */
  #checkFreshness(opts: ReadOptions): void {
    const freshnessMs = opts.freshnessMs ?? 0;
    if (freshnessMs <= 0) return;
    if (this.driver.leaderContactAgeMs() > freshnessMs) throw new StaleReadError();
    // freshness_strict: also refuse when this node has not applied all it knows committed.
    // (rqlite compares leader append timestamps; raftlite uses its own commit index.)
    if (opts.freshnessStrict) {
      const s = this.driver.status();
      if (s.role !== "leader" && s.appliedIndex < s.commit) throw new StaleReadError();
    }
  }

  #requireLeader(): void {
    if (!this.driver.isLeader()) throw new NotLeaderStoreError(this.driver.leader());
  }

  async #local(cmd: Command): Promise<StoreOutcome> {
    const results = await this.options.db.query({ ...cmd, kind: "query" }, { readOnly: true });
    return { outcome: { results }, raftIndex: 0 };
  }

  #propose(cmd: Command, timeoutMs = this.options.applyTimeoutMs): Promise<StoreOutcome> {
    const data = encodeCommand(cmd);
    const max = this.options.maxEntryBytes ?? Infinity;
    if (data.byteLength > max) {
      return Promise.reject(new CommandTooLargeError(data.byteLength, max));
    }
    return withTimeout(timeoutMs, "timeout waiting for the write to apply", (resolve, reject) => {
      this.driver.propose(data, (err, result, index) => {
        if (err) return reject(mapDriverError(err));
        resolve({
          outcome: (result as CommandOutcome | null) ?? { results: [] },
          raftIndex: index,
        });
      });
    });
  }

  #readBarrier(timeoutMs: number): Promise<number> {
    return withTimeout(timeoutMs, "timeout waiting for fsm", (resolve, reject) => {
      this.driver.readIndex((err, index) => {
        if (err) return reject(mapDriverError(err));
        resolve(index);
      });
    });
  }

  /** Index of the last strong read's term (status `strong_read_term`). */
  get strongReadTerm(): number {
    return this.#strongReadTerm;
  }
}

/** Cheap pre-filter: statements that are surely writes skip the worker's classification. */
function maybeRead(st: Command["statements"][number]): boolean {
  if (st.forceQuery) return false;
  if (st.explain) return true;
  return READ_KEYWORDS.has(leadingKeyword(st.sql).toUpperCase());
}

function mapDriverError(err: Error): Error {
  if (err instanceof NotLeaderError) return new NotLeaderStoreError(err.leader);
  if (err instanceof ProposalDroppedError) {
    if (err.message.includes("pending")) return new StoreBusyError(err.message);
    return err;
  }
  if (err instanceof DriverStoppedError || err instanceof OutcomeUnknownError) return err;
  return err;
}

function withTimeout<T>(
  timeoutMs: number,
  message: string,
  start: (resolve: (v: T) => void, reject: (e: Error) => void) => void,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    const timer = setTimeout(() => {
      if (settled) return;
      settled = true;
      reject(new StoreTimeoutError(message));
    }, Math.max(1, timeoutMs));
    start((v) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(v);
    }, (e) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      reject(e);
    });
  });
}
