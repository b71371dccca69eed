/**
 * Bad input: malformed messages are refused with InvalidMessageError and
 * change nothing; stale or foreign ones are handled by the protocol's rules;
 * misuse of the API fails loudly with typed errors.
 */

import assert from "node:assert/strict";
import {
  AssertionError,
  type Entry,
  InvalidMessageError,
  type Message,
  message,
  NotLeaderError,
  Raft,
} from "../../lib/raft/mod.ts";
import { ArrayStorage, enc, Network, testRandom } from "./harness.ts";

/** A 3-node cluster led by a (term 2, log 1..5, all committed and applied). */
function cluster(): Network {
  const net = new Network(["a", "b", "c"]);
  net.elect("a");
  net.raft("a").propose([enc("x")]);
  net.deliverAll();
  net.tickAll(1);
  return net;
}

/** Steps `m` into `id`, expecting InvalidMessageError and no observable change. */
function assertRefused(net: Network, id: string, m: Message, what: string): void {
  const raft = net.raft(id);
  net.flushReady();
  const before = raft.status();
  assert.throws(() => raft.step(m), InvalidMessageError, what);
  assert.deepEqual(raft.status(), before, `${what}: state unchanged`);
  assert.equal(raft.hasReady(), false, `${what}: nothing to persist or send`);
}

const entry = (index: number, term: number, data = "d"): Entry => ({
  index,
  term,
  kind: "normal",
  data: enc(data),
});

Deno.test("bad input: misaddressed messages and bad senders are refused", () => {
  const net = cluster();
  const base = message("heartbeat", "a", "b", 2, { commit: 5 });
  assertRefused(net, "b", { ...base, to: "c" }, "addressed to another node");
  assertRefused(net, "b", { ...base, from: "" }, "empty sender");
  assertRefused(net, "b", { ...base, from: "b" }, "from itself");
});

Deno.test("bad input: negative, NaN, infinite and fractional terms or indexes are refused", () => {
  const net = cluster();
  const base = message("append", "a", "b", 2, { index: 5, logTerm: 2, commit: 5 });
  for (const bad of [-1, NaN, Infinity, 1.5, 2 ** 53]) {
    for (const field of ["term", "index", "logTerm", "commit", "rejectHint"] as const) {
      assertRefused(net, "b", { ...base, [field]: bad }, `${field} = ${bad}`);
    }
  }
  // On the leader too (responses).
  const resp = message("appendResp", "b", "a", 2, { index: 5 });
  assertRefused(net, "a", { ...resp, index: -3 }, "appendResp index -3");
  assertRefused(net, "a", { ...resp, term: NaN }, "appendResp term NaN");
});

Deno.test("bad input: entries out of order or from a term above the message's are refused", () => {
  const net = cluster();
  const append = (entries: Entry[]) =>
    message("append", "a", "b", 2, { index: 5, logTerm: 2, commit: 5, entries });
  assertRefused(net, "b", append([entry(7, 2)]), "gap after prevLogIndex");
  assertRefused(net, "b", append([entry(6, 2), entry(8, 2)]), "gap inside");
  assertRefused(net, "b", append([entry(6, 2), entry(6, 2)]), "repeated index");
  assertRefused(net, "b", append([entry(5, 2)]), "overlapping prevLogIndex");
  assertRefused(net, "b", append([entry(6, 3)]), "entry term above the message term");
  assertRefused(net, "b", append([entry(6, 1)]), "entry term below prevLogTerm");
  assertRefused(net, "b", append([entry(6, 2), entry(7, 1)]), "decreasing terms");
});

Deno.test({
  name:
    "bad input: entries with a NaN or fractional term, an unknown kind or non-byte data are refused",
  fn() {
    const net = cluster();
    const append = (term: number, entries: Entry[]) =>
      message("append", "a", "b", term, { index: 5, logTerm: 2, commit: 5, entries });
    assertRefused(net, "b", append(2, [entry(6, NaN)]), "entry term NaN");
    assertRefused(net, "b", append(2, [entry(6, 2), entry(7, NaN)]), "later entry term NaN");
    assertRefused(net, "b", append(3, [entry(6, 2.5)]), "entry term 2.5 (between 2 and 3)");
    const weird = { ...entry(6, 2), kind: "weird" } as unknown as Entry;
    assertRefused(net, "b", append(2, [weird]), "unknown entry kind");
    const text = { ...entry(6, 2), data: "text" } as unknown as Entry;
    assertRefused(net, "b", append(2, [text]), "data not a Uint8Array");
  },
});

Deno.test("bad input: more than 65536 entries in one message is refused", () => {
  const net = cluster();
  const entries = Array.from({ length: 65537 }, (_, i) => entry(6 + i, 2, ""));
  assertRefused(
    net,
    "b",
    message("append", "a", "b", 2, { index: 5, logTerm: 2, commit: 5, entries }),
    "65537 entries",
  );
  // 65536 is still fine.
  const b = net.raft("b");
  b.step(
    message("append", "a", "b", 2, {
      index: 5,
      logTerm: 2,
      commit: 5,
      entries: entries.slice(0, 65536),
    }),
  );
  assert.equal(b.status().lastIndex, 5 + 65536);
});

Deno.test("bad input: a snapshot message without valid metadata is refused", () => {
  const net = cluster();
  const conf = { voters: ["a", "b", "c"], learners: [] };
  const base = message("snapshot", "a", "b", 2, {});
  assertRefused(net, "b", base, "no metadata");
  assertRefused(net, "b", { ...base, snapshot: { index: 0, term: 2, conf } }, "index 0");
  assertRefused(net, "b", { ...base, snapshot: { index: -1, term: 2, conf } }, "index -1");
  assertRefused(net, "b", { ...base, snapshot: { index: 9, term: NaN, conf } }, "term NaN");
});

Deno.test({
  name: "bad input: a snapshot whose membership is malformed is refused",
  fn() {
    const net = cluster();
    const base = message("snapshot", "a", "b", 2, {});
    const bad = { index: 20, term: 2 } as unknown as Message["snapshot"];
    assertRefused(net, "b", { ...base, snapshot: bad }, "snapshot meta without conf");
    const noVoters = {
      index: 20,
      term: 2,
      conf: { voters: "a", learners: [] },
    } as unknown as Message["snapshot"];
    assertRefused(net, "b", { ...base, snapshot: noVoters }, "voters not an array");
  },
});

Deno.test({
  name: "bad input: an append carrying an undecodable membership entry is refused",
  fn() {
    const net = cluster();
    const garbage: Entry = { index: 6, term: 2, kind: "config", data: enc("not json") };
    const wrong: Entry = { index: 6, term: 2, kind: "config", data: enc('["bogus","d",""]') };
    for (const [e, what] of [[garbage, "not JSON"], [wrong, "unknown change kind"]] as const) {
      assertRefused(
        net,
        "b",
        message("append", "a", "b", 2, { index: 5, logTerm: 2, commit: 5, entries: [e] }),
        what,
      );
    }
  },
});

Deno.test("bad input: a heartbeat committing beyond the follower's last index is refused", () => {
  const net = cluster();
  assertRefused(net, "b", message("heartbeat", "a", "b", 2, { commit: 99 }), "same term");
});

Deno.test({
  name: "bad input: a refused message from a higher term changes nothing either",
  fn() {
    const net = cluster();
    assertRefused(net, "b", message("heartbeat", "a", "b", 7, { commit: 99 }), "heartbeat, term 7");
    assertRefused(
      net,
      "a",
      message("heartbeat", "b", "a", 7, { commit: 99 }),
      "leader gets a heartbeat of term 7",
    );
  },
});

Deno.test({
  name: "bad input: a message of an unknown kind is refused",
  fn() {
    const net = cluster();
    const bogus = { ...message("heartbeat", "b", "a", 9, {}), kind: "bogus" } as unknown as Message;
    assertRefused(net, "a", bogus, "unknown kind");
  },
});

Deno.test("bad input: messages from unknown nodes are ignored or answered without crashing", () => {
  const net = cluster();
  const a = net.raft("a");
  net.flushReady();
  const before = a.status();
  a.step(message("appendResp", "zz", "a", 2, { index: 5 }));
  a.step(message("heartbeatResp", "zz", "a", 2, { context: "r" }));
  a.step(message("appendResp", "zz", "a", 2, { index: 3, reject: true, rejectHint: 1 }));
  assert.deepEqual(a.status(), before, "responses from non-members are ignored");
  // A vote request from a stranger at a higher term: the leader's lease ignores it.
  a.step(message("vote", "zz", "a", 3, { index: 99, logTerm: 2 }));
  assert.equal(a.role, "leader");
  assert.equal(a.term, 2);
  // A stranger's append at the current term is treated like any append (no crash).
  const b = net.raft("b");
  b.step(message("heartbeat", "zz", "b", 2, { commit: 0 }));
  net.flushReady();
  assert.equal(b.term, 2);
});

Deno.test("bad input: stale-term messages are answered per the protocol", () => {
  const net = cluster();
  const b = net.raft("b");
  net.flushReady();
  net.queue = [];
  const before = b.status();
  // An old leader's append / heartbeat: answered with our term so it steps down.
  b.step(message("append", "x", "b", 1, { index: 5, logTerm: 1, entries: [entry(6, 1)] }));
  b.step(message("heartbeat", "x", "b", 1, { commit: 3 }));
  // A stale pre-vote is refused explicitly; a stale vote and stale responses are dropped.
  b.step(message("preVote", "c", "b", 1, { index: 99, logTerm: 1 }));
  b.step(message("vote", "c", "b", 1, { index: 99, logTerm: 1 }));
  b.step(message("voteResp", "c", "b", 1, {}));
  b.step(message("snapshot", "x", "b", 1, {
    snapshot: { index: 50, term: 1, conf: { voters: ["x"], learners: [] } },
  }));
  assert.deepEqual(b.status(), before, "nothing changed");
  net.flushNode("b");
  assert.deepEqual(
    net.queue.map((m) => [m.kind, m.to, m.term, m.reject]),
    [
      ["appendResp", "x", 2, false],
      ["appendResp", "x", 2, false],
      ["preVoteResp", "c", 2, true],
    ],
  );
  // The stale leader steps down when it hears the newer term.
  const a = net.raft("a");
  a.step(message("heartbeatResp", "b", "a", 1, {}));
  assert.equal(a.role, "leader", "a stale response is ignored by the current leader");
});

Deno.test("bad input: propose on a follower throws NotLeaderError with the leader hint", () => {
  const net = new Network(["a", "b", "c"]);
  assert.throws(
    () => net.raft("b").propose([enc("x")]),
    (err: unknown) => err instanceof NotLeaderError && err.leader === "",
  );
  net.elect("a");
  assert.throws(
    () => net.raft("b").propose([enc("x")]),
    (err: unknown) =>
      err instanceof NotLeaderError && err.leader === "a" && /leader is a/.test(err.message),
  );
  assert.equal(net.raft("b").status().lastIndex, 4, "nothing appended");
});

Deno.test("bad input: broken invariants throw AssertionError carrying the values", () => {
  const net = cluster();
  const a = net.raft("a");
  a.propose([enc("y")]);
  a.ready();
  assert.throws(
    () => a.ready(),
    (err: unknown) => err instanceof AssertionError && /ready\(\) called again/.test(err.message),
  );
  const b = net.raft("b");
  assert.throws(
    () => b.advance({ entries: [], messages: [], committedEntries: [], readStates: [] }),
    (err: unknown) => err instanceof AssertionError && /advance\(\) without/.test(err.message),
  );

  const storage = new ArrayStorage();
  const config = {
    id: "n",
    storage,
    hardState: { term: 0, vote: "", commit: 0 },
    random: testRandom(1),
  };
  assert.throws(
    () => new Raft({ ...config, electionTicks: 3, heartbeatTicks: 3 }),
    (err: unknown) =>
      err instanceof AssertionError && /electionTicks \(3\)/.test(err.message) &&
      /heartbeatTicks \(3\)/.test(err.message),
  );
  assert.throws(
    () => new Raft({ ...config, id: "" }),
    (err: unknown) => err instanceof AssertionError && /empty/.test(err.message),
  );
  const stored = new ArrayStorage();
  stored.append([entry(1, 1), entry(2, 1), entry(3, 1)]);
  assert.throws(
    () =>
      new Raft({
        ...config,
        storage: stored,
        hardState: { term: 1, vote: "", commit: 2 },
        applied: 3,
      }),
    (err: unknown) =>
      err instanceof AssertionError && /applied 3 beyond committed 2/.test(err.message),
  );
});
