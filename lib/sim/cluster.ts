/**
 * A simulated cluster: production {@link RaftDriver}s over simulated disks,
 * network and clocks, every observation fed to the {@link Checker}.
 *
 * A node is its disk (which survives crashes) plus, while it runs, an
 * incarnation: a {@link Scope} for its events, a clock, a transport
 * endpoint, a fresh {@link KvStateMachine} and a driver. A crash kills the
 * scope (nothing of that incarnation ever runs again), closes the endpoint
 * and crashes the disk; a restart builds a new incarnation over the same
 * disk, exactly as a restarted process would.
 *
 * Observations: every Ready (log matching on its entries, leader
 * completeness when it makes the node leader, committed entries), role
 * changes (election safety), and from the state machine itself every applied
 * entry, restore and state hash (state machine safety).
 *
 * @module
 */

import { RaftDriver } from "../node/driver.ts";
import type { DriverObserver } from "../node/driver.ts";
import type { Entry, NodeId, Ready, Role, SnapshotMeta } from "../raft/types.ts";
import type { Checker, EntryView, LogRecord } from "./checker.ts";
import type { SimConfig } from "./config.ts";
import { SimDisk } from "./disk.ts";
import { type EventQueue, Scope, SimClock } from "./events.ts";
import { KvStateMachine } from "./kv.ts";
import { SimNetwork, type SimTransport } from "./network.ts";
import type { Prng } from "./prng.ts";
import type { Tracer } from "./trace.ts";

const digestCache = new WeakMap<Entry, string>();

/** A 64-bit FNV-1a digest (hex) of an entry's kind and data; cached per entry object. */
export function entryDigest(entry: Entry): string {
  const cached = digestCache.get(entry);
  if (cached !== undefined) return cached;
  const digest = dataDigest(entry.kind, entry.data);
  digestCache.set(entry, digest);
  return digest;
}

/** The digest {@link entryDigest} gives an entry of `kind` carrying `data`. */
export function dataDigest(kind: Entry["kind"], data: Uint8Array): string {
  let a = kind === "normal" ? 0x811c9dc5 : 0x050c5d1f;
  let b = 0x01000193 ^ data.byteLength;
  for (let i = 0; i < data.byteLength; i++) {
    const byte = data[i] as number;
    a = Math.imul(a ^ byte, 0x01000193) >>> 0;
    b = Math.imul(b ^ byte ^ (i & 0xff), 0x5bd1e995) >>> 0;
    b = (b ^ (b >>> 15)) >>> 0;
  }
  return a.toString(16).padStart(8, "0") + b.toString(16).padStart(8, "0");
}

/** What a node last reported of its role. */
export interface RoleView {
  role: Role;
  leader: NodeId;
  term: number;
}

/** A running incarnation of a node. */
export interface Incarnation {
  readonly number: number;
  readonly scope: Scope;
  readonly transport: SimTransport;
  readonly driver: RaftDriver;
  readonly kv: KvStateMachine;
  started: boolean;
}

/** A node: its disk and, while running, its incarnation. */
export class SimNode {
  incarnations = 0;
  live: Incarnation | undefined;
  /** Permanently stopped (removed from the cluster). */
  removed = false;
  view: RoleView = { role: "follower", leader: "", term: 0 };
  /** Highest term this node persisted (from its Readies). */
  term = 0;

  constructor(
    readonly id: NodeId,
    readonly disk: SimDisk,
    readonly founding: boolean,
    /** Rate of this machine's clock (1 = exact). */
    readonly clockRate = 1,
  ) {}
}

/** Counters of node-level faults. */
export interface ClusterStats {
  crashes: number;
  restarts: number;
  removals: number;
  joins: number;
  leaderChanges: number;
  snapshotsTaken: number;
  restores: number;
}

/** The nodes, the network and the observation plumbing of one run. */
export class Cluster {
  readonly nodes = new Map<NodeId, SimNode>();
  readonly network: SimNetwork;
  readonly founders: NodeId[];
  readonly stats: ClusterStats = {
    crashes: 0,
    restarts: 0,
    removals: 0,
    joins: 0,
    leaderChanges: 0,
    snapshotsTaken: 0,
    restores: 0,
  };
  /** Highest commit index any node learned, and when it last grew. */
  maxCommit = 0;
  lastProgressMs = -Infinity;
  #nextId: number;

  constructor(
    readonly config: SimConfig,
    readonly queue: EventQueue,
    readonly rng: Prng,
    readonly checker: Checker,
    readonly tracer: Tracer,
    readonly diskBug = false,
  ) {
    this.network = new SimNetwork(queue, rng.derive("network"), { ...config.network });
    if (tracer.enabled) this.network.trace = (line) => tracer.line(line);
    this.founders = [];
    for (let i = 1; i <= config.nodes; i++) this.founders.push(`n${i}`);
    this.#nextId = config.nodes + 1;
  }

  /** Creates and starts the founding voters. */
  bootstrap(): void {
    for (const id of this.founders) {
      this.#add(id, true);
      this.start(id);
    }
  }

  /** Creates and starts a fresh, empty node (not yet a member); returns its id. */
  join(): NodeId {
    const id = `n${this.#nextId++}`;
    this.#add(id, false);
    this.stats.joins++;
    this.start(id);
    return id;
  }

  #add(id: NodeId, founding: boolean): SimNode {
    const disk = new SimDisk(id, this.queue, this.rng.derive(`disk:${id}`), {
      ...this.config.disk,
      bugLoseCompletedOnCrash: this.diskBug,
    });
    if (this.tracer.enabled) disk.trace = (line) => this.tracer.line(line);
    const skew = this.config.clockSkew;
    const rate = skew > 0 ? this.rng.derive(`clock:${id}`).floatRange(1 - skew, 1 + skew) : 1;
    const node = new SimNode(id, disk, founding, rate);
    this.nodes.set(id, node);
    return node;
  }

  node(id: NodeId): SimNode {
    const node = this.nodes.get(id);
    if (node === undefined) throw new Error(`no simulated node ${id}`);
    return node;
  }

  /** Nodes not removed, in creation order. */
  activeNodes(): SimNode[] {
    return [...this.nodes.values()].filter((n) => !n.removed);
  }

  /** Running nodes whose driver has started. */
  runningNodes(): SimNode[] {
    return [...this.nodes.values()].filter((n) => n.live?.started === true);
  }

  /** The running node that believes it leads the highest term, if any. */
  leader(): SimNode | undefined {
    let best: SimNode | undefined;
    for (const node of this.nodes.values()) {
      if (node.live?.started !== true || node.view.role !== "leader") continue;
      if (best === undefined || node.view.term > best.view.term) best = node;
    }
    return best;
  }

  /** Starts a new incarnation of `id` over its disk. */
  start(id: NodeId): void {
    const node = this.node(id);
    if (node.live !== undefined || node.removed) return;
    const number = ++node.incarnations;
    if (number > 1) this.stats.restarts++;
    const scope = new Scope(this.queue, `${id}#${number}`);
    const stores = node.disk.open(scope);
    const kv = new KvStateMachine(id, scope, this.rng.derive(`kv:${id}:${number}`), {
      latencyMaxMs: this.config.applyLatencyMaxMs,
      onApplied: (entries, sm) => this.#onKvApplied(node, entries, sm),
      onRestored: (meta, sm) => this.#onKvRestored(node, meta, sm),
    });
    const transport = this.network.endpoint(id, scope);
    const r = this.config.raft;
    const driver = new RaftDriver({
      id,
      clock: new SimClock(scope, node.clockRate),
      logStore: stores.logStore,
      stableStore: stores.stableStore,
      snapshotStore: stores.snapshotStore,
      stateMachine: kv,
      transport,
      random: this.rng.derive(`raft:${id}:${number}`),
      tickMs: this.config.tickMs,
      raft: {
        electionTicks: r.electionTicks,
        heartbeatTicks: r.heartbeatTicks,
        preVote: r.preVote,
        checkQuorum: r.checkQuorum,
        maxEntriesPerMsg: r.maxEntriesPerMsg,
        maxBytesPerMsg: r.maxBytesPerMsg,
        maxInflightMsgs: r.maxInflightMsgs,
        maxUncommittedBytes: r.maxUncommittedBytes,
      },
      snapshotThreshold: this.config.snapshotThreshold,
      trailingEntries: this.config.trailingEntries,
      bootstrap: node.founding ? this.founders : undefined,
      observer: this.#observer(node),
    });
    const live: Incarnation = { number, scope, transport, driver, kv, started: false };
    node.live = live;
    node.view = { role: "follower", leader: "", term: node.disk.visible.hardState.term };
    node.term = node.disk.visible.hardState.term;
    this.checker.observeRestore(id, 0);
    this.#trace(() => `${id} start #${number} ${this.#diskSummary(node)}`);
    driver.start((err) => {
      if (err !== undefined) {
        throw new Error(`${id}: driver failed to start: ${err.message}`, { cause: err });
      }
      if (node.live === live) live.started = true;
      this.#trace(() => `${id} started #${number}`);
    });
  }

  /** Kills the running incarnation of `id` at once; unsynced disk writes are lost. */
  crash(id: NodeId): void {
    const node = this.node(id);
    const live = node.live;
    if (live === undefined) return;
    this.stats.crashes++;
    live.scope.kill();
    live.transport.close();
    node.disk.crash();
    node.live = undefined;
    node.view = { role: "follower", leader: "", term: node.view.term };
    this.#trace(() => `${id} CRASH ${this.#diskSummary(node)}`);
  }

  /** Stops `id` for good (it was removed from the membership). */
  remove(id: NodeId): void {
    const node = this.node(id);
    if (node.removed) return;
    node.removed = true;
    this.stats.removals++;
    const live = node.live;
    node.live = undefined;
    if (live !== undefined) {
      live.driver.stop();
      live.scope.kill();
      live.transport.close();
    }
    this.#trace(() => `${id} removed and stopped`);
  }

  #diskSummary(node: SimNode): string {
    const d = node.disk.visible;
    const snap = d.snapshots[d.snapshots.length - 1]?.meta;
    return `(log ${d.log.firstIndex()}..${d.log.lastIndex()} hs t${d.hardState.term}/v${
      d.hardState.vote || "-"
    }/c${d.hardState.commit} snap ${snap ? `${snap.index}@${snap.term}` : "-"})`;
  }

  #trace(line: () => string): void {
    if (this.tracer.enabled) this.tracer.line(line());
  }

  #observer(node: SimNode): DriverObserver {
    return {
      onReady: (id, rd) => this.#onReady(node, id, rd),
      onSoftState: (id, term, ss) => {
        const old = node.view;
        node.view = { role: ss.role, leader: ss.leader, term };
        if (ss.role === "leader" && (old.role !== "leader" || old.term !== term)) {
          this.stats.leaderChanges++;
        }
        this.checker.observeRole(id, term, ss.role, this.queue.nowMs);
        this.#trace(() => `${id} role ${ss.role} term ${term} leader ${ss.leader || "-"}`);
      },
      onApplied: (id, entries) => {
        const first = entries[0];
        const last = entries[entries.length - 1];
        if (first !== undefined && last !== undefined) {
          this.#trace(() => `${id} applied ${first.index}..${last.index}`);
        }
      },
      onRestored: (id, meta) => {
        this.stats.restores++;
        this.#trace(() => `${id} restored snapshot ${meta.index}@${meta.term}`);
      },
      onSnapshotTaken: (id, meta) => {
        this.stats.snapshotsTaken++;
        this.#trace(() => `${id} took snapshot ${meta.index}@${meta.term}`);
      },
    };
  }

  #onReady(node: SimNode, id: NodeId, rd: Ready): void {
    if (node.live === undefined) return;
    if (rd.hardState !== undefined && rd.hardState.term > node.term) node.term = rd.hardState.term;
    const log = node.disk.visible.log;
    const first = rd.entries[0];
    if (first !== undefined) {
      const records: LogRecord[] = [];
      let prevTerm = this.#prevTerm(node, rd, first.index - 1);
      for (const entry of rd.entries) {
        records.push({
          index: entry.index,
          term: entry.term,
          prevTerm,
          digest: entryDigest(entry),
        });
        prevTerm = entry.term;
      }
      this.checker.observeLog(id, records);
    }
    if (rd.softState?.role === "leader") {
      const last = rd.entries[rd.entries.length - 1]?.index ??
        (rd.snapshot !== undefined ? rd.snapshot.index : log.lastIndex());
      this.checker.observeLeader(id, node.term, (index) => this.#lookup(node, rd, index), last);
    }
    const committed = rd.committedEntries;
    for (const entry of committed) {
      this.checker.observeCommit(id, entry.index, entry.term, entryDigest(entry), node.term);
    }
    const lastCommitted = committed[committed.length - 1];
    if (lastCommitted !== undefined && lastCommitted.index > this.maxCommit) {
      this.maxCommit = lastCommitted.index;
      this.lastProgressMs = this.queue.nowMs;
    }
    if (this.tracer.enabled) this.#traceReady(id, rd);
  }

  #traceReady(id: NodeId, rd: Ready): void {
    const parts: string[] = [];
    if (rd.hardState) {
      parts.push(`hs t${rd.hardState.term}/v${rd.hardState.vote || "-"}/c${rd.hardState.commit}`);
    }
    if (rd.snapshot) parts.push(`snapshot ${rd.snapshot.index}@${rd.snapshot.term}`);
    const first = rd.entries[0];
    const last = rd.entries[rd.entries.length - 1];
    if (first && last) {
      parts.push(`append ${first.index}@${first.term}..${last.index}@${last.term}`);
    }
    const c0 = rd.committedEntries[0];
    const c1 = rd.committedEntries[rd.committedEntries.length - 1];
    if (c0 && c1) parts.push(`commit ${c0.index}..${c1.index}`);
    if (rd.readStates.length > 0) parts.push(`reads ${rd.readStates.length}`);
    if (parts.length > 0) this.tracer.line(`${id} ready ${parts.join(" ")}`);
  }

  /** Term of `index` in `node`'s log as of the Ready `rd` (before its entries). */
  #prevTerm(node: SimNode, rd: Ready, index: number): number {
    if (index === 0) return 0;
    if (rd.snapshot !== undefined) {
      if (index === rd.snapshot.index) return rd.snapshot.term;
      throw new Error(
        `${node.id}: Ready entries start at ${
          index + 1
        } but its snapshot ends at ${rd.snapshot.index}`,
      );
    }
    return node.disk.visible.log.term(index);
  }

  /** `node`'s log entry at `index` as of `rd` (see {@link Checker.observeLeader}). */
  #lookup(node: SimNode, rd: Ready, index: number): EntryView | undefined | null {
    const first = rd.entries[0];
    if (first !== undefined && index >= first.index) {
      const entry = rd.entries[index - first.index];
      return entry === undefined ? null : { term: entry.term, digest: entryDigest(entry) };
    }
    if (rd.snapshot !== undefined) return index <= rd.snapshot.index ? undefined : null;
    const log = node.disk.visible.log;
    if (index <= log.offsetIndex) return undefined;
    const entry = log.entries[index - log.offsetIndex - 1];
    return entry === undefined ? null : { term: entry.term, digest: entryDigest(entry) };
  }

  #onKvApplied(node: SimNode, entries: readonly Entry[], kv: KvStateMachine): void {
    for (const entry of entries) {
      this.checker.observeApply(node.id, entry.index, entry.term, entryDigest(entry));
    }
    this.checker.observeStateHash(node.id, kv.appliedIndex, String(kv.stateHash()));
  }

  #onKvRestored(node: SimNode, meta: SnapshotMeta, kv: KvStateMachine): void {
    this.checker.observeRestore(node.id, meta.index);
    this.checker.observeStateHash(node.id, kv.appliedIndex, String(kv.stateHash()));
  }

  /** `node`'s digest of entry `index` from its stored log (undefined when compacted or absent). */
  storedDigest(node: SimNode, index: number): string | undefined {
    const log = node.disk.visible.log;
    if (index <= log.offsetIndex) return undefined;
    const entry = log.entries[index - log.offsetIndex - 1];
    return entry === undefined ? undefined : entryDigest(entry);
  }
}
