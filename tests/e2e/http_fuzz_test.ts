/**
 * Seeded fuzzing of a real node's HTTP API (a `main.ts` process): mutated
 * valid bodies for every endpoint that reads one, structurally hostile JSON
 * (deep nesting, huge numbers, wrong types, invalid UTF-8, NUL bytes, long
 * strings, duplicate keys), mutated query strings and random methods and
 * paths, plus malformed raw HTTP on a socket. For every request: an answer
 * within a bound; a 4xx (or rqlite's 200 with the error in the results)
 * with a message where rqlite gives one; no 500 except where rqlite answers
 * 500 (rqlite-api.md §4, §6). Between batches the node must answer a known
 * query, and at the end its protected data must be unchanged.
 *
 * How "no data changes" is guaranteed while the parsers are exercised:
 * - Every SQL text the fuzzer starts from names only the table `scratch`;
 *   byte mutations and truncations of it cannot spell `keep` or a statement
 *   that changes the schema (no seed has CREATE/DROP/ALTER/VACUUM or
 *   `keep`), so a mutated body that is still valid can only touch `scratch`.
 *   The check compares the `keep` rows and the whole schema, not `scratch`.
 * - Database images (for /db/load and /boot) always have an invalid page
 *   size (a header field SQLite refuses) or a header cut short, so no mutated
 *   image can replace the database; images whose magic is mutated are read
 *   by /db/load as SQL text that starts with a byte no statement starts with.
 * - /remove and /leader bodies name nodes that do not exist.
 * Valid requests do write to `scratch` (that is allowed and exercises the
 * store); `keep` is written once before the fuzzing starts.
 *
 * Replay a failure with `FUZZ_SEED=<seed> deno test -A tests/e2e/http_fuzz_test.ts`.
 */

import assert from "node:assert/strict";
import { spawnNode } from "../util/node.ts";
import { type Bytes, fuzzSeed, mutate, Prng, randomBytes, withSeed } from "../util/fuzz.ts";
import { startTracked, withNodes } from "./helpers.ts";
import { keepsServing, protectedState, seedProtectedData, stillRunning } from "./protected_data.ts";

const SEED = fuzzSeed(20250611);
const BATCHES = 8;
const PER_BATCH = 400;
const PARALLEL = 4;
/** Malformed raw HTTP requests per batch (one socket each). */
const RAW_PER_BATCH = 20;
const REQUEST_BOUND_MS = 15_000;
const MAX_BODY = 256 * 1024;

const enc = new TextEncoder();

/** Bodies the mutations start from, by endpoint. Only `scratch` is ever named. */
const SEEDS: Record<string, readonly string[]> = {
  statements: [
    "[\"INSERT INTO scratch(a, b) VALUES(1, 'x')\"]",
    '[["INSERT INTO scratch(a, b) VALUES(?, ?)", 7, "seven"]]',
    '[["UPDATE scratch SET b = :b WHERE a = :a", {"a": 1, "b": "z"}]]',
    '["DELETE FROM scratch WHERE a > 1000", "SELECT * FROM scratch"]',
    '[["SELECT * FROM scratch WHERE a = ? AND b = ?", 1, "x"], ["SELECT count(*) FROM scratch"]]',
    '[["INSERT INTO scratch(a, b) VALUES(?, ?)", 9007199254740993, "x\'00FF\'"]]',
    '[["INSERT INTO scratch(a, b) VALUES(?, ?)", 1.5, [1, 2, 255]]]',
    '["SELECT a, b FROM scratch ORDER BY a LIMIT 3"]',
  ],
  sqlText: [
    "INSERT INTO scratch(a, b) VALUES(3, 'three');",
    "SELECT * FROM scratch; SELECT count(*) FROM scratch",
    "UPDATE scratch SET b = 'u' WHERE a = 3;",
  ],
  node: ['{"id": "no-such-node"}', '{"id": "no-such-node", "extra": 1}', '{"id": ""}', "{}"],
};

/** A request to send: everything needed to replay it. */
interface Case {
  readonly method: string;
  readonly path: string;
  readonly contentType: string | undefined;
  readonly body: Bytes | undefined;
  readonly what: string;
}

const PATHS = [
  "/db/execute",
  "/db/query",
  "/db/request",
  "/db/sql",
  "/db/load",
  "/db/backup",
  "/boot",
  "/remove",
  "/leader",
  "/nodes",
  "/status",
  "/readyz",
  "/debug/vars",
  "/snapshot",
  "/reap",
  "/",
  "/console",
  "/console/x",
  "/licenses",
  "/nope",
];

const METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "FUZZ"];

const PARAMS = [
  "pretty",
  "timings",
  "transaction",
  "queue",
  "wait",
  "associative",
  "blob_array",
  "qualify_columns",
  "norwrandom",
  "norwtime",
  "noparse",
  "redirect",
  "noleader",
  "nonvoters",
  "ver",
  "level",
  "freshness",
  "freshness_strict",
  "linearizable_timeout",
  "db_timeout",
  "timeout",
  "retries",
  "raft_index",
  "q",
  "fmt",
  "tables",
  "compress",
  "vacuum",
  "trailing_logs",
  "key",
  "sync",
  "bypass",
  "unknown_param",
];

/** Values that are valid somewhere (durations stay short so a request cannot wait long). */
const GOOD_VALUES = [
  "",
  "1",
  "0",
  "true",
  "false",
  "2",
  "500ms",
  "1s",
  "2s",
  "1m",
  "none",
  "weak",
  "strong",
  "linearizable",
  "auto",
  "WEAK",
  "binary",
  "sql",
  "delete",
  "scratch",
  "store.raft",
  "SELECT 1",
  "SELECT * FROM scratch",
];

const BAD_VALUES = [
  "-1",
  "1e9",
  "10",
  "abc",
  "%zz",
  "%",
  "%ff%fe",
  "%00",
  "1h1h",
  "9999999999999999999h",
  "-5s",
  "NaN",
  "0x10",
  "1.5.5s",
  "%E2%80%A8",
  "a".repeat(3000),
  "%C0%AF",
  "s\u0000",
];

/** A query string: 0-5 parameters, some repeated, some garbage. */
function queryString(rng: Prng): string {
  const parts: string[] = [];
  const n = rng.nextInt(6);
  for (let i = 0; i < n; i++) {
    const name = rng.chance(0.1) ? rng.pick(BAD_VALUES) : rng.pick(PARAMS);
    if (rng.chance(0.25)) {
      parts.push(name);
      continue;
    }
    const raw = rng.chance(0.4) ? rng.pick(BAD_VALUES) : rng.pick(GOOD_VALUES);
    // Half the values are percent-encoded properly, half sent as they are (garbage included).
    const value = rng.chance(0.5) ? encodeURIComponent(raw) : raw.replace(/[\s#]/g, "%20");
    parts.push(`${name}=${value}`);
    if (rng.chance(0.1)) parts.push(`${name}=${rng.pick(BAD_VALUES)}`);
  }
  if (rng.chance(0.05)) parts.push("&&=&");
  return parts.length === 0 ? "" : `?${parts.join("&")}`;
}

/** A hostile JSON value built from scratch-safe leaves. */
function hostileValue(rng: Prng, depth: number): string {
  const leaves = [
    '"SELECT * FROM scratch"',
    '"INSERT INTO scratch(a) VALUES(?)"',
    '""',
    '" "',
    "\"x'ABCD'\"",
    '"\\u0000"',
    '"\\ud800"',
    '"é\\u2028<>&"',
    `"${"w".repeat(rng.nextInt(20_000))}"`,
    "0",
    "-0",
    "1.5",
    "1e308",
    "1e999",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775809",
    "123456789012345678901234567890",
    "true",
    "false",
    "null",
  ];
  if (depth <= 0 || rng.chance(0.4)) return rng.pick(leaves);
  if (rng.chance(0.3)) {
    // Objects, sometimes with duplicate keys.
    const keys = ["a", "b", "a", "", "__proto__", "constructor"];
    const n = rng.nextInt(4);
    const fields = [];
    for (let i = 0; i < n; i++) fields.push(`"${rng.pick(keys)}":${hostileValue(rng, depth - 1)}`);
    return `{${fields.join(",")}}`;
  }
  const n = rng.nextInt(5);
  const items = [];
  for (let i = 0; i < n; i++) items.push(hostileValue(rng, depth - 1));
  return `[${items.join(",")}]`;
}

/** A statements body: mutated seed, hostile structure, deep nesting, raw bytes or a valid seed. */
function statementsBody(rng: Prng): Bytes {
  const choice = rng.nextInt(10);
  if (choice < 5) return mutate(rng, enc.encode(rng.pick(SEEDS.statements!)));
  if (choice < 7) {
    // An array of statements, each [sql, ...hostile params] or hostile itself.
    const n = 1 + rng.nextInt(4);
    const items = [];
    for (let i = 0; i < n; i++) {
      items.push(
        rng.chance(0.6)
          ? `["INSERT INTO scratch(a, b) VALUES(?, ?)",${hostileValue(rng, 3)},${
            hostileValue(rng, 3)
          }]`
          : hostileValue(rng, 3),
      );
    }
    return enc.encode(`[${items.join(",")}]`);
  }
  if (choice === 7) {
    const depth = 1 + rng.nextInt(rng.chance(0.5) ? 100 : 60_000);
    return enc.encode("[".repeat(depth) + (rng.chance(0.5) ? "]".repeat(depth) : ""));
  }
  if (choice === 8) return randomBytes(rng, rng.nextInt(2048));
  return enc.encode(rng.pick(SEEDS.statements!));
}

/** A page-size value SQLite refuses (not a power of two in 512..65536, and not 1). */
function badPageSize(rng: Prng): [number, number] {
  return rng.pick([[0x03, 0x00], [0x00, 0x00], [0x00, 0x01 + 2], [0x7f, 0xff], [0x01, 0x01]]);
}

/** A database image that cannot be loaded (see the design note). */
function brokenImage(rng: Prng, image: Bytes): Bytes {
  let out = rng.chance(0.5) ? mutate(rng, image, 6) : image.slice();
  if (out.byteLength < 100 || rng.chance(0.2)) {
    out = image.slice(0, rng.nextInt(100)); // header cut short
  } else {
    const [hi, lo] = badPageSize(rng);
    out[16] = hi;
    out[17] = lo;
  }
  if (rng.chance(0.3) && out.byteLength > 0) {
    // Not recognised as an image: /db/load reads it as SQL text starting with a non-statement byte.
    out[0] = rng.pick([...enc.encode("#%&*+<>?@^`|~!")]);
  }
  return out;
}

/** One case aimed at an endpoint that reads a body. */
function bodyCase(rng: Prng, image: Bytes): Case {
  const kind = rng.nextInt(9);
  const q = rng.chance(0.3) ? queryString(rng) : "";
  const json = rng.chance(0.9) ? "application/json" : rng.pick([undefined, "text/html", "x/y;;"]);
  switch (kind) {
    case 0:
      return {
        method: "POST",
        path: `/db/execute${q}`,
        contentType: json,
        body: statementsBody(rng),
        what: "execute",
      };
    case 1:
      return {
        method: "POST",
        path: `/db/execute?queue${q.replace("?", "&")}`,
        contentType: json,
        body: statementsBody(rng),
        what: "queue",
      };
    case 2:
      return {
        method: "POST",
        path: `/db/query${q}`,
        contentType: json,
        body: statementsBody(rng),
        what: "query",
      };
    case 3:
      return {
        method: "POST",
        path: `/db/request${q}`,
        contentType: json,
        body: statementsBody(rng),
        what: "request",
      };
    case 4:
      return rng.chance(0.7)
        ? {
          method: "POST",
          path: `/db/sql${q}`,
          contentType: json,
          body: statementsBody(rng),
          what: "sql",
        }
        : {
          method: "GET",
          path: `/db/sql${q}`,
          contentType: undefined,
          body: undefined,
          what: "sql",
        };
    case 5: {
      const text = rng.chance(0.5);
      const body = text
        ? mutate(rng, enc.encode(rng.pick(SEEDS.sqlText!)))
        : brokenImage(rng, image);
      const path = rng.chance(0.5) ? "/db/execute" : "/db/query";
      return rng.chance(0.5)
        ? {
          method: "POST",
          path: `/db/load${q}`,
          contentType: rng.pick(["application/octet-stream", "text/plain", undefined]),
          body,
          what: "load",
        }
        : {
          method: "POST",
          path: `${path}${q}`,
          contentType: "text/plain",
          body: mutate(rng, enc.encode(rng.pick(SEEDS.sqlText!))),
          what: "text/plain",
        };
    }
    case 6:
      return {
        method: "POST",
        path: `/boot${q}`,
        contentType: "application/octet-stream",
        body: brokenImage(rng, image),
        what: "boot",
      };
    case 7:
      return {
        method: "DELETE",
        path: `/remove${q}`,
        contentType: json,
        body: mutate(rng, enc.encode(rng.pick(SEEDS.node!))),
        what: "remove",
      };
    default:
      return {
        method: "POST",
        path: `/leader${q}`,
        contentType: "application/json",
        body: mutate(rng, enc.encode(rng.pick(SEEDS.node!))),
        what: "stepdown",
      };
  }
}

/** A random method and path (known, with garbage, or unknown) with a mutated query string. */
function routeCase(rng: Prng): Case {
  let path = rng.pick(PATHS);
  if (rng.chance(0.2)) {
    path += rng.pick(["/", "//x", "%00", "%zz", "/../status", ";x", "x".repeat(2000)]);
  }
  const method = rng.pick(METHODS);
  const body = method === "GET" || method === "HEAD" || rng.chance(0.5)
    ? undefined
    : mutate(rng, enc.encode(rng.pick(SEEDS.statements!)));
  // Never a body that could be a valid image or command for /boot, /db/load: statements only.
  return {
    method,
    path: path + queryString(rng),
    contentType: "application/json",
    body,
    what: "route",
  };
}

/** Whether rqlite itself answers 500 here (rqlite-api.md §4, §6). */
function rqliteAnswers500(c: Case, text: string): boolean {
  const path = c.path.split("?")[0]!;
  if (path.startsWith("/remove") && c.method === "DELETE") return text.length > 1;
  if (path === "/leader" && c.method === "POST") return /^stepdown: |^stepdown/.test(text);
  if (path === "/snapshot") return text.length > 1;
  if (path.startsWith("/db/backup")) return text === "invalid backup format\n";
  if (text.startsWith("SQL rewrite: ")) return true;
  return false;
}

/** Statuses whose rqlite body is empty (status only). */
const EMPTY_OK = new Set([301, 302, 401, 404, 405]);

async function sendCase(url: string, c: Case): Promise<Answer> {
  const headers: Record<string, string> = {};
  if (c.contentType !== undefined) headers["Content-Type"] = c.contentType;
  const res = await fetch(url + c.path, {
    method: c.method,
    headers,
    body: c.body,
    redirect: "manual",
    signal: AbortSignal.timeout(REQUEST_BOUND_MS),
  });
  const bytes = new Uint8Array(await res.arrayBuffer());
  return {
    status: res.status,
    text: new TextDecoder().decode(bytes.subarray(0, ANSWER_TEXT_BYTES)),
    complete: bytes.byteLength <= ANSWER_TEXT_BYTES,
    type: res.headers.get("content-type") ?? "",
  };
}

/** Answer bytes kept for the checks (a backup is larger and not looked at). */
const ANSWER_TEXT_BYTES = 1 << 20;

interface Answer {
  readonly status: number;
  readonly text: string;
  /** The whole answer is in `text`. */
  readonly complete: boolean;
  readonly type: string;
}

function describe(c: Case): string {
  const body = c.body === undefined ? "" : new TextDecoder().decode(c.body.subarray(0, 200));
  return `${c.what}: ${c.method} ${c.path.slice(0, 200)} [${c.contentType}] body=${
    JSON.stringify(body)
  }`;
}

/** The answer is one a careful server gives to bad input. */
function checkAnswer(c: Case, a: Answer): void {
  const where = `${describe(c)} -> ${a.status} ${JSON.stringify(a.text.slice(0, 300))}`;
  if (a.status === 500) {
    assert.ok(rqliteAnswers500(c, a.text), `unexpected 500: ${where}`);
    return;
  }
  assert.ok(
    [200, 204, 301, 302, 400, 401, 404, 405, 408, 413, 503].includes(a.status),
    `unexpected status: ${where}`,
  );
  if (a.status >= 400 && !EMPTY_OK.has(a.status) && c.method !== "HEAD") {
    // /remove's 400 is empty in rqlite; everything else says what was wrong.
    const emptyAllowed = a.status === 400 && c.path.startsWith("/remove");
    if (!emptyAllowed) assert.ok(a.text.trim().length > 0, `no message: ${where}`);
  }
  if (a.status === 200 && a.type.startsWith("application/json") && c.method !== "HEAD") {
    if (a.complete) assert.doesNotThrow(() => JSON.parse(a.text), `bad JSON: ${where}`);
  }
}

/** Malformed HTTP on a socket: the node answers 400 or closes, within a bound. */
async function rawGarbage(
  rng: Prng,
  hostPort: string,
): Promise<{ how: string; sent: Uint8Array; answer: string }> {
  const [hostname, port] = [hostPort.split(":")[0]!, Number(hostPort.split(":")[1])];
  const requests = [
    () => randomBytes(rng, 1 + rng.nextInt(512)),
    () =>
      enc.encode(
        `GET /status HTTP/1.1\r\nHost: x\r\n${"X: y\r\n".repeat(rng.nextInt(3))}\0\r\n\r\n`,
      ),
    () => enc.encode(`POST /db/execute HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n[]`),
    () =>
      enc.encode(
        `POST /db/execute HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n`,
      ),
    () => enc.encode(`GET /${"a".repeat(100_000)} HTTP/1.1\r\nHost: x\r\n\r\n`),
    () => enc.encode(`GET /status HTTP/9.9\r\n\r\n`),
    () =>
      mutate(
        rng,
        enc.encode('POST /db/query HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\n\r\n["SELECT 1"]'),
      ),
  ];
  const conn = await Deno.connect({ hostname, port });
  try {
    const bytes = rng.pick(requests)();
    await conn.write(bytes).catch(() => 0);
    await conn.closeWrite().catch(() => {});
    const buf = new Uint8Array(256);
    let first = "";
    const read = (async () => {
      for (;;) {
        const n = await conn.read(buf).catch(() => null);
        if (n === null) return first === "" ? "closed" : first;
        if (first === "") first = new TextDecoder().decode(buf.subarray(0, n));
      }
    })();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const bound = new Promise<string>((r) => (timer = setTimeout(() => r("hang"), 10_000)));
    const how = await Promise.race([read, bound]);
    clearTimeout(timer);
    return { how: how.split("\r\n")[0]!, sent: bytes, answer: how };
  } finally {
    try {
      conn.close();
    } catch {
      // closed
    }
  }
}

Deno.test({
  name:
    "fuzz: the HTTP API answers hostile input with clear errors, keeps serving, changes no data",
  sanitizeResources: false,
  fn: () =>
    withSeed(SEED, () =>
      withNodes("http-fuzz", async (dir, track) => {
        const rng = new Prng(SEED);
        const node = await startTracked(
          track,
          () =>
            spawnNode(`${dir}/n`, [
              "-max-body-bytes",
              String(MAX_BODY),
              "-http-read-timeout",
              "5s",
            ]),
        );
        const url = node.url;
        await seedProtectedData(url);
        const before = await protectedState(url);
        const backup = await fetch(`${url}/db/backup`, { signal: AbortSignal.timeout(10_000) });
        const image = new Uint8Array(await backup.arrayBuffer());
        assert.equal(new TextDecoder().decode(image.subarray(0, 15)), "SQLite format 3");

        const statuses = new Map<number, number>();
        for (let batch = 0; batch < BATCHES; batch++) {
          const cases: Case[] = [];
          for (let i = 0; i < PER_BATCH; i++) {
            cases.push(rng.chance(0.7) ? bodyCase(rng, image) : routeCase(rng));
          }
          let next = 0;
          const worker = async () => {
            while (next < cases.length) {
              const c = cases[next++]!;
              let answer;
              try {
                answer = await sendCase(url, c);
              } catch (err) {
                throw new Error(`no answer within ${REQUEST_BOUND_MS} ms: ${describe(c)}: ${err}`);
              }
              statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
              checkAnswer(c, answer);
            }
          };
          await Promise.all(Array.from({ length: PARALLEL }, worker));
          for (let i = 0; i < RAW_PER_BATCH; i++) {
            const { how, sent, answer } = await rawGarbage(rng, node.httpAddr);
            const what = `raw ${JSON.stringify(new TextDecoder().decode(sent).slice(0, 300))}`;
            assert.notEqual(how, "hang", `batch ${batch}: ${what} left hanging`);
            // A mutation may leave a valid request (any status below 500 is then fine).
            assert.ok(
              how === "closed" || /^HTTP\/1\.1 [1-4]\d\d /.test(how),
              `${what}: ${JSON.stringify(answer.slice(0, 600))}`,
            );
          }
          await keepsServing(url, `after batch ${batch}`);
        }
        console.log(`statuses: ${JSON.stringify([...statuses].sort((a, b) => a[0] - b[0]))}`);
        assert.equal(await protectedState(url), before, "the protected data changed");
        // Every class of answer was seen: the fuzzer reaches the parsers, not only the router.
        for (const status of [200, 400, 404, 405]) {
          assert.ok((statuses.get(status) ?? 0) > 0, `no ${status} in ${[...statuses]}`);
        }
        await stillRunning(node, "the node");
      })),
});
