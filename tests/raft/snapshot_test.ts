/**
 * Log compaction and InstallSnapshot (Raft paper §7; thesis §5).
 * Each test names the claim it checks.
 */

import assert from "node:assert/strict";
import { message, type Ready } from "../../lib/raft/mod.ts";
import { enc, logTerms, Network } from "./harness.ts";

/** a leads; c misses 20 entries while cut off; a compacts its log past them. */
function behindCompaction(): Network {
  const net = new Network(["a", "b", "c"]);
  net.elect("a");
  net.isolate("c");
  for (let i = 0; i < 20; i++) net.raft("a").propose([enc(`v${i}`)]);
  net.deliverAll();
  const meta = net.compact("a");
  assert.equal(meta.index, 24);
  assert.equal(net.raft("a").status().firstIndex, 25);
  return net;
}

Deno.test("§7 a follower behind the leader's compaction point receives a snapshot and continues in replicate", () => {
  const net = behindCompaction();
  const a = net.raft("a");
  const readies: Ready[] = [];
  net.onReady = (id, rd) => {
    if (id === "c") readies.push(rd);
  };
  net.recording = [];
  net.heal();
  net.tickNode("a", 1);
  const snaps = net.recording.filter((m) => m.kind === "snapshot");
  assert.equal(snaps.length, 1);
  assert.equal(snaps[0]?.to, "c");
  assert.deepEqual(snaps[0]?.snapshot, net.node("a").storage.snapshot);
  // The follower installed it (Ready.snapshot) and reported through appendResp.
  const installed = readies.find((rd) => rd.snapshot !== undefined);
  assert.equal(installed?.snapshot?.index, 24);
  const after = net.recording.filter((m) => m.from === "c" && m.kind === "appendResp");
  assert.ok(after.some((m) => !m.reject && m.index === 24), "c acknowledged the snapshot index");
  net.tickAll(2);
  const pr = a.status().progress.get("c");
  assert.equal(pr?.state, "replicate");
  assert.equal(pr?.match, a.status().lastIndex);
  const c = net.raft("c").status();
  assert.equal(c.firstIndex, 25);
  assert.equal(c.commit, a.status().commit);
  assert.equal(c.applied, a.status().applied);
  assert.deepEqual(net.node("c").storage.snapshot, net.node("a").storage.snapshot);
  // New entries flow normally after the snapshot.
  a.propose([enc("after")]);
  net.deliverAll();
  net.tickAll(1);
  assert.deepEqual(net.appliedData("c").at(-1), "after");
  assert.deepEqual(logTerms(net, "c"), logTerms(net, "a"));
});

Deno.test("§7 the leader is in snapshot state while the snapshot is in flight and sends no appends", () => {
  const net = behindCompaction();
  const a = net.raft("a");
  net.filter = (m) => m.kind !== "snapshot";
  net.tickNode("a", 1);
  assert.equal(a.status().progress.get("c")?.state, "snapshot");
  net.recording = [];
  a.propose([enc("x")]);
  net.tickAll(3);
  assert.deepEqual(
    net.recording.filter((m) => m.to === "c" && (m.kind === "append" || m.kind === "snapshot")),
    [],
    "appends and further snapshots pause",
  );
});

Deno.test("§7 reportSnapshot(false) returns the follower to probe and the snapshot is retried", () => {
  const net = behindCompaction();
  const a = net.raft("a");
  net.filter = (m) => m.kind !== "snapshot"; // the transfer fails
  net.tickNode("a", 1);
  assert.equal(a.status().progress.get("c")?.state, "snapshot");
  a.reportSnapshot("c", false);
  assert.equal(a.status().progress.get("c")?.state, "probe");
  net.heal();
  net.recording = [];
  net.tickNode("a", 1); // the next heartbeat answer triggers a new attempt
  assert.ok(net.recording.some((m) => m.kind === "snapshot" && m.to === "c"));
  net.tickAll(2);
  assert.equal(a.status().progress.get("c")?.state, "replicate");
  assert.equal(net.raft("c").status().commit, a.status().commit);
});

Deno.test("§7 reportSnapshot(true) probes right after the snapshot index", () => {
  const net = behindCompaction();
  const a = net.raft("a");
  net.filter = (m) => m.kind !== "snapshot";
  net.tickNode("a", 1);
  a.reportSnapshot("c", true);
  const pr = a.status().progress.get("c");
  assert.equal(pr?.state, "probe");
  assert.equal(pr?.next, 25);
});

Deno.test("§7 a stale snapshot (index <= commit) is ignored", () => {
  const net = new Network(["a", "b", "c"]);
  net.elect("a");
  for (let i = 0; i < 10; i++) net.raft("a").propose([enc(`v${i}`)]);
  net.deliverAll();
  net.tickAll(1);
  const b = net.raft("b");
  const before = b.status();
  assert.equal(before.commit, 14);
  b.step(message("snapshot", "a", "b", b.term, {
    snapshot: { index: 10, term: 2, conf: { voters: ["a", "b", "c"], learners: [] } },
  }));
  assert.deepEqual(b.status(), before);
  const rd = b.ready();
  assert.equal(rd.snapshot, undefined);
  assert.deepEqual(rd.entries, []);
  assert.deepEqual(rd.messages.map((m) => [m.kind, m.index, m.reject]), [[
    "appendResp",
    14,
    false,
  ]]);
});

Deno.test("§7 a snapshot whose last entry the follower already holds only advances its commit", () => {
  const net = new Network(["a", "b", "c"]);
  net.elect("a");
  // b gets entry 5 but not the commit that follows.
  net.filter = (m) => !(m.from === "a" && m.to === "b" && m.commit >= 5) && m.to !== "c";
  net.raft("a").propose([enc("x")]);
  net.deliverAll();
  const b = net.raft("b");
  assert.equal(b.status().lastIndex, 5);
  assert.equal(b.status().commit, 4);
  b.step(message("snapshot", "a", "b", b.term, {
    snapshot: { index: 5, term: 2, conf: { voters: ["a", "b", "c"], learners: [] } },
  }));
  assert.equal(b.status().commit, 5);
  assert.equal(b.status().firstIndex, 1, "the log was kept");
  const rd = b.ready();
  assert.equal(rd.snapshot, undefined);
  assert.deepEqual(rd.committedEntries.map((e) => e.index), [5]);
});

Deno.test("§7 membership travels in the snapshot metadata to a node that joins after compaction", () => {
  const net = new Network(["a", "b", "c"]);
  net.elect("a");
  for (let i = 0; i < 5; i++) net.raft("a").propose([enc(`v${i}`)]);
  net.deliverAll();
  const a = net.raft("a");
  a.proposeConfChange({ kind: "addVoter", node: "d" }); // d does not exist yet
  net.deliverAll();
  net.tickAll(1);
  a.proposeConfChange({ kind: "addLearner", node: "e" });
  net.deliverAll();
  net.tickAll(1);
  const meta = net.compact("a");
  const conf = { voters: ["a", "b", "c", "d"], learners: ["e"] };
  assert.deepEqual(meta.conf, conf);

  net.add("d", [], 4);
  net.add("e", [], 5);
  net.tickAll(3);
  for (const id of ["d", "e"]) {
    const st = net.raft(id).status();
    assert.deepEqual(st.conf, conf, `${id} learned the membership from the snapshot`);
    assert.equal(net.node(id).storage.snapshot.index, meta.index);
    assert.equal(st.commit, a.status().commit);
  }
  // ... and keeps it across a restart (rebuilt from the stored snapshot).
  assert.deepEqual(net.restart("d").raft.conf, conf);
  // d counts: with b and c down, a and d alone are not a quorum of four.
  net.partition(["a", "d", "e"], ["b", "c"]);
  const commit = a.status().commit;
  a.propose([enc("needs three of four")]);
  net.deliverAll();
  assert.equal(a.status().commit, commit);
});

Deno.test("§7 a restarted node rebuilds its membership from snapshot plus later config entries", () => {
  const net = new Network(["a", "b", "c"]);
  net.elect("a");
  net.raft("a").proposeConfChange({ kind: "addLearner", node: "l1" });
  net.deliverAll();
  net.tickAll(1);
  net.compact("b");
  net.raft("a").proposeConfChange({ kind: "addLearner", node: "l2" });
  net.deliverAll();
  net.tickAll(1);
  const b = net.restart("b").raft;
  assert.deepEqual(b.conf, { voters: ["a", "b", "c"], learners: ["l1", "l2"] });
  assert.deepEqual(b.confAt(net.node("b").storage.snapshot.index).learners, ["l1"]);
});

Deno.test("§7 a snapshot arriving while a Ready is being processed does not break advance", () => {
  const net = new Network(["a", "b", "c"]);
  net.elect("a");
  for (let i = 0; i < 5; i++) net.raft("a").propose([enc(`v${i}`)]);
  net.deliverAll();
  net.tickAll(1);
  // c restarts: its first Ready re-applies its committed entries...
  const c = net.restart("c").raft;
  const rd = c.ready();
  assert.ok(rd.committedEntries.length > 0);
  // ...while the leader, which compacted meanwhile, sends a newer snapshot.
  for (let i = 0; i < 5; i++) net.raft("a").propose([enc(`w${i}`)]);
  net.isolate("c");
  net.deliverAll();
  const meta = net.compact("a");
  c.step(message("snapshot", "a", "c", net.raft("a").term, { snapshot: meta }));
  net.handleReady("c", rd); // must not throw
  assert.equal(c.status().applied, meta.index);
  const next = c.ready();
  assert.equal(next.snapshot?.index, meta.index);
  net.handleReady("c", next);
  net.heal();
  net.tickAll(2);
  assert.equal(c.status().commit, net.raft("a").status().commit);
});

Deno.test("§7 a node whose received snapshot is not yet persisted does not campaign", () => {
  const net = behindCompaction();
  const c = net.raft("c");
  const meta = net.node("a").storage.snapshot;
  c.step(message("snapshot", "a", "c", net.raft("a").term, { snapshot: meta }));
  // The driver has not handled the Ready that installs it.
  for (let i = 0; i < 40; i++) c.tick();
  assert.equal(c.role, "follower");
  net.flushNode("c");
  for (let i = 0; i < 40 && c.role === "follower"; i++) c.tick();
  assert.equal(c.role, "preCandidate", "once persisted, it campaigns again");
});
