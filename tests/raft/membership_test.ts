/**
 * Single-server membership changes (thesis §4.1-§4.2).
 * Each test names the claim it checks.
 */

import assert from "node:assert/strict";
import {
  type ConfChange,
  ConfChangeError,
  type NodeId,
  NotLeaderError,
  ProposalDroppedError,
} from "../../lib/raft/mod.ts";
import { applyConfChange, bootstrapEntries, EMPTY_CONF } from "../../lib/raft/mod.ts";
import { confFromEntries, enc, logTerms, Network, watchLeaders } from "./harness.ts";

const voters = (net: Network, id: NodeId) => net.raft(id).conf.voters;

/** Proposes `cc` on the leader and delivers until everyone knows it is committed. */
function change(net: Network, leader: NodeId, cc: ConfChange): number {
  const index = net.raft(leader).proposeConfChange(cc);
  net.deliverAll();
  net.tickAll(1);
  assert.ok(net.raft(leader).status().commit >= index, `${cc.kind} ${cc.node} committed`);
  return index;
}

Deno.test("thesis §4.1 adding a voter: it receives the log and then counts in the quorum", () => {
  const net = new Network(["a", "b", "c"]);
  net.elect("a");
  net.raft("a").propose([enc("early")]);
  net.deliverAll();
  net.add("d", [], 4);
  assert.equal(net.raft("d").status().lastIndex, 0);
  change(net, "a", { kind: "addVoter", node: "d" });
  for (const id of ["a", "b", "c", "d"]) assert.deepEqual(voters(net, id), ["a", "b", "c", "d"]);
  assert.deepEqual(net.appliedData("d"), ["early"], "d caught up from the start of the log");
  assert.deepEqual(logTerms(net, "d"), logTerms(net, "a"));
  // Quorum is now 3 of 4: a and b alone cannot commit.
  net.partition(["a", "b"], ["c", "d"]);
  const commit = net.raft("a").status().commit;
  net.raft("a").propose([enc("x")]);
  net.deliverAll();
  assert.equal(net.raft("a").status().commit, commit);
  net.heal();
  net.tickAll(2);
  assert.ok(net.raft("a").status().commit > commit);
  assert.deepEqual(net.appliedData("d"), ["early", "x"]);
});

Deno.test("thesis §4.1 an added voter can itself become leader", () => {
  const net = new Network(["a", "b", "c"]);
  net.elect("a");
  net.add("d", [], 4);
  change(net, "a", { kind: "addVoter", node: "d" });
  net.raft("a").transferLeadership("d");
  net.deliverAll();
  assert.equal(net.raft("d").role, "leader");
  net.raft("d").propose([enc("from d")]);
  net.deliverAll();
  net.tickAll(1);
  for (const id of ["a", "b", "c", "d"]) assert.deepEqual(net.appliedData(id), ["from d"]);
});

Deno.test("thesis §4.2.1 a learner receives the log but never votes, campaigns, or counts", () => {
  const net = new Network(["a", "b", "c"]);
  net.elect("a");
  net.add("e", [], 5);
  change(net, "a", { kind: "addLearner", node: "e" });
  assert.deepEqual(net.raft("a").conf, { voters: ["a", "b", "c"], learners: ["e"] });
  assert.equal(net.raft("a").status().progress.get("e")?.learner, true);
  net.raft("a").propose([enc("x")]);
  net.deliverAll();
  net.tickAll(1);
  assert.deepEqual(net.appliedData("e"), ["x"], "the learner applies the log");

  // Never campaigns, even without a leader for a long time.
  const term = net.raft("e").term;
  net.isolate("e");
  net.tickNode("e", 100);
  assert.equal(net.raft("e").role, "follower");
  assert.equal(net.raft("e").term, term);
  net.raft("e").campaign();
  assert.equal(net.raft("e").role, "follower", "campaign() on a learner does nothing");
  net.heal();

  // Is never asked for a vote.
  net.recording = [];
  net.isolate("a");
  net.tickAll(40);
  const leader = net.leaders().find((id) => id !== "a");
  assert.ok(leader !== undefined);
  assert.ok(
    !net.recording.some((m) => m.to === "e" && (m.kind === "vote" || m.kind === "preVote")),
    "no vote request went to the learner",
  );

  // Does not count towards the quorum: the leader with only the learner cannot commit.
  net.partition([leader, "e"], ["a", "b", "c"].filter((id) => id !== leader));
  const commit = net.raft(leader).status().commit;
  net.raft(leader).propose([enc("y")]);
  net.deliverAll();
  assert.equal(
    net.raft(leader).status().progress.get("e")?.match,
    net.raft(leader).status().lastIndex,
  );
  assert.equal(net.raft(leader).status().commit, commit, "the learner's copy does not count");
  // Nor for check-quorum: a leader hearing only from the learner steps down.
  net.tickAll(30);
  assert.notEqual(net.raft(leader).role, "leader");
});

Deno.test("thesis §4.2.1 promoting a learner makes it a voter", () => {
  const net = new Network(["a", "b", "c"]);
  net.elect("a");
  net.add("e", [], 5);
  change(net, "a", { kind: "addLearner", node: "e" });
  change(net, "a", { kind: "addVoter", node: "e" });
  for (const id of ["a", "b", "c", "e"]) {
    assert.deepEqual(net.raft(id).conf, { voters: ["a", "b", "c", "e"], learners: [] }, id);
  }
  assert.equal(net.raft("a").status().progress.get("e")?.learner, false);
  // Now e counts: a, b, e commit without c... but a and e alone (2 of 4) do not.
  net.partition(["a", "e"], ["b", "c"]);
  const commit = net.raft("a").status().commit;
  net.raft("a").propose([enc("x")]);
  net.deliverAll();
  assert.equal(net.raft("a").status().commit, commit);
  net.partition(["a", "b", "e"], ["c"]);
  net.tickAll(2);
  assert.ok(net.raft("a").status().commit > commit);
});

Deno.test("thesis §4.1 removing a follower: the rest commit without it and it does not disrupt them", () => {
  const net = new Network(["a", "b", "c"]);
  const leaders = watchLeaders(net);
  net.elect("a");
  change(net, "a", { kind: "remove", node: "c" });
  assert.deepEqual(voters(net, "a"), ["a", "b"]);
  assert.deepEqual(voters(net, "b"), ["a", "b"]);
  assert.ok(!net.raft("a").status().progress.has("c"));
  const term = net.raft("a").term;
  net.tickAll(100);
  assert.deepEqual(net.leaders(), ["a"]);
  assert.equal(net.raft("a").term, term, "the removed server did not raise the term");
  net.raft("a").propose([enc("x")]);
  net.deliverAll();
  net.tickAll(1);
  assert.deepEqual(net.appliedData("b"), ["x"]);
  for (const [t, set] of leaders) assert.equal(set.size, 1, `term ${t}`);
});

Deno.test("thesis §4.1 only one membership change may be uncommitted at a time", () => {
  const net = new Network(["a", "b", "c"]);
  net.elect("a");
  const a = net.raft("a");
  net.isolate("a");
  a.proposeConfChange({ kind: "addLearner", node: "l1" });
  assert.throws(
    () => a.proposeConfChange({ kind: "addLearner", node: "l2" }),
    (err: unknown) => err instanceof ConfChangeError && /not committed/.test(err.message),
  );
  net.heal();
  net.tickAll(2);
  a.proposeConfChange({ kind: "addLearner", node: "l2" }); // fine once the first committed
  net.deliverAll();
  assert.deepEqual(a.conf.learners, ["l1", "l2"]);
});

Deno.test("thesis §4.1 a new leader must commit an entry of its term before accepting a change", () => {
  const net = new Network(["a", "b", "c"]);
  net.raft("a").campaign();
  net.deliverUntil(() => net.raft("a").role === "leader");
  const a = net.raft("a");
  assert.throws(
    () => a.proposeConfChange({ kind: "addLearner", node: "l" }),
    (err: unknown) => err instanceof ConfChangeError && /term/.test(err.message),
  );
  net.deliverAll(); // the no-op commits
  a.proposeConfChange({ kind: "addLearner", node: "l" });
});

Deno.test("thesis §4.1 a configuration takes effect on append and reverts when its entry is truncated", () => {
  const net = new Network(["a", "b", "c", "d", "e"]);
  net.elect("a");
  const five = ["a", "b", "c", "d", "e"];
  // Only b hears of the change.
  net.filter = (m) => (m.from === "a" && m.to === "b") || (m.from === "b" && m.to === "a");
  const index = net.raft("a").proposeConfChange({ kind: "addVoter", node: "f" });
  net.deliverAll();
  for (const id of ["a", "b"]) {
    assert.deepEqual(voters(net, id), [...five, "f"], `${id} uses the new config uncommitted`);
    assert.ok(net.raft(id).status().commit < index);
  }
  assert.deepEqual(voters(net, "c"), five);
  // a and b are cut off; c, d, e elect a leader whose log replaces the entry.
  net.partition(["a", "b"], ["c", "d", "e"]);
  net.tickAll(40);
  const leader = net.leaders().find((id) => !["a", "b"].includes(id));
  assert.ok(leader !== undefined);
  net.raft(leader).propose([enc("x")]);
  net.deliverAll();
  net.heal();
  net.tickAll(3);
  for (const id of five) {
    assert.deepEqual(voters(net, id), five, `${id}: the truncated change is gone`);
    assert.deepEqual(net.appliedData(id), ["x"]);
  }
});

Deno.test("thesis §4.2.2 a leader removing itself leads until the change commits, then hands off", () => {
  const net = new Network(["a", "b", "c"]);
  net.elect("a");
  const a = net.raft("a");
  const term = a.term;
  net.isolate("a");
  const index = a.proposeConfChange({ kind: "remove", node: "a" });
  assert.equal(a.role, "leader", "still leading while the change is uncommitted");
  assert.deepEqual(a.conf.voters, ["b", "c"]);
  assert.throws(() => a.propose([enc("x")]), ProposalDroppedError);
  net.tickNode("a", 3);
  assert.equal(a.role, "leader");
  assert.ok(a.status().commit < index);

  net.heal();
  net.recording = [];
  net.deliverAll();
  net.tickNode("a", 1); // a heartbeat answer lets the entry through
  assert.notEqual(a.role, "leader", "stepped down once committed");
  const handOff = net.recording.filter((m) => m.kind === "timeoutNow");
  assert.equal(handOff.length, 1, "handed off to an up-to-date voter");
  const next = net.leaders();
  assert.equal(next.length, 1);
  assert.equal(next[0], handOff[0]?.to, "the target won without waiting for a timeout");
  assert.equal(net.raft(next[0] ?? "").term, term + 1);
  assert.deepEqual(net.raft(next[0] ?? "").conf.voters, ["b", "c"]);
  // The removed node stays quiet.
  net.tickAll(50);
  assert.notEqual(a.role, "leader");
  assert.equal(net.raft(next[0] ?? "").term, term + 1);
});

Deno.test("thesis §4.1 removing the last voter is refused", () => {
  const net = new Network(["a"]);
  net.elect("a");
  assert.throws(
    () => net.raft("a").proposeConfChange({ kind: "remove", node: "a" }),
    (err: unknown) => err instanceof ConfChangeError && /last voter/.test(err.message),
  );
  net.add("l", [], 2);
  change(net, "a", { kind: "addLearner", node: "l" });
  assert.throws(
    () => net.raft("a").proposeConfChange({ kind: "remove", node: "a" }),
    ConfChangeError,
    "a learner does not make the last voter removable",
  );
});

Deno.test("thesis §4.1 nonsensical changes are refused", () => {
  const net = new Network(["a", "b", "c"]);
  net.elect("a");
  const a = net.raft("a");
  for (
    const cc of [
      { kind: "addVoter", node: "b" },
      { kind: "addLearner", node: "b" },
      { kind: "remove", node: "zz" },
      { kind: "addVoter", node: "" },
    ] as const
  ) {
    assert.throws(() => a.proposeConfChange(cc), ConfChangeError, `${cc.kind} ${cc.node}`);
  }
  assert.equal(a.status().lastIndex, 4, "nothing was appended");
});

Deno.test("thesis §4.1 membership changes need the leader", () => {
  const net = new Network(["a", "b", "c"]);
  net.elect("a");
  assert.throws(
    () => net.raft("b").proposeConfChange({ kind: "addLearner", node: "l" }),
    (err: unknown) => err instanceof NotLeaderError && err.leader === "a",
  );
});

Deno.test("thesis §4.2.2 a leader that appended its own removal and lost leadership can still finish it", () => {
  // Two voters: a's removal (new config [b]) reaches only a; a then loses
  // leadership. b alone cannot win the old config ([a, b]) since a refuses
  // b's shorter log, so a, still a voter of the committed config, must be
  // able to campaign, commit its removal and hand over.
  const net = new Network(["a", "b"]);
  const leaders = watchLeaders(net);
  net.elect("a");
  net.isolate("a");
  const a = net.raft("a");
  const index = a.proposeConfChange({ kind: "remove", node: "a" });
  net.tickNode("a", 30); // check-quorum: a steps down
  assert.notEqual(a.role, "leader");
  net.heal();
  net.tickAll(100);
  const b = net.raft("b");
  assert.equal(b.role, "leader");
  assert.deepEqual(b.conf.voters, ["b"]);
  assert.ok(b.status().commit >= index, "the removal committed");
  b.propose([enc("after")]);
  net.deliverAll();
  assert.deepEqual(net.appliedData("b"), ["after"]);
  for (const [t, set] of leaders) assert.equal(set.size, 1, `term ${t}`);
});

Deno.test("thesis §4.1 membership context (node addresses) follows adds and removes and survives snapshots", () => {
  let conf = applyConfChange(EMPTY_CONF, { kind: "addVoter", node: "a", context: "10.0.0.1:4002" });
  conf = applyConfChange(conf, { kind: "addLearner", node: "b", context: "10.0.0.2:4002" });
  assert.deepEqual(conf.context, { a: "10.0.0.1:4002", b: "10.0.0.2:4002" });
  conf = applyConfChange(conf, { kind: "addVoter", node: "b" }); // promotion keeps the address
  assert.deepEqual(conf, {
    voters: ["a", "b"],
    learners: [],
    context: { a: "10.0.0.1:4002", b: "10.0.0.2:4002" },
  });
  conf = applyConfChange(conf, { kind: "remove", node: "a" });
  assert.deepEqual(conf.context, { b: "10.0.0.2:4002" });
  const boot = bootstrapEntries(["x", "y"], { x: "h1:1", y: "h2:2" });
  assert.deepEqual(confFromEntries(boot).context, { x: "h1:1", y: "h2:2" });
});
