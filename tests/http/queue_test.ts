/**
 * POST /db/execute?queue (rqlite-api.md §4, §6, §8): the immediate answer
 * and its sequence numbers, `wait`, batching into few Raft entries,
 * -write-queue-tx, 400 `no statements`, 503 `leader not found`, 408
 * `queue wait timeout`, the capacity bound, /status, shutdown, and the
 * four -write-queue-* flags. (Throughput: bench/queue_bench.ts.)
 */

import assert from "node:assert/strict";
import { runCli } from "../../main.ts";
import { parseFlags } from "../../lib/config/flags.ts";
import { configFromFlags } from "../../lib/server/config.ts";
import { startNode } from "../../lib/server/start.ts";
import {
  assertJson,
  assertTextError,
  get,
  parse,
  post,
  postText,
  queryPath,
  type TestNode,
  withNode,
} from "./helpers.ts";

const QUEUED = /^\{"results":\[\],"sequence_number":(\d+)\}$/;

/** The sequence number of an immediate queued answer (exact digits). */
function sequenceOf(r: { status: number; text: string }): bigint {
  assert.equal(r.status, 200, r.text);
  const m = QUEUED.exec(r.text);
  assert.ok(m, `not a queued answer: ${r.text}`);
  return BigInt(m[1]!);
}

/** `http.queue._default.sequence_number` from the raw /status text (exact digits). */
async function statusSequence(n: TestNode): Promise<bigint> {
  const r = await get(n, "/status?key=http.queue._default");
  const m = /"sequence_number":(\d+)/.exec(r.text);
  assert.ok(m, r.text);
  return BigInt(m[1]!);
}

async function count(n: TestNode, table: string): Promise<number> {
  const body = parse(await get(n, queryPath(`SELECT COUNT(*) FROM ${table}`)));
  return body.results[0].values[0][0];
}

async function lastLogIndex(n: TestNode): Promise<number> {
  return parse(await get(n, "/status")).store.raft.last_log_index;
}

Deno.test("queue: immediate answers, exact sequence numbers, wait, batching, status", async (t) => {
  await withNode([], async (n) => {
    await post(n, "/db/execute", ["CREATE TABLE q (id INTEGER PRIMARY KEY, v TEXT)"]);

    await t.step(
      "answer at once with consecutive sequence numbers from the start time",
      async () => {
        const before = BigInt(Date.now()) * 1_000_000n;
        const seqs: bigint[] = [];
        for (let i = 0; i < 3; i++) {
          const r = await post(n, "/db/execute?queue", [["INSERT INTO q(v) VALUES(?)", `a${i}`]]);
          assert.equal(r.headers.get("content-type"), "application/json; charset=utf-8");
          seqs.push(sequenceOf(r));
        }
        assert.deepEqual(seqs, [seqs[0]!, seqs[0]! + 1n, seqs[0]! + 2n]);
        // Unix nanoseconds of the node's start: 19 digits, before this test step began.
        assert.equal(String(seqs[0]).length, 19);
        assert.ok(seqs[0]! < before && seqs[0]! > before - 600n * 1_000_000_000n);
        const pretty = await post(n, "/db/execute?queue&pretty", [[
          "INSERT INTO q(v) VALUES('p')",
        ]]);
        assert.equal(
          pretty.text,
          `{\n    "results": [],\n    "sequence_number": ${seqs[2]! + 1n}\n}`,
        );
      },
    );

    await t.step("wait: answers after the batch is written; rows readable at once", async () => {
      const r = await post(n, "/db/execute?queue&wait", [["INSERT INTO q(v) VALUES('w')"]]);
      const seq = sequenceOf(r);
      assert.equal(await count(n, "q"), 5);
      assert.equal(await statusSequence(n), seq);
      // text/plain bodies are queued too; RANDOM() is rewritten on this node.
      sequenceOf(await postText(n, "/db/execute?queue", "INSERT INTO q(v) VALUES(random())"));
      sequenceOf(await post(n, "/db/execute?queue&wait", []));
      assert.equal(await count(n, "q"), 6);
    });

    await t.step("no statements: 400 unless wait (then a flush checkpoint)", async () => {
      for (const body of ["[]", "null", ""]) {
        assertTextError(await post(n, "/db/execute?queue", body), 400, "no statements");
        const seq = sequenceOf(await post(n, "/db/execute?queue&wait", body));
        assert.equal(await statusSequence(n), seq);
      }
      assertTextError(await post(n, "/db/execute?queue", "{"), 400, "invalid JSON body");
      assertTextError(await post(n, "/db/execute?queue", "[1]"), 400, "invalid request");
    });

    await t.step("disallowed pragma refuses the request, nothing is queued", async () => {
      assertJson(
        await post(n, "/db/execute?queue", ["PRAGMA journal_mode=DELETE"]),
        '{"results":[],"error":"disallowed pragma"}',
      );
    });

    await t.step("many queued requests become few Raft entries, every row applied", async () => {
      await post(n, "/db/execute", ["CREATE TABLE many (id INTEGER PRIMARY KEY, v INTEGER)"]);
      const index0 = await lastLogIndex(n);
      const requests = 600;
      const answers = await Promise.all(
        Array.from(
          { length: requests },
          (_, i) => post(n, "/db/execute?queue", [["INSERT INTO many(v) VALUES(?)", i]]),
        ),
      );
      const seqs = answers.map(sequenceOf).sort((a, b) => (a < b ? -1 : 1));
      assert.equal(seqs.at(-1)! - seqs[0]!, BigInt(requests - 1));
      sequenceOf(await post(n, "/db/execute?queue&wait", []));
      assert.equal(await count(n, "many"), requests);
      const entries = await lastLogIndex(n) - index0;
      // 600 requests in batches of up to 128: 5 full entries, plus partial ones at the edges.
      assert.ok(
        entries >= 5 && entries <= 20,
        `${requests} queued requests took ${entries} entries`,
      );
      const q = parse(await get(n, "/status")).http.queue._default;
      assert.equal(q.max_size, 1024);
      assert.equal(q.batch_size, 128);
      assert.equal(q.timeout, "50ms");
      assert.equal(q.tx, false);
      assert.equal(q.depth, 0);
    });
  });
});

Deno.test("queue: without -write-queue-tx a failing statement does not stop the batch", async () => {
  await withNode(["-write-queue-timeout", "1h"], async (n) => {
    await post(n, "/db/execute", ["CREATE TABLE u (id INTEGER PRIMARY KEY)"]);
    // Nothing goes out before the flush (a one-hour batch timeout): one batch of 3 requests.
    sequenceOf(await post(n, "/db/execute?queue", ["INSERT INTO u(id) VALUES(1)"]));
    sequenceOf(await post(n, "/db/execute?queue", ["INSERT INTO u(id) VALUES(1)"]));
    sequenceOf(await post(n, "/db/execute?queue", ["INSERT INTO u(id) VALUES(3)"]));
    const index0 = await lastLogIndex(n);
    sequenceOf(await post(n, "/db/execute?queue&wait", []));
    assert.equal(await lastLogIndex(n) - index0, 1);
    assertJson(
      await get(n, queryPath("SELECT id FROM u ORDER BY id")),
      '{"results":[{"columns":["id"],"types":["integer"],"values":[[1],[3]]}]}',
    );
  });
});

Deno.test("queue: with -write-queue-tx a failing statement rolls its whole batch back", async () => {
  await withNode(["-write-queue-tx", "-write-queue-timeout", "1h"], async (n) => {
    await post(n, "/db/execute", ["CREATE TABLE u (id INTEGER PRIMARY KEY)"]);
    sequenceOf(await post(n, "/db/execute?queue", ["INSERT INTO u(id) VALUES(1)"]));
    sequenceOf(await post(n, "/db/execute?queue", ["INSERT INTO u(id) VALUES(1)"]));
    sequenceOf(await post(n, "/db/execute?queue", ["INSERT INTO u(id) VALUES(3)"]));
    // The batch's outcome is not an error of the request: wait still answers 200.
    sequenceOf(await post(n, "/db/execute?queue&wait", []));
    assert.equal(await count(n, "u"), 0);
    // The queue goes on: the next batch applies.
    sequenceOf(await post(n, "/db/execute?queue&wait", ["INSERT INTO u(id) VALUES(7)"]));
    assert.equal(await count(n, "u"), 1);
    assert.equal(parse(await get(n, "/status")).http.queue._default.tx, true);
  });
});

/**
 * A node that knows no leader: its data directory holds a configuration
 * whose only voter is another id (as in no_leader_test.ts). Log lines are
 * collected.
 */
async function leaderlessNode(
  dataDir: string,
  flags: string[],
): Promise<TestNode & { logs: string[] }> {
  const logs: string[] = [];
  const node = startNode(
    configFromFlags(
      parseFlags([
        "-http-addr",
        "127.0.0.1:0",
        "-raft-addr",
        "127.0.0.1:0",
        "-node-id",
        "b",
        ...flags,
        dataDir,
      ]),
    ),
    (line) => logs.push(line),
  );
  await node.ready;
  const url = `http://${node.httpAddr}`;
  return {
    node,
    url,
    dataDir,
    logs,
    fetch: (path, init) => node.handler(new Request(url + path, init)),
    fetchSocket: (path, init) => fetch(url + path, init),
    close: () => node.close(),
  };
}

Deno.test("queue: no leader: 503, noleader queues, 408 wait timeout, full queue, shutdown", async (t) => {
  const dataDir = await Deno.makeTempDir({ prefix: "raftlite-http-queue-noleader-" });
  try {
    await withNode(["-node-id", "a"], async (a) => {
      await post(a, "/db/execute", ["CREATE TABLE nl (x INTEGER)"]);
    }, dataDir);
    const n = await leaderlessNode(dataDir, [
      "-write-queue-capacity",
      "2",
      // Shutdown tries two election timeouts (at least 1 s) to write the queue.
      "-raft-election-timeout",
      "500ms",
    ]);
    let closed = false;
    try {
      await t.step("503 leader not found unless noleader", async () => {
        assertTextError(
          await post(n, "/db/execute?queue", ["INSERT INTO nl VALUES(1)"]),
          503,
          "leader not found",
        );
        assertTextError(await post(n, "/db/execute?queue&wait", []), 503, "leader not found");
        sequenceOf(await post(n, "/db/execute?queue&noleader", ["INSERT INTO nl VALUES(1)"]));
      });

      await t.step("wait that cannot be written: 408 queue wait timeout", async () => {
        const r = await post(n, "/db/execute?queue&noleader&wait&timeout=100ms", [
          "INSERT INTO nl VALUES(2)",
        ]);
        assertTextError(r, 408, "queue wait timeout");
      });

      await t.step("full queue: waits for room up to timeout, then 503", async () => {
        const t0 = performance.now();
        const r = await post(n, "/db/execute?queue&noleader&timeout=150ms", [
          "INSERT INTO nl VALUES(3)",
        ]);
        const elapsed = performance.now() - t0;
        assertTextError(
          r,
          503,
          "write queue full (2 requests queued, capacity 2); retry shortly",
        );
        assert.ok(elapsed >= 140, `answered after ${elapsed} ms`);
        const q = parse(await get(n, "/status")).http.queue._default;
        assert.equal(q.depth, 2);
        assert.equal(q.sequence_number, 0);
        assert.equal(q.max_size, 2);
        assert.equal(q.num_refused_full, 1);
        assert.ok(q.num_failed_attempts >= 1);
      });

      await t.step("shutdown drops what no leader wrote, within a bound, and logs it", async () => {
        const t0 = performance.now();
        await n.close();
        closed = true;
        assert.ok(performance.now() - t0 < 5_000);
        assert.ok(
          n.logs.some((l) =>
            /write queue: dropped 2 queued requests \(sequence numbers \d+\.\.\d+\) at shutdown/
              .test(l)
          ),
          n.logs.join("\n"),
        );
        assert.ok(n.logs.some((l) => /cannot write batch .*leader not found/.test(l)));
      });
    } finally {
      if (!closed) await n.close();
    }
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("queue: the -write-queue-* flags parse and are validated", () => {
  const dflt = configFromFlags(parseFlags(["d"]));
  assert.equal(dflt.writeQueueCapacity, 1024);
  assert.equal(dflt.writeQueueBatchSize, 128);
  assert.equal(dflt.writeQueueTimeoutMs, 50);
  assert.equal(dflt.writeQueueTx, false);
  const set = configFromFlags(parseFlags([
    "-write-queue-capacity",
    "10",
    "-write-queue-batch-size=5",
    "-write-queue-timeout",
    "1.5s",
    "-write-queue-tx",
    "d",
  ]));
  assert.equal(set.writeQueueCapacity, 10);
  assert.equal(set.writeQueueBatchSize, 5);
  assert.equal(set.writeQueueTimeoutMs, 1500);
  assert.equal(set.writeQueueTx, true);
  const cases: [string[], RegExp][] = [
    [["-write-queue-capacity", "0"], /^fatal: -write-queue-capacity must be at least 1$/],
    [["-write-queue-capacity", "-3"], /^fatal: -write-queue-capacity must be at least 1$/],
    [["-write-queue-capacity", "many"], /^fatal: invalid value "many" for -write-queue-capacity/],
    [["-write-queue-batch-size", "0"], /^fatal: -write-queue-batch-size must be at least 1$/],
    [["-write-queue-timeout", "0s"], /^fatal: -write-queue-timeout must be a duration > 0/],
    [["-write-queue-timeout", "-5ms"], /^fatal: -write-queue-timeout must be a duration > 0/],
    [["-write-queue-timeout", "50"], /^fatal: invalid value "50" for -write-queue-timeout/],
    [["-write-queue-tx=maybe"], /^fatal: invalid boolean value "maybe" for -write-queue-tx$/],
  ];
  for (const [args, expected] of cases) {
    const out = runCli([...args, "d"]);
    assert.equal(out?.code, 1, args.join(" "));
    assert.match(out?.stderr[0] ?? "", expected, args.join(" "));
  }
});
