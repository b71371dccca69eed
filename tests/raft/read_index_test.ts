/**
 * Linearizable reads with ReadIndex (thesis §6.4).
 * Each test names the claim it checks.
 */

import assert from "node:assert/strict";
import { type Message, NotLeaderError } from "../../lib/raft/mod.ts";
import { enc, Network } from "./harness.ts";

const heartbeatsWith = (msgs: readonly Message[], context: string) =>
  msgs.filter((m) => m.kind === "heartbeat" && m.context === context);

/** Delivers one queued message matching `pred`, then flushes the target. */
function deliverFirst(net: Network, pred: (m: Message) => boolean): Message {
  const [m] = net.take(pred);
  assert.ok(m !== undefined, "a matching message is queued");
  net.raft(m.to).step(m);
  net.flushReady();
  return m;
}

Deno.test("thesis §6.4 a read carries the leader's commit index and is released after a majority acks a heartbeat", () => {
  const net = new Network(["a", "b", "c"]);
  net.elect("a");
  net.raft("a").propose([enc("x")]);
  net.deliverAll();
  const a = net.raft("a");
  const commit = a.status().commit;
  a.readIndex("r1");
  net.flushReady();
  assert.deepEqual(net.node("a").readStates, [], "not before the heartbeat round");
  assert.equal(heartbeatsWith(net.queue, "r1").length, 2);
  deliverFirst(net, (m) => m.kind === "heartbeat" && m.to === "b");
  assert.deepEqual(net.node("a").readStates, [], "b has not answered yet");
  deliverFirst(net, (m) => m.kind === "heartbeatResp" && m.from === "b");
  assert.deepEqual(net.node("a").readStates, [{ index: commit, context: "r1" }]);
  net.deliverAll();
  assert.equal(net.node("a").readStates.length, 1, "released once");
});

Deno.test("thesis §6.4 in a 5-node cluster a read needs acks from two followers", () => {
  const net = new Network(["a", "b", "c", "d", "e"]);
  net.elect("a");
  net.raft("a").readIndex("r");
  net.flushReady();
  deliverFirst(net, (m) => m.kind === "heartbeat" && m.to === "b");
  deliverFirst(net, (m) => m.kind === "heartbeatResp");
  assert.deepEqual(net.node("a").readStates, [], "2 of 5 is no majority");
  deliverFirst(net, (m) => m.kind === "heartbeat" && m.to === "c");
  deliverFirst(net, (m) => m.kind === "heartbeatResp");
  assert.equal(net.node("a").readStates.length, 1);
});

Deno.test("thesis §6.4 acks of heartbeats sent before the read do not release it", () => {
  const net = new Network(["a", "b", "c"]);
  net.elect("a");
  const a = net.raft("a");
  a.tick(); // a heartbeat round without any read
  net.flushReady();
  for (const to of ["b", "c"]) deliverFirst(net, (m) => m.kind === "heartbeat" && m.to === to);
  a.readIndex("r"); // registered while the old acks are still on their way
  net.flushReady();
  for (const from of ["b", "c"]) {
    deliverFirst(net, (m) => m.kind === "heartbeatResp" && m.from === from && m.context === "");
  }
  assert.deepEqual(net.node("a").readStates, []);
  net.deliverAll();
  assert.equal(net.node("a").readStates.length, 1);
});

Deno.test("thesis §6.4 a deposed leader that does not know it yet cannot release reads", () => {
  const net = new Network(["a", "b", "c"]);
  net.elect("a");
  net.partition(["a"], ["b", "c"]);
  const a = net.raft("a");
  a.readIndex("stale?");
  net.tickNode("a", 5); // still leader: check-quorum has not fired
  assert.equal(a.role, "leader");
  // Meanwhile b and c elect a new leader and write.
  net.tickNode("b", 20);
  net.tickNode("c", 20);
  const leader = net.leaders().find((id) => id !== "a");
  assert.ok(leader !== undefined);
  net.raft(leader).propose([enc("new value")]);
  net.deliverAll();
  net.tickNode("a", 3);
  assert.deepEqual(net.node("a").readStates, [], "no read released without a majority");
  net.heal();
  net.tickAll(3);
  assert.deepEqual(net.node("a").readStates, [], "the read died with a's leadership");
  assert.notEqual(a.role, "leader");
});

Deno.test("thesis §6.4 a new leader defers reads until its no-op entry commits", () => {
  const net = new Network(["a", "b", "c"]);
  net.raft("a").campaign();
  net.deliverUntil(() => net.raft("a").role === "leader");
  const a = net.raft("a");
  const noop = a.status().lastIndex;
  assert.ok(a.status().commit < noop);
  a.readIndex("r");
  net.flushReady();
  assert.deepEqual(heartbeatsWith(net.queue, "r"), [], "no confirmation round yet");
  net.deliverAll();
  const rs = net.node("a").readStates;
  assert.equal(rs.length, 1);
  assert.ok((rs[0]?.index ?? 0) >= noop, `read index ${rs[0]?.index} >= no-op ${noop}`);
});

Deno.test("thesis §6.4 reads on a non-leader throw NotLeaderError with the leader hint", () => {
  const net = new Network(["a", "b", "c"]);
  assert.throws(
    () => net.raft("b").readIndex("r"),
    (err: unknown) => err instanceof NotLeaderError && err.leader === "",
  );
  net.elect("a");
  assert.throws(
    () => net.raft("b").readIndex("r"),
    (err: unknown) => err instanceof NotLeaderError && err.leader === "a",
  );
});

Deno.test("thesis §6.4 many reads between two Readies share one heartbeat round", () => {
  const net = new Network(["a", "b", "c"]);
  net.elect("a");
  const a = net.raft("a");
  for (let i = 0; i < 10; i++) a.readIndex(`r${i}`);
  net.flushNode("a");
  const heartbeats = net.queue.filter((m) => m.kind === "heartbeat");
  assert.equal(heartbeats.length, 2, "one heartbeat per follower");
  assert.ok(heartbeats.every((m) => m.context === "r9"), "carrying the newest context");
  net.deliverAll();
  const rs = net.node("a").readStates;
  assert.deepEqual(rs.map((r) => r.context), Array.from({ length: 10 }, (_, i) => `r${i}`));
  assert.ok(rs.every((r) => r.index === a.status().commit));
});

Deno.test("thesis §6.4 a single-voter leader releases reads without any message", () => {
  const net = new Network(["a"]);
  net.elect("a");
  net.raft("a").readIndex("r");
  const rd = net.raft("a").ready();
  assert.deepEqual(rd.messages, []);
  assert.deepEqual(rd.readStates, [{ index: net.raft("a").status().commit, context: "r" }]);
  net.handleReady("a", rd);
});

Deno.test("thesis §6.4 read indexes follow writes: a read after a commit sees that commit", () => {
  const net = new Network(["a", "b", "c"]);
  net.elect("a");
  const a = net.raft("a");
  let last = 0;
  for (let i = 0; i < 5; i++) {
    a.propose([enc(`w${i}`)]);
    net.deliverAll();
    a.readIndex(`r${i}`);
    net.deliverAll();
    const rs = net.node("a").readStates.at(-1);
    assert.equal(rs?.context, `r${i}`);
    assert.ok((rs?.index ?? 0) > last, "read index grows with each committed write");
    assert.ok((rs?.index ?? 0) >= a.status().commit);
    last = rs?.index ?? 0;
  }
});
