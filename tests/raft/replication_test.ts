/**
 * Log replication (Raft paper §5.3; thesis §3.5, §10.2 flow control).
 * Each test names the claim it checks.
 */

import assert from "node:assert/strict";
import { type Message, ProposalDroppedError } from "../../lib/raft/mod.ts";
import { enc, logTerms, Network } from "./harness.ts";

const appendsTo = (msgs: readonly Message[], to: string) =>
  msgs.filter((m) => m.kind === "append" && m.to === to);

Deno.test("§5.3 entries replicate and apply in the same order on every node", () => {
  const ids = ["a", "b", "c", "d", "e"];
  const net = new Network(ids);
  net.elect("a");
  const expected: string[] = [];
  for (let round = 0; round < 10; round++) {
    for (let i = 0; i < 5; i++) {
      const v = `v${round}.${i}`;
      expected.push(v);
      net.raft("a").propose([enc(v)]);
    }
    if (round % 2 === 0) net.deliverAll();
  }
  net.deliverAll();
  net.tickAll(2); // followers learn the final commit index
  const commit = net.raft("a").status().commit;
  for (const id of ids) {
    assert.deepEqual(net.appliedData(id), expected, `${id} applied in order`);
    assert.equal(net.raft(id).status().commit, commit);
    assert.deepEqual(logTerms(net, id), logTerms(net, "a"), `${id}'s log matches the leader's`);
  }
});

Deno.test("§5.3 a multi-command proposal occupies consecutive indexes", () => {
  const net = new Network(["a", "b", "c"]);
  net.elect("a");
  const first = net.raft("a").propose([enc("x"), enc("y"), enc("z")]);
  net.deliverAll();
  assert.equal(first, 5);
  const applied = net.node("b").applied.filter((e) => e.index >= first);
  assert.deepEqual(applied.map((e) => e.index), [5, 6, 7]);
  assert.deepEqual(net.appliedData("b"), ["x", "y", "z"]);
});

Deno.test("thesis §10.2 batching: an append carries at most maxEntriesPerMsg entries", () => {
  const net = new Network(["a", "b", "c"], { maxEntriesPerMsg: 4 });
  net.elect("a");
  net.isolate("c");
  net.recording = [];
  const data = Array.from({ length: 23 }, (_, i) => enc(`e${i}`));
  net.raft("a").propose(data);
  net.deliverAll();
  net.heal();
  net.tickAll(3); // c catches up too
  const appends = net.recording.filter((m) => m.kind === "append");
  assert.ok(appends.length > 0);
  for (const m of appends) assert.ok(m.entries.length <= 4, `${m.entries.length} entries`);
  assert.ok(appends.some((m) => m.entries.length === 4), "batches are filled up to the limit");
  for (const id of ["b", "c"]) assert.equal(net.appliedData(id).length, 23, `${id} got all`);
  const toB = appendsTo(appends, "b").flatMap((m) => m.entries.map((e) => e.index));
  assert.deepEqual(toB, Array.from({ length: 23 }, (_, i) => 5 + i), "b: each entry sent once");
});

Deno.test("thesis §10.2 batching: an append carries about maxBytesPerMsg bytes of data", () => {
  const net = new Network(["a", "b", "c"], { maxBytesPerMsg: 100 });
  net.elect("a");
  net.isolate("c");
  const small = Array.from({ length: 10 }, (_, i) => enc(`${i}`.padEnd(30, "x")));
  net.raft("a").propose(small);
  net.raft("a").propose([new Uint8Array(500), enc("after")]);
  net.deliverAll();
  net.heal();
  net.recording = [];
  net.tickAll(3); // c is caught up from the stored log
  const appends = appendsTo(net.recording, "c").filter((m) => m.entries.length > 0);
  assert.ok(appends.length >= 4);
  for (const m of appends) {
    const bytes = m.entries.reduce((n, e) => n + e.data.byteLength, 0);
    assert.ok(bytes <= 100 || m.entries.length === 1, `${m.entries.length} entries, ${bytes} B`);
  }
  const big = appends.find((m) => m.entries.some((e) => e.data.byteLength === 500));
  assert.equal(big?.entries.length, 1, "an entry over the limit travels alone");
  assert.equal(net.appliedData("c").length, 12);
});

Deno.test("thesis §10.2 pipelining: in replicate state several appends are in flight, up to maxInflightMsgs", () => {
  const net = new Network(["a", "b", "c"], { maxInflightMsgs: 4 });
  net.elect("a");
  net.tickAll(1);
  const a = net.raft("a");
  assert.equal(a.status().progress.get("b")?.state, "replicate");
  for (let i = 0; i < 10; i++) a.propose([enc(`p${i}`)]);
  net.flushNode("a");
  // No response has been delivered: the window bounds what is in flight.
  const inflight = appendsTo(net.queue, "b");
  assert.equal(inflight.length, 4, "four appends before any response");
  assert.deepEqual(inflight.map((m) => m.entries.length), [1, 1, 1, 1]);
  // Each acknowledgement frees a slot and lets the next append go.
  const first = net.take((m) => m.to === "b")[0];
  assert.ok(first !== undefined);
  net.raft("b").step(first);
  net.flushNode("b");
  const ack = net.take((m) => m.from === "b" && m.kind === "appendResp");
  assert.equal(ack.length, 1);
  for (const m of ack) a.step(m);
  net.flushNode("a");
  const next = appendsTo(net.queue, "b");
  assert.ok(next.length >= 1, "a slot was freed");
  assert.ok(next.length <= 4);
  net.deliverAll();
  assert.equal(net.appliedData("b").length, 10);
});

Deno.test("thesis §10.2 probe state sends one append at a time until the follower answers", () => {
  const net = new Network(["a", "b", "c"]);
  net.elect("a");
  const a = net.raft("a");
  a.reportUnreachable("b");
  assert.equal(a.status().progress.get("b")?.state, "probe");
  for (let i = 0; i < 5; i++) a.propose([enc(`p${i}`)]);
  net.flushNode("a");
  assert.equal(appendsTo(net.queue, "b").length, 1, "one probe in flight");
  assert.ok(appendsTo(net.queue, "c").length >= 5, "c (replicate) is pipelined meanwhile");
  net.deliverAll();
  const pr = a.status().progress.get("b");
  assert.equal(pr?.state, "replicate", "a successful probe switches to replicate");
  assert.equal(pr?.match, a.status().lastIndex);
});

Deno.test("thesis §10.2 a new leader probes each follower before pipelining", () => {
  const net = new Network(["a", "b", "c"]);
  net.raft("a").campaign();
  net.deliverUntil(() => net.raft("a").role === "leader");
  const a = net.raft("a");
  for (let i = 0; i < 5; i++) a.propose([enc(`p${i}`)]);
  net.flushNode("a");
  for (const id of ["b", "c"]) {
    assert.equal(a.status().progress.get(id)?.state, "probe");
    assert.equal(appendsTo(net.queue, id).length, 1, `${id}: one append until it answers`);
  }
  net.deliverAll();
  assert.equal(net.appliedData("c").length, 5);
});

Deno.test("thesis §10.2 a follower whose whole window of appends was lost recovers", () => {
  const net = new Network(["a", "b", "c"], { maxInflightMsgs: 4 });
  net.elect("a");
  net.isolate("c");
  for (let i = 0; i < 10; i++) {
    net.raft("a").propose([enc(`v${i}`)]);
    net.deliverAll();
  }
  net.heal();
  net.tickAll(5);
  assert.equal(net.appliedData("c").length, 10);
  assert.equal(net.raft("a").status().progress.get("c")?.state, "replicate");
});

Deno.test("§5.3 fast backtracking: a follower with a long divergent log is repaired in few round trips", () => {
  const net = new Network(["a", "b", "c"]);
  net.elect("a"); // term 2, last index 4
  // a, cut off, keeps accepting proposals that can never commit.
  net.isolate("a");
  const divergent = 100;
  for (let i = 0; i < divergent; i++) net.raft("a").propose([enc(`div${i}`)]);
  net.deliverAll();
  assert.equal(net.raft("a").status().lastIndex, 4 + divergent);
  // b and c move on: a new leader writes a longer log of its own term.
  net.tickAll(40);
  const leader = net.leaders().find((id) => id !== "a");
  assert.ok(leader !== undefined, "b or c leads");
  for (let i = 0; i < 150; i++) net.raft(leader).propose([enc(`new${i}`)]);
  net.deliverAll();
  // Leadership moves on once more, so the next leader starts probing a at the end of its log.
  const other = leader === "b" ? "c" : "b";
  net.raft(leader).transferLeadership(other);
  net.deliverAll();
  assert.equal(net.raft(other).role, "leader");
  assert.ok(net.raft(other).status().lastIndex > 4 + divergent);

  net.recording = [];
  net.heal();
  net.tickAll(3);
  const rejections = net.recording.filter((m) =>
    m.kind === "appendResp" && m.from === "a" && m.reject
  );
  assert.ok(rejections.length >= 1, "the divergence was detected");
  assert.ok(
    rejections.length <= 3,
    `${rejections.length} rejections for ${divergent} divergent entries`,
  );
  // Log matching (§5.3): a's conflicting, uncommitted entries were overwritten.
  assert.deepEqual(logTerms(net, "a"), logTerms(net, other));
  const applied = net.appliedData("a");
  assert.ok(!applied.some((d) => d.startsWith("div")), "no divergent entry was ever applied");
  assert.deepEqual(applied, net.appliedData(other));
});

Deno.test("§5.3 fast backtracking: a follower missing many entries is caught up with one rejection", () => {
  const net = new Network(["a", "b", "c"]);
  net.elect("a");
  net.isolate("c");
  for (let i = 0; i < 100; i++) net.raft("a").propose([enc(`v${i}`)]);
  net.deliverAll();
  net.raft("a").transferLeadership("b"); // the next leader starts probing c at its last index
  net.deliverAll();
  assert.equal(net.raft("b").role, "leader");
  net.recording = [];
  net.heal();
  net.tickAll(3);
  const rejections = net.recording.filter((m) =>
    m.kind === "appendResp" && m.from === "c" && m.reject
  );
  assert.equal(rejections.length, 1, "the hint points at c's last index at once");
  assert.equal(net.appliedData("c").length, 100);
});

Deno.test("§5.3 log matching: a follower's conflicting uncommitted entries are overwritten", () => {
  const net = new Network(["a", "b", "c", "d", "e"]);
  net.elect("a");
  // b receives an entry that never reaches a majority.
  net.filter = (m) => (m.from === "a" && m.to === "b") || (m.from === "b" && m.to === "a");
  net.raft("a").propose([enc("lost")]);
  net.deliverAll();
  assert.equal(net.raft("b").status().lastIndex, 7);
  assert.equal(net.raft("b").status().commit, 6);
  // a and b are cut off; c, d, e elect a leader that writes its own entry at index 7.
  net.partition(["a", "b"], ["c", "d", "e"]);
  net.tickAll(40);
  const leader = net.leaders().find((id) => id !== "a" && id !== "b");
  assert.ok(leader !== undefined);
  net.raft(leader).propose([enc("kept")]);
  net.deliverAll();
  const termAt7 = net.node(leader).storage.term(7);
  assert.notEqual(net.node("b").storage.term(7), termAt7, "b's entry 7 conflicts");
  net.heal();
  net.tickAll(3);
  for (const id of ["a", "b"]) {
    assert.deepEqual(logTerms(net, id), logTerms(net, leader), `${id}'s log now matches`);
    assert.deepEqual(net.appliedData(id), ["kept"], `${id} never applied the lost entry`);
  }
});

Deno.test("§5.3 a follower that crashes and restarts catches up", () => {
  const net = new Network(["a", "b", "c"]);
  net.elect("a");
  net.raft("a").propose([enc("before")]);
  net.deliverAll();
  net.isolate("c");
  net.restart("c");
  for (let i = 0; i < 20; i++) net.raft("a").propose([enc(`while${i}`)]);
  net.deliverAll();
  net.heal();
  net.tickAll(5);
  assert.deepEqual(net.appliedData("c"), net.appliedData("a"));
  assert.equal(net.appliedData("c").length, 21);
  assert.deepEqual(logTerms(net, "c"), logTerms(net, "a"));
});

Deno.test("§5.3 duplicated and reordered messages leave every log identical", () => {
  for (let seed = 1; seed <= 5; seed++) {
    const net = new Network(["a", "b", "c"]);
    net.elect("a");
    let n = 0;
    for (let round = 0; round < 30; round++) {
      if (round < 20) net.raft("a").propose([enc(`v${n++}`)]);
      if (round % 5 === 0) net.raft("a").tick();
      net.duplicateQueue((m) => (m.index + round + seed) % 3 === 0);
      net.shuffleQueue(seed * 1000 + round);
      const count = net.queue.length;
      for (let i = 0; i < count; i++) net.deliverOne();
    }
    net.deliverAll();
    net.tickAll(3);
    const expected = Array.from({ length: n }, (_, i) => `v${i}`);
    for (const id of ["a", "b", "c"]) {
      assert.deepEqual(net.appliedData(id), expected, `seed ${seed}: ${id}`);
      assert.deepEqual(logTerms(net, id), logTerms(net, "a"));
    }
  }
});

Deno.test("thesis §10.2 proposals beyond maxUncommittedBytes are dropped until entries apply", () => {
  const net = new Network(["a", "b", "c"], { maxUncommittedBytes: 100 });
  net.elect("a");
  net.partition(["a"], ["b", "c"]);
  const a = net.raft("a");
  a.propose([new Uint8Array(60)]);
  assert.throws(() => a.propose([new Uint8Array(60)]), ProposalDroppedError);
  const commit = a.status().commit;
  net.heal();
  net.tickAll(2);
  assert.ok(a.status().commit > commit);
  a.propose([new Uint8Array(60)]); // accepted again after apply
});
