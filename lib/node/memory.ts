/**
 * In-memory implementations of every driver interface: log, hard state and
 * snapshot stores, a loopback network between drivers in one process, and
 * two clocks (real timers and a manual one for tests).
 *
 * Stores change their contents when an operation is called (reads see the
 * new state at once) and report durability through `done`, which runs via
 * the `defer` function given at construction. The default runs it
 * synchronously; tests and the simulator pass their own scheduler so that
 * they decide when completions happen. Misuse (a gap in the log, appending
 * below the first index, compacting past the end) is a bug in the caller and
 * throws {@link AssertionError} at once with the values involved.
 *
 * Fault injection (crashes, torn writes, lossy links) lives in lib/sim, which
 * wraps or reuses these.
 *
 * @module
 */

import { AssertionError } from "../raft/errors.ts";
import type { Entry, HardState, Message, NodeId, SnapshotMeta } from "../raft/types.ts";
import type {
  Clock,
  Done,
  LogStore,
  SnapshotStore,
  StableStore,
  Transport,
  TransportHandler,
} from "./interfaces.ts";

/** Runs a completion; the default {@link syncDefer} runs it at once. */
export type Defer = (fn: () => void) => void;

/** Runs `fn` synchronously. */
export const syncDefer: Defer = (fn) => fn();

/** Options shared by the in-memory stores. */
export interface MemoryStoreOptions {
  /** Schedules `done` callbacks (default: synchronously). */
  readonly defer?: Defer;
}

function check(condition: boolean, detail: () => string): asserts condition {
  if (!condition) throw new AssertionError(`memory store misuse: ${detail()}`);
}

/** The Raft log in an array. Entries are kept by reference (they are immutable). */
export class MemoryLogStore implements LogStore {
  readonly #defer: Defer;
  #entries: Entry[] = [];
  /** Index and term of the entry just before `#entries[0]` (compaction or snapshot point). */
  #prevIndex = 0;
  #prevTerm = 0;
  #appendsInFlight = 0;
  /** Number of `append` calls so far (tests measure group commit with it). */
  appendCalls = 0;

  constructor(options: MemoryStoreOptions = {}) {
    this.#defer = options.defer ?? syncDefer;
  }

  firstIndex(): number {
    return this.#prevIndex + 1;
  }

  lastIndex(): number {
    return this.#prevIndex + this.#entries.length;
  }

  term(index: number): number {
    if (index === this.#prevIndex) return this.#prevTerm;
    const entry = this.#entries[index - this.#prevIndex - 1];
    check(
      entry !== undefined,
      () => `term(${index}) outside [${this.#prevIndex}, ${this.lastIndex()}]`,
    );
    return entry.term;
  }

  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    check(
      lo >= this.firstIndex() && lo < hi && hi <= this.lastIndex() + 1,
      () => `entries [${lo}, ${hi}) outside [${this.firstIndex()}, ${this.lastIndex() + 1})`,
    );
    const out: Entry[] = [];
    let bytes = 0;
    for (let i = lo; i < hi; i++) {
      const entry = this.#entries[i - this.#prevIndex - 1];
      check(entry !== undefined, () => `entry ${i} missing`);
      bytes += entry.data.byteLength;
      if (out.length > 0 && bytes > maxBytes) break;
      out.push(entry);
    }
    return out;
  }

  append(entries: readonly Entry[], done: Done): void {
    this.appendCalls++;
    check(this.#appendsInFlight === 0, () => "append called while another append is in flight");
    const first = entries[0];
    if (first !== undefined) {
      check(
        first.index >= this.firstIndex(),
        () => `append at ${first.index} below first index ${this.firstIndex()}`,
      );
      check(
        first.index <= this.lastIndex() + 1,
        () => `append at ${first.index} leaves a gap after last index ${this.lastIndex()}`,
      );
      for (let i = 1; i < entries.length; i++) {
        const prev = entries[i - 1];
        const entry = entries[i];
        check(
          prev !== undefined && entry !== undefined && entry.index === prev.index + 1,
          () => `non-contiguous append: ${prev?.index} then ${entry?.index}`,
        );
      }
      this.#entries.length = first.index - this.firstIndex();
      for (const entry of entries) this.#entries.push(entry);
    }
    this.#appendsInFlight++;
    this.#defer(() => {
      this.#appendsInFlight--;
      done();
    });
  }

  reset(meta: SnapshotMeta, done: Done): void {
    this.#entries = [];
    this.#prevIndex = meta.index;
    this.#prevTerm = meta.term;
    this.#defer(() => done());
  }

  compact(index: number, term: number, done: Done): void {
    check(
      index >= this.#prevIndex && index <= this.lastIndex(),
      () => `compact(${index}) outside [${this.#prevIndex}, ${this.lastIndex()}]`,
    );
    const stored = this.term(index);
    check(stored === term, () => `compact(${index}, term ${term}) but entry has term ${stored}`);
    this.#entries = this.#entries.slice(index - this.#prevIndex);
    this.#prevIndex = index;
    this.#prevTerm = term;
    this.#defer(() => done());
  }
}

/** Term, vote and commit hint in memory. Asserts that terms never go back and votes never change within a term. */
export class MemoryStableStore implements StableStore {
  readonly #defer: Defer;
  #hardState: HardState = { term: 0, vote: "", commit: 0 };

  constructor(options: MemoryStoreOptions = {}) {
    this.#defer = options.defer ?? syncDefer;
  }

  hardState(): HardState {
    return this.#hardState;
  }

  setHardState(hs: HardState, done: Done): void {
    const old = this.#hardState;
    check(hs.term >= old.term, () => `term goes back from ${old.term} to ${hs.term}`);
    check(
      hs.term > old.term || old.vote === "" || hs.vote === old.vote,
      () => `vote in term ${hs.term} changes from ${old.vote} to ${hs.vote}`,
    );
    this.#hardState = { term: hs.term, vote: hs.vote, commit: hs.commit };
    this.#defer(() => done());
  }
}

/** Keeps only the newest snapshot; writing one older than it is ignored. Data is kept by reference. */
export class MemorySnapshotStore implements SnapshotStore {
  readonly #defer: Defer;
  #latest: { meta: SnapshotMeta; data: Uint8Array } | undefined;

  constructor(options: MemoryStoreOptions = {}) {
    this.#defer = options.defer ?? syncDefer;
  }

  latest(): SnapshotMeta | undefined {
    return this.#latest?.meta;
  }

  read(meta: SnapshotMeta): Uint8Array {
    const latest = this.#latest;
    check(
      latest !== undefined && latest.meta.index === meta.index && latest.meta.term === meta.term,
      () =>
        `read of snapshot ${meta.term}-${meta.index}; newest is ${
          latest ? `${latest.meta.term}-${latest.meta.index}` : "none"
        }`,
    );
    return latest.data;
  }

  write(meta: SnapshotMeta, data: Uint8Array, done: Done): void {
    if (this.#latest === undefined || meta.index >= this.#latest.meta.index) {
      this.#latest = { meta, data };
    }
    this.#defer(() => done());
  }
}

/** Options of {@link MemoryTransportHub}. */
export interface MemoryTransportOptions {
  /** Schedules each delivery (default: synchronously, inside `send`). */
  readonly defer?: Defer;
  /** Messages in flight on one directed link beyond which sends are dropped. Default 1024. */
  readonly linkQueueMax?: number;
}

interface Endpoint {
  handler: TransportHandler | undefined;
  closed: boolean;
}

/**
 * A loopback network between drivers in one process. Deliveries go through
 * `defer`, so the caller controls their order; messages and snapshot data
 * are passed by reference. Each directed link holds at most `linkQueueMax`
 * undelivered messages; beyond that, and to unknown or closed endpoints,
 * messages are dropped and counted in {@link dropped}.
 */
export class MemoryTransportHub {
  readonly #defer: Defer;
  readonly #linkQueueMax: number;
  readonly #endpoints = new Map<NodeId, Endpoint>();
  readonly #inFlight = new Map<string, number>();
  #dropped = 0;
  #delivered = 0;

  constructor(options: MemoryTransportOptions = {}) {
    this.#defer = options.defer ?? syncDefer;
    this.#linkQueueMax = options.linkQueueMax ?? 1024;
    check(this.#linkQueueMax > 0, () => `linkQueueMax must be positive, got ${this.#linkQueueMax}`);
  }

  /** Messages dropped so far (full link, unknown or closed receiver). */
  get dropped(): number {
    return this.#dropped;
  }

  /** Messages and snapshots delivered so far. */
  get delivered(): number {
    return this.#delivered;
  }

  /** The transport of node `id`. A new one may replace a closed one (a restarted node). */
  transport(id: NodeId): Transport {
    const old = this.#endpoints.get(id);
    check(old === undefined || old.closed, () => `transport ${id} is already open`);
    const endpoint: Endpoint = { handler: undefined, closed: false };
    this.#endpoints.set(id, endpoint);
    return {
      send: (msg) => {
        if (!endpoint.closed) this.#enqueue(id, msg, (h) => h.onMessage(msg), () => {});
      },
      sendSnapshot: (msg, data, done) => {
        if (endpoint.closed) return this.#defer(() => done(false));
        this.#enqueue(id, msg, (h) => h.onSnapshot(msg, data), done);
      },
      listen: (handler) => {
        check(endpoint.handler === undefined, () => `transport ${id}: listen called twice`);
        endpoint.handler = handler;
      },
      close: () => {
        endpoint.closed = true;
      },
    };
  }

  #enqueue(
    from: NodeId,
    msg: Message,
    deliver: (h: TransportHandler) => void,
    done: (ok: boolean) => void,
  ): void {
    const link = `${from}\u0000${msg.to}`;
    const queued = this.#inFlight.get(link) ?? 0;
    if (queued >= this.#linkQueueMax) {
      this.#dropped++;
      this.#defer(() => done(false));
      return;
    }
    this.#inFlight.set(link, queued + 1);
    this.#defer(() => {
      const left = (this.#inFlight.get(link) ?? 1) - 1;
      if (left === 0) this.#inFlight.delete(link);
      else this.#inFlight.set(link, left);
      // Looked up at delivery time: a restarted receiver gets what was in flight.
      const target = this.#endpoints.get(msg.to);
      if (target === undefined || target.closed || target.handler === undefined) {
        this.#dropped++;
        done(false);
        return;
      }
      this.#delivered++;
      deliver(target.handler);
      done(true);
    });
  }
}

/** Real time: a monotonic clock and the runtime's timers (zero delays run as microtasks). */
/** The longest delay setTimeout honours. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export class SystemClock implements Clock {
  nowMs(): number {
    return performance.now();
  }

  after(delayMs: number, fn: () => void): () => void {
    if (!(delayMs > 0)) {
      // A microtask: "as soon as the current work is done", without timer clamping.
      let live = true;
      queueMicrotask(() => {
        if (live) {
          live = false;
          fn();
        }
      });
      return () => {
        live = false;
      };
    }
    // setTimeout fires at once beyond 2^31-1 ms (about 24.8 days); wait in
    // steps instead, so a long interval (e.g. -raft-snap-int 1000h) is kept.
    let handle: ReturnType<typeof setTimeout>;
    const arm = (leftMs: number) => {
      const stepMs = Math.min(leftMs, MAX_TIMER_MS);
      handle = setTimeout(() => (leftMs > stepMs ? arm(leftMs - stepMs) : fn()), stepMs);
    };
    arm(delayMs);
    return () => clearTimeout(handle);
  }
}

interface ManualTimer {
  readonly dueMs: number;
  readonly seq: number;
  readonly fn: () => void;
}

/**
 * A clock that moves only when told to. {@link advance} runs every timer
 * that falls due, in (due time, scheduling order), including timers those
 * timers schedule within the window.
 */
export class ManualClock implements Clock {
  #nowMs: number;
  #seq = 0;
  /** Sorted by (dueMs, seq). */
  #timers: ManualTimer[] = [];

  constructor(startMs = 0) {
    this.#nowMs = startMs;
  }

  nowMs(): number {
    return this.#nowMs;
  }

  /** Timers scheduled and not yet run or cancelled. */
  get pending(): number {
    return this.#timers.length;
  }

  after(delayMs: number, fn: () => void): () => void {
    const timer: ManualTimer = {
      dueMs: this.#nowMs + (delayMs > 0 ? delayMs : 0),
      seq: this.#seq++,
      fn,
    };
    // Insert after every timer due at or before it (keeps scheduling order on ties).
    let lo = 0;
    let hi = this.#timers.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const t = this.#timers[mid];
      if (t !== undefined && t.dueMs <= timer.dueMs) lo = mid + 1;
      else hi = mid;
    }
    this.#timers.splice(lo, 0, timer);
    return () => {
      const i = this.#timers.indexOf(timer);
      if (i >= 0) this.#timers.splice(i, 1);
    };
  }

  /** Moves time forward by `ms`, running due timers in order. */
  advance(ms: number): void {
    check(ms >= 0, () => `cannot advance by ${ms} ms`);
    const target = this.#nowMs + ms;
    for (;;) {
      const next = this.#timers[0];
      if (next === undefined || next.dueMs > target) break;
      this.#timers.shift();
      this.#nowMs = next.dueMs;
      next.fn();
    }
    this.#nowMs = target;
  }
}
