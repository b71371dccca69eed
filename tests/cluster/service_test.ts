import assert from "node:assert/strict";
import {
  ClusterBusyError,
  ClusterClient,
  ClusterClosedError,
  ClusterConnectionError,
  ClusterTimeoutError,
  PayloadTooLargeError,
  RemoteError,
} from "../../lib/cluster/mod.ts";
import { encodeFrames, FrameReader } from "../../lib/transport/frame.ts";
import { dialService, SERVICE_CLUSTER } from "../../lib/transport/mux.ts";
import { cmd, FakeHandlers, META, sleep, startServer, waitFor } from "./helpers.ts";

Deno.test("service: every request type over a real mux", async () => {
  const h = new FakeHandlers();
  const srv = startServer(h);
  const client = new ClusterClient({ credentials: { username: "u", password: "p" } });
  try {
    assert.deepStrictEqual(await client.nodeMeta(srv.addr), META);

    const command = {
      ...cmd("INSERT INTO t VALUES(?)"),
      statements: [{ sql: "INSERT INTO t VALUES(?)", params: [{ value: 2n ** 62n }] }],
    };
    const ex = await client.execute(srv.addr, command, { timeoutMs: 1500 });
    assert.deepStrictEqual(ex, {
      outcome: { results: [{ lastInsertId: 2n ** 60n, rowsAffected: 1 }] },
      raftIndex: 5,
    });
    assert.deepStrictEqual(h.calls.at(-1)!.args, [command, { timeoutMs: 1500 }]);
    assert.deepStrictEqual(h.calls.at(-1)!.ctx.credentials, { username: "u", password: "p" });

    const readOpts = { level: "linearizable" as const, linearizableTimeoutMs: 100, timeoutMs: 9 };
    const q = await client.query(srv.addr, cmd("SELECT 1", "query"), readOpts, {
      credentials: { username: "other", password: "x" },
    });
    assert.deepStrictEqual(q.outcome.results[0], {
      columns: ["sql", "big", "blob"],
      types: ["text", "integer", "blob"],
      values: [["SELECT 1", -(2n ** 63n), new Uint8Array([9, 8, 7])]],
    });
    assert.deepStrictEqual(h.calls.at(-1)!.args[1], readOpts);
    assert.deepStrictEqual(h.calls.at(-1)!.ctx.credentials, { username: "other", password: "x" });

    const r = await client.request(srv.addr, cmd("SELECT 2", "request"), { level: "none" });
    assert.deepStrictEqual(r, { outcome: { results: [], error: "request error" }, raftIndex: 6 });

    // A handler's failure arrives with its message unchanged.
    await assert.rejects(
      client.execute(srv.addr, cmd("fail UNIQUE constraint failed: t.id")),
      (e) =>
        e instanceof RemoteError && e.message === "UNIQUE constraint failed: t.id" &&
        e.code === "error",
    );

    await client.join(srv.addr, { id: "n2", raftAddr: "127.0.0.1:5002", voter: true });
    assert.equal(h.members.get("n2"), "127.0.0.1:5002");
    h.leader = false;
    await assert.rejects(
      client.join(srv.addr, { id: "n3", raftAddr: "127.0.0.1:5003", voter: false }),
      (e) =>
        e instanceof RemoteError && e.message === "not leader" && e.code === "not_leader" &&
        e.leaderAddr === "10.0.0.9:4002",
    );

    await client.notify(srv.addr, { id: "n4", raftAddr: "127.0.0.1:5004" });
    assert.deepStrictEqual(h.calls.at(-1)!.args, [{ id: "n4", raftAddr: "127.0.0.1:5004" }]);

    await client.remove(srv.addr, "n2");
    assert.ok(!h.members.has("n2"));
    await assert.rejects(
      client.remove(srv.addr, "nope"),
      (e) => e instanceof RemoteError && e.message === "node not found in cluster",
    );

    await client.stepdown(srv.addr, { wait: true });
    assert.deepStrictEqual(h.calls.at(-1)!.args, [undefined, true]);
    await client.stepdown(srv.addr, { id: "n2", wait: false });
    assert.deepStrictEqual(h.calls.at(-1)!.args, ["n2", false]);
    await assert.rejects(
      client.stepdown(srv.addr, { id: "n1", wait: true }),
      /^RemoteError: stepdown: cannot step down to the current Leader$/,
    );
    for (const c of h.calls) assert.match(c.ctx.remoteAddr, /^127\.0\.0\.1:\d+$/);

    // Too large for a frame: rejected before anything is sent.
    const small = new ClusterClient({ maxFrameBytes: 1024 });
    try {
      const big = {
        kind: "execute" as const,
        transaction: false,
        statements: [{ sql: "x".repeat(2000), params: [] }],
      };
      await assert.rejects(small.execute(srv.addr, big), PayloadTooLargeError);
      assert.equal(small.stats().connectionsOpened, 0);
    } finally {
      await small.close();
    }
    assert.equal(srv.server.stats().requests.execute, 2);
  } finally {
    await client.close();
    await srv.close();
  }
});

Deno.test("service: 100 concurrent pipelined requests on one client", async () => {
  const h = new FakeHandlers();
  const srv = startServer(h);
  const client = new ClusterClient({ connectionsPerTarget: 1 });
  try {
    // Handlers finish in a different order than requests arrive.
    const jobs = Array.from({ length: 100 }, (_, i) => {
      const sql = i % 3 === 0 ? `sleep ${(100 - i) % 17}` : `SELECT ${i}`;
      return client.query(srv.addr, cmd(sql, "query"), { level: "weak" }).then((r) => ({
        i,
        r,
        sql,
      }));
    });
    const results = await Promise.all(jobs);
    for (const { r, sql } of results) {
      const rows = (r.outcome.results[0] as { values: unknown[][] }).values;
      assert.equal(rows[0]![0], sql);
    }
    assert.ok(h.maxActive > 1, "requests were handled concurrently");
    assert.equal(srv.server.stats().accepted, 1);
    assert.equal(client.stats().connectionsOpened, 1);
    assert.equal(client.stats().targets[srv.addr]!.inFlight, 0);

    // With more connections allowed the pool grows past the pipeline depth, within its bound.
    const pooled = new ClusterClient({ connectionsPerTarget: 3, pipelineDepth: 4 });
    try {
      await Promise.all(
        Array.from(
          { length: 100 },
          () => pooled.query(srv.addr, cmd("sleep 5", "query"), { level: "none" }),
        ),
      );
      const opened = pooled.stats().connectionsOpened;
      assert.ok(opened >= 2 && opened <= 3, `opened ${opened}`);
    } finally {
      await pooled.close();
    }
  } finally {
    await client.close();
    await srv.close();
  }
});

Deno.test("service: the server bounds requests in flight per connection", async () => {
  const h = new FakeHandlers();
  const srv = startServer(h, { maxInFlightPerConnection: 2 });
  const client = new ClusterClient({ connectionsPerTarget: 1 });
  try {
    await Promise.all(
      Array.from({ length: 10 }, () => client.execute(srv.addr, cmd("sleep 20"))),
    );
    assert.equal(h.maxActive, 2);
  } finally {
    await client.close();
    await srv.close();
  }
});

Deno.test("service: a request that is never answered times out; others go on", async () => {
  const h = new FakeHandlers();
  const srv = startServer(h);
  const client = new ClusterClient({ connectionsPerTarget: 1 });
  try {
    const t0 = performance.now();
    const hung = client.execute(srv.addr, cmd("hang"), {}, { timeoutMs: 300 });
    // Meanwhile the same connection serves other requests.
    for (let i = 0; i < 5; i++) {
      assert.deepStrictEqual(await client.nodeMeta(srv.addr), META);
    }
    await assert.rejects(hung, (e) => {
      // The client's deadline and the server's (same value) race: either says "timeout".
      return e instanceof ClusterTimeoutError ||
        (e instanceof RemoteError && e.code === "timeout");
    });
    const elapsed = performance.now() - t0;
    assert.ok(elapsed >= 290 && elapsed < 2000, `elapsed ${elapsed}`);
    // The server abandoned the handler through its signal.
    await waitFor(() => h.aborted.length === 1, 2000, "handler abort");
    assert.equal(h.aborted[0], "request deadline passed");
    assert.deepStrictEqual(await client.nodeMeta(srv.addr), META);
  } finally {
    await client.close();
    await srv.close();
  }
});

Deno.test("service: the server answers a request past its deadline with a timeout error", async () => {
  const h = new FakeHandlers();
  const srv = startServer(h);
  // A client with a longer deadline than the one sent: the server's answer comes first.
  const client = new ClusterClient({ connectionsPerTarget: 1 });
  const conn = await dialService(srv.addr, SERVICE_CLUSTER);
  try {
    const { encodeRequest, decodeResponse } = await import("../../lib/cluster/protocol.ts");
    const req = encodeRequest({
      id: 41,
      type: "execute",
      timeoutMs: 100,
      body: { command: cmd("hang"), options: {} },
    }, 1 << 20);
    await conn.write(encodeFrames([req]));
    const reader = new FrameReader(conn);
    const frame = await reader.read();
    assert.ok(frame !== null);
    const msg = decodeResponse(frame);
    assert.ok(!msg.ok);
    assert.equal(msg.id, 41);
    assert.equal(msg.error.code, "timeout");
    assert.match(msg.error.message, /execute request not completed within 100 ms/);
    assert.equal(srv.server.stats().timeouts, 1);
  } finally {
    conn.close();
    await client.close();
    await srv.close();
  }
});

Deno.test("service: a silent peer times the client out and the client reconnects", async () => {
  // A mux whose cluster service reads requests and never answers.
  const { Mux } = await import("../../lib/transport/mux.ts");
  const mux = Mux.listen({ hostname: "127.0.0.1", port: 0 });
  let accepted = 0;
  mux.handle(SERVICE_CLUSTER, async (conn) => {
    accepted++;
    const reader = new FrameReader(conn);
    try {
      while (await reader.read() !== null) { /* swallow */ }
    } catch {
      // Closed.
    }
  });
  const client = new ClusterClient({ connectionsPerTarget: 1 });
  try {
    for (let i = 0; i < 2; i++) {
      const t0 = performance.now();
      await assert.rejects(client.nodeMeta(mux.address, { timeoutMs: 150 }), (e) => {
        assert.ok(e instanceof ClusterTimeoutError);
        assert.match(e.message, /timeout waiting for node .* to respond to nodeMeta after 150 ms/);
        return true;
      });
      assert.ok(performance.now() - t0 >= 140);
    }
    // The stuck connection was dropped after the first timeout: a fresh one was dialled.
    assert.equal(client.stats().connectionsOpened, 2);
    assert.equal(accepted, 2);
    assert.equal(client.stats().timeouts, 2);
  } finally {
    await client.close();
    await mux.close();
  }
});

Deno.test("service: in-flight requests per target are bounded; close rejects pending", async () => {
  const h = new FakeHandlers();
  const srv = startServer(h);
  const client = new ClusterClient({ maxInFlightPerTarget: 2 });
  try {
    const a = client.execute(srv.addr, cmd("hang"));
    const b = client.execute(srv.addr, cmd("hang"));
    await assert.rejects(client.execute(srv.addr, cmd("x")), ClusterBusyError);
    await waitFor(() => h.active === 2, 2000, "two active handlers");
    const rejected = [assert.rejects(a, ClusterClosedError), assert.rejects(b, ClusterClosedError)];
    await client.close();
    await Promise.all(rejected);
    await assert.rejects(client.nodeMeta(srv.addr), ClusterClosedError);
    // The server noticed the connection going away and aborted both handlers.
    await waitFor(() => h.aborted.length === 2, 2000, "handler aborts");
  } finally {
    await client.close();
    await srv.close();
  }
});

Deno.test("service: the server closes idle connections; the client reconnects", async () => {
  const h = new FakeHandlers();
  const srv = startServer(h, { idleTimeoutMs: 150 });
  const client = new ClusterClient({ idleTimeoutMs: 10_000 });
  try {
    await client.nodeMeta(srv.addr);
    assert.equal(srv.server.stats().connections, 1);
    // A long request is not idle.
    await client.execute(srv.addr, cmd("sleep 300"));
    assert.equal(srv.server.stats().idleClosed, 0);
    await waitFor(() => srv.server.stats().idleClosed === 1, 2000, "idle close");
    await waitFor(
      () => client.stats().targets[srv.addr]!.connections === 0,
      2000,
      "client noticed",
    );
    assert.deepStrictEqual(await client.nodeMeta(srv.addr), META);
    assert.equal(client.stats().connectionsOpened, 2);
  } finally {
    await client.close();
    await srv.close();
  }
});

Deno.test("service: the client closes its own idle connections", async () => {
  const h = new FakeHandlers();
  const srv = startServer(h);
  const client = new ClusterClient({ idleTimeoutMs: 100 });
  try {
    await client.nodeMeta(srv.addr);
    await waitFor(() => srv.server.stats().connections === 0, 2000, "server saw the close");
    assert.equal(srv.server.stats().idleClosed, 0);
    assert.deepStrictEqual(await client.nodeMeta(srv.addr), META);
  } finally {
    await client.close();
    await srv.close();
  }
});

Deno.test("service: garbage closes only the connection that sent it", async () => {
  const h = new FakeHandlers();
  const srv = startServer(h, { maxFrameBytes: 4096 });
  const client = new ClusterClient({ connectionsPerTarget: 1 });
  try {
    await client.nodeMeta(srv.addr);
    const garbage: Uint8Array[] = [
      encodeFrames([new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13])]),
      encodeFrames([new Uint8Array(0)]),
      new Uint8Array([0, 1, 0, 0]), // declares 65536 bytes: over the 4096 limit
      encodeFrames([Uint8Array.from([1, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 255, 255])]),
    ];
    for (const bytes of garbage) {
      const conn = await dialService(srv.addr, SERVICE_CLUSTER);
      await conn.write(bytes);
      const reader = new FrameReader(conn);
      // The server closes the connection without answering.
      assert.equal(await reader.read().catch(() => null), null);
      reader.close();
    }
    await waitFor(() => srv.server.stats().protocolErrors === garbage.length, 2000, "errors");
    // The well-behaved connection is untouched.
    assert.deepStrictEqual(await client.nodeMeta(srv.addr), META);
    assert.equal(client.stats().connectionsOpened, 1);
    assert.equal(client.stats().connectionsLost, 0);

    // An unknown request type with a good header is answered, the connection kept.
    const conn = await dialService(srv.addr, SERVICE_CLUSTER);
    const { decodeResponse } = await import("../../lib/cluster/protocol.ts");
    const reader = new FrameReader(conn);
    try {
      await conn.write(encodeFrames([Uint8Array.from([1, 99, 7, 0, 0, 0, 0, 0, 0, 0, 0])]));
      const msg = decodeResponse((await reader.read())!);
      assert.ok(!msg.ok);
      assert.equal(msg.id, 7);
      assert.equal(msg.error.message, "unknown cluster request type 99");
    } finally {
      reader.close();
    }
  } finally {
    await client.close();
    await srv.close();
  }
});

Deno.test("service: the server bounds its connections", async () => {
  const h = new FakeHandlers();
  const srv = startServer(h, { maxConnections: 1 });
  const first = new ClusterClient();
  const second = new ClusterClient();
  try {
    await first.nodeMeta(srv.addr);
    await assert.rejects(second.nodeMeta(srv.addr), ClusterConnectionError);
    assert.equal(srv.server.stats().rejectedLimit, 1);
    assert.deepStrictEqual(await first.nodeMeta(srv.addr), META);
  } finally {
    await first.close();
    await second.close();
    await srv.close();
  }
});

Deno.test("service: the client reconnects after the server restarts", async () => {
  const h = new FakeHandlers();
  let srv = startServer(h);
  const addr = srv.addr;
  const port = srv.mux.addr.port;
  const client = new ClusterClient({ dialTimeoutMs: 1000 });
  try {
    assert.deepStrictEqual(await client.nodeMeta(addr), META);
    const hung = client.execute(addr, cmd("hang"));
    await waitFor(() => h.active === 1, 2000, "hung handler");
    await srv.close();
    // What was in flight fails as possibly sent; new requests cannot connect.
    await assert.rejects(hung, (e) => e instanceof ClusterConnectionError && e.sent);
    await assert.rejects(
      client.nodeMeta(addr),
      (e) => e instanceof ClusterConnectionError && !e.sent,
    );
    srv = startServer(h, {}, port);
    assert.deepStrictEqual(await client.nodeMeta(addr), META);
    assert.ok(client.stats().dialFailures >= 1);
  } finally {
    await client.close();
    await srv.close();
  }
});

Deno.test("service: a connection refused is reported promptly", async () => {
  // Bind and release a port so nothing listens there.
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  const client = new ClusterClient();
  try {
    const t0 = performance.now();
    await assert.rejects(client.nodeMeta(`127.0.0.1:${port}`), (e) => {
      assert.ok(e instanceof ClusterConnectionError);
      assert.ok(!e.sent);
      assert.match(e.message, /^cannot connect to node 127\.0\.0\.1:\d+: dial /);
      return true;
    });
    assert.ok(performance.now() - t0 < 2000);
  } finally {
    await client.close();
  }
  await sleep(0);
});
