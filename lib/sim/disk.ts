/**
 * A simulated disk per node: the Raft log, the hard state and snapshot files.
 *
 * Two images of the disk exist. The *visible* image is what reads see: every
 * write is applied to it when issued (as a page cache would show it). The
 * *durable* image is what survives a crash: a write reaches it when its
 * random latency elapses, just before its `done` runs. Writes to one file
 * (log, hard state, snapshots) complete in issue order; different files
 * complete independently, so a crash can leave any mix of them.
 *
 * On a crash the in-flight writes are lost, except that the oldest
 * in-flight log write, when it is an append, may be torn: a prefix of its
 * entries survives (what a CRC-checked segment log recovers). Completed
 * writes always survive, unless the deliberately broken option
 * `bugLoseCompletedOnCrash` is set (used to prove the checker catches it).
 * The visible image then restarts as a copy of the durable one.
 *
 * Reads validate their ranges and throw on misuse, so a driver bug shows up
 * as a failed seed instead of garbage.
 *
 * @module
 */

import type { Done, LogStore, SnapshotStore, StableStore } from "../node/interfaces.ts";
import type { Entry, HardState, SnapshotMeta } from "../raft/types.ts";
import type { EventQueue, Scope } from "./events.ts";
import type { Prng } from "./prng.ts";

/** Latencies and fault rates of a simulated disk. */
export interface DiskOptions {
  /** Minimum write latency. */
  latencyMinMs: number;
  /** Mean of the exponential latency added to the minimum. */
  latencyMeanMs: number;
  /** Probability of a latency spike per write. */
  spikeRate: number;
  /** Extra latency of a spike (uniform in [0, spikeMs]). */
  spikeMs: number;
  /** Probability that an in-flight append is torn (a prefix survives) on a crash. */
  tornRate: number;
  /** Broken world: on a crash, the last completed append is lost too. */
  bugLoseCompletedOnCrash?: boolean;
}

/** Counters of what the disk did. */
export interface DiskStats {
  writes: number;
  lostWrites: number;
  tornWrites: number;
  spikes: number;
  crashes: number;
  bugLostEntries: number;
}

const EMPTY_META: SnapshotMeta = { index: 0, term: 0, conf: { voters: [], learners: [] } };
const EMPTY_HARD_STATE: HardState = { term: 0, vote: "", commit: 0 };

/** The log as entries after an offset (the compaction point). */
export class LogImage {
  constructor(
    public offsetIndex = 0,
    public offsetTerm = 0,
    public entries: Entry[] = [],
  ) {}

  clone(): LogImage {
    return new LogImage(this.offsetIndex, this.offsetTerm, [...this.entries]);
  }

  firstIndex(): number {
    return this.offsetIndex + 1;
  }

  lastIndex(): number {
    return this.offsetIndex + this.entries.length;
  }

  term(index: number): number {
    if (index === this.offsetIndex) return this.offsetTerm;
    const entry = this.entries[index - this.offsetIndex - 1];
    if (entry === undefined) {
      throw new RangeError(
        `log term(${index}) outside stored range [${this.offsetIndex}, ${this.lastIndex()}]`,
      );
    }
    return entry.term;
  }

  slice(lo: number, hi: number, maxBytes: number): Entry[] {
    if (!(lo >= this.firstIndex() && hi <= this.lastIndex() + 1 && lo < hi)) {
      throw new RangeError(
        `log entries(${lo}, ${hi}) outside stored range [${this.firstIndex()}, ${this.lastIndex()}]`,
      );
    }
    const out: Entry[] = [];
    let bytes = 0;
    for (let i = lo; i < hi; i++) {
      const entry = this.entries[i - this.offsetIndex - 1] as Entry;
      bytes += entry.data.byteLength;
      if (out.length > 0 && bytes > maxBytes) break;
      out.push(entry);
    }
    return out;
  }

  append(entries: readonly Entry[]): void {
    const first = entries[0];
    if (first === undefined) return;
    if (!(first.index > this.offsetIndex && first.index <= this.lastIndex() + 1)) {
      throw new RangeError(
        `append at ${first.index} outside [${this.firstIndex()}, ${this.lastIndex() + 1}]`,
      );
    }
    for (let i = 1; i < entries.length; i++) {
      const prev = entries[i - 1] as Entry;
      const entry = entries[i] as Entry;
      if (entry.index !== prev.index + 1 || entry.term < prev.term) {
        throw new RangeError(
          `append of non-contiguous entries: ${prev.index}@${prev.term} then ${entry.index}@${entry.term}`,
        );
      }
    }
    const prevTerm = this.term(first.index - 1);
    if (first.term < prevTerm) {
      throw new RangeError(
        `append ${first.index}@${first.term} after ${first.index - 1}@${prevTerm}: terms go back`,
      );
    }
    this.entries.length = first.index - this.offsetIndex - 1;
    for (const entry of entries) this.entries.push(entry);
  }

  reset(meta: SnapshotMeta): void {
    this.offsetIndex = meta.index;
    this.offsetTerm = meta.term;
    this.entries = [];
  }

  compact(index: number, term: number): void {
    if (!(index >= this.offsetIndex && index <= this.lastIndex())) {
      throw new RangeError(
        `compact(${index}) outside stored range [${this.offsetIndex}, ${this.lastIndex()}]`,
      );
    }
    const stored = this.term(index);
    if (stored !== term) {
      throw new RangeError(`compact(${index}, term ${term}) but entry ${index} has term ${stored}`);
    }
    this.entries = this.entries.slice(index - this.offsetIndex);
    this.offsetIndex = index;
    this.offsetTerm = term;
  }
}

interface StoredSnapshot {
  readonly meta: SnapshotMeta;
  readonly data: Uint8Array;
}

/** Everything on one node's disk. */
export class DiskImage {
  log = new LogImage();
  hardState: HardState = EMPTY_HARD_STATE;
  snapshots: StoredSnapshot[] = [];

  clone(): DiskImage {
    const copy = new DiskImage();
    copy.log = this.log.clone();
    copy.hardState = this.hardState;
    copy.snapshots = [...this.snapshots];
    return copy;
  }

  addSnapshot(snapshot: StoredSnapshot): void {
    const newest = this.snapshots[this.snapshots.length - 1];
    // As a store that only ever replaces its snapshot with a newer one.
    if (newest !== undefined && snapshot.meta.index < newest.meta.index) return;
    this.snapshots.push(snapshot);
    // Keep the newest two, as a store that removes older files after a write.
    if (this.snapshots.length > 2) this.snapshots.shift();
  }
}

type File = "log" | "hardState" | "snapshot";

interface PendingWrite {
  readonly file: File;
  readonly apply: (image: DiskImage) => void;
  /** For appends: the entries, so a crash can tear them. */
  readonly entries?: readonly Entry[];
  /** For log resets: a crash may leave the old segments deleted but the old compaction point. */
  readonly reset?: boolean;
  completed: boolean;
}

/**
 * One node's disk, surviving the node's crashes. {@link open} gives the
 * stores of one incarnation; {@link crash} drops what was not durable.
 */
export class SimDisk {
  readonly stats: DiskStats = {
    writes: 0,
    lostWrites: 0,
    tornWrites: 0,
    spikes: 0,
    crashes: 0,
    bugLostEntries: 0,
  };
  durable = new DiskImage();
  visible = new DiskImage();
  #epoch = 0;
  #pending: PendingWrite[] = [];
  #lastCompletionMs: Record<File, number> = { log: 0, hardState: 0, snapshot: 0 };
  #appendsInFlight = 0;
  #lastCompletedAppend: readonly Entry[] | undefined;
  trace: ((line: string) => void) | undefined;
  /**
   * Armed by the nemesis to crash the node in the middle of its next log
   * append: called once with that write's latency (the window to crash in).
   */
  onNextAppend: ((latencyMs: number) => void) | undefined;

  constructor(
    readonly name: string,
    readonly queue: EventQueue,
    readonly rng: Prng,
    public options: DiskOptions,
  ) {}

  /** The stores of the incarnation living in `scope`. */
  open(
    scope: Scope,
  ): { logStore: SimLogStore; stableStore: SimStableStore; snapshotStore: SimSnapshotStore } {
    return {
      logStore: new SimLogStore(this, scope),
      stableStore: new SimStableStore(this, scope),
      snapshotStore: new SimSnapshotStore(this, scope),
    };
  }

  /** Writes issued and not yet durable. */
  get inFlight(): number {
    return this.#pending.length;
  }

  #latencyMs(): number {
    const o = this.options;
    let latency = o.latencyMinMs + this.rng.exponential(o.latencyMeanMs);
    if (this.rng.chance(o.spikeRate)) {
      this.stats.spikes++;
      latency += this.rng.float() * o.spikeMs;
    }
    return latency;
  }

  /** Issues a write: visible now, durable (then `done`) after its latency. */
  write(
    scope: Scope,
    file: File,
    apply: (image: DiskImage) => void,
    done: Done,
    entries?: readonly Entry[],
    reset = false,
  ): void {
    if (!scope.alive) return;
    this.stats.writes++;
    apply(this.visible);
    const pending: PendingWrite = { file, apply, entries, reset, completed: false };
    this.#pending.push(pending);
    const atMs = Math.max(this.#lastCompletionMs[file], this.queue.nowMs + this.#latencyMs());
    this.#lastCompletionMs[file] = atMs;
    const epoch = this.#epoch;
    if (entries !== undefined) {
      this.#appendsInFlight++;
      const hook = this.onNextAppend;
      this.onNextAppend = undefined;
      hook?.(atMs - this.queue.nowMs);
    }
    this.queue.at(atMs, () => {
      if (epoch !== this.#epoch) return; // lost in a crash
      pending.completed = true;
      pending.apply(this.durable);
      const i = this.#pending.indexOf(pending);
      if (i >= 0) this.#pending.splice(i, 1);
      if (entries !== undefined) {
        this.#appendsInFlight--;
        this.#lastCompletedAppend = entries;
      }
      if (scope.alive) done();
    });
  }

  /** Asserts the driver's promise of at most one append in flight. */
  checkOneAppend(): void {
    if (this.#appendsInFlight > 0) {
      throw new Error(`${this.name}: append issued while another append is in flight`);
    }
  }

  /**
   * The process died: in-flight writes are lost (the oldest in-flight log
   * write, when an append, may be torn) and the visible image becomes the
   * durable one.
   */
  crash(): void {
    this.stats.crashes++;
    this.#epoch++;
    const oldestLog = this.#pending.find((p) => p.file === "log");
    const first = oldestLog?.entries?.[0];
    const log = this.durable.log;
    if (
      oldestLog?.entries !== undefined && first !== undefined &&
      this.rng.chance(this.options.tornRate)
    ) {
      // A torn batch: a prefix of its records survives. A batch replacing a
      // suffix truncates first, so it may also leave the suffix gone and
      // nothing appended (kept 0).
      const truncating = first.index <= log.lastIndex();
      const kept = this.rng.range(truncating ? 0 : 1, oldestLog.entries.length);
      if (kept > 0) log.append(oldestLog.entries.slice(0, kept));
      else log.entries.length = first.index - log.offsetIndex - 1;
      this.stats.tornWrites++;
      this.trace?.(
        `disk ${this.name} torn append: kept ${kept}/${oldestLog.entries.length} from ${first.index}`,
      );
    } else if (oldestLog?.reset === true && this.rng.chance(this.options.tornRate)) {
      // A reset deletes the segments, then moves the compaction point: a crash
      // in between leaves an empty log at the old point.
      log.entries = [];
      this.stats.tornWrites++;
      this.trace?.(`disk ${this.name} torn reset: log emptied at ${log.offsetIndex}`);
    }
    this.stats.lostWrites += this.#pending.length;
    if (this.options.bugLoseCompletedOnCrash === true && this.#lastCompletedAppend !== undefined) {
      const lost = this.#lastCompletedAppend[0];
      if (lost !== undefined && lost.index > log.offsetIndex && lost.index <= log.lastIndex()) {
        this.stats.bugLostEntries += log.lastIndex() - lost.index + 1;
        log.entries.length = lost.index - log.offsetIndex - 1;
      }
    }
    this.#pending = [];
    this.#appendsInFlight = 0;
    this.#lastCompletedAppend = undefined;
    this.#lastCompletionMs = { log: 0, hardState: 0, snapshot: 0 };
    this.visible = this.durable.clone();
  }
}

/** One incarnation's {@link LogStore} over a {@link SimDisk}. */
export class SimLogStore implements LogStore {
  constructor(readonly disk: SimDisk, readonly scope: Scope) {}

  firstIndex(): number {
    return this.disk.visible.log.firstIndex();
  }

  lastIndex(): number {
    return this.disk.visible.log.lastIndex();
  }

  term(index: number): number {
    return this.disk.visible.log.term(index);
  }

  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    return this.disk.visible.log.slice(lo, hi, maxBytes);
  }

  append(entries: readonly Entry[], done: Done): void {
    this.disk.checkOneAppend();
    const copy = [...entries];
    this.disk.write(this.scope, "log", (image) => image.log.append(copy), done, copy);
  }

  reset(meta: SnapshotMeta, done: Done): void {
    this.disk.write(this.scope, "log", (image) => image.log.reset(meta), done, undefined, true);
  }

  compact(index: number, term: number, done: Done): void {
    this.disk.write(this.scope, "log", (image) => image.log.compact(index, term), done);
  }
}

/** One incarnation's {@link StableStore} over a {@link SimDisk}. */
export class SimStableStore implements StableStore {
  constructor(readonly disk: SimDisk, readonly scope: Scope) {}

  hardState(): HardState {
    return this.disk.visible.hardState;
  }

  setHardState(hs: HardState, done: Done): void {
    const old = this.disk.visible.hardState;
    if (hs.term < old.term || (hs.term === old.term && old.vote !== "" && hs.vote !== old.vote)) {
      throw new RangeError(
        `${this.disk.name}: hard state goes back: term ${old.term} vote "${old.vote}" -> ` +
          `term ${hs.term} vote "${hs.vote}"`,
      );
    }
    const copy: HardState = { term: hs.term, vote: hs.vote, commit: hs.commit };
    this.disk.write(this.scope, "hardState", (image) => {
      image.hardState = copy;
    }, done);
  }
}

/** One incarnation's {@link SnapshotStore} over a {@link SimDisk}. */
export class SimSnapshotStore implements SnapshotStore {
  constructor(readonly disk: SimDisk, readonly scope: Scope) {}

  latest(): SnapshotMeta | undefined {
    const snapshots = this.disk.visible.snapshots;
    return snapshots[snapshots.length - 1]?.meta;
  }

  read(meta: SnapshotMeta): Uint8Array {
    const found = this.disk.visible.snapshots.find((s) =>
      s.meta.index === meta.index && s.meta.term === meta.term
    );
    if (found === undefined) {
      throw new Error(`${this.disk.name}: no stored snapshot ${meta.index}@${meta.term}`);
    }
    return found.data.slice();
  }

  write(meta: SnapshotMeta, data: Uint8Array, done: Done): void {
    const snapshot: StoredSnapshot = { meta: structuredClone(meta), data: data.slice() };
    this.disk.write(this.scope, "snapshot", (image) => image.addSnapshot(snapshot), done);
  }
}

/** Metadata of "no snapshot". */
export const NO_SNAPSHOT: SnapshotMeta = EMPTY_META;
