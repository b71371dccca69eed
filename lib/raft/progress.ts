/**
 * The leader's view of each follower's replication (etcd's tracker).
 *
 * Flow control (thesis §10.2): a follower is in one of three states.
 * - probe: the leader does not know where the logs match; it sends one
 *   append at a time and waits for the answer (or a heartbeat response).
 * - replicate: logs match up to `match`; the leader pipelines appends
 *   optimistically, at most `inflights.capacity` messages unacknowledged.
 * - snapshot: the follower needs entries the leader compacted; a snapshot
 *   is in flight and appends pause until it is reported.
 *
 * Invariant: `match < next`.
 *
 * @module
 */

import { assert } from "./errors.ts";

/** Replication state of a follower. */
export type ProgressState = "probe" | "replicate" | "snapshot";

/** A bounded ring of the last index of each unacknowledged append. */
export class Inflights {
  readonly #buffer: number[];
  #start = 0;
  #count = 0;

  constructor(readonly capacity: number) {
    assert(capacity > 0, () => `inflights capacity must be positive, got ${capacity}`);
    this.#buffer = new Array<number>(capacity).fill(0);
  }

  get count(): number {
    return this.#count;
  }

  full(): boolean {
    return this.#count === this.capacity;
  }

  /** Records an append whose last entry is `lastIndex` (must increase). */
  add(lastIndex: number): void {
    assert(!this.full(), () => `inflights full (capacity ${this.capacity})`);
    this.#buffer[(this.#start + this.#count) % this.capacity] = lastIndex;
    this.#count++;
  }

  /** Frees every append whose last index is <= `index` (acknowledged). */
  freeLE(index: number): void {
    while (this.#count > 0 && (this.#buffer[this.#start] ?? 0) <= index) {
      this.#start = (this.#start + 1) % this.capacity;
      this.#count--;
    }
  }

  /** Frees the oldest slot: a lost append must not stall a full window forever. */
  freeFirstOne(): void {
    if (this.#count === 0) return;
    this.#start = (this.#start + 1) % this.capacity;
    this.#count--;
  }

  reset(): void {
    this.#start = 0;
    this.#count = 0;
  }
}

/** The leader's knowledge of one follower. */
export class Progress {
  match = 0;
  next: number;
  state: ProgressState = "probe";
  /** Index of the snapshot in flight (state snapshot). */
  pendingSnapshot = 0;
  /** Heard from within the current election timeout (check-quorum). */
  recentActive = true;
  /** In probe state: an append is outstanding, wait before sending another. */
  probeSent = false;
  readonly inflights: Inflights;

  constructor(next: number, inflightsMax: number, public learner: boolean) {
    this.next = next;
    this.inflights = new Inflights(inflightsMax);
  }

  becomeProbe(): void {
    if (this.state === "snapshot") {
      const pending = this.pendingSnapshot;
      this.#reset("probe");
      this.next = Math.max(this.match + 1, pending + 1);
    } else {
      this.#reset("probe");
      this.next = this.match + 1;
    }
  }

  becomeReplicate(): void {
    this.#reset("replicate");
    this.next = this.match + 1;
  }

  becomeSnapshot(snapshotIndex: number): void {
    this.#reset("snapshot");
    this.pendingSnapshot = snapshotIndex;
  }

  #reset(state: ProgressState): void {
    this.state = state;
    this.pendingSnapshot = 0;
    this.probeSent = false;
    this.inflights.reset();
  }

  /** A success up to `index` arrived; returns true when `match` grew. */
  maybeUpdate(index: number): boolean {
    let updated = false;
    if (this.match < index) {
      this.match = index;
      updated = true;
      this.probeSent = false;
    }
    this.next = Math.max(this.next, index + 1);
    return updated;
  }

  /** Pipelining: assume the append up to `lastIndex` will succeed. */
  optimisticUpdate(lastIndex: number): void {
    this.next = lastIndex + 1;
  }

  /**
   * A rejection of the append after `rejected` arrived, with the follower's
   * hint that logs may match at `matchHint`. Returns false when the
   * rejection is stale (already superseded) and must be ignored.
   */
  maybeDecrTo(rejected: number, matchHint: number): boolean {
    if (this.state === "replicate") {
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1);
    this.probeSent = false;
    return true;
  }

  /** True when the leader must not send appends now. */
  isPaused(): boolean {
    switch (this.state) {
      case "probe":
        return this.probeSent;
      case "replicate":
        return this.inflights.full();
      case "snapshot":
        return true;
    }
  }
}

/** Size of a majority of `n` voters. */
export function quorumOf(n: number): number {
  return Math.floor(n / 2) + 1;
}

/**
 * The highest index replicated on a majority of voters: the quorum-th
 * largest `match`. Returns 0 when there are no voters.
 */
export function majorityMatch(matches: number[]): number {
  if (matches.length === 0) return 0;
  matches.sort((a, b) => b - a);
  return matches[quorumOf(matches.length) - 1] ?? 0;
}
