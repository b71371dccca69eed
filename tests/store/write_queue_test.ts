/**
 * lib/store/write_queue.ts with a scripted batch writer: batching by size,
 * by time and by flush; sequence numbers; retries; skipped batches; the
 * capacity bound; shutdown draining and dropping.
 */

import assert from "node:assert/strict";
import type { Command, Statement } from "../../lib/db/mod.ts";
import {
  BatchRejectedError,
  type BatchWriter,
  QueueClosedError,
  QueueFullError,
  type Ticket,
  WriteQueue,
  type WriteQueueOptions,
} from "../../lib/store/write_queue.ts";
import { linesLog } from "../util/log.ts";

const START = 1_700_000_000_000_000_000n;

function st(sql: string): Statement[] {
  return [{ sql, params: [] }];
}

function queue(write: BatchWriter, options: Partial<WriteQueueOptions> = {}) {
  const logs: string[] = [];
  const q = new WriteQueue({
    capacity: 16,
    batchSize: 3,
    timeoutMs: 60_000,
    transaction: false,
    startSequence: START,
    write,
    retryDelayMs: 10,
    log: linesLog(logs),
    ...options,
  });
  return { q, logs };
}

/** A writer that records every batch and can be held. */
function recorder() {
  const batches: Command[] = [];
  let hold: Promise<void> | undefined;
  let release = () => {};
  const write: BatchWriter = async (cmd) => {
    batches.push(cmd);
    if (hold !== undefined) await hold;
    return undefined;
  };
  return {
    batches,
    write,
    hold() {
      hold = new Promise<void>((r) => release = r);
    },
    release() {
      hold = undefined;
      release();
    },
  };
}

function sync(t: Ticket | Promise<Ticket>): Ticket {
  assert.ok(!(t instanceof Promise), "expected an immediate ticket");
  return t;
}

const ENQ = { bytes: 10, wait: false, admitTimeoutMs: 1_000 };
const WAIT = { bytes: 10, wait: true, admitTimeoutMs: 1_000 };

Deno.test("write queue: full batches go at once, a wait flushes the rest, in order", async () => {
  const w = recorder();
  const { q } = queue(w.write);
  const seqs: bigint[] = [];
  for (let i = 1; i <= 7; i++) seqs.push(sync(q.enqueue(st(`S${i}`), ENQ)).sequence);
  assert.deepEqual(seqs, [1n, 2n, 3n, 4n, 5n, 6n, 7n].map((n) => START + n));
  const last = sync(q.enqueue([], WAIT));
  assert.equal(last.sequence, START + 8n);
  assert.deepEqual(await last.done, {});
  assert.deepEqual(
    w.batches.map((b) => b.statements.map((s) => s.sql)),
    [["S1", "S2", "S3"], ["S4", "S5", "S6"], ["S7"]],
  );
  assert.ok(w.batches.every((b) => b.kind === "execute" && b.transaction === false));
  assert.equal(q.stats().sequenceNumber, START + 8n);
  assert.equal(q.stats().batches, 3);
  assert.equal(q.stats().statements, 7);
  await q.close(1_000);
  await q.stopped;
});

Deno.test("write queue: a partial batch goes after the timeout; tx reaches the command", async () => {
  const w = recorder();
  const { q } = queue(w.write, { batchSize: 100, timeoutMs: 30, transaction: true });
  const t0 = performance.now();
  sync(q.enqueue(st("A"), ENQ));
  sync(q.enqueue(st("B"), ENQ));
  while (w.batches.length === 0) await new Promise((r) => setTimeout(r, 5));
  const elapsed = performance.now() - t0;
  assert.ok(elapsed >= 25, `sent after ${elapsed} ms`);
  assert.deepEqual(w.batches[0]!.statements.map((s) => s.sql), ["A", "B"]);
  assert.equal(w.batches[0]!.transaction, true);
  await q.close(1_000);
  await q.stopped;
});

Deno.test("write queue: failures are retried in order; rejected batches are skipped", async () => {
  let failures = 2;
  const seen: string[] = [];
  const { q, logs } = queue(async (cmd) => {
    await Promise.resolve();
    const first = cmd.statements[0]!.sql;
    if (first === "BAD") throw new BatchRejectedError("too large");
    if (failures-- > 0) throw new Error("leader not found");
    seen.push(first);
    return first === "TOPERR" ? "disallowed pragma" : undefined;
  }, { batchSize: 1 });
  const a = sync(q.enqueue(st("A"), WAIT));
  const bad = sync(q.enqueue(st("BAD"), WAIT));
  const top = sync(q.enqueue(st("TOPERR"), WAIT));
  const c = sync(q.enqueue(st("C"), WAIT));
  assert.deepEqual(await a.done, {});
  assert.deepEqual(await bad.done, { error: "too large" });
  assert.deepEqual(await top.done, { error: "disallowed pragma" });
  assert.deepEqual(await c.done, {});
  assert.deepEqual(seen, ["A", "TOPERR", "C"]);
  const s = q.stats();
  assert.equal(s.failedAttempts, 2);
  assert.equal(s.rejectedBatches, 1);
  assert.equal(s.sequenceNumber, c.sequence);
  assert.match(logs[0]!, /cannot write batch \d+\.\.\d+ \(attempt 1\): leader not found/);
  assert.ok(logs.some((l) => /written after 3 attempts/.test(l)));
  assert.ok(logs.some((l) => /skipped: too large/.test(l)));
  await q.close(1_000);
  await q.stopped;
});

Deno.test("write queue: capacity bounds held requests; waiters get room in order", async () => {
  const w = recorder();
  w.hold();
  const { q } = queue(w.write, { capacity: 2, batchSize: 1 });
  sync(q.enqueue(st("A"), WAIT)); // goes out at once and is held by the writer
  sync(q.enqueue(st("B"), ENQ));
  assert.equal(q.depth, 2);
  // Full: a short admission deadline ends in QueueFullError.
  await assert.rejects(
    async () => await q.enqueue(st("X"), { ...ENQ, admitTimeoutMs: 20 }),
    QueueFullError,
  );
  // At most `capacity` requests wait for room; the next is refused at once.
  const c = q.enqueue(st("C"), ENQ);
  const d = q.enqueue(st("D"), ENQ);
  assert.ok(c instanceof Promise && d instanceof Promise);
  assert.throws(() => q.enqueue(st("E"), ENQ), QueueFullError);
  w.release();
  const [tc, td] = await Promise.all([c, d]);
  assert.ok(tc.sequence < td.sequence);
  const flush = await q.enqueue([], WAIT);
  await flush.done;
  assert.deepEqual(w.batches.map((b) => b.statements[0]!.sql), ["A", "B", "C", "D"]);
  assert.equal(q.stats().refusedFull, 2);
  await q.close(1_000);
  await q.stopped;
});

Deno.test("write queue: shutdown writes what is queued within the bound", async () => {
  const w = recorder();
  const { q } = queue(w.write, { batchSize: 100, timeoutMs: 60_000 });
  for (let i = 0; i < 5; i++) sync(q.enqueue(st(`S${i}`), ENQ));
  await q.close(1_000);
  assert.equal(w.batches.length, 1);
  assert.equal(w.batches[0]!.statements.length, 5);
  assert.throws(() => q.enqueue(st("late"), ENQ), QueueClosedError);
  await q.stopped;
});

Deno.test("write queue: shutdown without a leader drops the queue and says so", async () => {
  const { q, logs } = queue(() => Promise.reject(new Error("leader not found")), {
    retryDelayMs: 1_000,
  });
  const a = sync(q.enqueue(st("A"), WAIT));
  sync(q.enqueue(st("B"), ENQ));
  const t0 = performance.now();
  await q.close(100);
  assert.ok(performance.now() - t0 < 1_000);
  assert.deepEqual(await a.done, { error: "dropped at shutdown before it was written" });
  assert.ok(
    logs.some((l) =>
      /dropped 2 queued requests \(sequence numbers \d+\.\.\d+\) at shutdown/.test(l)
    ),
    logs.join("\n"),
  );
  assert.throws(() => q.enqueue(st("C"), ENQ), QueueClosedError);
  assert.equal(q.stats().dropped, 2);
  assert.equal(q.stats().sequenceNumber, 0n);
  await q.stopped;
});

Deno.test("write queue: options are validated", () => {
  const write: BatchWriter = () => Promise.resolve(undefined);
  const base = {
    capacity: 1,
    batchSize: 1,
    timeoutMs: 1,
    transaction: false,
    startSequence: 0n,
    write,
  };
  assert.throws(() => new WriteQueue({ ...base, capacity: 0 }), RangeError);
  assert.throws(() => new WriteQueue({ ...base, batchSize: 1.5 }), RangeError);
  assert.throws(() => new WriteQueue({ ...base, timeoutMs: 0 }), RangeError);
});
