/**
 * The simulator's world in isolation: PRNG, event queue, network, disk and
 * key/value state machine.
 */

import assert from "node:assert/strict";
import type { Entry, Message } from "../../lib/raft/types.ts";
import { SimDisk } from "../../lib/sim/disk.ts";
import { EventQueue, Scope, SimClock } from "../../lib/sim/events.ts";
import {
  decodeCommand,
  encodeCommand,
  type KvCommand,
  type KvResult,
  KvStateMachine,
} from "../../lib/sim/kv.ts";
import { RELIABLE_NETWORK, SimNetwork } from "../../lib/sim/network.ts";
import { Prng } from "../../lib/sim/prng.ts";

// ---------------------------------------------------------------- prng

Deno.test("prng: a seed replays the same stream; derived streams are independent", () => {
  const a = new Prng(42);
  const b = new Prng(42);
  const xs = Array.from({ length: 100 }, () => a.nextUint32());
  const ys = Array.from({ length: 100 }, () => b.nextUint32());
  assert.deepEqual(xs, ys);
  assert.notDeepEqual(xs, Array.from({ length: 100 }, () => new Prng(43).nextUint32()));
  // Deriving is a pure function of (seed, name) and does not consume the parent.
  const root = new Prng(7);
  const n1 = root.derive("network").nextUint32();
  root.nextUint32();
  assert.equal(root.derive("network").nextUint32(), n1);
  assert.notEqual(root.derive("disk").nextUint32(), n1);
});

Deno.test("prng: helpers stay in range and are roughly uniform", () => {
  const rng = new Prng(1);
  const counts = [0, 0, 0, 0, 0];
  for (let i = 0; i < 50_000; i++) {
    const x = rng.nextInt(5);
    assert.ok(x >= 0 && x < 5 && Number.isInteger(x));
    counts[x]!++;
  }
  for (const c of counts) assert.ok(c > 9_000 && c < 11_000, `bucket ${c}`);
  for (let i = 0; i < 1000; i++) {
    const r = rng.range(3, 6);
    assert.ok(r >= 3 && r <= 6);
    const f = rng.float();
    assert.ok(f >= 0 && f < 1);
  }
  assert.equal(rng.chance(0), false);
  assert.equal(rng.chance(1), true);
  assert.throws(() => rng.nextInt(0), RangeError);
  assert.throws(() => rng.pick([]), RangeError);
  assert.deepEqual(rng.shuffle([1, 2, 3, 4]).sort(), [1, 2, 3, 4]);
  assert.equal(rng.weighted([["a", 0], ["b", 1]]), "b");
});

// ---------------------------------------------------------------- events

Deno.test("events: run in (time, seq) order; cancel; run stops at the bound", () => {
  const q = new EventQueue();
  const seen: string[] = [];
  q.after(5, () => seen.push("b5"));
  q.after(1, () => seen.push("a1"));
  q.after(5, () => seen.push("c5"));
  const cancel = q.after(3, () => seen.push("never"));
  q.after(2, () => q.after(0, () => seen.push("nested2")));
  cancel();
  cancel();
  assert.equal(q.pending, 4);
  assert.equal(q.run(4), 3);
  assert.deepEqual(seen, ["a1", "nested2"]);
  assert.equal(q.nowMs, 4);
  q.run(Infinity);
  assert.deepEqual(seen, ["a1", "nested2", "b5", "c5"]);
  assert.equal(q.nowMs, 5);
  assert.equal(q.executed, 5);
});

Deno.test("events: maxEvents bounds a run; runUntil stops at the predicate", () => {
  const q = new EventQueue();
  let n = 0;
  const loop = () => {
    n++;
    q.after(1, loop);
  };
  q.after(0, loop);
  assert.equal(q.run(1_000, 10), 10);
  assert.equal(n, 10);
  assert.equal(q.runUntil(() => n >= 20, 1_000), true);
  assert.equal(n, 20);
  assert.equal(q.runUntil(() => n >= 1_000_000, 100), false);
  assert.equal(q.nowMs, 100);
});

Deno.test("events: a killed scope never runs its events again; SimClock follows the queue", () => {
  const q = new EventQueue();
  const scope = new Scope(q, "n1#1");
  const clock = new SimClock(scope);
  const seen: number[] = [];
  clock.after(10, () => seen.push(clock.nowMs()));
  clock.after(20, () => seen.push(clock.nowMs()));
  q.run(15);
  scope.kill();
  clock.after(1, () => seen.push(-1));
  q.run(100);
  assert.deepEqual(seen, [10]);
  assert.equal(scope.alive, false);
  assert.throws(() => clock.after(-1, () => {}), RangeError);
});

// ---------------------------------------------------------------- network

function msg(from: string, to: string, extra: Partial<Message> = {}): Message {
  return {
    kind: "append",
    from,
    to,
    term: 1,
    index: 0,
    logTerm: 0,
    entries: [],
    commit: 0,
    reject: false,
    rejectHint: 0,
    context: "",
    ...extra,
  };
}

function netWorld(options: Partial<typeof RELIABLE_NETWORK> = {}) {
  const q = new EventQueue();
  const net = new SimNetwork(q, new Prng(3), { ...RELIABLE_NETWORK, ...options });
  const got: Record<string, Message[]> = { a: [], b: [], c: [] };
  const snaps: [Message, Uint8Array][] = [];
  const scopes: Record<string, Scope> = {};
  const transports = Object.fromEntries(["a", "b", "c"].map((id) => {
    const scope = new Scope(q, id);
    scopes[id] = scope;
    const t = net.endpoint(id, scope);
    t.listen({
      onMessage: (m) => got[id]!.push(m),
      onSnapshot: (m, d) => snaps.push([m, d as Uint8Array]),
    });
    return [id, t];
  }));
  return { q, net, got, snaps, transports, scopes };
}

Deno.test("network: delivers after a delay, copies messages, reorders by delay", () => {
  const { q, got, transports } = netWorld({ delayMinMs: 1, delayMeanMs: 5 });
  const entry: Entry = { term: 1, index: 1, kind: "normal", data: new Uint8Array([1, 2, 3]) };
  for (let i = 0; i < 50; i++) transports.a!.send(msg("a", "b", { index: i, entries: [entry] }));
  assert.equal(got.b!.length, 0);
  q.run(Infinity);
  assert.equal(got.b!.length, 50);
  const first = got.b![0]!;
  assert.notEqual(first.entries[0], entry);
  assert.notEqual(first.entries[0]!.data, entry.data);
  assert.deepEqual(first.entries[0]!.data, entry.data);
  const order = got.b!.map((m) => m.index);
  assert.notDeepEqual(order, [...order].sort((x, y) => x - y), "independent delays reorder");
  assert.throws(() => transports.a!.send(msg("b", "c")), /claiming/);
});

Deno.test("network: drops, duplicates and counts them", () => {
  const lossy = netWorld({ dropRate: 1 });
  for (let i = 0; i < 20; i++) lossy.transports.a!.send(msg("a", "b"));
  lossy.q.run(Infinity);
  assert.equal(lossy.got.b!.length, 0);
  assert.equal(lossy.net.stats.drops, 20);

  const dup = netWorld({ dupRate: 1 });
  for (let i = 0; i < 20; i++) dup.transports.a!.send(msg("a", "b"));
  dup.q.run(Infinity);
  assert.equal(dup.got.b!.length, 40);
  assert.equal(dup.net.stats.dups, 20);

  const bounded = netWorld({ linkQueueMax: 5 });
  for (let i = 0; i < 20; i++) bounded.transports.a!.send(msg("a", "b"));
  bounded.q.run(Infinity);
  assert.equal(bounded.got.b!.length, 5);
  assert.equal(bounded.net.stats.queueDrops, 15);
});

Deno.test("network: partitions (one-way too) block at send and at delivery; heal restores", () => {
  const { q, net, got, transports } = netWorld();
  net.block("a", "b");
  transports.a!.send(msg("a", "b"));
  transports.b!.send(msg("b", "a"));
  q.run(Infinity);
  assert.equal(got.b!.length, 0);
  assert.equal(got.a!.length, 1, "the other direction still works");
  transports.a!.send(msg("a", "c"));
  net.split(["a"], ["c"]);
  q.run(Infinity);
  assert.equal(got.c!.length, 0, "a partition starting mid-flight drops the message");
  net.heal();
  transports.a!.send(msg("a", "b"));
  q.run(Infinity);
  assert.equal(got.b!.length, 1);
  assert.equal(net.stats.partitionDrops, 2);
});

Deno.test("network: snapshots arrive whole or not at all; the sender learns which", () => {
  const { q, net, snaps, transports, scopes } = netWorld({ snapshotBytesPerMs: 10 });
  const meta = {
    index: 5,
    term: 2,
    conf: { voters: ["a", "b"], learners: [], context: { a: "addr-a", b: "addr-b" } },
  };
  const outcomes: boolean[] = [];
  const data = new Uint8Array(1000).fill(7);
  transports.a!.sendSnapshot(
    msg("a", "b", { kind: "snapshot", snapshot: meta }),
    data,
    (ok) => outcomes.push(ok),
  );
  q.run(50);
  assert.equal(snaps.length, 0, "1000 bytes at 10 bytes/ms take 100 ms");
  q.run(Infinity);
  assert.equal(snaps.length, 1);
  assert.deepEqual(snaps[0]![1], data);
  assert.notEqual(snaps[0]![1], data);
  assert.deepEqual(outcomes, [true]);
  assert.deepEqual(snaps[0]![0].snapshot, meta);

  net.block("a", "c");
  transports.a!.sendSnapshot(
    msg("a", "c", { kind: "snapshot", snapshot: meta }),
    data,
    (ok) => outcomes.push(ok),
  );
  q.run(Infinity);
  assert.deepEqual(outcomes, [true, false]);

  // A sender that crashed never hears back.
  transports.a!.sendSnapshot(
    msg("a", "b", { kind: "snapshot", snapshot: meta }),
    data,
    (ok) => outcomes.push(ok),
  );
  scopes.a!.kill();
  q.run(Infinity);
  assert.deepEqual(outcomes, [true, false]);
  assert.equal(snaps.length, 2, "the data still arrived");
});

Deno.test("network: messages to a closed or crashed endpoint are dropped", () => {
  const { q, net, got, transports, scopes } = netWorld();
  transports.a!.send(msg("a", "b"));
  scopes.b!.kill();
  q.run(Infinity);
  assert.equal(got.b!.length, 0);
  transports.c!.close();
  transports.a!.send(msg("a", "c"));
  q.run(Infinity);
  assert.equal(got.c!.length, 0);
  assert.equal(net.stats.deadDrops, 2);
});

// ---------------------------------------------------------------- disk

function entries(from: number, to: number, term = 1): Entry[] {
  const out: Entry[] = [];
  for (let i = from; i <= to; i++) {
    out.push({ term, index: i, kind: "normal", data: new Uint8Array([i]) });
  }
  return out;
}

function diskWorld(tornRate = 0, bug = false) {
  const q = new EventQueue();
  const disk = new SimDisk("n1", q, new Prng(9), {
    latencyMinMs: 1,
    latencyMeanMs: 1,
    spikeRate: 0,
    spikeMs: 0,
    tornRate,
    bugLoseCompletedOnCrash: bug,
  });
  const scope = new Scope(q, "n1#1");
  return { q, disk, scope, ...disk.open(scope) };
}

Deno.test("disk: writes are visible at once, durable after their latency", () => {
  const { q, disk, logStore, stableStore } = diskWorld();
  let done = 0;
  logStore.append(entries(1, 3), () => done++);
  stableStore.setHardState({ term: 1, vote: "n1", commit: 0 }, () => done++);
  assert.equal(logStore.lastIndex(), 3);
  assert.equal(disk.durable.log.lastIndex(), 0);
  assert.equal(done, 0);
  q.run(Infinity);
  assert.equal(done, 2);
  assert.equal(disk.durable.log.lastIndex(), 3);
  assert.equal(disk.durable.hardState.vote, "n1");
  assert.throws(() => logStore.term(7), RangeError);
  assert.throws(() => logStore.entries(0, 2, 100), RangeError);
  assert.deepEqual(logStore.entries(1, 4, 1).map((e) => e.index), [1], "at least one, then bytes");
  assert.deepEqual(logStore.entries(1, 4, 100).map((e) => e.index), [1, 2, 3]);
});

Deno.test("disk: a crash loses in-flight writes and keeps completed ones", () => {
  const { q, disk, scope, logStore, stableStore } = diskWorld();
  logStore.append(entries(1, 3), () => {});
  q.run(Infinity);
  let done = 0;
  logStore.append(entries(4, 6), () => done++);
  stableStore.setHardState({ term: 2, vote: "n2", commit: 3 }, () => done++);
  scope.kill();
  disk.crash();
  q.run(Infinity);
  assert.equal(done, 0, "a crashed incarnation hears nothing");
  const after = disk.open(new Scope(q, "n1#2"));
  assert.equal(after.logStore.lastIndex(), 3);
  assert.equal(after.stableStore.hardState().term, 0);
  assert.equal(disk.stats.lostWrites, 2);
});

Deno.test("disk: a torn append keeps a prefix of its entries", () => {
  const { q, disk, logStore } = diskWorld(1);
  logStore.append(entries(1, 2), () => {});
  q.run(Infinity);
  logStore.append(entries(3, 10), () => {});
  disk.crash();
  const last = disk.visible.log.lastIndex();
  assert.ok(last >= 3 && last <= 10, `torn to ${last}`);
  assert.equal(disk.stats.tornWrites, 1);
});

Deno.test("disk: a torn truncating append may drop the old suffix; a torn reset empties the log", () => {
  const seen = new Set<number>();
  for (let seed = 0; seed < 40; seed++) {
    const q = new EventQueue();
    const disk = new SimDisk("n1", q, new Prng(seed), {
      latencyMinMs: 1,
      latencyMeanMs: 1,
      spikeRate: 0,
      spikeMs: 0,
      tornRate: 1,
    });
    const { logStore } = disk.open(new Scope(q, "n1#1"));
    logStore.append(entries(1, 5), () => {});
    q.run(Infinity);
    logStore.append(entries(3, 6, 2), () => {});
    disk.crash();
    const last = disk.visible.log.lastIndex();
    seen.add(last);
    assert.ok(last >= 2 && last <= 6, `torn to ${last}`);
    if (last >= 3) assert.equal(disk.visible.log.term(3), 2, "the new batch's prefix");
  }
  assert.ok(seen.has(2), "truncated with nothing appended happens");
  const { q, disk, logStore } = diskWorld(1);
  logStore.append(entries(1, 5), () => {});
  q.run(Infinity);
  logStore.reset({ index: 10, term: 3, conf: { voters: [], learners: [] } }, () => {});
  disk.crash();
  assert.equal(disk.visible.log.firstIndex(), 1, "the old compaction point");
  assert.equal(disk.visible.log.lastIndex(), 0, "the old segments are gone");
});

Deno.test("disk: a truncating append and per-file FIFO completion", () => {
  const { q, disk, logStore } = diskWorld();
  const order: string[] = [];
  logStore.append(entries(1, 5, 1), () => order.push("append1"));
  logStore.compact(2, 1, () => order.push("compact"));
  assert.throws(() => logStore.append(entries(6, 6), () => {}), /in flight/);
  q.run(Infinity);
  logStore.append(entries(4, 4, 2), () => order.push("append2"));
  q.run(Infinity);
  assert.deepEqual(order, ["append1", "compact", "append2"]);
  assert.equal(disk.durable.log.firstIndex(), 3);
  assert.equal(disk.durable.log.lastIndex(), 4);
  assert.equal(logStore.term(4), 2);
  assert.equal(logStore.term(2), 1, "the compaction point keeps its term");
  assert.throws(() => logStore.append(entries(5, 5, 1), () => {}), /terms go back/);
  logStore.reset({ index: 20, term: 3, conf: { voters: [], learners: [] } }, () => {});
  assert.equal(logStore.firstIndex(), 21);
  assert.equal(logStore.term(20), 3);
});

Deno.test("disk: hard state never goes back; snapshots keep the newest", () => {
  const { q, stableStore, snapshotStore } = diskWorld();
  const withContext = { voters: ["a"], learners: [], context: { a: "addr-a" } };
  snapshotStore.write({ index: 1, term: 1, conf: withContext }, new Uint8Array(), () => {});
  assert.deepEqual(snapshotStore.latest()?.conf, withContext, "metadata is kept whole");
  stableStore.setHardState({ term: 3, vote: "a", commit: 0 }, () => {});
  assert.throws(() => stableStore.setHardState({ term: 2, vote: "", commit: 0 }, () => {}));
  assert.throws(() => stableStore.setHardState({ term: 3, vote: "b", commit: 0 }, () => {}));
  const conf = { voters: ["a"], learners: [] };
  snapshotStore.write({ index: 10, term: 2, conf }, new Uint8Array([1]), () => {});
  snapshotStore.write({ index: 5, term: 2, conf }, new Uint8Array([2]), () => {});
  q.run(Infinity);
  assert.equal(snapshotStore.latest()?.index, 10);
  assert.deepEqual(snapshotStore.read({ index: 10, term: 2, conf }), new Uint8Array([1]));
  assert.throws(() => snapshotStore.read({ index: 5, term: 2, conf }));
});

Deno.test("disk: the broken world loses a completed append on crash", () => {
  const { q, disk, logStore } = diskWorld(0, true);
  logStore.append(entries(1, 3), () => {});
  q.run(Infinity);
  logStore.append(entries(4, 5), () => {});
  q.run(Infinity);
  disk.crash();
  assert.equal(disk.visible.log.lastIndex(), 3);
  assert.equal(disk.stats.bugLostEntries, 2);
});

// ---------------------------------------------------------------- kv

function kvWorld() {
  const q = new EventQueue();
  const scope = new Scope(q, "n1#1");
  const kv = new KvStateMachine("n1", scope, new Prng(5), { latencyMaxMs: 2 });
  return { q, kv, scope };
}

function cmdEntry(index: number, cmd: KvCommand | undefined, term = 1): Entry {
  return {
    term,
    index,
    kind: "normal",
    data: cmd === undefined ? new Uint8Array() : encodeCommand(cmd),
  };
}

Deno.test("kv: commands encode, apply in order with results", () => {
  const { q, kv } = kvWorld();
  const put: KvCommand = { op: "put", id: "c1", key: "x", value: "1" };
  assert.deepEqual(decodeCommand(encodeCommand(put)), put);
  let results: unknown[] = [];
  kv.apply([
    cmdEntry(1, undefined),
    cmdEntry(2, put),
    cmdEntry(3, { op: "cas", id: "c2", key: "x", expected: "1", value: "2" }),
    cmdEntry(4, { op: "cas", id: "c3", key: "x", expected: null, value: "3" }),
    cmdEntry(5, { op: "get", id: "c4", key: "x" }),
    cmdEntry(6, { op: "noop", id: "c5" }),
  ], (r) => results = r);
  assert.equal(kv.appliedIndex, 0, "applies complete asynchronously");
  q.run(Infinity);
  assert.equal(kv.appliedIndex, 6);
  const r = results as (KvResult | undefined)[];
  assert.equal(r[0], undefined);
  assert.deepEqual(r[1], { ok: true, value: "1", id: "c1" });
  assert.deepEqual(r[2], { ok: true, value: "1", id: "c2" });
  assert.deepEqual(r[3], { ok: false, value: "2", id: "c3" });
  assert.deepEqual(r[4], { ok: true, value: "2", id: "c4" });
  assert.equal(kv.read("x"), "2");
  assert.equal(kv.read("y"), null);
  kv.apply([cmdEntry(8, put)], () => {});
  assert.throws(() => q.run(Infinity), /apply of entry 8 after applied index 6/);
});

Deno.test("kv: snapshot/restore round-trips; hashes track state and index", () => {
  const a = kvWorld();
  a.kv.apply([cmdEntry(1, { op: "put", id: "1", key: "k", value: "v" })], () => {});
  let data: Uint8Array = new Uint8Array();
  a.kv.snapshot((_err, d) => data = d);
  a.q.run(Infinity);
  const b = kvWorld();
  const meta = { index: 1, term: 1, conf: { voters: ["n1"], learners: [] } };
  let restored = false;
  b.kv.restore(meta, data, () => restored = true);
  b.q.run(Infinity);
  assert.ok(restored);
  assert.equal(b.kv.read("k"), "v");
  assert.equal(b.kv.appliedIndex, 1);
  assert.equal(a.kv.stateHash(), b.kv.stateHash());
  b.kv.apply([cmdEntry(2, { op: "noop", id: "2" })], () => {});
  b.q.run(Infinity);
  assert.notEqual(a.kv.stateHash(), b.kv.stateHash(), "the applied index is part of the hash");
  const c = kvWorld();
  c.kv.restore({ ...meta, index: 2 }, data, () => {});
  assert.throws(() => c.q.run(Infinity), /labelled 2@1 whose data is as of index 1/);
});
