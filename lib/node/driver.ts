/**
 * The driver: runs the pure Raft core against the world (driver_api.md).
 *
 * One Ready is in flight at a time. For each: persist (incoming snapshot,
 * then hard state and entries, durably), send, hand committed entries to the
 * state machine, `advance`. Requests arriving meanwhile are buffered and
 * enter the core together just before the next Ready is taken, so one append
 * (one fsync) carries every proposal made during the previous one (group
 * commit). Messages leave only after what they acknowledge is durable.
 *
 * The state machine runs one operation at a time from a queue (apply,
 * restore, snapshot), so applies may overlap the next Ready's persistence but
 * complete in log order, and a snapshot always captures exactly the applied
 * index. Log store mutations (the Ready's append/reset and compaction) are
 * serialized the same way.
 *
 * A store failure leaves the node unable to continue safely: it stops and
 * reports through `onFatal`. Broken invariants throw {@link AssertionError}.
 *
 * @module
 */

import { bootstrapEntries, EMPTY_CONF } from "../raft/confchange.ts";
import {
  AssertionError,
  ConfChangeError,
  InvalidMessageError,
  NotLeaderError,
  ProposalDroppedError,
} from "../raft/errors.ts";
import { Raft, type RaftConfig, type RaftStatus } from "../raft/raft.ts";
import type {
  ConfChange,
  ConfState,
  Entry,
  HardState,
  LogReader,
  Message,
  NodeId,
  RandomSource,
  Ready,
  SnapshotMeta,
  SoftState,
} from "../raft/types.ts";
import type {
  Clock,
  Done,
  LogStore,
  SnapshotData,
  SnapshotStore,
  StableStore,
  StateMachine,
  Transport,
} from "./interfaces.ts";

/** Hooks for the simulator's checker and for metrics. All optional; called synchronously. */
export interface DriverObserver {
  /** Called with every Ready before it is persisted (simulator checks log matching etc.). */
  onReady?(id: NodeId, rd: Ready): void;
  /** After the state machine applied `entries` (results in the same order). */
  onApplied?(id: NodeId, entries: readonly Entry[], results: readonly unknown[]): void;
  /** After the state machine was restored from a snapshot. */
  onRestored?(id: NodeId, meta: SnapshotMeta): void;
  /** When role/leader/term changed. */
  onSoftState?(id: NodeId, term: number, ss: SoftState): void;
  /** After a local snapshot was taken and the log compacted. */
  onSnapshotTaken?(id: NodeId, meta: SnapshotMeta): void;
}

/** Settings of the core passed through to {@link RaftConfig}. */
export type DriverRaftOptions = Partial<
  Omit<RaftConfig, "id" | "storage" | "hardState" | "applied" | "random">
>;

/** Everything a driver needs (driver_api.md). */
export interface DriverOptions {
  readonly id: NodeId;
  readonly clock: Clock;
  readonly logStore: LogStore;
  readonly stableStore: StableStore;
  readonly snapshotStore: SnapshotStore;
  readonly stateMachine: StateMachine;
  readonly transport: Transport;
  readonly random: RandomSource;
  /** Wall milliseconds per Raft tick (production 100; simulator e.g. 10). */
  readonly tickMs: number;
  readonly raft?: DriverRaftOptions;
  /** Take a snapshot after this many applied entries since the last one (0/undefined: never). */
  readonly snapshotThreshold?: number;
  /** Entries kept in the log behind a snapshot (default snapshotThreshold/4). */
  readonly trailingEntries?: number;
  /**
   * Every this many milliseconds, snapshot if anything was applied since the
   * last snapshot (rqlite's -raft-snap-int). 0/undefined: only by threshold.
   */
  readonly snapshotIntervalMs?: number;
  /**
   * The state machine already holds the state as of this log index (e.g.
   * -on-disk with a database file whose fingerprint matches): start() skips
   * restoring the newest snapshot and applies only the entries after it.
   * Must be >= the newest snapshot's index and <= the last log index, and
   * the log must hold every entry after it; otherwise it is ignored.
   */
  readonly stateMachineIndex?: number;
  /** When the stores are empty: persist bootstrapEntries(bootstrap) and hard state {term 1, commit n} first. */
  readonly bootstrap?: readonly NodeId[];
  /** Context (e.g. the Raft address) of each bootstrap voter, carried in the configuration. */
  readonly bootstrapContext?: Readonly<Record<NodeId, string>>;
  readonly observer?: DriverObserver;
  /** Proposals (and membership changes) awaiting their outcome; beyond, ProposalDroppedError. Default 10_000. */
  readonly maxPendingProposals?: number;
  /** Read requests awaiting their outcome; beyond, ProposalDroppedError. Default 10_000. */
  readonly maxPendingReads?: number;
  /** A store failed: the driver has stopped. Default: throw `err`. */
  readonly onFatal?: (err: Error) => void;
}

/** The driver was stopped before the request completed; a proposal may or may not have been applied. */
export class DriverStoppedError extends Error {
  override readonly name = "DriverStoppedError";
  constructor(
    reason = "raft driver stopped; the outcome of pending requests is unknown",
    options?: ErrorOptions,
  ) {
    super(reason, options);
  }
}

/**
 * The node skipped past a proposal by installing a snapshot from the leader:
 * the proposal may or may not have been applied. Check before retrying.
 */
export class OutcomeUnknownError extends Error {
  override readonly name = "OutcomeUnknownError";
  constructor(reason: string) {
    super(`proposal outcome unknown: ${reason}`);
  }
}

/** Status of the driver: the core's plus the state machine's applied index and counters. */
export interface DriverStatus extends RaftStatus {
  readonly appliedIndex: number;
  /** Index of the newest snapshot taken or installed. */
  readonly snapshotIndex: number;
  readonly pendingProposals: number;
  readonly pendingReads: number;
  /** Messages the core rejected as malformed. */
  readonly invalidMessages: number;
  /** Commands proposed through {@link RaftDriver.propose} since start, and those refused at once. */
  readonly proposals: number;
  readonly proposalsRefused: number;
  /** Accepted proposals that failed later (dropped, overwritten, outcome unknown, stopped). */
  readonly proposalsFailed: number;
  /** Snapshots taken locally since start, and how long the last one took (capture + store + compaction). */
  readonly snapshotsTaken: number;
  readonly lastSnapshotMs: number;
  /** Snapshots received from a leader and restored since start. */
  readonly snapshotsInstalled: number;
}

/** Outcome of {@link RaftDriver.snapshotNow}: the snapshot taken, or undefined when nothing was new. */
export type SnapshotCallback = (err: Error | undefined, meta: SnapshotMeta | undefined) => void;

type ProposeCallback = (err: Error | undefined, result: unknown, index: number) => void;
type ReadCallback = (err: Error | undefined, index: number) => void;

/** A request whose entry is in the core's log at some index. */
interface PendingEntry {
  readonly term: number;
  readonly resolve: (err: Error | undefined, result: unknown) => void;
}

type SmTask =
  | { readonly kind: "apply"; readonly entries: readonly Entry[] }
  | { readonly kind: "restore"; readonly meta: SnapshotMeta; readonly data: SnapshotData }
  | { readonly kind: "snapshot" };

/** Entries merged into one state machine apply call at most (one Ready's batch may exceed it). */
const APPLY_BATCH_MAX = 4096;
/** How long a moved commit index may wait before it is written as a hint (see #persist). */
const COMMIT_HINT_DELAY_MS = 20;
const NO_SNAPSHOT: SnapshotMeta = { index: 0, term: 0, conf: EMPTY_CONF };

function check(condition: boolean, detail: () => string): asserts condition {
  if (!condition) throw new AssertionError(`driver invariant broken: ${detail()}`);
}

function isExpected(err: unknown): err is Error {
  return err instanceof NotLeaderError || err instanceof ProposalDroppedError ||
    err instanceof ConfChangeError;
}

const overwritten = () => new ProposalDroppedError("overwritten by a new leader");

/** Runs the Raft core: ticks, persists, sends, applies (driver_api.md). */
export class RaftDriver {
  readonly #o: DriverOptions;
  readonly #id: NodeId;
  #state: "new" | "starting" | "running" | "stopped" = "new";
  #core: Raft | undefined;
  #term = 0;

  #tickCancel: (() => void) | undefined;
  /** A deferred write of the commit hint is armed. */
  #commitHintCancel: (() => void) | undefined;
  #kickCancel: (() => void) | undefined;
  #readyInFlight = false;
  #pumping = false;
  #pumpAgain = false;

  // Requests not yet handed to the core (entered together before the next Ready).
  #proposalBuffer: { data: Uint8Array; cb: ProposeCallback }[] = [];
  #readBuffer: ReadCallback[] = [];
  // Requests in the core.
  #pending = new Map<number, PendingEntry[]>();
  #pendingCount = 0;
  #pendingMinTerm = Infinity;
  #readSeq = 0;
  /** ReadIndex contexts awaiting their ReadState. */
  #reads = new Map<string, { term: number; cbs: ReadCallback[] }>();
  /** Released reads awaiting `appliedIndex >= index`. */
  #released: { index: number; cbs: ReadCallback[] }[] = [];
  #readCount = 0;

  /** The newest snapshot received with its data, until a Ready installs it. */
  #incoming: { meta: SnapshotMeta; data: SnapshotData } | undefined;

  #smQueue: SmTask[] = [];
  #smBusy = false;
  #smPumping = false;
  #appliedIndex = 0;
  #snapshotIndex = 0;
  #snapshotting = false;
  /** Callers of snapshotNow waiting for the next snapshot to finish. */
  #snapshotWaiters: SnapshotCallback[] = [];
  /** Trailing entries for the next snapshot's compaction (snapshotNow's override). */
  #nextTrailing: number | undefined;
  /** The next snapshot is taken even at the newest snapshot's index (it replaces that one). */
  #forceNext = false;
  #snapshotTimerCancel: (() => void) | undefined;
  #snapshotsTaken = 0;
  #lastSnapshotMs = 0;
  #snapshotsInstalled = 0;

  #logQueue: ((release: () => void) => void)[] = [];
  #logBusy = false;

  #invalidMessages = 0;
  #proposals = 0;
  #proposalsRefused = 0;
  #proposalsFailed = 0;
  /** Clock time of the last message from the current leader (freshness of reads). */
  #leaderContactMs = -Infinity;

  constructor(options: DriverOptions) {
    check(options.id !== "", () => "node id must not be empty");
    check(options.tickMs > 0, () => `tickMs must be positive, got ${options.tickMs}`);
    const threshold = options.snapshotThreshold ?? 0;
    check(threshold >= 0, () => `snapshotThreshold must be >= 0, got ${threshold}`);
    check(
      (options.trailingEntries ?? 0) >= 0,
      () => `trailingEntries must be >= 0, got ${options.trailingEntries}`,
    );
    this.#o = options;
    this.#id = options.id;
  }

  // ------------------------------------------------------------------ lifecycle

  /** Loads stores, restores the newest snapshot into the state machine, creates the core, starts ticking. */
  start(done: Done): void {
    check(this.#state === "new", () => `start() called in state ${this.#state}`);
    this.#state = "starting";
    let finished = false;
    const finish = (err?: Error) => {
      if (finished) return;
      finished = true;
      done(err);
    };
    const fail = (err: unknown) => {
      if (this.#state !== "stopped") this.stop();
      finish(err instanceof Error ? err : new Error(String(err)));
    };
    // Each step runs only if the previous succeeded and nobody stopped us meanwhile.
    const proceed = (next: () => void) => (err?: Error) => {
      if (this.#state === "stopped") {
        return finish(new DriverStoppedError("stopped while starting"));
      }
      if (err) return fail(err);
      attempt(next);
    };
    const attempt = (fn: () => void) => {
      try {
        fn();
      } catch (err) {
        if (finished) throw err; // thrown by the caller's own callback
        fail(err);
      }
    };
    attempt(() =>
      this.#bootstrapIfEmpty(proceed(() =>
        this.#restoreLatest(proceed(() => {
          this.#createCore();
          this.#state = "running";
          this.#armTick();
          this.#armSnapshotTimer();
          this.#kick();
          finish();
        }))
      ))
    );
  }

  /** Stops timers and the transport; pending callbacks get DriverStoppedError. Idempotent. */
  stop(): void {
    this.#stopWith(new DriverStoppedError());
  }

  #stopWith(err: Error): void {
    if (this.#state === "stopped") return;
    this.#state = "stopped";
    this.#tickCancel?.();
    this.#kickCancel?.();
    this.#snapshotTimerCancel?.();
    this.#commitHintCancel?.();
    this.#commitHintCancel = undefined;
    this.#tickCancel = undefined;
    this.#kickCancel = undefined;
    this.#snapshotTimerCancel = undefined;
    this.#o.transport.close();
    if (this.#incoming !== undefined) this.#o.snapshotStore.discard?.(this.#incoming.data);
    this.#incoming = undefined;
    this.#smQueue = [];
    this.#logQueue = [];
    const proposals = this.#proposalBuffer;
    const pending = [...this.#pending.values()].flat();
    const reads = [
      ...this.#readBuffer,
      ...[...this.#reads.values()].flatMap((r) => r.cbs),
      ...this.#released.flatMap((r) => r.cbs),
    ];
    this.#proposalBuffer = [];
    this.#pending.clear();
    this.#pendingCount = 0;
    this.#readBuffer = [];
    this.#reads.clear();
    this.#released = [];
    this.#readCount = 0;
    for (const p of proposals) p.cb(err, undefined, 0);
    for (const p of pending) p.resolve(err, undefined);
    for (const cb of reads) cb(err, 0);
    const waiters = this.#snapshotWaiters;
    this.#snapshotWaiters = [];
    for (const cb of waiters) cb(err, undefined);
  }

  #fatal(err: Error): void {
    if (this.#state === "stopped") return;
    this.#stopWith(
      new DriverStoppedError(`stopped by a storage failure: ${err.message}`, {
        cause: err,
      }),
    );
    const onFatal = this.#o.onFatal ?? ((e: Error) => {
      throw e;
    });
    onFatal(err);
  }

  /** Wraps a store completion: ignored after stop, fatal on error. */
  #ok(next: () => void): Done {
    return (err?: Error) => {
      if (this.#state === "stopped") return;
      if (err) return this.#fatal(err);
      next();
    };
  }

  #bootstrapIfEmpty(done: Done): void {
    const { logStore, stableStore, snapshotStore, bootstrap } = this.#o;
    const empty = logStore.lastIndex() === 0 && snapshotStore.latest() === undefined &&
      stableStore.hardState().term === 0;
    if (!empty || bootstrap === undefined) return done();
    const entries = bootstrapEntries(bootstrap, this.#o.bootstrapContext);
    let waiting = 2;
    let failed = false;
    const one = (err?: Error) => {
      if (failed) return;
      if (err) {
        failed = true;
        return done(err);
      }
      if (--waiting === 0) done();
    };
    logStore.append(entries, one);
    stableStore.setHardState({ term: 1, vote: "", commit: entries.length }, one);
  }

  /** Makes the log agree with the newest snapshot, then restores the state machine from it. */
  #restoreLatest(done: Done): void {
    const { logStore, snapshotStore, stateMachine } = this.#o;
    const meta = snapshotStore.latest();
    if (meta === undefined) {
      const held = this.#o.stateMachineIndex;
      const whole = logStore.firstIndex() === 1 && held !== undefined &&
        held <= logStore.lastIndex();
      return whole ? this.#adoptHeldState(held, NO_SNAPSHOT, done) : done();
    }
    const first = logStore.firstIndex();
    const last = logStore.lastIndex();
    check(
      first - 1 <= meta.index,
      () => `log compacted through ${first - 1}, beyond the newest snapshot ${meta.index}`,
    );
    const restore = () => {
      const held = this.#o.stateMachineIndex;
      if (held !== undefined && held >= meta.index && held <= logStore.lastIndex()) {
        return this.#adoptHeldState(held, meta, done);
      }
      stateMachine.restore(meta, snapshotStore.read(meta), (err) => {
        if (err) return done(err);
        this.#appliedIndex = meta.index;
        this.#snapshotIndex = meta.index;
        this.#o.observer?.onRestored?.(this.#id, meta);
        done();
      });
    };
    // A crash between installing a received snapshot and resetting the log
    // leaves a log that ends before it or disagrees with it: it is stale.
    if (last < meta.index || logStore.term(meta.index) !== meta.term) {
      logStore.reset(meta, (err) => (err ? done(err) : restore()));
    } else restore();
  }

  /**
   * The state machine is already at `held` (see stateMachineIndex): nothing
   * to restore. An applied entry was committed, so the commit hint is raised
   * to `held` before the core starts (it requires applied <= commit).
   */
  #adoptHeldState(held: number, meta: SnapshotMeta, done: Done): void {
    const { stableStore } = this.#o;
    this.#appliedIndex = held;
    this.#snapshotIndex = meta.index;
    const hs = stableStore.hardState();
    if (hs.commit >= held) return done();
    stableStore.setHardState({ ...hs, commit: held }, done);
  }

  #createCore(): void {
    const { logStore, snapshotStore, stableStore } = this.#o;
    const storage: LogReader = {
      firstIndex: () => logStore.firstIndex(),
      lastIndex: () => logStore.lastIndex(),
      term: (index) => logStore.term(index),
      entries: (lo, hi, maxBytes) => logStore.entries(lo, hi, maxBytes),
      snapshotMeta: () => snapshotStore.latest() ?? NO_SNAPSHOT,
    };
    const hardState: HardState = stableStore.hardState();
    this.#term = hardState.term;
    this.#core = new Raft({
      ...this.#o.raft,
      id: this.#id,
      storage,
      hardState,
      applied: this.#appliedIndex,
      random: this.#o.random,
    });
    this.#o.transport.listen({
      onMessage: (msg) => this.#onMessage(msg),
      onSnapshot: (msg, data) => this.#onSnapshot(msg, data),
    });
  }

  // ------------------------------------------------------------------ requests

  /**
   * Proposes one command; `cb` runs once it is applied on this node (with the
   * state machine's result), or with an error: NotLeaderError,
   * ProposalDroppedError (definitely not applied: refused, or another entry
   * took its place), OutcomeUnknownError or DriverStoppedError (may have been
   * applied). Immediate refusals call `cb` synchronously.
   */
  propose(data: Uint8Array, cb: ProposeCallback): void {
    this.#proposals++;
    const refusal = this.#refuse(this.#pendingCount + this.#proposalBuffer.length, "proposals");
    if (refusal) {
      this.#proposalsRefused++;
      return cb(refusal, undefined, 0);
    }
    this.#proposalBuffer.push({
      data,
      cb: (err, result, index) => {
        if (err !== undefined) this.#proposalsFailed++;
        cb(err, result, index);
      },
    });
    this.#kick();
  }

  /** Proposes a membership change; `cb` runs once it is applied (errors as {@link propose}, plus ConfChangeError). */
  proposeConfChange(cc: ConfChange, cb: (err: Error | undefined, index: number) => void): void {
    const refusal = this.#refuse(this.#pendingCount + this.#proposalBuffer.length, "proposals");
    if (refusal) return cb(refusal, 0);
    const core = this.#core;
    check(core !== undefined, () => "running without a core");
    let index: number;
    try {
      index = core.proposeConfChange(cc);
    } catch (err) {
      if (isExpected(err)) return cb(err, 0);
      throw err;
    }
    this.#addPending(index, core.term, (err) => cb(err, index));
    this.#kick();
  }

  /** Linearizable read barrier (ReadIndex): `cb` once this node's state machine has applied the read index. */
  readIndex(cb: ReadCallback): void {
    const refusal = this.#refuse(this.#readCount + this.#readBuffer.length, "reads");
    if (refusal) return cb(refusal, 0);
    this.#readBuffer.push(cb);
    this.#kick();
  }

  /** Hands leadership to `to`. Throws NotLeaderError (or ProposalDroppedError when `to` is no voter). */
  transferLeadership(to: NodeId): void {
    const core = this.#core;
    if (this.#state !== "running" || core === undefined) throw new NotLeaderError("");
    core.transferLeadership(to);
    this.#kick();
  }

  /** Starts an election now if this node may (a lone voter need not wait an election timeout). */
  campaign(): void {
    if (this.#state !== "running" || this.#core === undefined) return;
    this.#core.campaign();
    this.#kick();
  }

  /** The current membership (cheap: no status object is built; used per message by transports). */
  conf(): ConfState {
    return this.#core?.conf ?? EMPTY_CONF;
  }

  /** The known leader's id, or "" (cheap). */
  leader(): NodeId {
    return this.#core?.leader ?? "";
  }

  /** True while this node leads (cheap). */
  isLeader(): boolean {
    return this.#core?.role === "leader";
  }

  /**
   * Milliseconds since this node last heard from its leader: 0 on the leader
   * itself, Infinity when no leader has been heard from.
   */
  leaderContactAgeMs(): number {
    if (this.#core?.role === "leader") return 0;
    if (this.#core === undefined || this.#core.leader === "") return Infinity;
    return this.#o.clock.nowMs() - this.#leaderContactMs;
  }

  /**
   * Whether any proposal of this node waits for its outcome. When none does
   * (e.g. while a restarted node replays its log), the state machine need
   * not return the outcomes of what it applies.
   */
  hasPendingProposals(): boolean {
    return this.#pendingCount > 0;
  }

  /** Core status plus the state machine's applied index and the driver's counters. */
  status(): DriverStatus {
    const core = this.#core;
    if (core === undefined) throw new Error(`raft driver ${this.#id} has not started`);
    return {
      ...core.status(),
      appliedIndex: this.#appliedIndex,
      snapshotIndex: this.#snapshotIndex,
      pendingProposals: this.#pendingCount + this.#proposalBuffer.length,
      pendingReads: this.#readCount + this.#readBuffer.length,
      invalidMessages: this.#invalidMessages,
      proposals: this.#proposals,
      proposalsRefused: this.#proposalsRefused,
      proposalsFailed: this.#proposalsFailed,
      snapshotsTaken: this.#snapshotsTaken,
      lastSnapshotMs: this.#lastSnapshotMs,
      snapshotsInstalled: this.#snapshotsInstalled,
    };
  }

  /** The error refusing a new request now, if any (stopped, not leader, too many pending). */
  #refuse(pending: number, what: "proposals" | "reads"): Error | undefined {
    if (this.#state === "stopped") return new DriverStoppedError();
    const core = this.#core;
    if (this.#state !== "running" || core === undefined) return new NotLeaderError("");
    if (core.role !== "leader") return new NotLeaderError(core.leader);
    const max = what === "proposals"
      ? this.#o.maxPendingProposals ?? 10_000
      : this.#o.maxPendingReads ?? 10_000;
    if (pending >= max) return new ProposalDroppedError(`${max} ${what} pending; retry shortly`);
    return undefined;
  }

  #addPending(index: number, term: number, resolve: PendingEntry["resolve"]): void {
    const list = this.#pending.get(index);
    if (list === undefined) this.#pending.set(index, [{ term, resolve }]);
    else list.push({ term, resolve });
    this.#pendingCount++;
    if (term < this.#pendingMinTerm) this.#pendingMinTerm = term;
  }

  /** Hands buffered proposals and reads to the core (all at once: group commit, one read round). */
  #flushRequests(core: Raft): void {
    if (this.#proposalBuffer.length > 0) {
      const batch = this.#proposalBuffer;
      this.#proposalBuffer = [];
      let first: number;
      try {
        first = core.propose(batch.map((p) => p.data));
      } catch (err) {
        if (!isExpected(err)) throw err;
        for (const p of batch) p.cb(err, undefined, 0);
        first = 0;
      }
      if (first > 0) {
        for (const [k, p] of batch.entries()) {
          const index = first + k;
          this.#addPending(index, core.term, (err, result) => p.cb(err, result, index));
        }
      }
    }
    if (this.#readBuffer.length > 0) {
      const cbs = this.#readBuffer;
      this.#readBuffer = [];
      const context = `r${++this.#readSeq}`;
      try {
        core.readIndex(context);
      } catch (err) {
        if (!isExpected(err)) throw err;
        for (const cb of cbs) cb(err, 0);
        return;
      }
      this.#reads.set(context, { term: core.term, cbs });
      this.#readCount += cbs.length;
    }
  }

  // ------------------------------------------------------------------ transport

  #onMessage(msg: Message): void {
    if (this.#state !== "running") return;
    // A snapshot message needs its data; only onSnapshot carries it.
    if (msg.kind === "snapshot") {
      this.#invalidMessages++;
      return;
    }
    this.#step(msg);
  }

  #onSnapshot(msg: Message, data: SnapshotData): void {
    const discard = (d: SnapshotData) => this.#o.snapshotStore.discard?.(d);
    if (this.#state !== "running") return discard(data);
    const meta = msg.snapshot;
    if (msg.kind !== "snapshot" || meta === undefined) {
      this.#invalidMessages++;
      return discard(data);
    }
    // Keep exactly the data of the snapshot the core holds pending: a message
    // it ignored (stale term, behind its commit) must not replace the data of
    // one it accepted earlier, whatever their order of arrival (seed 8565).
    const previous = this.#incoming;
    this.#incoming = { meta, data };
    this.#step(msg);
    const pending = this.#core?.log.unstableSnapshot;
    if (pending === undefined || pending.index !== meta.index || pending.term !== meta.term) {
      this.#incoming = previous;
      discard(data);
    } else if (previous !== undefined && previous.data !== data) discard(previous.data);
  }

  #step(msg: Message): void {
    const core = this.#core;
    check(core !== undefined, () => "running without a core");
    try {
      core.step(msg);
    } catch (err) {
      if (!(err instanceof InvalidMessageError)) throw err;
      this.#invalidMessages++;
      return;
    }
    const fromLeader = msg.kind === "append" || msg.kind === "heartbeat" ||
      msg.kind === "snapshot";
    if (fromLeader && msg.from === core.leader) this.#leaderContactMs = this.#o.clock.nowMs();
    this.#kick();
  }

  // ------------------------------------------------------------------ the Ready loop

  #armTick(): void {
    this.#tickCancel = this.#o.clock.after(this.#o.tickMs, () => {
      this.#tickCancel = undefined;
      if (this.#state !== "running") return;
      this.#core?.tick();
      this.#armTick();
      this.#pump();
    });
  }

  /** Schedules a pump soon (after the caller's synchronous work: that is the batching window). */
  #kick(): void {
    if (this.#state !== "running" || this.#kickCancel !== undefined || this.#readyInFlight) return;
    this.#kickCancel = this.#o.clock.after(0, () => {
      this.#kickCancel = undefined;
      this.#pump();
    });
  }

  /** Starts Readies while none is in flight; loops instead of recursing when stores complete synchronously. */
  #pump(): void {
    if (this.#pumping) {
      this.#pumpAgain = true;
      return;
    }
    this.#pumping = true;
    try {
      do {
        this.#pumpAgain = false;
        this.#pumpOnce();
      } while (this.#pumpAgain);
    } finally {
      this.#pumping = false;
    }
  }

  #pumpOnce(): void {
    const core = this.#core;
    if (this.#state !== "running" || core === undefined || this.#readyInFlight) return;
    this.#flushRequests(core);
    if (!core.hasReady()) return;
    const rd = core.ready();
    this.#readyInFlight = true;
    this.#handleReady(core, rd);
  }

  #handleReady(core: Raft, rd: Ready): void {
    this.#o.observer?.onReady?.(this.#id, rd);
    this.#noteState(core, rd);
    let snapshotData: SnapshotData | undefined;
    const snap = rd.snapshot;
    if (snap !== undefined) {
      const incoming = this.#incoming;
      check(
        incoming !== undefined && incoming.meta.index === snap.index &&
          incoming.meta.term === snap.term,
        () =>
          `Ready installs snapshot ${snap.term}-${snap.index} but the data received is for ${
            incoming ? `${incoming.meta.term}-${incoming.meta.index}` : "none"
          }`,
      );
      const local = this.#o.snapshotStore.latest()?.index ?? 0;
      check(
        snap.index > local,
        () => `received snapshot ${snap.index} is not newer than the local one ${local}`,
      );
      snapshotData = incoming.data;
      this.#incoming = undefined;
    }
    // Committed entries already durable in the local log (appended by an
    // earlier Ready) need not wait for this Ready's fsync: they go to the
    // state machine now, so a write is answered one fsync after its own
    // append, not two. Entries appended by this Ready (a follower told of
    // their commit in the same message) still wait for the append.
    const early = snap === undefined ? this.#durableCount(rd.committedEntries) : 0;
    if (early > 0) {
      this.#queueApply(
        early === rd.committedEntries.length
          ? rd.committedEntries
          : rd.committedEntries.slice(0, early),
      );
      this.#pumpSm();
    }
    this.#withLog((release) => {
      this.#persist(rd, snapshotData, () => {
        release();
        this.#afterPersist(core, rd, snapshotData, early);
      });
    });
  }

  /** Writes the commit hint COMMIT_HINT_DELAY_MS from now unless a write is already armed. */
  #scheduleCommitHint(): void {
    if (this.#commitHintCancel !== undefined) return;
    this.#commitHintCancel = this.#o.clock.after(COMMIT_HINT_DELAY_MS, () => {
      this.#commitHintCancel = undefined;
      if (this.#state === "running") this.flushCommitHint(() => {});
    });
  }

  /**
   * Durably records the commit index as far as the local log holds it, so
   * that a restart applies it at once (also before any leader is known).
   * Runs between Readies (in the log queue), with the current term and
   * vote; `done` after it is durable (at once when nothing changed).
   */
  flushCommitHint(done: Done): void {
    if (this.#state !== "running" || this.#core === undefined) return done();
    const core = this.#core;
    this.#withLog((release) => {
      const { stableStore, logStore } = this.#o;
      const stored = stableStore.hardState();
      // Between Readies every stored entry is durable, and committed ones are final.
      const commit = Math.min(core.status().commit, logStore.lastIndex());
      if (commit <= stored.commit || this.#state !== "running") {
        release();
        return done();
      }
      stableStore.setHardState({ ...stored, commit }, (err) => {
        release();
        if (err) return this.#fatal(err);
        done();
      });
    });
  }

  /** How many of `entries` (contiguous) the log holds durably now (no append is in flight). */
  #durableCount(entries: readonly Entry[]): number {
    const first = entries[0];
    if (first === undefined) return 0;
    const durable = this.#o.logStore.lastIndex();
    return Math.max(0, Math.min(entries.length, durable - first.index + 1));
  }

  /** Queues committed entries for the state machine, at most APPLY_BATCH_MAX per call. */
  #queueApply(committed: readonly Entry[]): void {
    for (let i = 0; i < committed.length; i += APPLY_BATCH_MAX) {
      const entries = committed.length <= APPLY_BATCH_MAX
        ? committed
        : committed.slice(i, i + APPLY_BATCH_MAX);
      this.#smQueue.push({ kind: "apply", entries });
    }
  }

  /** Observes leadership and term changes; fails reads the core will never release. */
  #noteState(core: Raft, rd: Ready): void {
    if (rd.hardState !== undefined) this.#term = rd.hardState.term;
    const ss = rd.softState;
    if (ss !== undefined) this.#o.observer?.onSoftState?.(this.#id, this.#term, ss);
    if (ss === undefined && rd.hardState === undefined) return;
    if (ss !== undefined && ss.role !== "leader") this.#failPendingOnLostLeadership();
    // The core drops queued reads when it leaves leadership or its term.
    for (const [context, batch] of this.#reads) {
      let err: Error | undefined;
      if (core.role !== "leader") err = new NotLeaderError(core.leader);
      else if (batch.term < core.term) {
        err = new ProposalDroppedError("leadership changed during the read; retry");
      }
      if (err === undefined) continue;
      this.#reads.delete(context);
      this.#readCount -= batch.cbs.length;
      for (const cb of batch.cbs) cb(err, 0);
    }
  }

  /**
   * This node stopped leading: its pending proposals may still be committed
   * by the next leader, or may be lost. Waiting for their apply timeout helps
   * nobody; answer at once that the outcome is unknown (rqlite: "leadership
   * lost while committing log").
   */
  #failPendingOnLostLeadership(): void {
    if (this.#pendingCount === 0) return;
    const pending = [...this.#pending.values()].flat();
    this.#pending.clear();
    this.#pendingCount = 0;
    this.#pendingMinTerm = Infinity;
    const err = new OutcomeUnknownError("leadership lost while committing log");
    for (const p of pending) p.resolve(err, undefined);
  }

  #persist(rd: Ready, snapshotData: SnapshotData | undefined, done: () => void): void {
    const { logStore, stableStore, snapshotStore } = this.#o;
    // The hard state's commit index may cover entries of this Ready, which can
    // replace stale ones at the same indexes. The two files are written
    // concurrently, so a crash may keep the hard state and lose the append;
    // the persisted commit is therefore capped below this Ready's entries
    // (it is only a hint and may lag; everything below entries[0] is durable
    // and agrees with the leader, as truncation only reaches uncommitted
    // entries). Found by the simulator's crash-mid-write nemesis (seed 778).
    const first = rd.entries[0];
    const capped = rd.hardState !== undefined && first !== undefined &&
        rd.hardState.commit >= first.index
      ? { ...rd.hardState, commit: first.index - 1 }
      : rd.hardState;
    // Term and vote must be durable before anything that depends on them
    // leaves. The commit index alone is a hint (it lets a restarted node
    // apply what it knows is committed before hearing from a leader), so a
    // Ready that only moves it writes no hard state: on the write path that
    // saved one fsync per round (it took a Ready of its own between two
    // client writes). The hint is written a little later instead, off the
    // critical path (#scheduleCommitHint), and on flushCommitHint().
    const stored = stableStore.hardState();
    const termOrVote = capped !== undefined &&
      (capped.term !== stored.term || capped.vote !== stored.vote);
    const hardState = termOrVote ? capped : undefined;
    if (!termOrVote && rd.hardState !== undefined) this.#scheduleCommitHint();
    const writeState = () => {
      let waiting = 1;
      const one = this.#ok(() => {
        if (--waiting === 0) done();
      });
      if (hardState !== undefined) {
        waiting++;
        stableStore.setHardState(hardState, one);
      }
      if (rd.entries.length > 0) {
        waiting++;
        logStore.append(rd.entries, one);
      }
      one();
    };
    const snap = rd.snapshot;
    if (snap === undefined || snapshotData === undefined) return writeState();
    // Snapshot first, then the log restarts after it: a crash in between
    // leaves a stale log that start() resets.
    snapshotStore.write(
      snap,
      snapshotData,
      this.#ok(() => {
        this.#snapshotIndex = Math.max(this.#snapshotIndex, snap.index);
        logStore.reset(snap, this.#ok(writeState));
      }),
    );
  }

  #afterPersist(
    core: Raft,
    rd: Ready,
    snapshotData: SnapshotData | undefined,
    appliedEarly: number,
  ): void {
    if (this.#state !== "running") return;
    for (const msg of rd.messages) {
      if (msg.kind === "snapshot") this.#sendSnapshot(core, msg);
      else this.#o.transport.send(msg);
    }
    if (rd.snapshot !== undefined && snapshotData !== undefined) {
      // The store owns the data now (a received file was moved into place).
      const data = this.#o.snapshotStore.read(rd.snapshot);
      this.#smQueue.push({ kind: "restore", meta: rd.snapshot, data });
    }
    // At most APPLY_BATCH_MAX entries per state machine call: a Ready can
    // carry a whole replayed log (megabytes of entries) at once.
    if (rd.committedEntries.length > appliedEarly) {
      this.#queueApply(
        appliedEarly === 0 ? rd.committedEntries : rd.committedEntries.slice(appliedEarly),
      );
    }
    for (const rs of rd.readStates) {
      const batch = this.#reads.get(rs.context);
      if (batch === undefined) continue;
      this.#reads.delete(rs.context);
      this.#released.push({ index: rs.index, cbs: batch.cbs });
    }
    core.advance(rd);
    this.#readyInFlight = false;
    this.#serveReads();
    this.#pumpSm();
    this.#pump();
  }

  #sendSnapshot(core: Raft, msg: Message): void {
    const { snapshotStore, transport } = this.#o;
    // The core chose the newest snapshot when it built the message; a local
    // one may have superseded it since. Send the newest: it is as valid.
    const meta = snapshotStore.latest();
    check(
      meta !== undefined && msg.snapshot !== undefined && meta.index >= msg.snapshot.index,
      () => `snapshot message for ${msg.snapshot?.index} but newest stored is ${meta?.index}`,
    );
    const out = meta.index === msg.snapshot.index ? msg : { ...msg, snapshot: meta };
    transport.sendSnapshot(out, snapshotStore.read(meta), (ok) => {
      if (this.#state !== "running") return;
      core.reportSnapshot(msg.to, ok);
      this.#kick();
    });
  }

  /** Runs log store mutations one at a time (a Ready's persistence, compaction). */
  #withLog(task: (release: () => void) => void): void {
    this.#logQueue.push(task);
    this.#pumpLog();
  }

  #pumpLog(): void {
    if (this.#logBusy || this.#state === "stopped") return;
    const task = this.#logQueue.shift();
    if (task === undefined) return;
    this.#logBusy = true;
    task(() => {
      this.#logBusy = false;
      this.#pumpLog();
    });
  }

  // ------------------------------------------------------------------ the state machine

  #pumpSm(): void {
    if (this.#smPumping) return;
    this.#smPumping = true;
    try {
      while (!this.#smBusy && this.#state === "running") {
        const task = this.#smQueue.shift();
        if (task === undefined) break;
        this.#smBusy = true;
        if (task.kind === "apply") this.#runApply(this.#mergeApplies(task.entries));
        else if (task.kind === "restore") this.#runRestore(task.meta, task.data);
        else this.#runSnapshot();
      }
    } finally {
      this.#smPumping = false;
    }
  }

  /** One SM operation finished: start the next (from the pump loop if we are inside it). */
  #smDone(): void {
    this.#smBusy = false;
    this.#pumpSm();
  }

  #mergeApplies(first: readonly Entry[]): readonly Entry[] {
    let next = this.#smQueue[0];
    if (next?.kind !== "apply" || first.length >= APPLY_BATCH_MAX) return first;
    const merged = first.slice();
    while (next?.kind === "apply" && merged.length + next.entries.length <= APPLY_BATCH_MAX) {
      for (const e of next.entries) merged.push(e);
      this.#smQueue.shift();
      next = this.#smQueue[0];
    }
    return merged;
  }

  #runApply(entries: readonly Entry[]): void {
    const first = entries[0];
    const last = entries.at(-1);
    check(
      first !== undefined && last !== undefined && first.index === this.#appliedIndex + 1,
      () => `apply from ${first?.index} but applied index is ${this.#appliedIndex}`,
    );
    this.#o.stateMachine.apply(entries, (results) => {
      if (this.#state !== "running") return;
      check(
        results.length === entries.length,
        () => `state machine returned ${results.length} results for ${entries.length} entries`,
      );
      this.#appliedIndex = last.index;
      this.#o.observer?.onApplied?.(this.#id, entries, results);
      this.#resolveApplied(entries, results);
      this.#serveReads();
      this.#maybeSnapshot();
      this.#smDone();
    });
  }

  /** Completes proposals whose index was applied; fails those that can no longer commit. */
  #resolveApplied(entries: readonly Entry[], results: readonly unknown[]): void {
    if (this.#pendingCount === 0) return;
    for (const [k, entry] of entries.entries()) {
      const list = this.#pending.get(entry.index);
      if (list === undefined) continue;
      this.#pending.delete(entry.index);
      this.#pendingCount -= list.length;
      for (const p of list) {
        if (p.term === entry.term) p.resolve(undefined, results[k]);
        else p.resolve(overwritten(), undefined);
      }
    }
    const last = entries.at(-1);
    if (last !== undefined) this.#failOlderThan(last.index, last.term);
  }

  /**
   * A committed entry (index, term) exists: every log holding it has terms
   * >= `term` after it, so a pending proposal after `index` with a lower term
   * can never commit (log matching, §5.3).
   */
  #failOlderThan(index: number, term: number): void {
    if (this.#pendingMinTerm >= term) return;
    let min = Infinity;
    for (const [i, list] of this.#pending) {
      const keep = list.filter((p) => i <= index || p.term >= term);
      for (const p of keep) min = Math.min(min, p.term);
      if (keep.length === list.length) continue;
      if (keep.length === 0) this.#pending.delete(i);
      else this.#pending.set(i, keep);
      this.#pendingCount -= list.length - keep.length;
      for (const p of list) if (!keep.includes(p)) p.resolve(overwritten(), undefined);
    }
    this.#pendingMinTerm = min;
  }

  #runRestore(meta: SnapshotMeta, data: SnapshotData): void {
    check(
      meta.index >= this.#appliedIndex,
      () => `restore of snapshot ${meta.index} behind applied index ${this.#appliedIndex}`,
    );
    this.#o.stateMachine.restore(meta, data, (err) => {
      if (this.#state !== "running") return;
      if (err) return this.#fatal(err);
      this.#appliedIndex = meta.index;
      this.#snapshotIndex = Math.max(this.#snapshotIndex, meta.index);
      this.#snapshotsInstalled++;
      this.#o.observer?.onRestored?.(this.#id, meta);
      // Proposals the snapshot covers: a term above the snapshot's cannot be
      // in it; otherwise we cannot tell.
      for (const [index, list] of this.#pending) {
        if (index > meta.index) continue;
        this.#pending.delete(index);
        this.#pendingCount -= list.length;
        for (const p of list) {
          p.resolve(
            p.term > meta.term
              ? overwritten()
              : new OutcomeUnknownError(`snapshot ${meta.index} from the leader replaced the log`),
            undefined,
          );
        }
      }
      this.#failOlderThan(meta.index, meta.term);
      this.#serveReads();
      this.#smDone();
    });
  }

  #serveReads(): void {
    if (this.#released.length === 0) return;
    const ready = this.#released.filter((r) => r.index <= this.#appliedIndex);
    if (ready.length === 0) return;
    this.#released = this.#released.filter((r) => r.index > this.#appliedIndex);
    for (const r of ready) {
      this.#readCount -= r.cbs.length;
      for (const cb of r.cbs) cb(undefined, r.index);
    }
  }

  #maybeSnapshot(): void {
    const threshold = this.#o.snapshotThreshold ?? 0;
    if (threshold <= 0 || this.#snapshotting) return;
    if (this.#appliedIndex - this.#snapshotIndex < threshold) return;
    this.#queueSnapshot();
  }

  #queueSnapshot(): void {
    check(!this.#snapshotting, () => "a snapshot is already queued");
    this.#snapshotting = true;
    this.#smQueue.push({ kind: "snapshot" });
    this.#pumpSm();
  }

  /** rqlite's -raft-snap-int: snapshot on a timer, but only when something was applied since the last. */
  #armSnapshotTimer(): void {
    const intervalMs = this.#o.snapshotIntervalMs ?? 0;
    if (intervalMs <= 0) return;
    this.#snapshotTimerCancel = this.#o.clock.after(intervalMs, () => {
      this.#snapshotTimerCancel = undefined;
      if (this.#state !== "running") return;
      if (!this.#snapshotting && this.#appliedIndex > this.#snapshotIndex) this.#queueSnapshot();
      this.#armSnapshotTimer();
    });
  }

  /**
   * Takes a snapshot of everything applied so far and compacts the log,
   * keeping `trailingEntries` entries (default: the configured number) —
   * rqlite's `POST /snapshot`. `done(undefined, undefined)` when nothing was
   * applied since the newest snapshot.
   */
  snapshotNow(
    trailingEntries: number | undefined,
    done: SnapshotCallback,
    options: { force?: boolean } = {},
  ): void {
    if (this.#state !== "running") return done(new DriverStoppedError(), undefined);
    if (options.force) this.#forceNext = true;
    check(
      trailingEntries === undefined || trailingEntries >= 0,
      () => `trailingEntries must be >= 0, got ${trailingEntries}`,
    );
    if (!this.#snapshotting && !this.#forceNext && this.#appliedIndex <= this.#snapshotIndex) {
      return done(undefined, undefined);
    }
    this.#snapshotWaiters.push(done);
    if (trailingEntries !== undefined) this.#nextTrailing = trailingEntries;
    // A snapshot already queued or running captures a state from before this
    // call; the waiter is answered by the one after it (see #snapshotFinished).
    if (!this.#snapshotting) this.#queueSnapshot();
  }

  /** Runs from the SM queue, so the state machine's state is exactly `appliedIndex`. */
  #runSnapshot(): void {
    const core = this.#core;
    check(core !== undefined, () => "running without a core");
    const { logStore, snapshotStore, stateMachine } = this.#o;
    const index = this.#appliedIndex;
    const waiters = this.#snapshotWaiters;
    this.#snapshotWaiters = [];
    const trailing = this.#nextTrailing;
    this.#nextTrailing = undefined;
    const force = this.#forceNext;
    this.#forceNext = false;
    // A snapshot received from the leader (installed or on its way) supersedes this one.
    const stale = force ? index < this.#snapshotIndex : index <= this.#snapshotIndex;
    if (stale || index < core.status().firstIndex - 1) {
      this.#snapshotting = false;
      for (const cb of waiters) cb(undefined, undefined);
      return this.#smDone();
    }
    check(
      index >= logStore.firstIndex() - 1 && index <= logStore.lastIndex(),
      () =>
        `applied index ${index} outside the stored log [${logStore.firstIndex()}, ${logStore.lastIndex()}]`,
    );
    const meta: SnapshotMeta = { index, term: logStore.term(index), conf: core.confAt(index) };
    const startMs = this.#o.clock.nowMs();
    stateMachine.snapshot((err, data) => {
      if (this.#state !== "running") return;
      if (err) return this.#fatal(err);
      this.#smDone();
      snapshotStore.write(
        meta,
        data,
        this.#ok(() => {
          this.#snapshotIndex = Math.max(this.#snapshotIndex, index);
          this.#compact(index, trailing, () => {
            this.#snapshotsTaken++;
            this.#lastSnapshotMs = this.#o.clock.nowMs() - startMs;
            this.#snapshotting = false;
            this.#o.observer?.onSnapshotTaken?.(this.#id, meta);
            for (const cb of waiters) cb(undefined, meta);
            if (this.#snapshotWaiters.length > 0) this.#queueSnapshot();
            else this.#maybeSnapshot();
            this.#pumpSm();
          });
        }),
      );
    });
  }

  /** Drops the log through `index - trailingEntries`, if anything is left to drop. */
  #compact(index: number, trailingOverride: number | undefined, done: () => void): void {
    const { logStore } = this.#o;
    const trailing = trailingOverride ?? this.#o.trailingEntries ??
      Math.floor((this.#o.snapshotThreshold ?? 0) / 4);
    const k = index - trailing;
    this.#withLog((release) => {
      // Re-checked here: a received snapshot may have reset the log meanwhile.
      if (k < logStore.firstIndex() || k > logStore.lastIndex()) {
        release();
        return done();
      }
      logStore.compact(
        k,
        logStore.term(k),
        this.#ok(() => {
          release();
          done();
        }),
      );
    });
  }
}
