/**
 * The driver against in-memory stores, a loopback network and a manual
 * clock: bootstrap, replication, group commit, ReadIndex, leader failure,
 * snapshots and compaction, a node joining through a snapshot, restarts,
 * storage failures and stop.
 */

import assert from "node:assert/strict";
import { DriverStoppedError, OutcomeUnknownError, RaftDriver } from "../../lib/node/driver.ts";
import {
  ManualClock,
  MemoryLogStore,
  MemorySnapshotStore,
  MemoryStableStore,
  MemoryTransportHub,
} from "../../lib/node/memory.ts";
import { NotLeaderError, ProposalDroppedError } from "../../lib/raft/errors.ts";
import type { Entry, Ready, SnapshotMeta } from "../../lib/raft/types.ts";
import { Cluster, KvMachine, type ProposalHandle, setCmd, testRandom } from "./helpers.ts";

function threeNodes(options: ConstructorParameters<typeof Cluster>[1] = {}): Cluster {
  const c = new Cluster(1, { bootstrap: ["a", "b", "c"], ...options });
  for (const id of ["a", "b", "c"]) c.add(id);
  return c;
}

function assertSameState(c: Cluster, ids: readonly string[]): void {
  const dumps = ids.map((id) => c.node(id).sm.dump());
  for (const [i, d] of dumps.entries()) assert.equal(d, dumps[0], `node ${ids[i]} differs`);
}

Deno.test("single node: bootstrap, elect itself, propose, get the result", () => {
  const c = new Cluster(1, { bootstrap: ["a"] });
  const a = c.add("a");
  assert.equal(a.logStore.lastIndex(), 1, "bootstrap entry persisted");
  assert.deepEqual(a.stableStore.hardState(), { term: 1, vote: "", commit: 1 });
  c.waitLeader();
  const first = c.put(a, "x", "1");
  assert.equal(first.result, null);
  const second = c.put(a, "x", "2");
  assert.equal(second.result, "1");
  assert.equal(second.index, first.index + 1);
  assert.equal(a.sm.map.get("x"), "2");
  const st = a.driver.status();
  assert.equal(st.appliedIndex, second.index);
  assert.equal(st.pendingProposals, 0);
  c.stopAll();
});

Deno.test("three nodes: a leader is elected and every node applies the same commands", () => {
  const c = threeNodes();
  const leader = c.waitLeader();
  for (let i = 0; i < 10; i++) c.put(leader, `k${i}`, `v${i}`);
  c.runUntil(() => [...c.nodes.values()].every((n) => n.sm.map.size === 10));
  assertSameState(c, ["a", "b", "c"]);
  const follower = [...c.nodes.values()].find((n) => n !== leader);
  assert.ok(follower);
  const refused = c.propose(follower, "k", "v");
  assert.ok(refused.done && refused.err instanceof NotLeaderError);
  assert.equal((refused.err as NotLeaderError).leader, leader.id);
  c.stopAll();
});

Deno.test("group commit: proposals from many callers between two Readies share one append", () => {
  const c = threeNodes();
  const leader = c.waitLeader();
  c.put(leader, "warm", "up");
  c.run(50);
  const appendsBefore = leader.logStore.appendCalls;
  const handles: ProposalHandle[] = [];
  for (let i = 0; i < 50; i++) handles.push(c.propose(leader, `k${i}`, `v${i}`));
  c.runUntil(() => handles.every((h) => h.done));
  assert.equal(leader.logStore.appendCalls - appendsBefore, 1, "one append for 50 proposals");
  const indexes = handles.map((h) => h.index);
  for (const [i, h] of handles.entries()) {
    assert.equal(h.err, undefined);
    assert.equal(h.index, indexes[0]! + i, "consecutive indexes in call order");
  }
  c.stopAll();
});

Deno.test("group commit: proposals made while a Ready is in flight go into the next one", () => {
  // One node whose log store completes only when the test says so.
  const clock = new ManualClock();
  const gate: (() => void)[] = [];
  const logStore = new MemoryLogStore({ defer: (fn) => gate.push(fn) });
  const readies: Ready[] = [];
  const sm = new KvMachine();
  const driver = new RaftDriver({
    id: "a",
    clock,
    logStore,
    stableStore: new MemoryStableStore(),
    snapshotStore: new MemorySnapshotStore(),
    stateMachine: sm,
    transport: new MemoryTransportHub().transport("a"),
    random: testRandom(3),
    tickMs: 10,
    bootstrap: ["a"],
    observer: { onReady: (_id, rd) => readies.push(rd) },
  });
  driver.start((err) => assert.equal(err, undefined));
  gate.shift()?.(); // the bootstrap append
  const release = () => {
    for (let i = 0; i < 100 && gate.length > 0; i++) gate.shift()?.();
  };
  for (let t = 0; t < 100 && driver.status().role !== "leader"; t++) {
    clock.advance(10);
    release();
  }
  assert.equal(driver.status().role, "leader");
  clock.advance(10);
  release();
  const appendsBefore = logStore.appendCalls;
  const results: unknown[] = [];
  driver.propose(setCmd("first", "1"), (err, result) => results.push(err ?? result));
  clock.advance(0); // the first Ready goes out and waits on the gate
  assert.equal(logStore.appendCalls - appendsBefore, 1);
  for (let i = 0; i < 20; i++) {
    driver.propose(setCmd(`k${i}`, "v"), (err, result) => results.push(err ?? result));
  }
  clock.advance(5);
  assert.equal(
    logStore.appendCalls - appendsBefore,
    1,
    "nothing more while the append is in flight",
  );
  gate.shift()?.(); // first append durable -> next Ready carries all 20
  assert.equal(logStore.appendCalls - appendsBefore, 2);
  const last = readies.at(-1);
  assert.ok(last);
  assert.equal(last.entries.length, 20);
  gate.shift()?.();
  clock.advance(0);
  release();
  assert.equal(results.length, 21);
  assert.ok(results.every((r) => r === null));
  driver.stop();
});

Deno.test("readIndex: resolves after apply; refused on followers", () => {
  const c = threeNodes();
  const leader = c.waitLeader();
  const put = c.put(leader, "x", "1");
  let readAt = -1;
  let appliedAtRead = -1;
  leader.driver.readIndex((err, index) => {
    assert.equal(err, undefined);
    readAt = index;
    appliedAtRead = leader.sm.appliedIndex;
  });
  c.runUntil(() => readAt >= 0);
  assert.ok(readAt >= put.index, `read index ${readAt} covers the acknowledged write ${put.index}`);
  assert.ok(appliedAtRead >= readAt);
  const follower = [...c.nodes.values()].find((n) => n !== leader);
  assert.ok(follower);
  let refusal: Error | undefined;
  follower.driver.readIndex((err) => (refusal = err));
  assert.ok(refusal instanceof NotLeaderError);
  // Many reads in one batch share one ReadIndex round.
  const indexes: number[] = [];
  for (let i = 0; i < 10; i++) leader.driver.readIndex((_e, index) => indexes.push(index));
  c.runUntil(() => indexes.length === 10);
  assert.equal(new Set(indexes).size, 1);
  c.stopAll();
});

Deno.test("leader stop: its pending proposal fails, a new leader takes over", () => {
  const c = threeNodes();
  const old = c.waitLeader();
  c.put(old, "before", "1");
  const pending = c.propose(old, "lost?", "x");
  old.driver.stop();
  assert.ok(pending.done && pending.err instanceof DriverStoppedError);
  const rest = ["a", "b", "c"].filter((id) => id !== old.id);
  const next = c.waitLeader(rest);
  assert.notEqual(next.id, old.id);
  c.put(next, "after", "2");
  c.runUntil(() => rest.every((id) => c.node(id).sm.map.get("after") === "2"));
  assertSameState(c, rest);
  const late = c.propose(old, "k", "v");
  assert.ok(late.err instanceof DriverStoppedError, "a stopped driver refuses at once");
  c.stopAll();
});

Deno.test("isolated leader: on stepping down its pending proposals end as outcome unknown, reads fail", () => {
  const c = threeNodes();
  const old = c.waitLeader();
  c.put(old, "k", "committed");
  c.isolate(old.id);
  const orphans = [c.propose(old, "k", "orphan1"), c.propose(old, "k", "orphan2")];
  let readErr: Error | undefined;
  old.driver.readIndex((err) => (readErr = err ?? new Error("read served by a cut-off leader")));
  const rest = ["a", "b", "c"].filter((id) => id !== old.id);
  const next = c.waitLeader(rest);
  c.put(next, "k", "winner");
  c.runUntil(() => readErr !== undefined, 10_000, "the cut-off leader to step down");
  assert.ok(readErr instanceof NotLeaderError, `read failed with ${readErr}`);
  // Leadership lost: the callers learn at once that the outcome is unknown
  // instead of waiting for their timeout (rqlite: leadership lost while committing log).
  c.runUntil(() => orphans.every((h) => h.done), 10_000, "orphans resolved");
  for (const h of orphans) {
    assert.ok(h.err instanceof OutcomeUnknownError, `orphan got ${h.err}`);
    assert.match(h.err.message, /leadership lost/);
  }
  c.heal();
  c.runUntil(() => old.sm.map.get("k") === "winner");
  assertSameState(c, ["a", "b", "c"]);
  c.stopAll();
});

Deno.test("snapshots: taken every threshold entries, log compacted behind them", () => {
  const taken: SnapshotMeta[] = [];
  const c = threeNodes({
    snapshotThreshold: 10,
    trailingEntries: 2,
    observer: { onSnapshotTaken: (id, meta) => id === "a" && taken.push(meta) },
  });
  const leader = c.waitLeader();
  for (let i = 0; i < 35; i++) c.put(leader, `k${i % 7}`, `v${i}`);
  c.runUntil(() => [...c.nodes.values()].every((n) => n.sm.map.get("k6") === "v34"));
  c.run(100);
  const a = c.node("a");
  assert.ok(taken.length >= 3, `snapshots taken on a: ${taken.length}`);
  const latest = a.snapshotStore.latest();
  assert.ok(latest);
  assert.deepEqual(latest, taken.at(-1));
  assert.deepEqual(latest.conf, { voters: ["a", "b", "c"], learners: [] });
  assert.equal(latest.term, a.logStore.term(latest.index));
  assert.equal(a.logStore.firstIndex(), latest.index - 2 + 1, "two trailing entries kept");
  assert.equal(a.driver.status().snapshotIndex, latest.index);
  // The snapshot data is the state as of its index.
  const check = new KvMachine();
  check.restore(latest, a.snapshotStore.read(latest), () => {});
  assert.equal(check.appliedIndex, latest.index);
  assertSameState(c, ["a", "b", "c"]);
  c.stopAll();
});

Deno.test("a node added later catches up through a snapshot after compaction", () => {
  const c = threeNodes({ snapshotThreshold: 8, trailingEntries: 0 });
  const leader = c.waitLeader();
  for (let i = 0; i < 30; i++) c.put(leader, `k${i}`, `v${i}`);
  c.run(100);
  assert.ok(leader.logStore.firstIndex() > 10, "leader compacted its log");
  const d = c.add("d"); // empty stores, no bootstrap
  let added: { err: Error | undefined; index: number } | undefined;
  leader.driver.proposeConfChange({ kind: "addVoter", node: "d" }, (err, index) => {
    added = { err, index };
  });
  c.runUntil(() => added !== undefined);
  assert.equal(added?.err, undefined);
  c.runUntil(() => d.sm.map.size === 30, 10_000, "d to catch up");
  assert.ok(d.sm.restores >= 1, "d was restored from a snapshot");
  assert.ok(d.snapshotStore.latest() !== undefined);
  c.put(leader, "after", "join");
  c.runUntil(() => d.sm.map.get("after") === "join");
  assertSameState(c, ["a", "b", "c", "d"]);
  assert.deepEqual(d.driver.status().conf.voters, ["a", "b", "c", "d"]);
  c.stopAll();
});

Deno.test("restart: a new driver on the same stores rebuilds the same state", () => {
  const c = threeNodes({ snapshotThreshold: 6, trailingEntries: 1 });
  let leader = c.waitLeader();
  for (let i = 0; i < 20; i++) c.put(leader, `k${i % 5}`, `v${i}`);
  c.runUntil(() => [...c.nodes.values()].every((n) => n.sm.map.get("k4") === "v19"));
  const victim = [...c.nodes.values()].find((n) => n !== leader);
  assert.ok(victim);
  const before = victim.sm.dump();
  const hsBefore = victim.stableStore.hardState();
  c.restart(victim.id);
  assert.equal(victim.sm.dump(), before, "snapshot + log replay give the same state");
  assert.ok(victim.sm.restores === 1, "restored from its snapshot");
  assert.equal(victim.stableStore.hardState().term, hsBefore.term);
  leader = c.waitLeader();
  c.put(leader, "k0", "after");
  c.runUntil(() => victim.sm.map.get("k0") === "after");
  assertSameState(c, ["a", "b", "c"]);
  // Restart every node at once (a full cluster restart).
  for (const id of ["a", "b", "c"]) c.restart(id);
  leader = c.waitLeader();
  c.put(leader, "k1", "again");
  c.runUntil(() => [...c.nodes.values()].every((n) => n.sm.map.get("k1") === "again"));
  assertSameState(c, ["a", "b", "c"]);
  c.stopAll();
});

Deno.test("restart without snapshots replays the whole log", () => {
  const c = new Cluster(1, { bootstrap: ["a"] });
  const a = c.add("a");
  c.waitLeader();
  for (let i = 0; i < 5; i++) c.put(a, `k${i}`, `v${i}`);
  const before = a.sm.dump();
  c.restart("a");
  c.runUntil(() => a.sm.map.size === 5);
  assert.equal(a.sm.dump(), before);
  assert.equal(a.sm.restores, 0);
  c.stopAll();
});

Deno.test("membership change callback and entries reach the state machine in order", () => {
  const applied: Entry[] = [];
  const c = new Cluster(1, {
    bootstrap: ["a"],
    observer: { onApplied: (id, entries) => id === "a" && applied.push(...entries) },
  });
  const a = c.add("a");
  c.waitLeader();
  c.put(a, "x", "1");
  let learner: number | undefined;
  const b = c.add("b");
  a.driver.proposeConfChange({ kind: "addLearner", node: "b" }, (err, index) => {
    assert.equal(err, undefined);
    learner = index;
  });
  c.runUntil(() => learner !== undefined);
  c.runUntil(() => b.sm.map.get("x") === "1", 10_000, "the learner to receive the log");
  for (const [i, e] of applied.entries()) assert.equal(e.index, i + 1);
  assert.ok(applied.some((e) => e.kind === "config" && e.index === learner));
  c.stopAll();
});

Deno.test("storage failure stops the node and reports through onFatal", () => {
  const c = new Cluster(1, { bootstrap: ["a"] });
  const fatal: Error[] = [];
  const a = c.add("a", { onFatal: (err) => fatal.push(err) });
  c.waitLeader();
  c.put(a, "x", "1");
  a.logStore.append = (_entries, done) => done(new Error("disk full"));
  const h = c.propose(a, "y", "2");
  c.run(50);
  assert.equal(fatal.length, 1);
  assert.match(fatal[0]!.message, /disk full/);
  assert.ok(h.done && h.err instanceof DriverStoppedError);
  assert.match(h.err.message, /disk full/);
  const late = c.propose(a, "z", "3");
  assert.ok(late.err instanceof DriverStoppedError);
  assert.equal(c.clock.pending, 0, "no timers left behind");
});

Deno.test("stop: idempotent, fails pending reads and proposals, cancels timers", () => {
  const c = threeNodes();
  const leader = c.waitLeader();
  const errors: unknown[] = [];
  leader.driver.readIndex((err) => errors.push(err));
  leader.driver.propose(setCmd("k", "v"), (err) => errors.push(err));
  c.stopAll();
  c.stopAll();
  assert.equal(errors.length, 2);
  assert.ok(errors.every((e) => e instanceof DriverStoppedError));
  c.run(1000);
  assert.equal(c.clock.pending, 0);
});

Deno.test("too many pending proposals are refused", () => {
  const c = new Cluster(1, { bootstrap: ["a"], maxPendingProposals: 3 });
  const a = c.add("a");
  c.waitLeader();
  const hs = [0, 1, 2, 3].map((i) => c.propose(a, `k${i}`, "v"));
  assert.ok(hs[3]?.done && hs[3].err instanceof ProposalDroppedError);
  c.runUntil(() => hs.slice(0, 3).every((h) => h.done));
  assert.ok(hs.slice(0, 3).every((h) => h.err === undefined));
  c.stopAll();
});

Deno.test("a follower acknowledges entries only once they are durable", () => {
  const c = new Cluster(1, { bootstrap: ["a", "b", "c"] });
  let hold = false;
  const held: (() => void)[] = [];
  const gated = (fn: () => void) => {
    if (hold) held.push(fn);
    else c.clock.after(0, fn);
  };
  c.add("a");
  c.add("b");
  c.add("c", {}, gated);
  let leader = c.waitLeader();
  if (leader.id === "c") {
    leader.driver.transferLeadership("a");
    c.runUntil(() => c.leaders().length === 1 && c.leaders()[0]?.id === "a");
    leader = c.node("a");
  }
  c.put(leader, "warm", "up");
  c.run(50);
  const follower = c.node("c");
  hold = true;
  const h = c.propose(leader, "x", "1");
  c.runUntil(() => h.done); // a and b form the quorum
  c.run(100);
  const matchHeld = leader.driver.status().progress.get("c")?.match ?? -1;
  assert.ok(
    matchHeld < h.index,
    `c acked ${matchHeld} before its append of ${h.index} was durable`,
  );
  assert.ok(follower.logStore.lastIndex() >= h.index, "c received the entry (write in flight)");
  hold = false;
  while (held.length > 0) held.shift()?.();
  c.run(50);
  assert.ok((leader.driver.status().progress.get("c")?.match ?? 0) >= h.index);
  c.stopAll();
});

Deno.test("start: a snapshot newer than the log (crash before the log reset) resets the log", () => {
  const clock = new ManualClock();
  const logStore = new MemoryLogStore();
  const stableStore = new MemoryStableStore();
  const snapshotStore = new MemorySnapshotStore();
  const noop = () => {};
  const seed = new KvMachine();
  seed.restore(
    { index: 0, term: 0, conf: { voters: [], learners: [] } },
    new TextEncoder().encode(JSON.stringify({ applied: 0, map: [] })),
    noop,
  );
  // State as of index 10: x=10.
  const entries: Entry[] = [];
  for (let i = 1; i <= 10; i++) {
    entries.push({ index: i, term: 2, kind: "normal", data: setCmd("x", `${i}`) });
  }
  seed.apply(entries, noop);
  const meta: SnapshotMeta = { index: 10, term: 2, conf: { voters: ["a"], learners: [] } };
  seed.snapshot((_err, data) => snapshotStore.write(meta, data, noop));
  logStore.append(entries.slice(0, 5), noop); // the log never got reset
  stableStore.setHardState({ term: 2, vote: "a", commit: 5 }, noop);
  const sm = new KvMachine();
  const driver = new RaftDriver({
    id: "a",
    clock,
    logStore,
    stableStore,
    snapshotStore,
    stateMachine: sm,
    transport: new MemoryTransportHub().transport("a"),
    random: testRandom(5),
    tickMs: 10,
    bootstrap: ["a"], // ignored: the stores are not empty
  });
  let started: Error | undefined | null = null;
  driver.start((err) => (started = err));
  assert.equal(started, undefined);
  assert.equal(logStore.firstIndex(), 11);
  assert.equal(logStore.term(10), 2);
  assert.equal(sm.map.get("x"), "10");
  assert.equal(driver.status().appliedIndex, 10);
  for (let t = 0; t < 100 && driver.status().role !== "leader"; t++) clock.advance(10);
  let result: unknown = "pending";
  driver.propose(setCmd("x", "new"), (err, r) => (result = err ?? r));
  clock.advance(10);
  assert.equal(result, "10");
  driver.stop();
});

Deno.test("a slow state machine: applies overlap persistence yet complete in order", () => {
  const c = new Cluster(1, { bootstrap: ["a", "b", "c"], snapshotThreshold: 7 });
  c.smDefer = (fn) => void c.clock.after(3, fn);
  for (const id of ["a", "b", "c"]) c.add(id);
  const applied: number[] = [];
  const leader = c.waitLeader();
  const handles: ProposalHandle[] = [];
  for (let round = 0; round < 10; round++) {
    for (let i = 0; i < 3; i++) handles.push(c.propose(leader, `k${i}`, `r${round}`));
    c.run(1);
  }
  c.runUntil(() => handles.every((h) => h.done));
  for (const h of handles) {
    assert.equal(h.err, undefined);
    applied.push(h.index);
  }
  assert.deepEqual(applied, [...applied].sort((x, y) => x - y));
  assert.ok(leader.sm.applyCalls < handles.length, "applies were batched");
  c.runUntil(() => [...c.nodes.values()].every((n) => n.sm.map.get("k2") === "r9"));
  assertSameState(c, ["a", "b", "c"]);
  c.stopAll();
});

Deno.test("proposal counters: every propose counts; refusals at once and later failures apart", () => {
  const c = threeNodes();
  const leader = c.waitLeader();
  const follower = [...c.nodes.values()].find((n) => n !== leader)!;
  c.put(leader, "ok", "1");
  const refused = c.propose(follower, "k", "v");
  assert.ok(refused.err instanceof NotLeaderError);
  const pending = c.propose(leader, "lost?", "x");
  leader.driver.stop();
  assert.ok(pending.err instanceof DriverStoppedError);
  const late = c.propose(leader, "k", "v");
  assert.ok(late.err instanceof DriverStoppedError);
  const counts = (n: typeof leader) => {
    const s = n.driver.status();
    return [s.proposals, s.proposalsRefused, s.proposalsFailed];
  };
  assert.deepEqual(counts(leader), [3, 1, 1], "ok + failed after acceptance + refused after stop");
  assert.deepEqual(counts(follower), [1, 1, 0]);
  c.stopAll();
});
