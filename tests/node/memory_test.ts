/**
 * Semantics of the in-memory stores, the loopback network and the clocks
 * that the driver and the simulator build on.
 */

import assert from "node:assert/strict";
import {
  ManualClock,
  MemoryLogStore,
  MemorySnapshotStore,
  MemoryStableStore,
  MemoryTransportHub,
  SystemClock,
} from "../../lib/node/memory.ts";
import { AssertionError } from "../../lib/raft/errors.ts";
import type { Entry, Message, SnapshotMeta } from "../../lib/raft/types.ts";

function entry(index: number, term: number, data = ""): Entry {
  return { index, term, kind: "normal", data: new TextEncoder().encode(data) };
}

function entries(from: number, to: number, term: number): Entry[] {
  const out: Entry[] = [];
  for (let i = from; i <= to; i++) out.push(entry(i, term, `e${i}`));
  return out;
}

function msg(from: string, to: string, index = 0): Message {
  return {
    kind: "heartbeat",
    from,
    to,
    term: 1,
    index,
    logTerm: 0,
    entries: [],
    commit: 0,
    reject: false,
    rejectHint: 0,
    context: "",
  };
}

const meta = (index: number, term: number): SnapshotMeta => ({
  index,
  term,
  conf: { voters: ["a"], learners: [] },
});

const noop = () => {};

Deno.test("MemoryLogStore: empty log, append, read back", () => {
  const log = new MemoryLogStore();
  assert.equal(log.firstIndex(), 1);
  assert.equal(log.lastIndex(), 0);
  assert.equal(log.term(0), 0);
  let done = 0;
  log.append(entries(1, 3, 1), (err) => {
    assert.equal(err, undefined);
    done++;
  });
  assert.equal(done, 1);
  assert.equal(log.lastIndex(), 3);
  assert.equal(log.term(2), 1);
  assert.deepEqual(log.entries(1, 4, Infinity).map((e) => e.index), [1, 2, 3]);
  assert.equal(log.appendCalls, 1);
});

Deno.test("MemoryLogStore: entries honours maxBytes but returns at least one", () => {
  const log = new MemoryLogStore();
  log.append(entries(1, 5, 1), noop); // 2 bytes each
  assert.deepEqual(log.entries(1, 6, 0).map((e) => e.index), [1]);
  assert.deepEqual(log.entries(1, 6, 4).map((e) => e.index), [1, 2]);
  assert.deepEqual(log.entries(2, 4, 100).map((e) => e.index), [2, 3]);
  assert.throws(() => log.entries(0, 2, 10), AssertionError);
  assert.throws(() => log.entries(5, 7, 10), AssertionError);
});

Deno.test("MemoryLogStore: append truncates a conflicting suffix", () => {
  const log = new MemoryLogStore();
  log.append(entries(1, 5, 1), noop);
  log.append([entry(3, 2, "x"), entry(4, 2, "y")], noop);
  assert.equal(log.lastIndex(), 4);
  assert.deepEqual(log.entries(1, 5, Infinity).map((e) => e.term), [1, 1, 2, 2]);
});

Deno.test("MemoryLogStore: misuse throws with the values", () => {
  const log = new MemoryLogStore();
  log.append(entries(1, 3, 1), noop);
  assert.throws(() => log.append([entry(5, 1)], noop), /gap after last index 3/);
  assert.throws(() => log.append([entry(4, 1), entry(6, 1)], noop), /non-contiguous/);
  assert.throws(() => log.term(4), /term\(4\) outside/);
  assert.throws(() => log.compact(4, 1, noop), /compact\(4\) outside/);
  assert.throws(() => log.compact(2, 7, noop), /has term 1/);
  log.compact(2, 1, noop);
  assert.throws(() => log.append([entry(2, 1)], noop), /below first index 3/);
});

Deno.test("MemoryLogStore: at most one append in flight", () => {
  const queued: (() => void)[] = [];
  const log = new MemoryLogStore({ defer: (fn) => queued.push(fn) });
  log.append(entries(1, 1, 1), noop);
  assert.throws(() => log.append(entries(2, 2, 1), noop), /another append is in flight/);
  queued.shift()?.();
  log.append(entries(2, 2, 1), noop);
  assert.equal(log.lastIndex(), 2);
});

Deno.test("MemoryLogStore: compact keeps the term of the compaction point", () => {
  const log = new MemoryLogStore();
  log.append([...entries(1, 3, 1), ...entries(4, 6, 2)], noop);
  log.compact(4, 2, noop);
  assert.equal(log.firstIndex(), 5);
  assert.equal(log.lastIndex(), 6);
  assert.equal(log.term(4), 2);
  assert.throws(() => log.term(3), AssertionError);
  log.compact(4, 2, noop); // compacting at the current point is a no-op
  assert.equal(log.firstIndex(), 5);
  log.compact(6, 2, noop); // everything
  assert.equal(log.firstIndex(), 7);
  assert.equal(log.lastIndex(), 6);
  assert.equal(log.term(6), 2);
  log.append(entries(7, 7, 3), noop);
  assert.equal(log.lastIndex(), 7);
});

Deno.test("MemoryLogStore: reset restarts the log after a snapshot", () => {
  const log = new MemoryLogStore();
  log.append(entries(1, 10, 1), noop);
  log.reset(meta(20, 4), noop);
  assert.equal(log.firstIndex(), 21);
  assert.equal(log.lastIndex(), 20);
  assert.equal(log.term(20), 4);
  log.append(entries(21, 22, 4), noop);
  assert.equal(log.lastIndex(), 22);
});

Deno.test("MemoryLogStore: completions go through defer", () => {
  const queued: (() => void)[] = [];
  const log = new MemoryLogStore({ defer: (fn) => queued.push(fn) });
  const order: string[] = [];
  log.append(entries(1, 2, 1), () => order.push("append"));
  assert.equal(log.lastIndex(), 2, "visible at once");
  log.compact(1, 1, () => order.push("compact"));
  assert.deepEqual(order, []);
  for (const fn of queued.splice(0)) fn();
  assert.deepEqual(order, ["append", "compact"]);
});

Deno.test("MemoryStableStore: stores the hard state; terms never go back, votes never change", () => {
  const store = new MemoryStableStore();
  assert.deepEqual(store.hardState(), { term: 0, vote: "", commit: 0 });
  store.setHardState({ term: 2, vote: "a", commit: 3 }, noop);
  assert.deepEqual(store.hardState(), { term: 2, vote: "a", commit: 3 });
  store.setHardState({ term: 2, vote: "a", commit: 5 }, noop);
  assert.throws(() => store.setHardState({ term: 1, vote: "", commit: 5 }, noop), /goes back/);
  assert.throws(() => store.setHardState({ term: 2, vote: "b", commit: 5 }, noop), /changes/);
  store.setHardState({ term: 3, vote: "b", commit: 5 }, noop);
  assert.equal(store.hardState().vote, "b");
});

Deno.test("MemorySnapshotStore: keeps only the newest; older writes are ignored", () => {
  const store = new MemorySnapshotStore();
  assert.equal(store.latest(), undefined);
  const d1 = new Uint8Array([1]);
  const d2 = new Uint8Array([2]);
  let completions = 0;
  store.write(meta(10, 2), d2, () => completions++);
  store.write(meta(5, 1), d1, () => completions++);
  assert.equal(completions, 2);
  assert.deepEqual(store.latest(), meta(10, 2));
  assert.equal(store.read(meta(10, 2)), d2);
  assert.throws(() => store.read(meta(5, 1)), /newest is 2-10/);
  store.write(meta(12, 2), d1, noop);
  assert.equal(store.latest()?.index, 12);
});

Deno.test("MemoryTransportHub: delivers through defer, in order per link", () => {
  const queued: (() => void)[] = [];
  const hub = new MemoryTransportHub({ defer: (fn) => queued.push(fn) });
  const a = hub.transport("a");
  const b = hub.transport("b");
  const got: number[] = [];
  a.listen({ onMessage: noop, onSnapshot: noop });
  b.listen({ onMessage: (m) => got.push(m.index), onSnapshot: noop });
  a.send(msg("a", "b", 1));
  a.send(msg("a", "b", 2));
  assert.deepEqual(got, []);
  for (const fn of queued.splice(0)) fn();
  assert.deepEqual(got, [1, 2]);
  assert.equal(hub.delivered, 2);
  assert.equal(hub.dropped, 0);
});

Deno.test("MemoryTransportHub: bounded links drop and count", () => {
  const queued: (() => void)[] = [];
  const hub = new MemoryTransportHub({ defer: (fn) => queued.push(fn), linkQueueMax: 2 });
  const a = hub.transport("a");
  const b = hub.transport("b");
  const got: number[] = [];
  b.listen({ onMessage: (m) => got.push(m.index), onSnapshot: noop });
  for (let i = 1; i <= 4; i++) a.send(msg("a", "b", i));
  for (const fn of queued.splice(0)) fn();
  assert.deepEqual(got, [1, 2]);
  assert.equal(hub.dropped, 2);
  a.send(msg("a", "b", 5)); // the link drained: room again
  for (const fn of queued.splice(0)) fn();
  assert.deepEqual(got, [1, 2, 5]);
});

Deno.test("MemoryTransportHub: unknown and closed receivers drop; a restarted node receives", () => {
  const hub = new MemoryTransportHub();
  const a = hub.transport("a");
  a.send(msg("a", "nobody"));
  assert.equal(hub.dropped, 1);
  const b1 = hub.transport("b");
  const got: string[] = [];
  b1.listen({ onMessage: () => got.push("b1"), onSnapshot: noop });
  assert.throws(() => hub.transport("b"), /already open/);
  b1.close();
  a.send(msg("a", "b"));
  assert.equal(hub.dropped, 2);
  const b2 = hub.transport("b");
  b2.listen({ onMessage: () => got.push("b2"), onSnapshot: noop });
  a.send(msg("a", "b"));
  assert.deepEqual(got, ["b2"]);
  a.close();
  a.send(msg("a", "b"));
  assert.deepEqual(got, ["b2"], "a closed transport sends nothing");
});

Deno.test("MemoryTransportHub: snapshots arrive with their data by reference", () => {
  const hub = new MemoryTransportHub();
  const a = hub.transport("a");
  const b = hub.transport("b");
  const data = new Uint8Array([9, 9]);
  let received: Uint8Array | undefined;
  b.listen({ onMessage: noop, onSnapshot: (_m, d) => (received = d as Uint8Array) });
  const outcomes: boolean[] = [];
  a.sendSnapshot({ ...msg("a", "b"), kind: "snapshot", snapshot: meta(3, 1) }, data, (ok) => {
    outcomes.push(ok);
  });
  a.sendSnapshot({ ...msg("a", "c"), kind: "snapshot", snapshot: meta(3, 1) }, data, (ok) => {
    outcomes.push(ok);
  });
  assert.equal(received, data);
  assert.deepEqual(outcomes, [true, false]);
});

Deno.test("ManualClock: runs due timers in (time, order) and honours cancel", () => {
  const clock = new ManualClock(100);
  const order: string[] = [];
  clock.after(10, () => order.push("b@10"));
  clock.after(5, () => {
    order.push("a@5");
    clock.after(0, () => order.push("a2@5"));
    clock.after(100, () => order.push("late"));
  });
  const cancel = clock.after(7, () => order.push("cancelled"));
  clock.after(10, () => order.push("c@10"));
  cancel();
  clock.advance(9);
  assert.deepEqual(order, ["a@5", "a2@5"]);
  assert.equal(clock.nowMs(), 109);
  clock.advance(1);
  assert.deepEqual(order, ["a@5", "a2@5", "b@10", "c@10"]);
  assert.equal(clock.pending, 1);
  clock.advance(1000);
  assert.equal(order.at(-1), "late");
  assert.equal(clock.nowMs(), 1110);
});

Deno.test("SystemClock: monotonic time, timers and cancellation", async () => {
  const clock = new SystemClock();
  const t0 = clock.nowMs();
  const order: string[] = [];
  const fired = new Promise<void>((resolve) => {
    clock.after(5, () => {
      order.push("timer");
      resolve();
    });
  });
  clock.after(0, () => order.push("soon"));
  const cancelSoon = clock.after(0, () => order.push("never"));
  const cancelTimer = clock.after(1, () => order.push("never either"));
  cancelSoon();
  cancelTimer();
  assert.deepEqual(order, [], "nothing runs synchronously");
  await fired;
  assert.deepEqual(order, ["soon", "timer"]);
  assert.ok(clock.nowMs() - t0 >= 4);
});
