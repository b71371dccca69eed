/**
 * Test helpers for lib/node: a tiny key/value state machine and a cluster of
 * drivers on in-memory stores, a loopback network and one manual clock.
 */

import { type DriverOptions, RaftDriver } from "../../lib/node/driver.ts";
import type { StateMachine, Transport, TransportHandler } from "../../lib/node/interfaces.ts";
import {
  type Defer,
  ManualClock,
  MemoryLogStore,
  MemorySnapshotStore,
  MemoryStableStore,
  MemoryTransportHub,
} from "../../lib/node/memory.ts";
import type { Entry, NodeId, RandomSource, SnapshotMeta } from "../../lib/raft/types.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Encodes a `set key value` command. */
export function setCmd(key: string, value: string): Uint8Array {
  return encoder.encode(JSON.stringify({ key, value }));
}

/** A key/value map; applying `set` returns the previous value (or null). */
export class KvMachine implements StateMachine {
  map = new Map<string, string>();
  appliedIndex = 0;
  applyCalls = 0;
  restores = 0;

  constructor(readonly defer: Defer = (fn) => fn()) {}

  apply(entries: readonly Entry[], done: (results: unknown[]) => void): void {
    this.applyCalls++;
    const results: unknown[] = [];
    for (const e of entries) {
      if (e.index !== this.appliedIndex + 1) {
        throw new Error(`kv: apply ${e.index} after ${this.appliedIndex}`);
      }
      this.appliedIndex = e.index;
      if (e.kind !== "normal" || e.data.length === 0) {
        results.push(undefined);
        continue;
      }
      const { key, value } = JSON.parse(decoder.decode(e.data)) as { key: string; value: string };
      results.push(this.map.get(key) ?? null);
      this.map.set(key, value);
    }
    this.defer(() => done(results));
  }

  snapshot(done: (err: Error | undefined, data: Uint8Array) => void): void {
    const data = encoder.encode(
      JSON.stringify({ applied: this.appliedIndex, map: [...this.map] }),
    );
    this.defer(() => done(undefined, data));
  }

  restore(meta: SnapshotMeta, data: Uint8Array, done: (err?: Error) => void): void {
    const parsed = JSON.parse(decoder.decode(data)) as {
      applied: number;
      map: [string, string][];
    };
    if (parsed.applied !== meta.index) {
      throw new Error(`kv: snapshot data at ${parsed.applied} but meta says ${meta.index}`);
    }
    this.map = new Map(parsed.map);
    this.appliedIndex = meta.index;
    this.restores++;
    this.defer(() => done());
  }

  /** A canonical rendering of the state, for comparing nodes. */
  dump(): string {
    return JSON.stringify([...this.map].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  }
}

/** Seeded xorshift. */
export function testRandom(seed: number): RandomSource {
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
  id: NodeId;
  logStore: MemoryLogStore;
  stableStore: MemoryStableStore;
  snapshotStore: MemorySnapshotStore;
  sm: KvMachine;
  driver: RaftDriver;
}

/** Extra driver options for a node. */
export type NodeOptions = Partial<
  Omit<DriverOptions, "id" | "clock" | "logStore" | "stableStore" | "snapshotStore" | "transport">
>;

/**
 * Drivers on one manual clock. The network delivers after `latencyMs`;
 * stores complete after 0 ms (asynchronously, but at the same instant).
 * `blocked` holds "from>to" links that drop traffic (checked at send and at
 * delivery).
 */
export class Cluster {
  readonly clock = new ManualClock();
  readonly hub: MemoryTransportHub;
  readonly nodes = new Map<NodeId, TestNode>();
  readonly blocked = new Set<string>();
  readonly storeDefer: Defer = (fn) => void this.clock.after(0, fn);
  /** How state machines complete (default: synchronously). */
  smDefer: Defer = (fn) => fn();
  #seed = 1;

  constructor(readonly latencyMs = 1, readonly defaults: NodeOptions = {}) {
    this.hub = new MemoryTransportHub({ defer: (fn) => void this.clock.after(latencyMs, fn) });
  }

  /** Creates and starts a node on fresh stores (completing through `defer`, default 0 ms later). */
  add(id: NodeId, options: NodeOptions = {}, defer: Defer = this.storeDefer): TestNode {
    const node: TestNode = {
      id,
      logStore: new MemoryLogStore({ defer }),
      stableStore: new MemoryStableStore({ defer }),
      snapshotStore: new MemorySnapshotStore({ defer }),
      sm: new KvMachine(this.smDefer),
      driver: undefined as unknown as RaftDriver,
    };
    this.#start(node, options);
    return node;
  }

  /** A new driver and a fresh state machine on the node's existing stores. */
  restart(id: NodeId, options: NodeOptions = {}): TestNode {
    const node = this.node(id);
    node.driver.stop();
    node.sm = new KvMachine(this.smDefer);
    this.#start(node, options);
    return node;
  }

  #start(node: TestNode, options: NodeOptions): void {
    node.driver = new RaftDriver({
      tickMs: 10,
      random: testRandom(this.#seed++ * 7919),
      stateMachine: node.sm,
      ...this.defaults,
      ...options,
      id: node.id,
      clock: this.clock,
      logStore: node.logStore,
      stableStore: node.stableStore,
      snapshotStore: node.snapshotStore,
      transport: this.#transport(node.id),
    });
    this.nodes.set(node.id, node);
    let started: Error | undefined | "pending" = "pending";
    node.driver.start((err) => (started = err));
    for (let ms = 0; ms < 1000 && started === "pending"; ms++) this.clock.advance(ms === 0 ? 0 : 1);
    if (started !== undefined) throw new Error(`start of ${node.id} failed: ${started}`);
  }

  #transport(id: NodeId): Transport {
    const inner = this.hub.transport(id);
    const open = (from: NodeId, to: NodeId) => !this.blocked.has(`${from}>${to}`);
    return {
      send: (msg) => {
        if (open(msg.from, msg.to)) inner.send(msg);
      },
      sendSnapshot: (msg, data, done) => {
        if (open(msg.from, msg.to)) inner.sendSnapshot(msg, data, done);
        else done(false);
      },
      listen: (handler: TransportHandler) =>
        inner.listen({
          onMessage: (msg) => {
            if (open(msg.from, msg.to)) handler.onMessage(msg);
          },
          onSnapshot: (msg, data) => {
            if (open(msg.from, msg.to)) handler.onSnapshot(msg, data);
          },
        }),
      close: () => inner.close(),
    };
  }

  /** Cuts `id` off from every other node (both directions). */
  isolate(id: NodeId): void {
    for (const other of this.nodes.keys()) {
      if (other === id) continue;
      this.blocked.add(`${id}>${other}`);
      this.blocked.add(`${other}>${id}`);
    }
  }

  heal(): void {
    this.blocked.clear();
  }

  node(id: NodeId): TestNode {
    const node = this.nodes.get(id);
    if (node === undefined) throw new Error(`no node ${id}`);
    return node;
  }

  /** Runs the clock for `ms`. */
  run(ms: number): void {
    this.clock.advance(ms);
  }

  /** Runs the clock in 5 ms steps until `cond` holds; throws after `maxMs`. */
  runUntil(cond: () => boolean, maxMs = 10_000, what = "condition"): void {
    for (let t = 0; t <= maxMs; t += 5) {
      if (cond()) return;
      this.clock.advance(5);
    }
    throw new Error(`${what} not reached within ${maxMs} ms`);
  }

  /** The running nodes that believe they lead, highest term first. */
  leaders(ids: Iterable<NodeId> = this.nodes.keys()): TestNode[] {
    const out: { node: TestNode; term: number }[] = [];
    for (const id of ids) {
      const node = this.node(id);
      try {
        const st = node.driver.status();
        if (st.role === "leader") out.push({ node, term: st.term });
      } catch {
        // not started or stopped before starting
      }
    }
    return out.sort((a, b) => b.term - a.term).map((x) => x.node);
  }

  /** Waits until exactly one of `ids` leads; returns it. */
  waitLeader(ids: Iterable<NodeId> = [...this.nodes.keys()], maxMs = 10_000): TestNode {
    const list = [...ids];
    this.runUntil(() => this.leaders(list).length === 1, maxMs, "a single leader");
    const leader = this.leaders(list)[0];
    if (leader === undefined) throw new Error("no leader");
    return leader;
  }

  /** Proposes `set key value` on `node`; returns a handle filled when the callback runs. */
  propose(node: TestNode, key: string, value: string): ProposalHandle {
    const handle: ProposalHandle = { done: false, err: undefined, result: undefined, index: 0 };
    node.driver.propose(setCmd(key, value), (err, result, index) => {
      if (handle.done) throw new Error(`callback of ${key}=${value} ran twice`);
      Object.assign(handle, { done: true, err, result, index });
    });
    return handle;
  }

  /** Proposes and waits for success. */
  put(node: TestNode, key: string, value: string): ProposalHandle {
    const h = this.propose(node, key, value);
    this.runUntil(() => h.done, 10_000, `apply of ${key}=${value}`);
    if (h.err) throw h.err;
    return h;
  }

  stopAll(): void {
    for (const node of this.nodes.values()) node.driver.stop();
  }
}

export interface ProposalHandle {
  done: boolean;
  err: Error | undefined;
  result: unknown;
  index: number;
}
