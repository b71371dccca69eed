/**
 * The commit rule (Raft paper §5.4.2 and Figure 8; thesis §3.6.2, §10.2.1).
 * Each test names the claim it checks.
 */

import assert from "node:assert/strict";
import { enc, Network } from "./harness.ts";

const IDS = ["s1", "s2", "s3", "s4", "s5"];
const X_INDEX = 7; // bootstrap 1..5 (term 1), s1's no-op 6 (term 2), X at 7

/**
 * Figure 8 (a)-(c) with 5 servers. No pre-vote and no check-quorum so that
 * elections go exactly where the figure says; one entry per append so that
 * X can travel without the entry after it.
 *
 * (a) s1 leads term 2 and replicates X (index 7, term 2) to s2 only.
 * (b) s1 crashes; s5 wins term 3 with s3, s4 and appends its own entry at 7.
 * (c) s5 crashes; s1 restarts and wins term 4, then replicates X to s3 and
 *     s4, so X sits on a majority, while its own term-4 entry does not.
 */
function figure8(): Network {
  const net = new Network(IDS, { preVote: false, checkQuorum: false, maxEntriesPerMsg: 1 });
  net.elect("s1");
  assert.equal(net.raft("s1").term, 2);
  // (a)
  net.filter = (m) => m.kind !== "append" || m.to === "s2";
  assert.equal(net.raft("s1").propose([enc("X")]), X_INDEX);
  net.deliverAll();
  assert.equal(net.node("s2").storage.term(X_INDEX), 2);
  assert.equal(net.raft("s1").status().commit, 6);
  // (b)
  net.filter = (m) => m.from !== "s1" && m.to !== "s1" && !(m.from === "s5" && m.kind === "append");
  net.raft("s5").campaign();
  net.deliverAll();
  assert.equal(net.raft("s5").role, "leader");
  assert.equal(net.raft("s5").term, 3);
  assert.equal(net.node("s5").storage.term(X_INDEX), 3, "s5's own entry at index 7");
  // (c)
  net.restart("s1");
  const noTerm4Entries = (m: { kind: string; to: string; index: number; logTerm: number }) =>
    m.kind === "append" && net.raft(m.to).log.matchTerm(m.index, m.logTerm);
  net.filter = (m) => {
    if (m.from === "s5" || m.to === "s5") return false;
    // Let every append through except one that would land a term-4 entry.
    return !(noTerm4Entries(m) && m.entries.some((e) => e.term === 4));
  };
  net.raft("s1").campaign(); // term 3: s3, s4 already voted for s5
  net.deliverAll();
  net.raft("s1").campaign(); // term 4
  net.deliverAll();
  assert.equal(net.raft("s1").role, "leader");
  assert.equal(net.raft("s1").term, 4);
  return net;
}

Deno.test("§5.4.2 Figure 8: an old-term entry on a majority is not committed by counting replicas", () => {
  const net = figure8();
  const s1 = net.raft("s1");
  const st = s1.status();
  const onMajority = ["s1", "s2", "s3", "s4"].filter((id) =>
    net.node(id).storage.term(X_INDEX) === 2
  );
  assert.ok(onMajority.length >= 3, `X is stored on ${onMajority.join(",")}`);
  const known = [...st.progress].filter(([, pr]) => pr.match >= X_INDEX).map(([id]) => id);
  assert.ok(known.length >= 3, `the leader knows X is on ${known.join(",")}`);
  assert.equal(st.commit, 6, "X (term 2) must not be committed by the term-4 leader");
  for (const id of IDS) assert.deepEqual(net.appliedData(id), [], `${id} applied nothing`);
});

Deno.test("§5.4.2 Figure 8 (d): that uncounted entry may indeed be overwritten by a later leader", () => {
  const net = figure8();
  // s1 crashes again; s5 (last entry of term 3) is more up to date than s2..s4 (term 2).
  net.filter = (m) => m.from !== "s1" && m.to !== "s1";
  net.restart("s5");
  net.raft("s5").campaign(); // term 4: refused, s2..s4 voted for s1 in term 4
  net.deliverAll();
  net.raft("s5").campaign(); // term 5
  net.deliverAll();
  assert.equal(net.raft("s5").role, "leader");
  net.tickAll(2);
  for (const id of ["s2", "s3", "s4", "s5"]) {
    assert.equal(net.node(id).storage.term(X_INDEX), 3, `X was replaced on ${id}`);
    assert.ok(net.raft(id).status().commit >= X_INDEX);
    assert.deepEqual(net.appliedData(id), [], "X was never applied anywhere");
  }
});

Deno.test("§5.4.2 Figure 8 (e): once an entry of the current term commits, the old entry commits with it", () => {
  const net = figure8();
  // The term-4 entry now reaches the majority too.
  net.filter = (m) => m.from !== "s5" && m.to !== "s5";
  net.tickAll(2);
  const s1 = net.raft("s1");
  assert.ok(s1.status().commit >= X_INDEX + 1, `commit ${s1.status().commit}`);
  for (const id of ["s1", "s2", "s3", "s4"]) assert.deepEqual(net.appliedData(id), ["X"]);
  // s5's stale entry can no longer win an election (§5.4.1): X is safe.
  net.heal();
  net.restart("s5");
  for (let i = 0; i < 3; i++) {
    net.raft("s5").campaign();
    net.deliverAll();
    assert.notEqual(net.raft("s5").role, "leader");
  }
  net.tickAll(30);
  for (const id of IDS) assert.deepEqual(net.appliedData(id), ["X"], `${id} applied X`);
});

Deno.test("thesis §10.2.1 the leader counts its own entries only once they are durable (after advance)", () => {
  const net = new Network(["a", "b", "c"]);
  net.elect("a");
  net.partition(["a", "b"], ["c"]);
  const a = net.raft("a");
  const index = a.propose([enc("x")]);
  const rd = a.ready();
  assert.deepEqual(rd.entries.map((e) => e.index), [index]);
  // Send the append but do not persist yet; b acknowledges.
  net.queue.push(...rd.messages);
  net.deliverAll();
  assert.equal(a.status().progress.get("b")?.match, index, "b has it");
  assert.equal(a.status().progress.get("a")?.match, index - 1, "a does not count itself yet");
  assert.equal(a.status().commit, index - 1, "one durable copy out of three is no majority");
  // The driver finishes persisting: now a counts itself.
  net.handleReady("a", { ...rd, messages: [] }); // already sent
  assert.equal(a.status().commit, index);
  net.deliverAll();
  assert.deepEqual(net.appliedData("a"), ["x"]);
});

Deno.test("thesis §10.2.1 a majority of followers commits without the leader's own disk", () => {
  const net = new Network(["a", "b", "c"]);
  net.elect("a");
  const a = net.raft("a");
  const index = a.propose([enc("x")]);
  const rd = a.ready();
  net.queue.push(...rd.messages);
  net.deliverAll();
  assert.equal(a.status().commit, index, "b and c form a majority");
  assert.deepEqual(net.appliedData("a"), []);
  net.handleReady("a", { ...rd, messages: [] }); // already sent
  net.deliverAll();
  assert.deepEqual(net.appliedData("a"), ["x"], "applied only after the leader persisted it");
});

Deno.test("§5.3 a single-node leader commits after its own write is durable", () => {
  const net = new Network(["a"]);
  net.elect("a");
  const a = net.raft("a");
  const index = a.propose([enc("x")]);
  const rd = a.ready();
  assert.equal(rd.committedEntries.length, 0);
  assert.equal(a.status().commit, index - 1);
  net.handleReady("a", rd);
  assert.equal(a.status().commit, index);
  net.flushReady();
  assert.deepEqual(net.appliedData("a"), ["x"]);
});

Deno.test("§5.3 followers learn the commit index from later appends and heartbeats", () => {
  const net = new Network(["a", "b", "c"]);
  net.elect("a");
  net.raft("a").propose([enc("x")]);
  net.deliverAll();
  const commit = net.raft("a").status().commit;
  net.tickAll(1);
  for (const id of ["b", "c"]) {
    assert.equal(net.raft(id).status().commit, commit);
    assert.deepEqual(net.appliedData(id), ["x"]);
  }
});

Deno.test("§5.3 committed entries are handed out in Readies of bounded size, in order", () => {
  const net = new Network(["a", "b", "c"], { maxApplyBytesPerReady: 100 });
  net.elect("a");
  const sizes: number[] = [];
  net.onReady = (id, rd) => {
    if (id !== "b" || rd.committedEntries.length === 0) return;
    sizes.push(rd.committedEntries.reduce((n, e) => n + e.data.byteLength, 0));
  };
  for (let i = 0; i < 10; i++) net.raft("a").propose([enc(`${i}`.padEnd(40, "-"))]);
  net.deliverAll();
  net.tickAll(1);
  assert.equal(net.appliedData("b").length, 10);
  assert.deepEqual(net.appliedData("b"), net.appliedData("a"));
  assert.ok(sizes.every((n) => n <= 100), `batches of ${sizes.join(",")} bytes`);
  const indexes = net.node("b").applied.map((e) => e.index);
  assert.deepEqual(indexes, Array.from({ length: indexes.length }, (_, i) => i + 1));
});
