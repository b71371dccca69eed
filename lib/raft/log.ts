/**
 * The Raft log as the core sees it: durable entries (through a
 * {@link LogReader}) followed by unstable ones not yet persisted, plus the
 * commit and applied indexes (etcd's raftLog + unstable).
 *
 * Invariants: `applied <= committed <= lastIndex()`; unstable entries are
 * contiguous and start at `unstableOffset`; an unstable snapshot, when
 * present, sits right before them. Unstable entries shadow stored ones at
 * the same indexes (a follower's truncation is visible at once, and reaches
 * storage with the next Ready).
 *
 * @module
 */

import { assert } from "./errors.ts";
import type { Entry, LogReader, SnapshotMeta } from "./types.ts";

/** Sum of data bytes of `entries`. */
export function entriesBytes(entries: readonly Entry[]): number {
  let bytes = 0;
  for (const entry of entries) bytes += entry.data.byteLength;
  return bytes;
}

export class RaftLog {
  /** Entries appended but not yet reported durable by `stableTo`. */
  unstable: Entry[] = [];
  /** Index of `unstable[0]`. */
  unstableOffset: number;
  /** A snapshot received from the leader but not yet persisted. */
  unstableSnapshot: SnapshotMeta | undefined;
  committed: number;
  applied: number;

  constructor(readonly storage: LogReader, committed: number, applied: number) {
    const first = storage.firstIndex();
    const last = storage.lastIndex();
    const snap = storage.snapshotMeta();
    assert(
      first >= 1 && last >= first - 1,
      () => `storage range broken: first ${first} last ${last}`,
    );
    assert(
      first - 1 <= snap.index,
      () => `log compacted to ${first - 1} beyond the newest snapshot ${snap.index}`,
    );
    this.unstableOffset = last + 1;
    this.unstableSnapshot = undefined;
    // The stored commit may trail the snapshot (snapshot written, hard state not yet).
    this.committed = Math.min(Math.max(committed, snap.index), last);
    assert(
      snap.index <= last,
      () => `snapshot ${snap.index} beyond last stored index ${last}: log store was not reset`,
    );
    this.applied = Math.max(applied, snap.index);
    assert(
      this.applied <= this.committed,
      () => `applied ${this.applied} beyond committed ${this.committed}`,
    );
  }

  firstIndex(): number {
    return this.unstableSnapshot ? this.unstableSnapshot.index + 1 : this.storage.firstIndex();
  }

  lastIndex(): number {
    if (this.unstable.length > 0) return this.unstableOffset + this.unstable.length - 1;
    if (this.unstableSnapshot) return this.unstableSnapshot.index;
    return this.storage.lastIndex();
  }

  /** Term of `index`, or undefined when compacted away or beyond the log. */
  term(index: number): number | undefined {
    if (index === 0) return 0;
    if (index >= this.unstableOffset) {
      return this.unstable[index - this.unstableOffset]?.term;
    }
    if (this.unstableSnapshot) {
      return index === this.unstableSnapshot.index ? this.unstableSnapshot.term : undefined;
    }
    if (index < this.storage.firstIndex() - 1 || index > this.storage.lastIndex()) return undefined;
    return this.storage.term(index);
  }

  lastTerm(): number {
    const term = this.term(this.lastIndex());
    assert(term !== undefined, () => `no term for last index ${this.lastIndex()}`);
    return term;
  }

  matchTerm(index: number, term: number): boolean {
    return this.term(index) === term;
  }

  /** The newest snapshot available to send to followers. */
  snapshotMeta(): SnapshotMeta {
    return this.unstableSnapshot ?? this.storage.snapshotMeta();
  }

  /**
   * Entries in [lo, hi): at least one, then while the data stays within
   * `maxBytes` and the count within `maxCount`. Returns undefined when `lo`
   * is compacted (the caller sends a snapshot instead).
   */
  slice(lo: number, hi: number, maxBytes: number, maxCount: number): Entry[] | undefined {
    assert(lo <= hi && hi <= this.lastIndex() + 1, () => `slice [${lo}, ${hi}) outside log`);
    if (lo < this.firstIndex()) return undefined;
    hi = Math.min(hi, lo + maxCount);
    const out: Entry[] = [];
    let bytes = 0;
    const storedHi = Math.min(hi, this.unstableOffset);
    if (lo < storedHi) {
      for (const entry of this.storage.entries(lo, storedHi, maxBytes)) {
        bytes += entry.data.byteLength;
        if (out.length > 0 && bytes > maxBytes) return out;
        out.push(entry);
      }
      if (out.length < storedHi - lo) return out;
    }
    for (let i = Math.max(lo, this.unstableOffset); i < hi; i++) {
      const entry = this.unstable[i - this.unstableOffset];
      assert(entry !== undefined, () => `unstable entry ${i} missing`);
      bytes += entry.data.byteLength;
      if (out.length > 0 && bytes > maxBytes) break;
      out.push(entry);
    }
    return out;
  }

  /** True when a log ending at (`lastIndex`, `lastTerm`) is at least as up to date as ours (§5.4.1). */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const ourTerm = this.lastTerm();
    return lastTerm > ourTerm || (lastTerm === ourTerm && lastIndex >= this.lastIndex());
  }

  /**
   * Appends `entries` (indexes must follow on from some point of the log),
   * truncating any conflicting suffix. Returns the index from which the log
   * changed.
   */
  append(entries: readonly Entry[]): number {
    const first = entries[0];
    if (first === undefined) return this.lastIndex() + 1;
    assert(
      first.index > this.committed,
      () => `append at ${first.index} would overwrite committed ${this.committed}`,
    );
    assert(
      first.index <= this.lastIndex() + 1,
      () => `append at ${first.index} leaves a gap after ${this.lastIndex()}`,
    );
    if (first.index === this.unstableOffset + this.unstable.length) {
      for (const entry of entries) this.unstable.push(entry);
    } else if (first.index <= this.unstableOffset) {
      // Replaces stored entries from first.index on: they reach storage via Ready.
      this.unstableOffset = first.index;
      this.unstable = entries.slice();
    } else {
      this.unstable.length = first.index - this.unstableOffset;
      for (const entry of entries) this.unstable.push(entry);
    }
    return first.index;
  }

  /**
   * The follower side of AppendEntries (§5.3): if our log has an entry at
   * `prevIndex` with `prevTerm`, append what is new and advance commit.
   * Returns the index of the last new entry and where the log changed, or
   * undefined when the logs do not match at `prevIndex`.
   */
  maybeAppend(
    prevIndex: number,
    prevTerm: number,
    leaderCommit: number,
    entries: readonly Entry[],
  ): { lastNewIndex: number; changedFrom: number | undefined } | undefined {
    if (!this.matchTerm(prevIndex, prevTerm)) return undefined;
    const lastNewIndex = prevIndex + entries.length;
    const conflict = this.findConflict(entries);
    let changedFrom: number | undefined;
    if (conflict !== 0) {
      assert(
        conflict > this.committed,
        () => `entry ${conflict} conflicts with committed ${this.committed}`,
      );
      changedFrom = this.append(entries.slice(conflict - (prevIndex + 1)));
    }
    this.commitTo(Math.min(leaderCommit, lastNewIndex));
    return { lastNewIndex, changedFrom };
  }

  /**
   * Index of the first entry of `entries` that is new or whose term differs
   * from ours; 0 when all are already present.
   */
  findConflict(entries: readonly Entry[]): number {
    for (const entry of entries) {
      if (!this.matchTerm(entry.index, entry.term)) return entry.index;
    }
    return 0;
  }

  /**
   * Fast backtracking: the largest index <= `index` whose term is <= `term`
   * (and that term). A leader whose entry at the rejected index has `term`
   * can skip every index in between.
   */
  findConflictByTerm(index: number, term: number): { index: number; term: number } {
    for (let i = index; i >= 0; i--) {
      const ourTerm = this.term(i);
      if (ourTerm === undefined) return { index: i, term: 0 };
      if (ourTerm <= term) return { index: i, term: ourTerm };
    }
    return { index: 0, term: 0 };
  }

  commitTo(index: number): void {
    if (index <= this.committed) return;
    assert(
      index <= this.lastIndex(),
      () => `commit ${index} beyond last index ${this.lastIndex()}`,
    );
    this.committed = index;
  }

  /** Commits `index` if it is from `term` (§5.4.2: only current-term entries by counting). */
  maybeCommit(index: number, term: number): boolean {
    if (index > this.committed && this.term(index) === term) {
      this.commitTo(index);
      return true;
    }
    return false;
  }

  appliedTo(index: number): void {
    assert(
      index >= this.applied && index <= this.committed,
      () => `applied ${index} outside [${this.applied}, ${this.committed}]`,
    );
    this.applied = index;
  }

  /** Installs a snapshot received from the leader; the log restarts after it. */
  restore(meta: SnapshotMeta): void {
    this.unstableSnapshot = meta;
    this.unstable = [];
    this.unstableOffset = meta.index + 1;
    this.committed = meta.index;
    this.applied = meta.index;
  }

  /** Storage now holds entries through (`index`, `term`). */
  stableTo(index: number, term: number): void {
    if (index < this.unstableOffset) return;
    if (this.term(index) !== term) return; // replaced meanwhile; the new ones come next Ready
    const count = index - this.unstableOffset + 1;
    this.unstable = this.unstable.slice(count);
    this.unstableOffset = index + 1;
  }

  /** Storage now holds the snapshot at `index`. */
  stableSnapshotTo(index: number): void {
    if (this.unstableSnapshot?.index === index) this.unstableSnapshot = undefined;
  }

  /** Committed entries not yet handed to the state machine, bounded by `maxBytes`. */
  nextCommitted(maxBytes: number): Entry[] {
    if (this.committed <= this.applied) return [];
    const lo = this.applied + 1;
    assert(lo >= this.firstIndex(), () => `entry ${lo} to apply was compacted`);
    return this.slice(lo, this.committed + 1, maxBytes, Number.MAX_SAFE_INTEGER) ?? [];
  }
}
