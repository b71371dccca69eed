/**
 * Tests of the register linearizability checker: known-bad histories are
 * caught, good ones (including ones that need backtracking or carry pending
 * operations) pass, the step bound answers "unknown", and a seeded random
 * property test generates histories from a real sequential register.
 */

import assert from "node:assert/strict";
import { checkLinearizable, type Operation } from "../../lib/sim/linearizability.ts";

let nextId = 0;

function w(value: string, callMs: number, returnMs: number, key = "k", client = 0): Operation {
  return { id: nextId++, client, key, kind: "write", value, callMs, returnMs };
}

function r(output: string | null, callMs: number, returnMs: number, key = "k"): Operation {
  return { id: nextId++, client: 1, key, kind: "read", output, callMs, returnMs };
}

function cas(
  expected: string | undefined,
  value: string,
  ok: boolean | undefined,
  callMs: number,
  returnMs: number,
): Operation {
  return { id: nextId++, client: 2, key: "k", kind: "cas", expected, value, ok, callMs, returnMs };
}

function assertFails(ops: Operation[], key = "k"): Operation[] {
  const result = checkLinearizable(ops);
  assert.equal(result.ok, false, `expected a violation, got ${JSON.stringify(result)}`);
  if (result.ok !== false) throw new Error("unreachable");
  assert.equal(result.key, key);
  assert.ok(result.ops.length > 0 && result.ops.length <= ops.length);
  assert.ok(result.reason.length > 0);
  return result.ops;
}

function assertPasses(ops: Operation[]): void {
  assert.deepEqual(checkLinearizable(ops), { ok: true });
}

Deno.test("empty and sequential histories are linearizable", () => {
  assertPasses([]);
  assertPasses([r(null, 0, 1), w("a", 2, 3), r("a", 4, 5), w("b", 6, 7), r("b", 8, 9)]);
});

Deno.test("stale read after a completed write is caught", () => {
  const failing = assertFails([w("1", 0, 1), w("2", 2, 3), r("1", 4, 5)]);
  assert.equal(failing.length, 3);
});

Deno.test("read of a value never written is caught and reported alone", () => {
  const read = r("ghost", 4, 5);
  const failing = assertFails([w("1", 0, 1), read]);
  assert.deepEqual(failing, [read]);
});

Deno.test("read of a value written only after the read returned is caught", () => {
  assertFails([r("1", 0, 1), w("1", 2, 3)]);
});

Deno.test("cas that succeeds against the wrong value is caught", () => {
  // Expected value never present at all.
  assertFails([w("a", 0, 1), cas("b", "c", true, 2, 3)]);
  // Expected value existed but was overwritten before the cas began.
  assertFails([w("b", 0, 1), w("a", 2, 3), cas("b", "c", true, 4, 5)]);
  // A cas that reports failure although the value matched.
  assertFails([w("a", 0, 1), cas("a", "c", false, 2, 3)]);
  // A successful cas changes what later reads must see.
  assertFails([w("a", 0, 1), cas("a", "c", true, 2, 3), r("a", 4, 5)]);
  assertPasses([w("a", 0, 1), cas("a", "c", true, 2, 3), r("c", 4, 5), cas("a", "d", false, 6, 7)]);
  assertPasses([cas(undefined, "x", true, 0, 1), r("x", 2, 3)]);
});

Deno.test("concurrent overlapping ops that are linearizable pass", () => {
  // w1 and w2 overlap everything; the reads force w2 then w1.
  assertPasses([w("1", 0, 10), w("2", 1, 11), r("2", 2, 3), r("1", 4, 5)]);
  // Reads overlapping a write may see either value.
  assertPasses([w("1", 0, 1), w("2", 2, 8), r("1", 3, 4), r("2", 5, 6), r("2", 9, 10)]);
  // Ops touching at the same millisecond are concurrent.
  assertPasses([w("1", 0, 5), r(null, 5, 6)]);
});

Deno.test("a history that needs the search to backtrack passes", () => {
  // Trying w1 before w2 (call order) dead-ends at the read; w2, w1 works.
  assertPasses([w("1", 0, 10), w("2", 0, 10), r("1", 20, 30)]);
  assertPasses([w("1", 0, 10), w("2", 0, 10), r("2", 1, 2), r("1", 3, 4), r("1", 20, 30)]);
});

Deno.test("two writers, two readers inversion is caught after backtracking", () => {
  const ops = [
    w("1", 0, 100, "k", 0),
    w("2", 0, 100, "k", 1),
    r("1", 10, 20), // reader A sees 1 then 2: w1 < w2
    r("2", 30, 40),
    r("2", 10, 20), // reader B sees 2 then 1: w2 < w1
    r("1", 30, 40),
  ];
  const failing = assertFails(ops);
  assert.ok(failing.length >= 5, "needs both writes and reads of both readers");
});

Deno.test("pending writes may or may not take effect", () => {
  const base = () => [w("1", 0, 1), w("2", 2, Infinity)];
  assertPasses([...base(), r("1", 3, 4), r("1", 50, 60)]); // never took effect (so far)
  assertPasses([...base(), r("2", 3, 4), r("2", 50, 60)]); // took effect
  assertPasses([...base(), r("1", 3, 4), r("2", 50, 60)]); // took effect late
  assertFails([...base(), r("2", 3, 4), r("1", 50, 60)]); // cannot be undone
  assertFails([w("1", 5, Infinity), r("1", 0, 1)]); // not before its call
  // A pending read constrains nothing.
  assertPasses([w("1", 0, 1), r("zzz", 2, Infinity)]);
});

Deno.test("pending cas may or may not take effect", () => {
  assertPasses([w("a", 0, 1), cas("a", "b", undefined, 2, Infinity), r("a", 3, 4)]);
  assertPasses([w("a", 0, 1), cas("a", "b", undefined, 2, Infinity), r("b", 3, 4)]);
  // Completed, outcome not reported: it ran inside its window, so it succeeded here.
  assertPasses([w("a", 0, 1), cas("a", "b", undefined, 2, 3), r("b", 4, 5)]);
  assertFails([w("a", 0, 1), cas("a", "b", undefined, 2, 3), r("a", 4, 5)]);
  // But it cannot succeed against a value that is not current.
  assertFails([w("x", 0, 1), cas("a", "b", undefined, 2, 3), r("b", 4, 5)]);
});

Deno.test("pending ops needed to explain other ops are kept", () => {
  // Only the pending write explains why the cas saw something other than "u".
  assertPasses([w("u", 0, 1), w("v", 2, Infinity), cas("u", "x", false, 3, 4)]);
  // A chain of pending cas explains the read.
  const chain = [
    cas(undefined, "a", undefined, 0, Infinity),
    cas("a", "b", undefined, 1, Infinity),
  ];
  assertPasses([...chain, r("b", 5, 6)]);
  assertPasses([...chain, r("a", 5, 6), r("b", 7, 8)]);
  assertFails([...chain, r("b", 5, 6), r("a", 7, 8)]);
});

Deno.test("keys are checked independently and the failing key is named", () => {
  const ops = [
    w("1", 0, 1, "a"),
    r("1", 2, 3, "a"),
    w("1", 0, 1, "b"),
    w("2", 2, 3, "b"),
    r("1", 4, 5, "b"),
  ];
  const failing = assertFails(ops, "b");
  assert.ok(failing.every((op) => op.key === "b"));
  // A read of another key's value is a read of a value never written.
  assertFails([w("1", 0, 1, "a"), r("1", 2, 3, "b")], "b");
});

Deno.test("the reported ops are a failing prefix of the key's history", () => {
  const ops = [w("1", 0, 1), w("2", 2, 3), r("1", 4, 5)];
  for (let i = 0; i < 50; i++) ops.push(r("2", 10 + 2 * i, 11 + 2 * i));
  ops.push(w("3", 200, 201), r("3", 202, 203));
  const failing = assertFails(ops);
  assert.equal(failing.length, 3);
  assert.equal(checkLinearizable(failing).ok, false);
});

Deno.test("the step bound answers unknown on a pathological history", () => {
  // 20 fully concurrent writes, then two reads disagreeing about the final
  // value: refuting it needs ~2^20 (set, state) pairs.
  const ops: Operation[] = [];
  for (let i = 0; i < 20; i++) ops.push(w(`v${i}`, 0, 100, "k", i));
  ops.push(r("v0", 200, 210), r("v1", 220, 230));
  const bounded = checkLinearizable(ops, { maxStepsPerKey: 10_000 });
  assert.equal(bounded.ok, "unknown");
  if (bounded.ok !== "unknown") throw new Error("unreachable");
  assert.equal(bounded.key, "k");
  assert.match(bounded.reason, /10000 search steps/);
  // A small cache budget is enforced too.
  assert.equal(checkLinearizable(ops, { maxCacheWordsPerKey: 1000 }).ok, "unknown");
  // With fewer writes the default budget reaches a verdict.
  const small = [...ops.slice(0, 8), ...ops.slice(20)];
  assert.equal(checkLinearizable(small).ok, false);
});

Deno.test("malformed operations are rejected", () => {
  assert.throws(() => checkLinearizable([w("1", 5, 4)]), TypeError);
  assert.throws(() => checkLinearizable([w("1", NaN, 4)]), TypeError);
  assert.throws(() => checkLinearizable([{ ...w("1", 0, 1), value: undefined }]), TypeError);
  const op = w("1", 0, 1);
  assert.throws(() => checkLinearizable([op, op]), /duplicate/);
});

// ---------------------------------------------------------------------------
// Randomized property test: histories from a real sequential register.

/** mulberry32: a tiny seeded PRNG for reproducible histories. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface GenOptions {
  readonly clients: number;
  readonly opsPerClient: number;
  readonly keys: number;
  readonly pendingRate: number;
}

/**
 * Each client runs ops back to back; each op takes effect atomically at a
 * random point inside its [call, return] window (or, when pending, maybe
 * never), and outputs come from applying the ops in effect order.
 */
function generateHistory(seed: number, opts: GenOptions): Operation[] {
  const rand = prng(seed);
  const int = (n: number) => Math.floor(rand() * n);
  const planned: { op: Operation; effectMs: number }[] = [];
  let id = 0;
  for (let client = 0; client < opts.clients; client++) {
    let t = int(5);
    for (let i = 0; i < opts.opsPerClient; i++) {
      const callMs = t;
      const durationMs = 1 + int(20);
      const pending = rand() < opts.pendingRate;
      const effectMs = pending && rand() < 0.5 ? Infinity : callMs + rand() * durationMs;
      const returnMs = pending ? Infinity : callMs + durationMs;
      const key = `k${int(opts.keys)}`;
      const kind = pickKind(rand());
      planned.push({ op: { id: id++, client, key, kind, callMs, returnMs }, effectMs });
      t = callMs + durationMs + int(5);
    }
  }
  return runRegister(planned, rand);
}

function pickKind(x: number): Operation["kind"] {
  return x < 0.45 ? "read" : x < 0.85 ? "write" : "cas";
}

function runRegister(planned: { op: Operation; effectMs: number }[], rand: () => number) {
  const state = new Map<string, string | null>();
  const history = new Map<string, string[]>(); // values each key has held
  const out: Operation[] = [];
  planned.sort((a, b) => a.effectMs - b.effectMs || a.op.id - b.op.id);
  for (const { op, effectMs } of planned) {
    const current = state.get(op.key) ?? null;
    const value = `v${op.id}`;
    if (effectMs === Infinity) {
      if (op.kind !== "read") out.push({ ...op, value, expected: current ?? undefined });
      continue;
    }
    if (op.kind === "read") out.push({ ...op, output: current });
    else if (op.kind === "write") {
      state.set(op.key, value);
      out.push({ ...op, value });
    } else {
      const seen = history.get(op.key) ?? [];
      const expected = rand() < 0.6 || seen.length === 0
        ? current
        : seen[Math.floor(rand() * seen.length)]!;
      const ok = expected === current;
      if (ok) state.set(op.key, value);
      out.push({ ...op, value, expected: expected ?? undefined, ok });
    }
    const held = state.get(op.key);
    if (held) history.set(op.key, [...(history.get(op.key) ?? []), held]);
  }
  return out.sort((a, b) => a.id - b.id);
}

/** A read made stale on purpose: it returns the value of a write that a later completed write replaced. */
function makeStale(ops: Operation[]): Operation[] | undefined {
  for (const read of ops) {
    if (read.kind !== "read" || read.returnMs === Infinity) continue;
    const writes = ops.filter((o) =>
      o.key === read.key && o.returnMs < read.callMs &&
      (o.kind === "write" || (o.kind === "cas" && o.ok === true))
    );
    for (const w1 of writes) {
      const overwritten = writes.some((w2) => w2.callMs > w1.returnMs && w2.id !== w1.id);
      if (overwritten && read.output !== w1.value) {
        return ops.map((o) => (o === read ? { ...o, output: w1.value! } : o));
      }
    }
  }
  return undefined;
}

Deno.test("random histories from a real register are linearizable; mutated ones are not", () => {
  let staleChecked = 0;
  for (let seed = 1; seed <= 60; seed++) {
    const opts = {
      clients: 3 + (seed % 8),
      opsPerClient: 30,
      keys: 1 + (seed % 3),
      pendingRate: 0.05,
    };
    const ops = generateHistory(seed, opts);
    assert.deepEqual(checkLinearizable(ops), { ok: true }, `seed ${seed}`);

    const reads = ops.filter((o) => o.kind === "read" && o.returnMs !== Infinity);
    const victim = reads[seed % reads.length]!;
    const mutated = ops.map((o) => (o === victim ? { ...o, output: "never-written" } : o));
    const result = checkLinearizable(mutated);
    assert.equal(result.ok, false, `seed ${seed}: mutation of read #${victim.id} not caught`);
    if (result.ok === false) assert.equal(result.key, victim.key);

    const stale = makeStale(ops);
    if (stale !== undefined) {
      staleChecked++;
      assert.equal(checkLinearizable(stale).ok, false, `seed ${seed}: stale read not caught`);
    }
  }
  assert.ok(staleChecked >= 30, `only ${staleChecked} stale mutations were possible`);
});

Deno.test("a large history checks quickly", () => {
  const ops = generateHistory(42, { clients: 8, opsPerClient: 1000, keys: 1, pendingRate: 0.01 });
  const started = performance.now();
  const result = checkLinearizable(ops);
  const elapsedMs = performance.now() - started;
  assert.deepEqual(result, { ok: true });
  // Measured well under 1 s; the bound is loose so a slow CI box does not flake.
  assert.ok(elapsedMs < 5000, `checking ${ops.length} ops took ${elapsedMs.toFixed(0)} ms`);
});
