/**
 * The driver's view of the world: every interface the simulator replaces.
 *
 * All I/O is completion-callback based (as TigerBeetle's IO): an operation is
 * started synchronously and its `done` callback runs later, exactly once. No
 * promises cross these interfaces, so one seeded event queue in the simulator
 * decides every ordering and a failing seed replays exactly. Production
 * adapters wrap async Deno APIs behind the same callbacks.
 *
 * @module
 */

import type { Entry, HardState, LogReader, Message, SnapshotMeta } from "../raft/types.ts";

/** Completion of an operation: `err` set on failure. */
export type Done = (err?: Error) => void;

/** Time and timers. */
export interface Clock {
  /** Milliseconds on a monotonic clock. */
  nowMs(): number;
  /** Runs `fn` once after `delayMs`; the returned function cancels it. */
  after(delayMs: number, fn: () => void): () => void;
}

/**
 * The Raft log on stable storage. Reads are synchronous (the core calls them
 * while stepping); writes complete through `done` once durable.
 */
export interface LogStore extends Omit<LogReader, "snapshotMeta"> {
  /**
   * Durably appends `entries`. If `entries[0].index <= lastIndex()` the
   * stored suffix from that index is replaced. At most one call in flight.
   */
  append(entries: readonly Entry[], done: Done): void;
  /** Discards the whole log and restarts it after `meta` (a received snapshot). */
  reset(meta: SnapshotMeta, done: Done): void;
  /**
   * Drops entries up to and including `index` (whose term is `term`); a
   * stored snapshot covers them. Afterwards `firstIndex() === index + 1` and
   * `term(index) === term`.
   */
  compact(index: number, term: number, done: Done): void;
}

/** Durable term and vote (and a hint of the commit index). */
export interface StableStore {
  /** The hard state stored last, or term 0 / vote "" / commit 0 when new. */
  hardState(): HardState;
  /** Durably replaces the hard state. */
  setHardState(hs: HardState, done: Done): void;
}

/**
 * A snapshot's bytes, by reference. The driver hands it from the state
 * machine to the snapshot store and the transport and back without looking
 * inside, so each world picks its own form: the simulator and the in-memory
 * stores use a `Uint8Array` (which fits this shape), production a file
 * under the data directory, so that a large database never has to sit in
 * the JS heap as one array.
 */
export interface SnapshotData {
  /** Size of the snapshot's bytes. */
  readonly byteLength: number;
}

/** Snapshot files (or, in memory, arrays). */
export interface SnapshotStore {
  /** Metadata of the newest complete snapshot, if any. */
  latest(): SnapshotMeta | undefined;
  /** Data of a stored snapshot (must exist); a cheap reference, not a copy. */
  read(meta: SnapshotMeta): SnapshotData;
  /**
   * Durably stores a snapshot; older ones may be removed afterwards. The
   * store may take over `data` (a file is moved into place), so the caller
   * uses `read(meta)` afterwards instead of `data`.
   */
  write(meta: SnapshotMeta, data: SnapshotData, done: Done): void;
  /** Data the driver will not store (an ignored incoming snapshot): the store may delete it. */
  discard?(data: SnapshotData): void;
}

/** The replicated state machine (SQLite in production, a key/value map in the simulator). */
export interface StateMachine {
  /**
   * Applies committed entries in order (all kinds; config entries may be
   * ignored). `done` receives one result per entry, same order.
   */
  apply(entries: readonly Entry[], done: (results: unknown[]) => void): void;
  /** Captures the state as of the last applied entry. */
  snapshot(done: (err: Error | undefined, data: SnapshotData) => void): void;
  /** Replaces the whole state with a snapshot's data (which stays the store's). */
  restore(meta: SnapshotMeta, data: SnapshotData, done: Done): void;
}

/** Receives what the transport delivers. */
export interface TransportHandler {
  onMessage(msg: Message): void;
  /** A snapshot message whose data has fully arrived. */
  onSnapshot(msg: Message, data: SnapshotData): void;
}

/** Internode messaging: best effort, bounded per peer, may drop, duplicate or reorder. */
export interface Transport {
  /** Queues `msg` for `msg.to`; drops it when that peer's queue is full. */
  send(msg: Message): void;
  /** Streams a snapshot to `msg.to`; `done(false)` when it did not arrive. */
  sendSnapshot(msg: Message, data: SnapshotData, done: (ok: boolean) => void): void;
  /** Installs the receiver; called once before any delivery. */
  listen(handler: TransportHandler): void;
  /** Stops sending and receiving. */
  close(): void;
}
