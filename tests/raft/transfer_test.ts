/**
 * Leadership transfer (thesis §3.10).
 * Each test names the claim it checks.
 */

import assert from "node:assert/strict";
import { ConfChangeError, NotLeaderError, ProposalDroppedError } from "../../lib/raft/mod.ts";
import { enc, Network } from "./harness.ts";

Deno.test("thesis §3.10 transfer to an up-to-date follower: it leads the next term without an election timeout", () => {
  const net = new Network(["a", "b", "c"]);
  net.elect("a");
  net.tickAll(2);
  const term = net.raft("a").term;
  net.recording = [];
  net.raft("a").transferLeadership("b");
  net.deliverAll(); // no tick at all
  assert.deepEqual(
    net.recording.filter((m) => m.kind === "timeoutNow").map((m) => [m.from, m.to]),
    [["a", "b"]],
  );
  assert.ok(
    !net.recording.some((m) => m.kind === "preVote"),
    "the target skips pre-vote (its vote requests bypass the followers' lease)",
  );
  assert.equal(net.raft("b").role, "leader");
  assert.equal(net.raft("b").term, term + 1);
  assert.equal(net.raft("a").role, "follower");
  assert.equal(net.raft("a").leader, "b");
  assert.equal(net.raft("c").leader, "b");
  net.raft("b").propose([enc("x")]);
  net.deliverAll();
  net.tickAll(1);
  for (const id of ["a", "b", "c"]) assert.deepEqual(net.appliedData(id), ["x"]);
});

Deno.test("thesis §3.10 transfer to a lagging follower: the leader first catches it up", () => {
  const net = new Network(["a", "b", "c"]);
  net.elect("a");
  net.isolate("c");
  for (let i = 0; i < 10; i++) net.raft("a").propose([enc(`v${i}`)]);
  net.deliverAll();
  net.heal();
  const a = net.raft("a");
  const term = a.term;
  const last = a.status().lastIndex;
  net.recording = [];
  a.transferLeadership("c");
  assert.equal(a.status().leadTransferee, "c");
  net.flushNode("a");
  assert.ok(!net.queue.some((m) => m.kind === "timeoutNow"), "no timeoutNow before c has the log");
  net.deliverAll();
  const c = net.raft("c");
  assert.equal(c.role, "leader");
  assert.equal(c.term, term + 1);
  const timeoutNow = net.recording.findIndex((m) => m.kind === "timeoutNow");
  const caughtUp = net.recording.findIndex((m) =>
    m.kind === "appendResp" && m.from === "c" && !m.reject && m.index === last
  );
  assert.ok(caughtUp >= 0 && caughtUp < timeoutNow, "caught up, then told to campaign");
  net.tickAll(1);
  assert.equal(net.appliedData("c").length, 10);
});

Deno.test("thesis §3.10 proposals are refused while a transfer is in progress", () => {
  const net = new Network(["a", "b", "c"]);
  net.elect("a");
  net.isolate("c");
  const a = net.raft("a");
  a.propose([enc("x")]);
  net.deliverAll();
  a.transferLeadership("c"); // c is unreachable: the transfer stays pending
  assert.throws(() => a.propose([enc("y")]), ProposalDroppedError);
  assert.throws(
    () => a.proposeConfChange({ kind: "addLearner", node: "l" }),
    (err: unknown) => err instanceof Error && /moving/.test(err.message),
  );
  assert.equal(a.propose([]), a.status().lastIndex + 1, "an empty proposal is a no-op");
});

Deno.test("thesis §3.10 a transfer to an unreachable target is aborted after an election timeout", () => {
  const net = new Network(["a", "b", "c"]);
  net.elect("a");
  net.isolate("c");
  const a = net.raft("a");
  const term = a.term;
  a.transferLeadership("c");
  net.tickAll(9);
  assert.equal(a.status().leadTransferee, "c", "still trying within the timeout");
  net.tickAll(1);
  assert.equal(a.status().leadTransferee, "", "aborted after electionTicks");
  assert.equal(a.role, "leader");
  assert.equal(a.term, term);
  a.propose([enc("after")]);
  net.deliverAll();
  assert.deepEqual(net.appliedData("b"), ["after"]);
});

Deno.test("thesis §3.10 transfer to a non-voter or an unknown node is refused", () => {
  const net = new Network(["a", "b", "c"]);
  net.elect("a");
  const a = net.raft("a");
  a.proposeConfChange({ kind: "addLearner", node: "l" });
  net.deliverAll();
  for (const to of ["l", "zz"]) {
    assert.throws(() => a.transferLeadership(to), ProposalDroppedError, to);
    assert.equal(a.status().leadTransferee, "");
  }
  a.propose([enc("still accepted")]);
});

Deno.test("thesis §3.10 transfer to itself is a no-op; on a follower it throws NotLeaderError", () => {
  const net = new Network(["a", "b", "c"]);
  net.elect("a");
  net.raft("a").transferLeadership("a");
  assert.equal(net.raft("a").status().leadTransferee, "");
  net.deliverAll();
  assert.equal(net.raft("a").role, "leader");
  assert.throws(
    () => net.raft("b").transferLeadership("c"),
    (err: unknown) => err instanceof NotLeaderError && err.leader === "a",
  );
});

Deno.test("thesis §3.10 membership changes wait until a pending transfer ends", () => {
  const net = new Network(["a", "b", "c"]);
  net.elect("a");
  net.isolate("c");
  const a = net.raft("a");
  a.transferLeadership("c");
  assert.equal(a.status().leadTransferee, "c");
  // A membership change is refused during the transfer...
  assert.throws(() => a.proposeConfChange({ kind: "remove", node: "c" }), ConfChangeError);
  // ...so the transfer simply times out.
  net.tickAll(10);
  a.proposeConfChange({ kind: "remove", node: "c" });
  net.deliverAll();
  assert.deepEqual(a.conf.voters, ["a", "b"]);
});
