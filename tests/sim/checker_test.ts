/**
 * Tests of the simulator's invariant checker: each invariant is broken on
 * purpose and must be caught (at once in strict mode, recorded otherwise),
 * and healthy runs must pass.
 */

import assert from "node:assert/strict";
import {
  Checker,
  type HistoryOperation,
  type LogRecord,
  SafetyViolation,
} from "../../lib/sim/checker.ts";

/** Asserts `fn` throws a SafetyViolation of `invariant` whose message matches every pattern. */
function assertViolation(fn: () => void, invariant: string, ...patterns: RegExp[]): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof SafetyViolation, `expected SafetyViolation, got ${err}`);
    assert.equal(err.violation.invariant, invariant);
    for (const p of patterns) assert.match(err.message, p);
    return true;
  });
}

function rec(index: number, term: number, prevTerm: number, digest: string): LogRecord {
  return { index, term, prevTerm, digest };
}

Deno.test("election safety: two leaders in one term are caught", () => {
  const c = new Checker();
  c.observeRole("n1", 3, "leader", 100);
  c.observeRole("n1", 3, "leader", 150); // the same leader again is fine
  c.observeRole("n2", 3, "follower", 120);
  c.observeRole("n2", 4, "leader", 200); // another term is fine
  assertViolation(
    () => c.observeRole("n2", 3, "leader", 300),
    "ElectionSafety",
    /n1/,
    /n2/,
    /term 3/,
  );
  assert.equal(c.violations.length, 1);
});

Deno.test("non-strict mode records violations instead of throwing", () => {
  const c = new Checker({ strict: false, maxViolations: 2 });
  assert.equal(c.ok, true);
  for (const node of ["n1", "n2", "n3", "n4"]) c.observeRole(node, 1, "leader", 0);
  assert.equal(c.violations.length, 2);
  assert.equal(c.droppedViolations, 1);
  assert.equal(c.ok, false);
  assert.equal(c.violations[0]!.invariant, "ElectionSafety");
  assert.throws(() => c.assertOk(), SafetyViolation);
});

Deno.test("log matching: same index and term with a different digest is caught", () => {
  const c = new Checker();
  c.observeLog("n1", [rec(1, 1, 0, "a"), rec(2, 1, 1, "b"), rec(3, 2, 1, "c")]);
  c.observeLog("n2", [rec(1, 1, 0, "a"), rec(2, 1, 1, "b")]);
  c.observeLog("n3", [rec(3, 3, 1, "x")]); // a different term at index 3 is fine
  assertViolation(
    () => c.observeLog("n2", [rec(3, 2, 1, "DIFFERENT")]),
    "LogMatching",
    /index 3 term 2/,
    /n1/,
    /n2/,
    /DIFFERENT/,
  );
});

Deno.test("log matching: a different predecessor term is caught", () => {
  const c = new Checker();
  c.observeLog("n1", [rec(5, 3, 2, "e")]);
  assertViolation(() => c.observeLog("n2", [rec(5, 3, 1, "e")]), "LogMatching", /prev term 1/);
  const c2 = new Checker();
  assertViolation(
    () => c2.observeLog("n1", [rec(1, 1, 0, "a"), rec(2, 2, 2, "b")]),
    "LogMatching",
    /same append has term 1/,
  );
  assertViolation(
    () => c2.observeLog("n1", [rec(7, 2, 3, "z")]),
    "LogMatching",
    /predecessor term 3/,
  );
});

Deno.test("leader completeness: a committed entry missing from a later leader is caught", () => {
  const c = new Checker();
  c.observeRole("n1", 1, "leader", 0);
  c.observeCommit("n1", 1, 1, "a", 1);
  c.observeCommit("n1", 2, 1, "b", 1);
  const full = new Map([[1, { term: 1, digest: "a" }], [2, { term: 1, digest: "b" }]]);
  c.observeLeader("n2", 2, (i) => full.get(i) ?? null); // has everything
  c.observeLeader("n3", 3, (i) => (i === 1 ? undefined : full.get(i) ?? null)); // 1 compacted
  assertViolation(
    () => c.observeLeader("n4", 4, (i) => (i === 1 ? full.get(1) : null)),
    "LeaderCompleteness",
    /leader n4 of term 4/,
    /nothing at index 2/,
    /digest b/,
  );
});

Deno.test("leader completeness: a different entry, or a log too short, is caught", () => {
  const c = new Checker({ strict: false });
  c.observeCommit("n1", 1, 1, "a", 1);
  c.observeLeader("n2", 2, () => ({ term: 1, digest: "other" }));
  c.observeLeader("n3", 3, () => undefined, 0); // undefined beyond lastIndex = missing
  c.observeLeader("n4", 4, () => undefined); // compacted: skipped
  assert.deepEqual(c.violations.map((v) => v.invariant), [
    "LeaderCompleteness",
    "LeaderCompleteness",
  ]);
  assert.match(c.violations[0]!.message, /term 1 digest other at index 1/);
});

Deno.test("leader completeness ignores entries committed after the election", () => {
  const c = new Checker();
  // Committed in term 5; a stale node finishing its term-3 election later may lack it.
  c.observeCommit("n1", 1, 4, "a", 5);
  c.observeLeader("n2", 3, () => null);
  // Without commitTerm, the highest observed term bounds the commit term.
  c.observeRole("n1", 7, "leader", 10);
  c.observeCommit("n1", 2, 7, "b");
  const has1 = (i: number) => (i === 1 ? { term: 4, digest: "a" } : null);
  c.observeLeader("n3", 6, has1); // index 2 may have been committed in term 7
  assertViolation(() => c.observeLeader("n3", 8, has1), "LeaderCompleteness", /index 2/);
});

Deno.test("committed entries must agree across nodes", () => {
  const c = new Checker();
  c.observeCommit("n1", 4, 2, "d", 2);
  c.observeCommit("n2", 4, 2, "d", 2);
  assertViolation(
    () => c.observeCommit("n3", 4, 3, "x", 3),
    "CommittedAgreement",
    /index 4/,
    /n1/,
    /n3/,
  );
});

Deno.test("state machine safety: divergent apply at the same index is caught", () => {
  const c = new Checker();
  c.observeApply("n1", 1, 1, "a");
  c.observeApply("n2", 1, 1, "a");
  c.observeApply("n1", 2, 1, "b");
  assertViolation(
    () => c.observeApply("n2", 2, 1, "c"),
    "StateMachineSafety",
    /index 2/,
    /n1 applied term 1 digest b/,
    /n2 applied term 1 digest c/,
  );
});

Deno.test("state machine safety: applying other than the committed entry is caught", () => {
  const c = new Checker();
  c.observeCommit("n1", 1, 1, "a", 1);
  assertViolation(() => c.observeApply("n2", 1, 1, "z"), "StateMachineSafety", /committed/);
});

Deno.test("apply order: gaps and re-applies are caught; restores reset the order", () => {
  const c = new Checker();
  c.observeApply("n1", 1, 1, "a");
  assertViolation(() => c.observeApply("n1", 3, 1, "c"), "ApplyOrder", /n1/, /skipped 2\.\.2/);
  const c2 = new Checker();
  c2.observeApply("n1", 1, 1, "a");
  assertViolation(() => c2.observeApply("n1", 1, 1, "a"), "ApplyOrder", /re-applied index 1/);
  const c3 = new Checker();
  c3.observeRestore("n1", 10);
  c3.observeApply("n1", 11, 2, "k");
  c3.observeRestore("n1", 0); // restart without a snapshot: replay from 1
  c3.observeApply("n1", 1, 1, "a");
  assert.equal(c3.ok, true);
  assertViolation(() => c3.observeApply("n2", 2, 1, "b"), "ApplyOrder", /after last applied 0/);
});

Deno.test("state hashes must agree at the same applied index", () => {
  const c = new Checker();
  c.observeStateHash("n1", 5, "h5");
  c.observeStateHash("n2", 5, "h5");
  c.observeStateHash("n2", 6, "h6");
  assertViolation(() => c.observeStateHash("n3", 5, "bad"), "StateHashAgreement", /index 5/);
});

Deno.test("a lost acknowledged write is caught at the end", () => {
  const c = new Checker();
  c.observeAck(7, 3, "w7");
  c.observeAck(8, 9, "w8");
  const good = new Map([[3, "w7"], [9, "w8"]]);
  assert.equal(c.checkAckedDurable("n1", 10, (i) => good.get(i)), 2);
  assert.equal(c.checkAckedDurable("n2", 5, (i) => good.get(i)), 1); // 9 not applied yet
  assert.equal(c.checkAckedDurable("n3", 10, () => undefined), 0); // all compacted
  assertViolation(
    () => c.checkAckedDurable("n4", 10, (i) => (i === 3 ? "other" : good.get(i))),
    "AckedWriteDurability",
    /op 7/,
    /index 3/,
    /n4/,
  );
});

Deno.test("a lost acknowledged write is caught as soon as it is applied or acked", () => {
  const c = new Checker();
  c.observeAck(1, 2, "mine");
  c.observeApply("n1", 1, 1, "x");
  assertViolation(() => c.observeApply("n1", 2, 2, "theirs"), "AckedWriteDurability", /op 1/);
  const c2 = new Checker();
  c2.observeApply("n1", 1, 1, "x");
  assertViolation(() => c2.observeAck(5, 1, "y"), "AckedWriteDurability", /op 5/);
  const c3 = new Checker();
  c3.observeAck(5, 1, "y");
  assertViolation(() => c3.observeAck(6, 1, "z"), "AckedWriteDurability", /ops 5 and 6/);
});

Deno.test("liveness: no commit within the bound after faults stop is caught", () => {
  const c = new Checker();
  assert.equal(c.checkLiveness(1000, 1500, 2000), true);
  assert.equal(c.checkLiveness(1000, 1000, 2000), true);
  assertViolation(() => c.checkLiveness(1000, 999, 2000), "Liveness", /2000 ms/, /1000 ms/);
  assertViolation(() => c.checkLiveness(1000, -Infinity, 2000), "Liveness");
  assert.throws(() => c.checkLiveness(1000, 0, 0), RangeError);
});

Deno.test("history: a stale linearizable read is caught, a stale weak read is not", () => {
  const ops: HistoryOperation[] = [
    { id: 1, client: 1, key: "x", kind: "write", value: "1", callMs: 0, returnMs: 1 },
    { id: 2, client: 1, key: "x", kind: "write", value: "2", callMs: 2, returnMs: 3 },
    {
      id: 3,
      client: 2,
      key: "x",
      kind: "read",
      output: "1",
      callMs: 4,
      returnMs: 5,
      level: "weak",
    },
    {
      id: 4,
      client: 2,
      key: "x",
      kind: "read",
      output: "1",
      callMs: 4,
      returnMs: 5,
      level: "none",
    },
  ];
  const c = new Checker();
  assert.deepEqual(c.checkHistory(ops), { ok: true });
  const stale = { ...ops[2]!, id: 5, level: "linearizable" as const };
  assertViolation(() => c.checkHistory([...ops, stale]), "Linearizability", /"x"/);
  const staleStrong = { ...ops[2]!, id: 6, level: undefined };
  assertViolation(() => new Checker().checkHistory([...ops, staleStrong]), "Linearizability");
});

Deno.test("history: a weak read of a value never written is caught", () => {
  const c = new Checker({ strict: false });
  const result = c.checkHistory([
    { id: 1, client: 1, key: "x", kind: "write", value: "1", callMs: 0, returnMs: 1 },
    {
      id: 2,
      client: 2,
      key: "x",
      kind: "read",
      output: "9",
      callMs: 2,
      returnMs: 3,
      level: "weak",
    },
  ]);
  assert.equal(result.ok, false);
  assert.equal(c.violations[0]!.invariant, "Linearizability");
  assert.match(c.violations[0]!.message, /weak read #2/);
});

Deno.test("a healthy three-node run passes every check", () => {
  const c = new Checker();
  const nodes = ["n1", "n2", "n3"];
  const log: LogRecord[] = [rec(1, 1, 0, "noop1"), rec(2, 1, 1, "set x=1"), rec(3, 2, 1, "noop2")];
  c.observeLeader("n1", 1, () => null);
  for (const n of nodes) c.observeRole(n, 1, n === "n1" ? "leader" : "follower", 10);
  for (const n of nodes) c.observeLog(n, log.slice(0, 2));
  for (const n of nodes) c.observeCommit(n, 1, 1, "noop1", 1);
  for (const n of nodes) c.observeCommit(n, 2, 1, "set x=1", 1);
  c.observeAck(100, 2, "set x=1");
  const byIndex = new Map(log.map((e) => [e.index, { term: e.term, digest: e.digest }]));
  c.observeLeader("n2", 2, (i) => byIndex.get(i) ?? null, 2);
  for (const n of nodes) c.observeLog(n, log.slice(2));
  for (const n of nodes) c.observeCommit(n, 3, 2, "noop2", 2);
  for (const n of nodes) {
    for (const e of log) c.observeApply(n, e.index, e.term, e.digest);
    c.observeStateHash(n, 3, "hash-after-3");
    assert.equal(c.checkAckedDurable(n, 3, (i) => byIndex.get(i)?.digest), 1);
  }
  assert.equal(c.checkLiveness(50, 60, 1000), true);
  assert.equal(c.ok, true);
  assert.deepEqual(c.violations, []);
});
