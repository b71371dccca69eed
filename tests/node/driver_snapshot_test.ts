/**
 * Driver snapshot triggers beyond the entry threshold: the timer
 * (-raft-snap-int), forced snapshots (POST /snapshot) with their trailing
 * override, and a state machine that already holds its state at start
 * (-on-disk with a matching fingerprint).
 */

import assert from "node:assert/strict";
import type { SnapshotMeta } from "../../lib/raft/types.ts";
import { Cluster, KvMachine } from "./helpers.ts";

function single(options: ConstructorParameters<typeof Cluster>[1] = {}) {
  const c = new Cluster(1, { bootstrap: ["a"], ...options });
  const a = c.add("a");
  c.waitLeader();
  return { c, a };
}

function snapshotNow(
  c: Cluster,
  trailing: number | undefined,
): { err?: Error; meta?: SnapshotMeta; done: boolean } {
  const out: { err?: Error; meta?: SnapshotMeta; done: boolean } = { done: false };
  c.node("a").driver.snapshotNow(trailing, (err, meta) => {
    out.err = err;
    out.meta = meta;
    out.done = true;
  });
  c.runUntil(() => out.done, 5_000, "snapshotNow to answer");
  return out;
}

Deno.test("snapshot interval: snapshots on the timer only when something was applied", () => {
  const taken: SnapshotMeta[] = [];
  const { c, a } = single({
    snapshotIntervalMs: 1_000,
    observer: { onSnapshotTaken: (_id, meta) => taken.push(meta) },
  });
  c.run(1_500);
  const idle = taken.length;
  // The bootstrap entries and the leader's no-op were applied: at most one snapshot for them.
  assert.ok(idle <= 1, `idle node took ${idle} snapshots`);
  c.run(5_000);
  assert.equal(taken.length, idle, "no new snapshot while nothing changes");
  c.put(a, "k", "v");
  c.run(1_100);
  assert.equal(taken.length, idle + 1, "one snapshot after a change");
  assert.equal(taken.at(-1)?.index, a.driver.status().appliedIndex);
  c.stopAll();
});

Deno.test("snapshotNow: takes one, compacts to the given trailing entries, then reports nothing new", () => {
  const { c, a } = single({ trailingEntries: 100 });
  for (let i = 0; i < 20; i++) c.put(a, `k${i}`, `v${i}`);
  const applied = a.driver.status().appliedIndex;
  const first = snapshotNow(c, 0);
  assert.equal(first.err, undefined);
  assert.equal(first.meta?.index, applied);
  assert.equal(a.logStore.firstIndex(), applied + 1, "trailing 0 drops the whole log");
  assert.equal(a.driver.status().snapshotsTaken, 1);
  const again = snapshotNow(c, undefined);
  assert.equal(again.err, undefined);
  assert.equal(again.meta, undefined, "nothing applied since: nothing to snapshot (HTTP 204)");
  c.put(a, "more", "x");
  const third = snapshotNow(c, undefined);
  assert.equal(third.meta?.index, applied + 1);
  // Trailing 100 keeps everything still in the log (it already starts after the first snapshot).
  assert.equal(a.logStore.firstIndex(), applied + 1);
  c.stopAll();
});

Deno.test("stateMachineIndex: a state machine already at an index skips the restore and replays after it", () => {
  const { c, a } = single({ snapshotThreshold: 5, trailingEntries: 50 });
  for (let i = 0; i < 12; i++) c.put(a, `k${i}`, `v${i}`);
  const snap = a.snapshotStore.latest();
  assert.ok(snap !== undefined && snap.index < a.driver.status().appliedIndex);
  const before = new Map(a.sm.map);
  // The "database file" holds the state as of the snapshot (a machine
  // restored by hand); the driver is told so and must not restore again,
  // only replay the entries after it.
  const held = new KvMachine();
  held.restore(snap, a.snapshotStore.read(snap), () => {});
  const restoresByHand = held.restores;
  c.restart("a", { stateMachine: held, stateMachineIndex: snap.index });
  c.waitLeader();
  c.runUntil(() => held.map.size === before.size, 5_000, "replay after the held index");
  assert.equal(held.restores, restoresByHand, "the driver did not restore");
  assert.deepEqual(held.map, before);
  c.put(a, "after", "restart");
  assert.equal(held.map.get("after"), "restart");
  c.stopAll();
});

Deno.test("snapshotNow force: takes a snapshot even when nothing is new (replacing a damaged one)", () => {
  const { c, a } = single();
  c.put(a, "k", "v");
  const first = snapshotNow(c, undefined);
  assert.ok(first.meta !== undefined);
  assert.equal(snapshotNow(c, undefined).meta, undefined, "nothing new");
  const out: { meta?: SnapshotMeta; done: boolean } = { done: false };
  a.driver.snapshotNow(undefined, (_err, meta) => {
    out.meta = meta;
    out.done = true;
  }, { force: true });
  c.runUntil(() => out.done, 5_000, "forced snapshot");
  assert.deepEqual(out.meta, first.meta, "same index, taken again");
  assert.equal(a.driver.status().snapshotsTaken, 2);
  c.stopAll();
});

Deno.test("commit hint: written off the write path, a little later or on flushCommitHint", () => {
  const { c, a } = single();
  const writesBefore = a.stableStore.hardState().commit;
  c.put(a, "k1", "v1");
  const applied = a.driver.status().appliedIndex;
  // The write was answered without a hard state write for its commit.
  assert.ok(a.stableStore.hardState().commit < applied, "the commit hint lags right after");
  c.run(50);
  assert.equal(a.stableStore.hardState().commit, applied, "written shortly after");
  c.put(a, "k2", "v2");
  let flushed = false;
  a.driver.flushCommitHint(() => (flushed = true));
  c.runUntil(() => flushed, 1_000, "flush");
  assert.equal(a.stableStore.hardState().commit, a.driver.status().appliedIndex);
  assert.ok(a.stableStore.hardState().commit > writesBefore);
  c.stopAll();
});
