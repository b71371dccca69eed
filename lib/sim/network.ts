/**
 * A simulated network between simulated nodes, over the one event queue.
 *
 * Each message gets its own random delay (a floor plus an exponential tail,
 * with rare long spikes), so messages on one link reorder naturally. A
 * message may be dropped (random loss, a partition at send or delivery time,
 * a full link queue, a receiver that is down) or duplicated (a second copy
 * with its own delay). Partitions are sets of blocked directed links, so
 * asymmetric partitions are expressible. Snapshots travel as one unit after
 * a size-dependent delay and arrive whole or not at all; the sender learns
 * which through `done`.
 *
 * Messages are copied on delivery (entries and their bytes included): nodes
 * never share objects, as over a real wire.
 *
 * @module
 */

import type { Transport, TransportHandler } from "../node/interfaces.ts";
import type { Entry, Message, NodeId } from "../raft/types.ts";
import type { Scope } from "./events.ts";
import type { EventQueue } from "./events.ts";
import type { Prng } from "./prng.ts";

/** Fault rates and latencies; the nemesis may change them during a run. */
export interface NetworkOptions {
  /** Minimum one-way delay. */
  delayMinMs: number;
  /** Mean of the exponential delay added to the minimum. */
  delayMeanMs: number;
  /** Probability that a message is lost. */
  dropRate: number;
  /** Probability that a message is delivered twice. */
  dupRate: number;
  /** Probability that a message is delayed by a spike. */
  spikeRate: number;
  /** Extra delay of a spike (uniform in [0, spikeMs]). */
  spikeMs: number;
  /** Messages in flight on one directed link beyond which sends are dropped. */
  linkQueueMax: number;
  /** Snapshot transfer speed. */
  snapshotBytesPerMs: number;
  /** Probability that a snapshot transfer fails. */
  snapshotDropRate: number;
}

/** A quiet, reliable network (used once faults stop). */
export const RELIABLE_NETWORK: NetworkOptions = {
  delayMinMs: 1,
  delayMeanMs: 2,
  dropRate: 0,
  dupRate: 0,
  spikeRate: 0,
  spikeMs: 0,
  linkQueueMax: 1024,
  snapshotBytesPerMs: 1000,
  snapshotDropRate: 0,
};

/** Counters of what the network did. */
export interface NetworkStats {
  sent: number;
  delivered: number;
  drops: number;
  dups: number;
  partitionDrops: number;
  queueDrops: number;
  deadDrops: number;
  spikes: number;
  snapshotsSent: number;
  snapshotsDelivered: number;
  snapshotsLost: number;
}

/** Receives a line per network fault (for traces). */
export type NetworkTrace = (line: string) => void;

function linkKey(from: NodeId, to: NodeId): string {
  return `${from}>${to}`;
}

function copyEntry(entry: Entry): Entry {
  return { term: entry.term, index: entry.index, kind: entry.kind, data: entry.data.slice() };
}

/** A deep copy of a message, as a receiver would decode it. */
export function copyMessage(msg: Message): Message {
  const copy: Message = {
    ...msg,
    entries: msg.entries.length === 0 ? [] : msg.entries.map(copyEntry),
  };
  if (msg.snapshot !== undefined) return { ...copy, snapshot: structuredClone(msg.snapshot) };
  return copy;
}

/** The network: endpoints per node, links, partitions, fault counters. */
export class SimNetwork {
  readonly stats: NetworkStats = {
    sent: 0,
    delivered: 0,
    drops: 0,
    dups: 0,
    partitionDrops: 0,
    queueDrops: 0,
    deadDrops: 0,
    spikes: 0,
    snapshotsSent: 0,
    snapshotsDelivered: 0,
    snapshotsLost: 0,
  };
  #endpoints = new Map<NodeId, SimTransport>();
  #blocked = new Set<string>();
  #inFlight = new Map<string, number>();
  trace: NetworkTrace | undefined;

  constructor(
    readonly queue: EventQueue,
    readonly rng: Prng,
    public options: NetworkOptions,
  ) {}

  /** A transport for the incarnation of `id` living in `scope`; replaces any previous one. */
  endpoint(id: NodeId, scope: Scope): SimTransport {
    this.#endpoints.get(id)?.close();
    const transport = new SimTransport(this, id, scope);
    this.#endpoints.set(id, transport);
    return transport;
  }

  /** Forgets a node's endpoint (its process died). */
  detach(id: NodeId, transport: SimTransport): void {
    if (this.#endpoints.get(id) === transport) this.#endpoints.delete(id);
  }

  /** Whether `from` can currently send to `to`. */
  canReach(from: NodeId, to: NodeId): boolean {
    return !this.#blocked.has(linkKey(from, to));
  }

  /** Blocks the directed link `from -> to`. */
  block(from: NodeId, to: NodeId): void {
    if (from !== to) this.#blocked.add(linkKey(from, to));
  }

  /** Blocks every link between `a` and `b` in both directions. */
  split(a: readonly NodeId[], b: readonly NodeId[]): void {
    for (const x of a) {
      for (const y of b) {
        this.block(x, y);
        this.block(y, x);
      }
    }
  }

  /** Number of blocked directed links. */
  get blockedLinks(): number {
    return this.#blocked.size;
  }

  /** Removes every partition. */
  heal(): void {
    this.#blocked.clear();
  }

  /** The one-way delay of a message of `bytes` bytes now. */
  delayMs(bytes = 0, bytesPerMs = Infinity): number {
    const o = this.options;
    let delay = o.delayMinMs + this.rng.exponential(o.delayMeanMs);
    if (this.rng.chance(o.spikeRate)) {
      this.stats.spikes++;
      delay += this.rng.float() * o.spikeMs;
    }
    if (bytes > 0 && Number.isFinite(bytesPerMs)) delay += bytes / bytesPerMs;
    return delay;
  }

  send(msg: Message): void {
    this.stats.sent++;
    const key = linkKey(msg.from, msg.to);
    if (this.#blocked.has(key)) {
      this.stats.partitionDrops++;
      return;
    }
    if (this.rng.chance(this.options.dropRate)) {
      this.stats.drops++;
      this.trace?.(`net drop ${msg.kind} ${msg.from}->${msg.to} t${msg.term}`);
      return;
    }
    const copies = this.rng.chance(this.options.dupRate) ? 2 : 1;
    if (copies === 2) {
      this.stats.dups++;
      this.trace?.(`net dup ${msg.kind} ${msg.from}->${msg.to} t${msg.term}`);
    }
    for (let i = 0; i < copies; i++) {
      const inFlight = this.#inFlight.get(key) ?? 0;
      if (inFlight >= this.options.linkQueueMax) {
        this.stats.queueDrops++;
        return;
      }
      this.#inFlight.set(key, inFlight + 1);
      const copy = copyMessage(msg);
      this.queue.after(this.delayMs(), () => {
        this.#inFlight.set(key, (this.#inFlight.get(key) ?? 1) - 1);
        this.#deliver(copy);
      });
    }
  }

  #deliver(msg: Message): void {
    if (this.#blocked.has(linkKey(msg.from, msg.to))) {
      this.stats.partitionDrops++;
      return;
    }
    const target = this.#endpoints.get(msg.to);
    if (target === undefined || !target.receiving) {
      this.stats.deadDrops++;
      return;
    }
    this.stats.delivered++;
    target.receive(msg);
  }

  sendSnapshot(sender: SimTransport, msg: Message, data: Uint8Array, done: (ok: boolean) => void) {
    this.stats.snapshotsSent++;
    const o = this.options;
    const lost = this.#blocked.has(linkKey(msg.from, msg.to)) ||
      this.rng.chance(o.snapshotDropRate);
    const copy = copyMessage(msg);
    const bytes = data.slice();
    this.trace?.(
      `net snapshot ${msg.from}->${msg.to} ${msg.snapshot?.index}@${msg.snapshot?.term} t${msg.term} sent (${bytes.byteLength} bytes)`,
    );
    const delay = this.delayMs(bytes.byteLength, o.snapshotBytesPerMs);
    const returnDelay = this.delayMs();
    this.queue.after(delay, () => {
      const target = this.#endpoints.get(msg.to);
      const ok = !lost && !this.#blocked.has(linkKey(msg.from, msg.to)) &&
        target !== undefined && target.receiving;
      if (ok) {
        this.stats.snapshotsDelivered++;
        this.trace?.(
          `net snapshot ${msg.from}->${msg.to} ${msg.snapshot?.index}@${msg.snapshot?.term} t${msg.term} delivered`,
        );
        target.receiveSnapshot(copy, bytes);
      } else {
        this.stats.snapshotsLost++;
        this.trace?.(`net snapshot lost ${msg.from}->${msg.to} @${msg.snapshot?.index}`);
      }
      // The sender hears the outcome one trip later (if it still lives).
      sender.scope.after(returnDelay, () => done(ok));
    });
  }
}

/** One node incarnation's {@link Transport} over the {@link SimNetwork}. */
export class SimTransport implements Transport {
  #handler: TransportHandler | undefined;
  #closed = false;

  constructor(readonly network: SimNetwork, readonly id: NodeId, readonly scope: Scope) {}

  /** True when deliveries reach a handler. */
  get receiving(): boolean {
    return !this.#closed && this.scope.alive && this.#handler !== undefined;
  }

  send(msg: Message): void {
    if (this.#closed || !this.scope.alive) return;
    if (msg.from !== this.id) {
      throw new Error(`node ${this.id} sent a message claiming to be from ${msg.from}`);
    }
    this.network.send(msg);
  }

  sendSnapshot(msg: Message, data: Uint8Array, done: (ok: boolean) => void): void {
    if (this.#closed || !this.scope.alive) return;
    if (msg.snapshot === undefined) throw new Error(`snapshot message without metadata`);
    this.network.sendSnapshot(this, msg, data, done);
  }

  listen(handler: TransportHandler): void {
    if (this.#handler !== undefined) {
      throw new Error(`transport of ${this.id}: listen called twice`);
    }
    this.#handler = handler;
  }

  close(): void {
    this.#closed = true;
    this.network.detach(this.id, this);
  }

  receive(msg: Message): void {
    this.#handler?.onMessage(msg);
  }

  receiveSnapshot(msg: Message, data: Uint8Array): void {
    this.#handler?.onSnapshot(msg, data);
  }
}
