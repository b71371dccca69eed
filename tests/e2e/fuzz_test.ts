/**
 * Hostile input, seeded and bounded: random and mutated JSON bodies, query
 * strings, methods and paths on the HTTP API, and random and mutated frames
 * on the Raft port. Each HTTP request must get a clear answer (never a 500,
 * never a hang past the bound; a 400 says what is wrong); each Raft-port
 * connection is closed or answered; between batches a known query still
 * answers; and the protected data never changes.
 *
 * How "no data changes" is guaranteed while the parsers are still
 * exercised: the protected table has a name (`keep_q7x2`) that no template
 * mentions and no mutation can produce by chance (it would take ten exact
 * characters); templates write only to `scratch`, which may legitimately
 * change. Bodies for `/db/load` and `/boot`, which replace the whole
 * database, are random bytes only (never a SQLite image), so they must be
 * refused. The protected table's rows are hashed before and after.
 *
 * A failing seed is printed; rerun with `RAFTLITE_FUZZ_SEED=<seed>`.
 */

import assert from "node:assert/strict";
import { encodeRequest } from "../../lib/cluster/protocol.ts";
import { Prng } from "../../lib/sim/prng.ts";
import { encodeMessages } from "../../lib/transport/codec.ts";
import { encodeFrames } from "../../lib/transport/frame.ts";
import { SERVICE_CLUSTER, SERVICE_RAFT } from "../../lib/transport/mux.ts";
import { startTestNode, type TestNode } from "../util/node.ts";

const SEED = Number(Deno.env.get("RAFTLITE_FUZZ_SEED") ?? "20261122");
const HTTP_REQUESTS = 600;
const RAFT_CONNECTIONS = 120;
const REQUEST_BOUND_MS = 10_000;
const KEEP = "keep_q7x2";

const TEMPLATES: readonly { path: string; body: string }[] = [
  { path: "/db/execute", body: '["INSERT INTO scratch(v) VALUES(1)"]' },
  { path: "/db/execute", body: '[["INSERT INTO scratch(v) VALUES(?)", "a", 2]]' },
  { path: "/db/execute?transaction", body: '[["INSERT INTO scratch(v) VALUES(:x)", {"x": 1.5}]]' },
  { path: "/db/execute?queue", body: '["INSERT INTO scratch(v) VALUES(3)"]' },
  { path: "/db/query", body: '["SELECT * FROM scratch", ["SELECT ?", 9007199254740993]]' },
  { path: "/db/query?level=strong", body: '[["SELECT v FROM scratch WHERE v > ?", 0]]' },
  { path: "/db/request", body: '["SELECT 1", ["INSERT INTO scratch(v) VALUES(?)", null]]' },
  { path: "/db/sql", body: '["SELECT RANDOM()"]' },
  { path: "/remove", body: '{"id":"nobody"}' },
  { path: "/leader", body: '{"id":"nobody"}' },
];
const PATHS = [
  "/db/execute",
  "/db/query",
  "/db/request",
  "/db/sql",
  "/db/backup",
  "/db/load",
  "/boot",
  "/snapshot",
  "/reap",
  "/remove",
  "/leader",
  "/nodes",
  "/status",
  "/readyz",
  "/debug/vars",
  "/metrics",
  "/console/",
  "/nothing",
  "/db/",
  "//db/execute",
];
const PARAMS = [
  "level",
  "timeout",
  "freshness",
  "freshness_strict",
  "db_timeout",
  "q",
  "pretty",
  "timings",
  "transaction",
  "queue",
  "wait",
  "redirect",
  "associative",
  "blob_array",
  "trailing_logs",
  "fmt",
  "tables",
  "key",
  "nonvoters",
  "ver",
  "zzz",
];
const VALUES = [
  "",
  "true",
  "false",
  "weak",
  "strong",
  "linearizable",
  "none",
  "auto",
  "bogus",
  "1s",
  "-1s",
  "1h1h",
  "9999999999999999999s",
  "0",
  "-5",
  "1e9",
  "%zz",
  "%",
  "%00",
  "%FF%FE",
  "SELECT%201",
  "a%20b",
  "sql",
  "2",
];
const METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"];
const NASTY = [
  '"',
  "\\",
  "\u0000",
  "[",
  "]",
  "{",
  "}",
  ",",
  ":",
  "1e999",
  "-0",
  "\ud800",
  "9".repeat(40),
];

function pick<T>(rng: Prng, xs: readonly T[]): T {
  return xs[rng.nextInt(xs.length)]!;
}

/** One mutation of `text`: flip, insert, delete, truncate, nest deeply, or splice in something nasty. */
function mutate(rng: Prng, text: string): string {
  const at = rng.nextInt(text.length + 1);
  switch (rng.nextInt(7)) {
    case 0:
      return text.slice(0, at) + String.fromCharCode(rng.nextInt(256)) + text.slice(at + 1);
    case 1:
      return text.slice(0, at) + pick(rng, NASTY) + text.slice(at);
    case 2:
      return text.slice(0, at) + text.slice(at + 1 + rng.nextInt(8));
    case 3:
      return text.slice(0, at);
    case 4: {
      const depth = 1 + rng.nextInt(20_000);
      return "[".repeat(depth) + text + "]".repeat(rng.nextInt(2) === 0 ? depth : 0);
    }
    case 5:
      return text.replace(/"v"|v\)/, `"${"x".repeat(rng.nextInt(100_000))}")`);
    default:
      return text.replace(/\d+/, pick(rng, ["1e308", "-9223372036854775809", "0x10", "01", "1."]));
  }
}

function randomBytes(rng: Prng, n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = rng.nextInt(256);
  return out;
}

function randomQuery(rng: Prng): string {
  const n = rng.nextInt(4);
  const parts: string[] = [];
  for (let i = 0; i < n; i++) {
    const p = pick(rng, PARAMS);
    parts.push(rng.nextInt(4) === 0 ? p : `${p}=${pick(rng, VALUES)}`);
  }
  return parts.length === 0 ? "" : `?${parts.join("&")}`;
}

interface Probe {
  method: string;
  path: string;
  body?: Uint8Array | string;
}

function nextProbe(rng: Prng): Probe {
  const kind = rng.nextInt(4);
  if (kind <= 1) {
    const t = pick(rng, TEMPLATES);
    let body = t.body;
    for (let m = 1 + rng.nextInt(3); m > 0; m--) body = mutate(rng, body);
    const sep = t.path.includes("?") ? "&" : "?";
    const extra = randomQuery(rng).replace(/^\?/, sep);
    return { method: "POST", path: t.path + (extra === sep ? "" : extra), body };
  }
  if (kind === 2) {
    const path = pick(rng, ["/db/load", "/boot"]);
    return { method: "POST", path, body: randomBytes(rng, rng.nextInt(5000)) };
  }
  const method = pick(rng, METHODS);
  const body = method === "GET" || method === "HEAD"
    ? undefined
    : randomBytes(rng, rng.nextInt(300));
  return { method, path: pick(rng, PATHS) + randomQuery(rng), body };
}

async function keepHash(node: TestNode): Promise<string> {
  const res = await node.fetchSocket(
    `/db/query?level=strong&q=${encodeURIComponent(`SELECT * FROM ${KEEP} ORDER BY id`)}`,
  );
  const text = await res.text();
  assert.equal(res.status, 200, text);
  assert.ok(!text.includes('"error"'), text);
  return text;
}

async function send(node: TestNode, p: Probe): Promise<{ status: number; text: string }> {
  const headers = new Headers();
  if (p.body !== undefined) {
    headers.set(
      "Content-Type",
      typeof p.body === "string" ? "application/json" : "application/octet-stream",
    );
  }
  const res = await node.fetchSocket(p.path, {
    method: p.method,
    headers,
    body: p.body as BodyInit | undefined,
    signal: AbortSignal.timeout(REQUEST_BOUND_MS),
  });
  return { status: res.status, text: await res.text() };
}

async function setUp(node: TestNode): Promise<string> {
  const res = await node.fetchSocket("/db/execute", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify([
      `CREATE TABLE ${KEEP} (id INTEGER PRIMARY KEY, v)`,
      `INSERT INTO ${KEEP}(v) VALUES ('one'), (2), (x'00ff'), (NULL)`,
      "CREATE TABLE scratch (v)",
    ]),
  });
  assert.equal(res.status, 200, await res.text());
  return await keepHash(node);
}

Deno.test("fuzz: random and mutated HTTP requests get clear answers; the node serves on; data unchanged", async () => {
  const node = await startTestNode(["-http-read-timeout", "5s"]);
  const rng = new Prng(SEED);
  const statuses = new Map<number, number>();
  let last: Probe | undefined;
  try {
    const before = await setUp(node);
    for (let i = 0; i < HTTP_REQUESTS; i++) {
      const p = nextProbe(rng);
      last = p;
      const { status, text } = await send(node, p);
      statuses.set(status, (statuses.get(status) ?? 0) + 1);
      const what = `seed ${SEED}, request ${i}: ${p.method} ${p.path}`;
      // rqlite-api.md §4: a failed stepdown or removal is a 500 with the reason (the only
      // 500s allowed), and /remove answers a malformed body with an empty 400.
      const membership = p.path.startsWith("/leader") || p.path.startsWith("/remove");
      const stepdownRefused = status === 500 && membership && text.trim() !== "";
      assert.ok(
        (status !== 500 || stepdownRefused) && status < 600 && status >= 200,
        `${what}: ${status} ${text.slice(0, 200)}`,
      );
      if (status === 400 && p.method !== "HEAD" && !p.path.startsWith("/remove")) {
        assert.ok(text.trim().length > 0, `${what}: a 400 says why`);
      }
      if (
        status === 200 && p.path.startsWith("/db/") && p.method === "POST" &&
        !p.path.startsWith("/db/load")
      ) {
        assert.doesNotThrow(() => JSON.parse(text), `${what}: 200 with a JSON body`);
      }
      if (i % 50 === 49) {
        const ok = await send(node, { method: "GET", path: "/db/query?q=SELECT%2042" });
        assert.equal(ok.status, 200);
        assert.match(ok.text, /\[\[42\]\]/);
      }
    }
    assert.equal(await keepHash(node), before, `seed ${SEED}: the protected table changed`);
    const ready = await send(node, { method: "GET", path: "/readyz" });
    assert.equal(ready.status, 200);
    // The fuzz reached the parsers: most requests were refused, some accepted.
    assert.ok((statuses.get(400) ?? 0) > HTTP_REQUESTS / 10, JSON.stringify([...statuses]));
    assert.ok((statuses.get(200) ?? 0) > 10, JSON.stringify([...statuses]));
  } catch (err) {
    console.error(`fuzz seed ${SEED}; last request`, last?.method, last?.path);
    throw err;
  } finally {
    await node.close();
  }
});

/** Valid payloads to mutate: a Raft append and heartbeat, a cluster-service execute and query. */
function validPayloads(): { service: number; payload: Uint8Array }[] {
  const base = {
    from: "intruder",
    to: "n1",
    term: 1_000_000,
    index: 0,
    logTerm: 0,
    entries: [],
    commit: 0,
    reject: false,
    rejectHint: 0,
    context: "",
  };
  const append = encodeMessages([{
    ...base,
    kind: "append",
    entries: [{ index: 1, term: 1_000_000, kind: "normal", data: new Uint8Array([1, 2, 3]) }],
  }] as never);
  const heartbeat = encodeMessages([{ ...base, kind: "heartbeat" }] as never);
  const execute = encodeRequest({
    id: 1,
    type: "execute",
    timeoutMs: 1000,
    body: {
      command: {
        kind: "execute",
        statements: [{ sql: "INSERT INTO scratch(v) VALUES(7)", params: [] }],
        transaction: false,
      },
      options: {},
    },
  } as never, 1 << 20);
  const query = encodeRequest({
    id: 2,
    type: "query",
    timeoutMs: 1000,
    body: {
      command: { kind: "query", statements: [{ sql: "SELECT 1", params: [] }], transaction: false },
      options: { level: "none" },
    },
  } as never, 1 << 20);
  return [
    { service: SERVICE_RAFT, payload: append },
    { service: SERVICE_RAFT, payload: heartbeat },
    { service: SERVICE_CLUSTER, payload: execute },
    { service: SERVICE_CLUSTER, payload: query },
  ];
}

function raftBytes(rng: Prng, valid: { service: number; payload: Uint8Array }[]): Uint8Array {
  switch (rng.nextInt(4)) {
    case 0:
      return randomBytes(rng, 1 + rng.nextInt(2000));
    case 1: { // a valid frame with flipped, inserted or cut bytes
      const v = pick(rng, valid);
      const frame = encodeFrames([v.payload]);
      const bytes = new Uint8Array([v.service, ...frame]);
      for (let m = 1 + rng.nextInt(4); m > 0; m--) {
        bytes[1 + rng.nextInt(bytes.length - 1)] = rng.nextInt(256);
      }
      return rng.nextInt(3) === 0 ? bytes.subarray(0, 1 + rng.nextInt(bytes.length)) : bytes;
    }
    case 2: { // a frame whose length prefix lies
      const v = pick(rng, valid);
      const frame = encodeFrames([v.payload]);
      new DataView(frame.buffer).setUint32(
        0,
        pick(rng, [0, 1, 0xffff_ffff, 0x7fff_ffff, frame.length * 3]),
      );
      return new Uint8Array([v.service, ...frame]);
    }
    default: { // a mutated payload in a well-formed frame
      const v = pick(rng, valid);
      const payload = v.payload.slice();
      for (let m = 1 + rng.nextInt(6); m > 0; m--) {
        payload[rng.nextInt(payload.length)] = rng.nextInt(256);
      }
      return new Uint8Array([v.service, ...encodeFrames([payload])]);
    }
  }
}

Deno.test("fuzz: random and mutated frames on the Raft port close the connection; the node serves on; data unchanged", async () => {
  const node = await startTestNode(["-node-id", "n1"]);
  const rng = new Prng(SEED + 1);
  const valid = validPayloads();
  try {
    const before = await setUp(node);
    const [host, port] = node.node.raftAddr.split(":") as [string, string];
    let closed = 0;
    for (let i = 0; i < RAFT_CONNECTIONS; i++) {
      const conn = await Deno.connect({ hostname: host, port: Number(port) });
      try {
        await conn.write(raftBytes(rng, valid)).catch(() => 0);
        // The node either closes the connection or (a request it could read) answers and waits for more.
        const buf = new Uint8Array(65536);
        const deadline = performance.now() + 300;
        for (;;) {
          let timer: ReturnType<typeof setTimeout> | undefined;
          const n = await Promise.race([
            conn.read(buf).catch(() => null),
            new Promise<"wait">((
              r,
            ) => (timer = setTimeout(() => r("wait"), Math.max(1, deadline - performance.now())))),
          ]);
          clearTimeout(timer);
          if (n === null) {
            closed++;
            break;
          }
          if (n === "wait") break;
        }
      } finally {
        try {
          conn.close();
        } catch {
          // closed by the node
        }
      }
      if (i % 20 === 19) {
        const ok = await send(node, { method: "GET", path: "/db/query?q=SELECT%2042" });
        assert.equal(ok.status, 200, `seed ${SEED + 1}, connection ${i}: ${ok.text}`);
      }
    }
    assert.ok(
      closed > RAFT_CONNECTIONS / 2,
      `the node closed ${closed} of ${RAFT_CONNECTIONS} bad connections`,
    );
    assert.equal(await keepHash(node), before);
    const status = JSON.parse((await send(node, { method: "GET", path: "/status" })).text);
    assert.equal(
      status.store.raft.state,
      "Leader",
      "an intruder's higher term did not unseat the leader",
    );
    const write = await send(node, {
      method: "POST",
      path: "/db/execute",
      body: '["INSERT INTO scratch(v) VALUES(99)"]',
    });
    assert.match(write.text, /"rows_affected":1/);
  } finally {
    await node.close();
  }
});
