import assert from "node:assert/strict";
import { type Command } from "../../lib/db/mod.ts";
import {
  type AnyRequest,
  checkResponseBody,
  ClusterHandlerError,
  type CommandResult,
  decodeRequest,
  decodeResponse,
  encodeErrorResponse,
  encodeOkResponse,
  encodeRequest,
  PayloadTooLargeError,
  PROTOCOL_VERSION,
  ProtocolError,
  RemoteError,
  setRequestId,
  toRemoteError,
} from "../../lib/cluster/mod.ts";
import { encodeValue as serialize } from "../../lib/cluster/value_codec.ts";

const MAX = 1 << 20;

const COMMAND: Command = {
  kind: "request",
  transaction: true,
  dbTimeoutMs: 250,
  statements: [
    {
      sql: "INSERT INTO t VALUES(?, ?, :b, ?)",
      params: [
        { value: 2n ** 62n + 1n },
        { value: -0.5 },
        { name: "b", value: new Uint8Array([0, 255, 7]) },
        { value: "héllo 😀" },
      ],
    },
    { sql: "SELECT * FROM t", params: [], forceQuery: true },
  ],
};

function roundTrip(req: AnyRequest): AnyRequest {
  const decoded = decodeRequest(encodeRequest(req, MAX));
  assert.ok(decoded.known);
  return decoded.request;
}

Deno.test("protocol: every request type round-trips exactly", () => {
  const reqs: AnyRequest[] = [
    { id: 1, type: "nodeMeta", timeoutMs: 5, body: {} },
    { id: 2, type: "execute", timeoutMs: 1000, body: { command: COMMAND, options: {} } },
    {
      id: 3,
      type: "execute",
      timeoutMs: 1000,
      body: { command: COMMAND, options: { timeoutMs: 2500 } },
    },
    {
      id: 4,
      type: "query",
      timeoutMs: 30_000,
      credentials: { username: "fiona", password: "p☃ss" },
      body: {
        command: { ...COMMAND, kind: "query" },
        options: {
          level: "none",
          freshnessMs: 0.5,
          freshnessStrict: true,
          linearizableTimeoutMs: 10_000,
          timeoutMs: 7,
        },
      },
    },
    {
      id: 0xffff_ffff,
      type: "request",
      timeoutMs: 0,
      body: { command: COMMAND, options: { level: "linearizable" } },
    },
    { id: 6, type: "join", timeoutMs: 1, body: { id: "n2", raftAddr: "h:4002", voter: false } },
    { id: 7, type: "notify", timeoutMs: 1, body: { id: "n3", raftAddr: "h:4003" } },
    { id: 8, type: "remove", timeoutMs: 1, body: { id: "n4" } },
    { id: 9, type: "stepdown", timeoutMs: 1, body: { wait: true } },
    { id: 10, type: "stepdown", timeoutMs: 1, body: { id: "n1", wait: false } },
    {
      id: 11,
      type: "join",
      timeoutMs: 1,
      credentials: { username: "", password: "" },
      body: { id: "", raftAddr: "", voter: true },
    },
  ];
  for (const req of reqs) assert.deepStrictEqual(roundTrip(req), req, req.type);
});

Deno.test("protocol: results with bigint beyond 2^53, blobs and errors round-trip", () => {
  const result: CommandResult = {
    outcome: {
      results: [
        { lastInsertId: 2n ** 63n - 1n, rowsAffected: 1, timeSec: 0.25 },
        {
          columns: ["id", "b", "r", "t", "n", "bool"],
          types: ["integer", "blob", "real", "text", "", "boolean"],
          values: [
            [-(2n ** 63n), new Uint8Array([1, 2, 3]), -0, "😀", null, true],
            [9007199254740993n, new Uint8Array(0), NaN, "", null, false],
          ],
        },
        { error: "UNIQUE constraint failed: t.id" },
      ],
      error: "whole-command failure",
    },
    raftIndex: 42,
  };
  const msg = decodeResponse(encodeOkResponse(77, result, MAX));
  assert.equal(msg.id, 77);
  assert.ok(msg.ok);
  const body = checkResponseBody("query", msg.body);
  assert.deepStrictEqual(body, result);
  const rows = (body.outcome.results[1] as { values: unknown[][] }).values;
  assert.ok(rows[0]![1] instanceof Uint8Array);
  assert.ok(Object.is(rows[0]![2], -0));
  assert.equal(typeof rows[1]![0], "bigint");

  const err = decodeResponse(
    encodeErrorResponse(5, { message: "not leader", code: "not_leader", leaderAddr: "h:1" }),
  );
  assert.deepStrictEqual(err, {
    id: 5,
    ok: false,
    error: { message: "not leader", code: "not_leader", leaderAddr: "h:1" },
  });
  const meta = { apiUrl: "http://h:4001", commitIndex: 9, version: "0.1.0", nodeId: "n1" };
  assert.deepStrictEqual(
    checkResponseBody(
      "nodeMeta",
      (decodeResponse(encodeOkResponse(1, meta, MAX)) as {
        body: unknown;
      }).body,
    ),
    meta,
  );
  assert.equal(checkResponseBody("join", null), null);
});

Deno.test("protocol: setRequestId patches only the id", () => {
  const req: AnyRequest = { id: 0, type: "remove", timeoutMs: 9, body: { id: "x" } };
  const bytes = encodeRequest(req, MAX);
  setRequestId(bytes, 123456);
  assert.deepStrictEqual(roundTrip({ ...req, id: 123456 }), decodeRequestKnown(bytes));
});

function decodeRequestKnown(bytes: Uint8Array): AnyRequest {
  const d = decodeRequest(bytes);
  assert.ok(d.known);
  return d.request;
}

Deno.test("protocol: sizes are bounded by the frame limit", () => {
  const big: Command = {
    kind: "execute",
    transaction: false,
    statements: [{ sql: "INSERT INTO t VALUES(?)", params: [{ value: new Uint8Array(5000) }] }],
  };
  assert.throws(
    () =>
      encodeRequest(
        { id: 1, type: "execute", timeoutMs: 1, body: { command: big, options: {} } },
        4096,
      ),
    PayloadTooLargeError,
  );
  // An oversize result becomes a too_large error response, which fits.
  const res = decodeResponse(
    encodeOkResponse(3, {
      outcome: { results: [{ columns: ["b"], types: ["blob"], values: [[new Uint8Array(9000)]] }] },
      raftIndex: 1,
    }, 4096),
  );
  assert.ok(!res.ok);
  assert.equal(res.id, 3);
  assert.equal(res.error.code, "too_large");
  assert.match(res.error.message, /4096-byte cluster frame limit/);
});

Deno.test("protocol: malformed requests throw ProtocolError", () => {
  const good = encodeRequest({ id: 1, type: "remove", timeoutMs: 1, body: { id: "x" } }, MAX);
  const header = (type: number, flags = 0) => {
    const h = new Uint8Array(11);
    h[0] = PROTOCOL_VERSION;
    h[1] = type;
    h[10] = flags;
    return h;
  };
  const withBody = (type: number, body: unknown) => {
    const b = serialize(body);
    const out = new Uint8Array(11 + b.length);
    out.set(header(type));
    out.set(b, 11);
    return out;
  };
  const bad: [string, Uint8Array][] = [
    ["empty", new Uint8Array(0)],
    ["short header", good.subarray(0, 10)],
    ["wrong version", Uint8Array.from([9, ...good.subarray(1)])],
    ["bad flags", Uint8Array.from([...good.subarray(0, 10), 0x80, ...good.subarray(11)])],
    ["missing body", good.subarray(0, 11)],
    ["truncated body", good.subarray(0, good.length - 2)],
    ["garbage body", Uint8Array.from([...good.subarray(0, 11), 1, 2, 3, 4])],
    ["truncated credentials", Uint8Array.from([...header(7, 1), 5, 0, 65])],
    ["body not an object", withBody(7, [1, 2])],
    ["remove id not a string", withBody(7, { id: 5 })],
    ["join voter missing", withBody(5, { id: "a", raftAddr: "b" })],
    ["execute without command", withBody(2, { options: {} })],
    ["execute bad command bytes", withBody(2, { command: new Uint8Array([1, 99]), options: {} })],
    [
      "query bad level",
      withBody(3, {
        command: new Uint8Array([1, 1, 0, 0]),
        options: { level: "bogus" },
      }),
    ],
    [
      "query negative timeout",
      withBody(3, {
        command: new Uint8Array([1, 1, 0, 0]),
        options: { level: "weak", timeoutMs: -1 },
      }),
    ],
  ];
  for (const [what, bytes] of bad) assert.throws(() => decodeRequest(bytes), ProtocolError, what);
  // A well-formed header of an unknown type is reported, not thrown.
  assert.deepStrictEqual(decodeRequest(header(200)), { known: false, id: 0, typeCode: 200 });
});

Deno.test("protocol: malformed responses throw ProtocolError", () => {
  const ok = encodeOkResponse(1, null, MAX);
  for (
    const bytes of [
      new Uint8Array(0),
      ok.subarray(0, 5),
      ok.subarray(0, 6),
      Uint8Array.from([2, ...ok.subarray(1)]),
      Uint8Array.from([1, 7, ...ok.subarray(2)]),
      encodeOkResponse(1, { message: 1 }, MAX).map((b, i) => i === 1 ? 1 : b),
    ]
  ) {
    assert.throws(() => decodeResponse(bytes), ProtocolError);
  }
  assert.throws(() => checkResponseBody("execute", { outcome: {}, raftIndex: 1 }), ProtocolError);
  assert.throws(() => checkResponseBody("execute", { outcome: { results: [] } }), ProtocolError);
  assert.throws(() => checkResponseBody("nodeMeta", { apiUrl: 1 }), ProtocolError);
  assert.throws(() => checkResponseBody("remove", {}), ProtocolError);
  // An unknown error code from a newer peer is kept as a plain error.
  const future = serialize({ message: "m", code: "some_future_code" });
  const e = decodeResponse(Uint8Array.from([PROTOCOL_VERSION, 1, 1, 0, 0, 0, ...future]));
  assert.ok(!e.ok);
  assert.equal(e.error.code, "error");
});

Deno.test("protocol: handler errors map to codes with their message unchanged", () => {
  class NotLeaderStoreError extends Error {
    override name = "NotLeaderStoreError";
  }
  class StaleReadError extends Error {
    override name = "StaleReadError";
  }
  class StoreTimeoutError extends Error {
    override name = "StoreTimeoutError";
  }
  const withAddr = Object.assign(new Error("not leader"), { leaderAddr: "10.0.0.1:4002" });
  const cases: [unknown, string, string, string?][] = [
    [new NotLeaderStoreError("not leader"), "not leader", "not_leader"],
    [new NotLeaderStoreError("leader not found"), "leader not found", "leader_not_found"],
    [new StaleReadError("stale read"), "stale read", "stale_read"],
    [new StoreTimeoutError("timeout waiting for fsm"), "timeout waiting for fsm", "timeout"],
    [new Error("index 5: timeout waiting for fsm"), "index 5: timeout waiting for fsm", "timeout"],
    [new Error("unauthorized"), "unauthorized", "unauthorized"],
    [new Error("no such table: x"), "no such table: x", "error"],
    ["a string", "a string", "error"],
    [withAddr, "not leader", "not_leader", "10.0.0.1:4002"],
    [
      new ClusterHandlerError("not leader", { code: "not_leader", leaderAddr: "h:2" }),
      "not leader",
      "not_leader",
      "h:2",
    ],
    [
      new RemoteError({ message: "stale read", code: "stale_read" }, "x:1"),
      "stale read",
      "stale_read",
    ],
  ];
  for (const [err, message, code, leaderAddr] of cases) {
    const body = toRemoteError(err);
    assert.equal(body.message, message);
    assert.equal(body.code, code, message);
    assert.equal(body.leaderAddr, leaderAddr, message);
  }
});
