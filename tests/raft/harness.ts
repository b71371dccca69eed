/**
 * A synchronous in-memory test network for the pure core (etcd's `network`
 * test helper): each node's Ready is persisted to a plain array at once and
 * its messages are queued for delivery, so tests control every ordering.
 */

import {
  applyConfChange,
  bootstrapEntries,
  type ConfState,
  decodeConfChange,
  EMPTY_CONF,
  type Entry,
  type HardState,
  type LogReader,
  type Message,
  type NodeId,
  Raft,
  type RaftConfig,
  type RandomSource,
  type ReadState,
  type Ready,
  type SnapshotMeta,
} from "../../lib/raft/mod.ts";

/** A log array behind the LogReader interface. */
export class ArrayStorage implements LogReader {
  entriesArr: Entry[] = [];
  offset = 1; // index of entriesArr[0]
  compactTerm = 0;
  snapshot: SnapshotMeta = { index: 0, term: 0, conf: EMPTY_CONF };
  hardState: HardState = { term: 0, vote: "", commit: 0 };

  firstIndex(): number {
    return this.offset;
  }
  lastIndex(): number {
    return this.offset + this.entriesArr.length - 1;
  }
  term(index: number): number {
    if (index === this.offset - 1) return this.compactTerm;
    const e = this.entriesArr[index - this.offset];
    if (e === undefined) throw new Error(`term(${index}) out of range`);
    return e.term;
  }
  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    const out: Entry[] = [];
    let bytes = 0;
    for (let i = lo; i < hi; i++) {
      const e = this.entriesArr[i - this.offset];
      if (e === undefined) throw new Error(`entry ${i} out of range`);
      bytes += e.data.byteLength;
      if (out.length > 0 && bytes > maxBytes) break;
      out.push(e);
    }
    return out;
  }
  snapshotMeta(): SnapshotMeta {
    return this.snapshot;
  }
  append(entries: readonly Entry[]): void {
    const first = entries[0];
    if (first === undefined) return;
    this.entriesArr.length = first.index - this.offset;
    this.entriesArr.push(...entries);
  }
  /** Compacts through `index` and records a snapshot there with `conf`. */
  compact(index: number, conf: ConfState): void {
    const term = this.term(index);
    this.entriesArr = this.entriesArr.slice(index + 1 - this.offset);
    this.offset = index + 1;
    this.compactTerm = term;
    this.snapshot = { index, term, conf };
  }
  reset(meta: SnapshotMeta): void {
    this.entriesArr = [];
    this.offset = meta.index + 1;
    this.compactTerm = meta.term;
    this.snapshot = meta;
  }
}

/** Seeded xorshift for tests. */
export function testRandom(seed = 1): RandomSource {
  let x = seed >>> 0 || 1;
  return {
    nextInt(n: number): number {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      return (x >>> 0) % n;
    },
  };
}

export interface TestNode {
  raft: Raft;
  storage: ArrayStorage;
  applied: Entry[];
  readStates: ReadState[];
}

export type Filter = (m: Message) => boolean;

export class Network {
  nodes = new Map<NodeId, TestNode>();
  queue: Message[] = [];
  /** Return false to drop a message. */
  filter: Filter = () => true;
  delivered = 0;
  /** Called after each delivered message and each tick (e.g. to check invariants at every step). */
  observer: () => void = () => {};
  /** Called with every Ready before the harness handles it. */
  onReady: (id: NodeId, rd: Ready) => void = () => {};
  /** When set, every message a node emits is also appended here (for inspection). */
  recording: Message[] | undefined;

  /** `seedBase` shifts every node's random seed (node i gets `seedBase + i + 1`). */
  constructor(
    ids: readonly NodeId[],
    readonly options: Partial<RaftConfig> = {},
    seedBase = 0,
  ) {
    for (const [i, id] of ids.entries()) this.add(id, ids, seedBase + i + 1);
  }

  /** Creates a node; `voters` bootstraps its log (empty = joins later). */
  add(id: NodeId, voters: readonly NodeId[], seed: number): TestNode {
    const storage = new ArrayStorage();
    if (voters.length > 0) {
      storage.append(bootstrapEntries(voters));
      storage.hardState = { term: 1, vote: "", commit: voters.length };
    }
    const node = this.#start(id, storage, seed);
    this.nodes.set(id, node);
    return node;
  }

  #start(id: NodeId, storage: ArrayStorage, seed: number): TestNode {
    const raft = new Raft({
      id,
      storage,
      hardState: storage.hardState,
      random: testRandom(seed),
      ...this.options,
    });
    return { raft, storage, applied: [], readStates: [] };
  }

  /** Simulates a crash and restart from the node's storage. */
  restart(id: NodeId, seed = 99): TestNode {
    const old = this.node(id);
    const node = this.#start(id, old.storage, seed);
    this.nodes.set(id, node);
    return node;
  }

  node(id: NodeId): TestNode {
    const n = this.nodes.get(id);
    if (n === undefined) throw new Error(`no node ${id}`);
    return n;
  }

  raft(id: NodeId): Raft {
    return this.node(id).raft;
  }

  /** Processes every node's Ready once: persist, queue messages, apply, advance. */
  flushReady(): void {
    for (const id of this.nodes.keys()) this.flushNode(id);
  }

  /** Processes one node's Readies until it has none (bounded). */
  flushNode(id: NodeId): void {
    const node = this.node(id);
    for (let i = 0; i < 1000 && node.raft.hasReady(); i++) {
      this.handleReady(id, node.raft.ready());
    }
  }

  /** Does what a driver does with `rd` of node `id`: persist, queue messages, apply, advance. */
  handleReady(id: NodeId, rd: Ready): void {
    const node = this.node(id);
    this.onReady(id, rd);
    if (rd.snapshot) node.storage.reset(rd.snapshot);
    if (rd.hardState) node.storage.hardState = rd.hardState;
    node.storage.append(rd.entries);
    for (const m of rd.messages) {
      this.queue.push(m);
      this.recording?.push(m);
    }
    for (const e of rd.committedEntries) node.applied.push(e);
    for (const rs of rd.readStates) node.readStates.push(rs);
    node.raft.advance(rd);
  }

  /** Delivers messages until quiet (bounded). */
  deliverAll(maxSteps = 100_000): void {
    for (let step = 0; step < maxSteps; step++) {
      this.flushReady();
      if (this.deliverOne() === undefined && this.queue.length === 0) return;
    }
    throw new Error("network did not quiesce");
  }

  /**
   * Takes the next queued message and steps it into its target unless the
   * filter drops it (or the target does not exist). Returns the message taken,
   * or undefined when the queue was empty. Does not flush Readies.
   */
  deliverOne(): Message | undefined {
    const m = this.queue.shift();
    if (m === undefined) return undefined;
    const target = this.nodes.get(m.to);
    if (target === undefined || !this.filter(m)) return m;
    this.delivered++;
    target.raft.step(m);
    this.observer();
    return m;
  }

  /**
   * Delivers one message at a time (flushing Readies in between) until
   * `done()` holds. Returns false when the network went quiet first.
   */
  deliverUntil(done: () => boolean, maxSteps = 100_000): boolean {
    for (let step = 0; step < maxSteps; step++) {
      this.flushReady();
      if (done()) return true;
      if (this.deliverOne() === undefined) return done();
    }
    throw new Error("network did not quiesce");
  }

  /** Removes and returns the queued messages matching `pred` (flushes Readies first). */
  take(pred: (m: Message) => boolean): Message[] {
    this.flushReady();
    const taken = this.queue.filter(pred);
    this.queue = this.queue.filter((m) => !pred(m));
    return taken;
  }

  /** Ticks only node `id`, `n` times, delivering after each tick. */
  tickNode(id: NodeId, n: number): void {
    for (let i = 0; i < n; i++) {
      this.raft(id).tick();
      this.observer();
      this.deliverAll();
    }
  }

  /** Cuts `id` off from every other node. */
  isolate(id: NodeId): void {
    this.filter = (m) => m.from !== id && m.to !== id;
  }

  /** Duplicates the queued messages matching `pred` (the copy follows the original). */
  duplicateQueue(pred: (m: Message) => boolean = () => true): void {
    this.flushReady();
    this.queue = this.queue.flatMap((m) => pred(m) ? [m, m] : [m]);
  }

  /** Shuffles the queue with a seeded generator (deterministic reordering). */
  shuffleQueue(seed: number): void {
    this.flushReady();
    const random = testRandom(seed);
    for (let i = this.queue.length - 1; i > 0; i--) {
      const j = random.nextInt(i + 1);
      const a = this.queue[i];
      const b = this.queue[j];
      if (a === undefined || b === undefined) continue;
      this.queue[i] = b;
      this.queue[j] = a;
    }
  }

  /**
   * Compacts node `id`'s stored log through `index` (default: its applied
   * index), as a driver does after taking a snapshot.
   */
  compact(id: NodeId, index?: number): SnapshotMeta {
    this.flushNode(id);
    const node = this.node(id);
    const at = index ?? node.raft.status().applied;
    node.storage.compact(at, node.raft.confAt(at));
    return node.storage.snapshot;
  }

  /** Ticks every node `n` times, delivering after each tick. */
  tickAll(n: number): void {
    for (let i = 0; i < n; i++) {
      for (const node of this.nodes.values()) {
        node.raft.tick();
        this.observer();
      }
      this.deliverAll();
    }
  }

  /** Ticks `id` until it starts an election (bounded) and delivers. */
  elect(id: NodeId): void {
    this.raft(id).campaign();
    this.deliverAll();
  }

  leaders(): NodeId[] {
    return [...this.nodes.entries()].filter(([, n]) => n.raft.role === "leader").map(([id]) => id);
  }

  /** Cuts all traffic between the two groups. */
  partition(a: readonly NodeId[], b: readonly NodeId[]): void {
    this.filter = (m) =>
      !((a.includes(m.from) && b.includes(m.to)) || (b.includes(m.from) && a.includes(m.to)));
  }

  heal(): void {
    this.filter = () => true;
  }

  /** Data of applied normal, non-empty entries of a node. */
  appliedData(id: NodeId): string[] {
    return this.node(id).applied.filter((e) => e.kind === "normal" && e.data.length > 0).map((
      e,
    ) => new TextDecoder().decode(e.data));
  }
}

export const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

/** Membership as derived from applied config entries (cross-check for tests). */
export function confFromEntries(entries: readonly Entry[]): ConfState {
  let conf = EMPTY_CONF;
  for (const e of entries) {
    if (e.kind === "config") conf = applyConfChange(conf, decodeConfChange(e.data));
  }
  return conf;
}

/**
 * Records which node led in which term, after every delivered message and
 * tick (§5.2 election safety: at most one leader per term).
 */
export function watchLeaders(net: Network): Map<number, Set<NodeId>> {
  const byTerm = new Map<number, Set<NodeId>>();
  const previous = net.observer;
  net.observer = () => {
    previous();
    for (const [id, node] of net.nodes) {
      if (node.raft.role !== "leader") continue;
      const set = byTerm.get(node.raft.term) ?? new Set<NodeId>();
      set.add(id);
      byTerm.set(node.raft.term, set);
    }
  };
  return byTerm;
}

/** The (index, term) pairs of a node's stored log, for log-matching comparisons. */
export function logTerms(net: Network, id: NodeId): string[] {
  const s = net.node(id).storage;
  return s.entriesArr.map((e) => `${e.index}:${e.term}`);
}
