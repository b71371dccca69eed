/**
 * The vote floor of a node that lost its log (RaftConfig.voteFloorIndex).
 *
 * Raft's safety argument (§5.4) assumes an acknowledged entry stays on the
 * follower that acknowledged it. A node whose log had to be emptied (its
 * snapshot was corrupt and the log behind it compacted) breaks that
 * assumption; the vote floor keeps it out of elections until its log again
 * reaches the last index it held. Each test names the claim it checks.
 */

import assert from "node:assert/strict";
import { InvalidMessageError, LOG_LOST_CONTEXT, message, Raft } from "../../lib/raft/mod.ts";
import { ArrayStorage, enc, logTerms, Network, testRandom, watchLeaders } from "./harness.ts";

const ELECTION_TICKS = 10;

/**
 * Replaces node `id` by a restart with an empty log (term and vote kept,
 * commit hint 0), as lib/server/snapshot_recovery.ts leaves it. The floor
 * defaults to the last index the node held.
 */
function loseLog(net: Network, id: string, floor?: number): Raft {
  net.flushNode(id);
  const old = net.node(id);
  const storage = new ArrayStorage();
  storage.hardState = { ...old.storage.hardState, commit: 0 };
  const raft = new Raft({
    id,
    storage,
    hardState: storage.hardState,
    random: testRandom(77),
    ...net.options,
    voteFloorIndex: floor ?? old.raft.status().lastIndex,
  });
  net.nodes.set(id, { raft, storage, applied: [], readStates: [] });
  return raft;
}

/** a leads a, b, c and has committed `n` entries everywhere. */
function cluster(n: number, options = {}): Network {
  const net = new Network(["a", "b", "c"], options);
  net.elect("a");
  for (let i = 0; i < n; i++) net.raft("a").propose([enc(`v${i}`)]);
  net.deliverAll();
  net.tickAll(1);
  return net;
}

Deno.test("vote floor: below it a node refuses votes and pre-votes that an empty log would grant", () => {
  const net = cluster(5, { checkQuorum: false });
  const floor = net.raft("c").status().lastIndex;
  const c = loseLog(net, "c");
  assert.equal(c.status().lastIndex, 0);
  assert.equal(c.status().voteFloorIndex, floor);
  const term = c.term;
  // A candidate whose log is far behind the floor: an empty log would call it up to date.
  c.step(message("preVote", "b", "c", term + 1, { index: 2, logTerm: 1 }));
  c.step(message("vote", "b", "c", term + 1, { index: 2, logTerm: 1 }));
  const resp = net.take((m) => m.from === "c");
  assert.deepEqual(resp.map((m) => [m.kind, m.reject]), [["preVoteResp", true], [
    "voteResp",
    true,
  ]]);
  assert.equal(c.vote, "", "no vote recorded");
  assert.equal(c.term, term + 1, "a higher-term vote request still moves the term (§5.1)");

  // Control: the same empty node without a floor grants both.
  const control = loseLog(net, "c", 0);
  const t = control.term;
  control.step(message("preVote", "b", "c", t + 1, { index: 2, logTerm: 1 }));
  control.step(message("vote", "b", "c", t + 1, { index: 2, logTerm: 1 }));
  const granted = net.take((m) => m.from === "c");
  assert.deepEqual(granted.map((m) => [m.kind, m.reject]), [
    ["preVoteResp", false],
    ["voteResp", false],
  ]);
});

Deno.test("vote floor: below it a node does not campaign on timeout, on campaign() or on TimeoutNow", () => {
  for (const preVote of [true, false]) {
    const net = cluster(3, { preVote });
    const c = loseLog(net, "c");
    net.isolate("c");
    net.recording = [];
    net.tickNode("c", 5 * ELECTION_TICKS);
    c.campaign();
    c.step(message("timeoutNow", "a", "c", c.term, {}));
    net.flushNode("c");
    const sent = [...net.recording, ...net.queue].filter((m) => m.from === "c");
    assert.deepEqual(sent, [], `preVote ${preVote}: nothing sent`);
    assert.equal(c.role, "follower", `preVote ${preVote}`);
    assert.equal(c.term, net.raft("a").term, `preVote ${preVote}: term unchanged`);
  }
});

Deno.test("vote floor: a node that lost its log does not help elect a leader lacking a committed entry", () => {
  for (const floor of [true, false]) {
    const net = new Network(["a", "b", "c"], { preVote: false, checkQuorum: false });
    const leaders = watchLeaders(net);
    net.elect("a");
    net.tickAll(1);
    // "x" is committed by a and c while b is cut off.
    net.isolate("b");
    net.raft("a").propose([enc("x")]);
    net.deliverAll();
    assert.equal(net.raft("a").status().commit, 5);
    // c loses its log; a crashes. b, which lacks "x", campaigns.
    loseLog(net, "c", floor ? undefined : 0);
    net.isolate("a");
    net.raft("b").campaign();
    net.deliverAll();
    if (floor) {
      assert.notEqual(net.raft("b").role, "leader", "c's vote is withheld: x cannot be lost");
      assert.deepEqual(leaders.get(net.raft("b").term) ?? new Set(), new Set());
    } else {
      // Control: with the floor off, c elects b and the committed entry is gone.
      assert.equal(net.raft("b").role, "leader");
      assert.ok(net.raft("b").status().lastIndex < 5 || net.raft("b").log.term(5) !== 2);
    }
  }
});

Deno.test("vote floor: the leader forgets the lost entries, sends a snapshot, and the node catches up", () => {
  const net = cluster(20);
  const a = net.raft("a");
  net.compact("a");
  assert.ok(a.status().firstIndex > 1);
  const floor = net.raft("c").status().lastIndex;
  const c = loseLog(net, "c");
  const commitBefore = a.status().commit;
  assert.equal(a.status().progress.get("c")?.match, floor, "the leader still trusts c's old match");
  net.recording = [];
  // The next heartbeat commits beyond c's (empty) log: c neither refuses it as
  // malformed nor commits from it, and tells the leader its entries are gone.
  net.tickNode("a", 1);
  const lost = net.recording.find((m) => m.from === "c" && m.context === LOG_LOST_CONTEXT);
  assert.ok(lost?.reject, "c reported the loss");
  assert.ok(net.recording.some((m) => m.to === "c" && m.kind === "snapshot"), "snapshot sent");
  assert.equal(c.status().voteFloorIndex, 0, "c reached the floor");
  assert.equal(c.status().lastIndex, a.status().lastIndex);
  assert.deepEqual(logTerms(net, "c"), logTerms(net, "a"));
  assert.equal(a.status().commit, commitBefore, "no commit moved on the stale match");
  net.tickAll(2);
  assert.equal(a.status().progress.get("c")?.match, a.status().lastIndex);
  assert.equal(a.status().progress.get("c")?.state, "replicate");
  a.propose([enc("after")]);
  net.deliverAll();
  net.tickAll(1);
  assert.equal(net.appliedData("c").at(-1), "after");
});

Deno.test("vote floor: once the log reaches the floor, the node votes and campaigns normally", () => {
  // No lease to wait out: b answers c's request at once.
  const net = cluster(4, { checkQuorum: false, preVote: false });
  const a = net.raft("a");
  // c had 3 entries (say, uncommitted ones a new leader dropped) beyond a's log.
  const floor = a.status().lastIndex + 3;
  const c = loseLog(net, "c", floor);
  net.tickNode("a", 1); // c catches up by appends (nothing was compacted)
  assert.equal(c.status().lastIndex, a.status().lastIndex);
  assert.equal(c.status().voteFloorIndex, floor, "still below the floor");
  c.campaign();
  assert.equal(c.role, "follower", "still no campaign");
  a.propose([enc("p1")]);
  a.propose([enc("p2")]);
  a.propose([enc("p3")]);
  net.deliverAll();
  net.tickAll(1);
  assert.ok(c.status().lastIndex >= floor);
  assert.equal(c.status().voteFloorIndex, 0);
  // c now wins an election like any up-to-date node.
  net.isolate("a");
  net.elect("c");
  assert.equal(c.role, "leader");
  assert.equal(net.raft("b").vote, "c");
});

Deno.test("vote floor: without one, a heartbeat committing beyond the last index is still malformed", () => {
  const net = cluster(2);
  const c = loseLog(net, "c", 0);
  assert.throws(
    () => c.step(message("heartbeat", "a", "c", c.term, { commit: 4 })),
    InvalidMessageError,
  );
});
