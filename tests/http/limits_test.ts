/**
 * The limits that protect a node's HTTP API (lib/http/limits.ts, body.ts):
 * -max-body-bytes on every endpoint that reads a body (declared and
 * chunked), -max-statements on every endpoint that takes statements,
 * -http-read-timeout for bodies that stop arriving, -max-concurrent-requests
 * with its probe reserve, the node-wide body-byte budget, and log entries
 * too large for a Raft frame. Each limit answers at once with its status
 * and a message that names the flag, and the node keeps serving.
 */

import assert from "node:assert/strict";
import { BodyBudgetError, readBody } from "../../lib/http/body.ts";
import { pathOf, PROBE_RESERVE, RequestLimiter } from "../../lib/http/limits.ts";
import { assertJson, parse, post, type Reply, send, type TestNode, withNode } from "./helpers.ts";

const enc = new TextEncoder();

/** A body stream of `chunks` pieces of `size` bytes of `fill` (chunked: no Content-Length). */
function chunked(chunks: number, size: number, fill = " "): ReadableStream<Uint8Array> {
  const piece = enc.encode(fill.repeat(size));
  let sent = 0;
  return new ReadableStream<Uint8Array>({
    pull(c) {
      if (sent >= chunks) return c.close();
      sent++;
      c.enqueue(piece);
    },
  });
}

/** A body that sends `first` and then nothing, until `stop` is aborted (then it ends). */
function stalled(first: string, stop: AbortSignal): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>({
    start(c) {
      c.enqueue(enc.encode(first));
      stop.addEventListener("abort", () => {
        try {
          c.close();
        } catch {
          // already cancelled by the reader
        }
      }, { once: true });
    },
  });
}

/** Every endpoint that reads a request body into memory: method, path, content type. */
const BODY_ENDPOINTS: [string, string, string][] = [
  ["POST", "/db/execute", "application/json"],
  ["POST", "/db/execute?queue", "application/json"],
  ["POST", "/db/query", "application/json"],
  ["POST", "/db/query", "text/plain"],
  ["POST", "/db/request", "application/json"],
  ["POST", "/db/sql", "application/json"],
  ["POST", "/db/load", "application/octet-stream"],
  ["DELETE", "/remove", "application/json"],
  ["POST", "/leader", "application/json"],
];

function assert413(r: Reply, what: string): void {
  assert.equal(r.status, 413, `${what}: ${r.status} ${r.text}`);
  assert.equal(
    r.text,
    "request body too large: the limit is 2048 bytes (raise it with -max-body-bytes)\n",
    what,
  );
}

async function stillServes(n: TestNode): Promise<void> {
  assertJson(
    await post(n, "/db/query", ["SELECT 1"]),
    '{"results":[{"columns":["1"],"types":["integer"],"values":[[1]]}]}',
  );
}

Deno.test("limits: -max-body-bytes bounds every endpoint that reads a body, declared or chunked", async () => {
  await withNode(["-max-body-bytes", "2048"], async (n) => {
    const big = " ".repeat(3000);
    for (const [method, path, type] of BODY_ENDPOINTS) {
      const what = `${method} ${path} (${type})`;
      const headers = { "Content-Type": type };
      assert413(await send(n, path, { method, body: big, headers }), `${what} declared`);
      assert413(
        await send(n, path, { method, body: chunked(6, 512), headers }),
        `${what} chunked`,
      );
    }
    // Over a real socket too (fetch sends a stream body chunked).
    const res = await n.fetchSocket("/db/execute", {
      method: "POST",
      body: chunked(8, 512),
      headers: { "Content-Type": "application/json" },
    });
    assert413({ status: res.status, text: await res.text(), headers: res.headers }, "socket");
    await stillServes(n);
  });
});

Deno.test("limits: -max-statements on every endpoint that takes statements", async () => {
  await withNode(["-max-statements", "2"], async (n) => {
    const three = ["SELECT 1", "SELECT 2", "SELECT 3"];
    for (
      const path of ["/db/execute", "/db/execute?queue", "/db/query", "/db/request", "/db/sql"]
    ) {
      const r = await post(n, path, three);
      assert.equal(r.status, 400, `${path}: ${r.text}`);
      assert.equal(r.text, "too many statements: 3 (at most 2 per request)\n", path);
    }
    assert.equal(parse(await post(n, "/db/query", ["SELECT 1", "SELECT 2"])).results.length, 2);
  });
});

Deno.test("limits: -http-read-timeout answers 408 for a body that stops arriving", async () => {
  await withNode(["-http-read-timeout", "300ms"], async (n) => {
    const stop = new AbortController();
    try {
      for (const declared of [false, true]) {
        const headers: Record<string, string> = { "Content-Type": "application/json" };
        // With Content-Length the body is read in one call; without, chunk by chunk.
        if (declared) headers["Content-Length"] = "100";
        const t0 = performance.now();
        const r = await send(n, "/db/execute", {
          method: "POST",
          body: stalled('["CREATE TABLE t', stop.signal),
          headers,
        });
        const tookMs = performance.now() - t0;
        assert.equal(r.status, 408, `declared=${declared}: ${r.text}`);
        assert.equal(
          r.text,
          "request body not received within 300 ms (raise it with -http-read-timeout)\n",
        );
        assert.ok(tookMs >= 250 && tookMs < 5_000, `answered after ${tookMs} ms`);
      }
    } finally {
      stop.abort();
    }
    await stillServes(n);
    // Nothing of the stalled writes happened.
    const r = parse(await post(n, "/db/query", ["SELECT name FROM sqlite_master"]));
    assert.equal(r.results[0].values, undefined);
  });
});

Deno.test("limits: -max-concurrent-requests answers 503 with Retry-After at once; probes have a reserve", async () => {
  await withNode(["-max-concurrent-requests", "2", "-http-read-timeout", "30s"], async (n) => {
    const stop = new AbortController();
    // Two requests whose bodies never finish hold both slots.
    const held = [1, 2].map(() =>
      send(n, "/db/execute", {
        method: "POST",
        body: stalled("[", stop.signal),
        headers: { "Content-Type": "application/json" },
      })
    );
    try {
      await new Promise((r) => setTimeout(r, 50));
      const t0 = performance.now();
      const refused = await post(n, "/db/query", ["SELECT 1"]);
      assert.ok(performance.now() - t0 < 1_000, "refused at once, not queued");
      assert.equal(refused.status, 503);
      assert.equal(refused.headers.get("retry-after"), "1");
      assert.equal(
        refused.text,
        "too many concurrent requests: the limit is 2 (-max-concurrent-requests); retry in 1 s\n",
      );
      assert.ok(refused.headers.get("x-rqlite-version"), "rqlite's headers on the 503 too");
      // Probes still answer from the reserve.
      for (const path of ["/status", "/readyz", "/debug/vars"]) {
        assert.equal((await send(n, path)).status, 200, path);
      }
    } finally {
      stop.abort();
    }
    // The held requests end (their bodies were cut short: 400) and free their slots.
    for (const r of await Promise.all(held)) assert.equal(r.status, 400, r.text);
    await stillServes(n);
  });
});

Deno.test("limits: over real sockets a slot is given back once the response is delivered", async () => {
  await withNode(["-max-concurrent-requests", "2"], async (n) => {
    for (let i = 0; i < 30; i++) {
      const res = await n.fetchSocket(`/db/query?q=SELECT%20${i}`);
      const text = await res.text();
      assert.equal(res.status, 200, text);
    }
    // Slots are released after delivery (Deno's `completed`), a moment after the client has it.
    let limits = { inFlight: -1, rejectedConcurrency: -1 };
    for (let i = 0; i < 50 && limits.inFlight !== 1; i++) {
      const res = await n.fetchSocket("/status");
      limits = JSON.parse(await res.text()).http.limits;
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.deepEqual(
      { inFlight: limits.inFlight, rejected: limits.rejectedConcurrency },
      { inFlight: 1, rejected: 0 },
      "only the /status request itself holds a slot",
    );
  });
});

Deno.test("limits: the probe reserve is bounded too", () => {
  const limiter = new RequestLimiter({
    maxConcurrent: 1,
    maxBodyBytesInFlight: 1 << 20,
    bodyTimeoutMs: 1_000,
  });
  const url = (path: string) => new Request(`http://x${path}`);
  const data = limiter.admit(url("/db/query"));
  assert.ok(data !== undefined);
  assert.equal(limiter.admit(url("/db/query")), undefined, "no data slot left");
  const probes = [];
  for (let i = 0; i < PROBE_RESERVE; i++) probes.push(limiter.admit(url("/status?pretty")));
  assert.ok(probes.every((t) => t !== undefined));
  assert.equal(limiter.admit(url("/readyz")), undefined, "the reserve is used up");
  assert.deepEqual(limiter.stats().rejectedConcurrency, 2);
  for (const t of probes) limiter.release(t!);
  limiter.release(data);
  limiter.release(data); // idempotent
  assert.equal(limiter.stats().inFlight, 0);
  assert.ok(limiter.admit(url("/db/query")) !== undefined);
});

Deno.test("limits: the node-wide body budget refuses a body with 503 until others are done", async () => {
  const limiter = new RequestLimiter({
    maxConcurrent: 10,
    maxBodyBytesInFlight: 1000,
    bodyTimeoutMs: 5_000,
  });
  const req = (body: BodyInit) => new Request("http://x/db/execute", { method: "POST", body });
  const first = req("x".repeat(600));
  const firstTicket = limiter.admit(first)!;
  assert.equal((await readBody(first, 10_000)).byteLength, 600);
  const second = req("y".repeat(600));
  const secondTicket = limiter.admit(second)!;
  await assert.rejects(readBody(second, 10_000), (err: unknown) => {
    assert.ok(err instanceof BodyBudgetError);
    assert.equal(err.status, 503);
    assert.match(err.message, /node busy: no room for a request body of 600 bytes.*retry in 1 s/);
    return true;
  });
  // Chunked bodies are counted as they arrive.
  const third = req(chunked(10, 100));
  const thirdTicket = limiter.admit(third)!;
  await assert.rejects(readBody(third, 10_000), BodyBudgetError);
  assert.equal(limiter.stats().rejectedBodyBytes, 2);
  for (const t of [firstTicket, secondTicket, thirdTicket]) limiter.release(t);
  assert.equal(limiter.stats().bodyBytesInFlight, 0);
  const again = req("z".repeat(900));
  limiter.admit(again);
  assert.equal((await readBody(again, 10_000)).byteLength, 900);
});

Deno.test("limits: pathOf takes the path of an absolute URL", () => {
  assert.equal(pathOf("http://h:1/status?x=1"), "/status");
  assert.equal(pathOf("http://h:1/db/query#f"), "/db/query");
  assert.equal(pathOf("http://h:1"), "");
  assert.equal(pathOf("http://h:1/"), "/");
});

Deno.test("limits: a request larger than a log entry may be is refused with 413, nothing written", async () => {
  // 1 MiB bodies, frames of 2 MiB: a body of small integer parameters is
  // ~2.5 times larger once encoded, more than one frame can carry.
  await withNode(
    ["-max-body-bytes", String(1 << 20), "-raft-max-frame-bytes", String(2 << 20)],
    async (n) => {
      assert.equal((await post(n, "/db/execute", ["CREATE TABLE t(x)"])).status, 200);
      const params = new Array(500_000).fill("1").join(",");
      const body = `[["INSERT INTO t VALUES(?)",${params}]]`;
      assert.ok(body.length < 1 << 20);
      for (const path of ["/db/execute", "/db/request", "/db/execute?queue"]) {
        const r = await post(n, path, body);
        assert.equal(r.status, 413, `${path}: ${r.text}`);
        assert.match(
          r.text,
          /^command encode: the request is \d+ bytes once encoded, more than the \d+-byte limit of one log entry; .*-raft-max-frame-bytes\n$/,
        );
      }
      // A queued write that fits is still written.
      assert.equal(
        (await post(n, "/db/execute?queue&wait", [["INSERT INTO t VALUES(1)"]])).status,
        200,
      );
      const rows = parse(await post(n, "/db/query", ["SELECT count(*) FROM t"]));
      assert.deepEqual(rows.results[0].values, [[1]]);
    },
  );
});
