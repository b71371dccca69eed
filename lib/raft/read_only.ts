/**
 * ReadIndex bookkeeping (thesis §6.4): a leader serves a linearizable read
 * once it has (1) committed an entry of its term, (2) recorded its commit
 * index as the read index and (3) confirmed with a heartbeat round that a
 * majority still follows it. Requests are confirmed in order: an ack for a
 * request also confirms every earlier one, because the heartbeat that
 * carried it was sent after they were queued.
 *
 * Bounds: the queue holds at most `capacity` requests; the driver bounds
 * its callers further.
 *
 * @module
 */

import { assert } from "./errors.ts";
import type { NodeId, ReadState } from "./types.ts";

interface ReadRequest {
  readonly context: string;
  readonly index: number;
  readonly acks: Set<NodeId>;
}

export class ReadOnlyQueue {
  #queue: ReadRequest[] = [];
  #byContext = new Map<string, ReadRequest>();

  constructor(readonly capacity: number) {}

  get size(): number {
    return this.#queue.length;
  }

  /** Queues a read at `index` (the leader's commit index now), acked by `self`. */
  add(context: string, index: number, self: NodeId): void {
    assert(!this.#byContext.has(context), () => `duplicate read context ${context}`);
    assert(this.#queue.length < this.capacity, () => `read queue over ${this.capacity}`);
    const request = { context, index, acks: new Set([self]) };
    this.#queue.push(request);
    this.#byContext.set(context, request);
  }

  /** The context to carry in the next heartbeat ("" when nothing is waiting). */
  lastContext(): string {
    return this.#queue.at(-1)?.context ?? "";
  }

  /**
   * Records `from`'s ack of `context`. When `isQuorum(acks)` holds, releases
   * that request and every one queued before it.
   */
  ack(context: string, from: NodeId, isQuorum: (acks: Set<NodeId>) => boolean): ReadState[] {
    const request = this.#byContext.get(context);
    if (request === undefined) return [];
    request.acks.add(from);
    if (!isQuorum(request.acks)) return [];
    const position = this.#queue.indexOf(request);
    const released = this.#queue.splice(0, position + 1);
    for (const r of released) this.#byContext.delete(r.context);
    return released.map((r) => ({ index: r.index, context: r.context }));
  }

  /** Releases everything at once (single-voter cluster: the leader is the quorum). */
  releaseAll(): ReadState[] {
    const released = this.#queue.map((r) => ({ index: r.index, context: r.context }));
    this.#queue = [];
    this.#byContext.clear();
    return released;
  }

  reset(): void {
    this.#queue = [];
    this.#byContext.clear();
  }
}
