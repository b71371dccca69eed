/**
 * GET /db/backup and POST /db/load on one node (rqlite-api.md §4):
 * binary and SQL round trips of every value type, `tables`, `compress`,
 * `vacuum`, bad files and bad SQL changing nothing, body limits, the bound
 * on concurrent backups and the cleanup of their temporary files.
 */

import assert from "node:assert/strict";
import {
  assertEmpty,
  assertJson,
  assertTextError,
  get,
  post,
  queryPath,
  send,
  type TestNode,
  withNode,
} from "./helpers.ts";
import { waitFor } from "../util/node.ts";

const SETUP = [
  "CREATE TABLE v (id INTEGER PRIMARY KEY, i INTEGER, r REAL, t TEXT, b BLOB, n)",
  "CREATE INDEX v_t ON v(t)",
  "INSERT INTO v(i, r, t, b, n) VALUES(9007199254740993, 1.5, 'héllo wörld 🌍', x'00ff10', NULL)",
  "INSERT INTO v(i, r, t, b, n) VALUES(-9223372036854775808, 1e300, '', x'', 7)",
  "INSERT INTO v(i, r, t, b, n) VALUES(9223372036854775807, 0.1, 'it''s', NULL, 'x')",
  "CREATE TABLE other (id INTEGER PRIMARY KEY AUTOINCREMENT, x TEXT)",
  "INSERT INTO other(x) VALUES('a'), ('b')",
];
const READ_V = "SELECT * FROM v ORDER BY id";
const READ_OTHER = "SELECT * FROM other ORDER BY id";

/** Every value of the test tables as rqlite JSON (BLOBs base64, big integers exact). */
async function state(n: TestNode): Promise<string> {
  const v = await get(n, queryPath(READ_V));
  const o = await get(n, queryPath(READ_OTHER));
  assert.equal(v.status, 200);
  return `${v.text}\n${o.text}`;
}

async function bytesOf(n: TestNode, path: string): Promise<{ res: Response; bytes: Uint8Array }> {
  const res = await n.fetch(path);
  return { res, bytes: new Uint8Array(await res.arrayBuffer()) };
}

function postBytes(n: TestNode, path: string, body: Uint8Array | string) {
  return send(n, path, { method: "POST", body: body as BodyInit });
}

async function gunzip(bytes: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([bytes as BlobPart]).stream().pipeThrough(
    new DecompressionStream("gzip"),
  );
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** Replaces the data with something else, so a load visibly restores it. */
async function scramble(n: TestNode): Promise<void> {
  const r = await post(n, "/db/execute", [
    "DROP TABLE v",
    "DELETE FROM other",
    "CREATE TABLE junk (x)",
  ]);
  assert.equal(r.status, 200);
}

/** Runs `fn` with Deno's temp dir pointed at a fresh directory; asserts it is empty afterwards. */
async function withPrivateTmp(fn: () => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "raftlite-http-backup-tmp-" });
  const old = Deno.env.get("TMPDIR");
  Deno.env.set("TMPDIR", dir);
  try {
    await fn();
    // Removal runs in the background once a stream ends: wait for it (bounded).
    await waitFor(async () => {
      for await (const _ of Deno.readDir(dir)) return false;
      return true;
    }, 5_000).catch(() => {
      throw new Error(`backup temp files left in ${dir}: ${[...Deno.readDirSync(dir)].length}`);
    });
  } finally {
    if (old === undefined) Deno.env.delete("TMPDIR");
    else Deno.env.set("TMPDIR", old);
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("backup/load: round trips, formats and errors on one node", async (t) => {
  await withNode([], async (node) => {
    const step = (name: string, fn: () => Promise<void>) => t.step(name, () => withPrivateTmp(fn));
    assert.equal((await post(node, "/db/execute", SETUP)).status, 200);
    const want = await state(node);

    await step("binary backup (WAL header) loads back exactly", async () => {
      const { res, bytes } = await bytesOf(node, "/db/backup");
      assert.equal(res.status, 200);
      assert.equal(res.headers.get("content-type"), "application/octet-stream");
      assert.equal(new TextDecoder().decode(bytes.subarray(0, 16)), "SQLite format 3\0");
      assert.deepEqual([bytes[18], bytes[19]], [2, 2]);
      await scramble(node);
      assertJson(await postBytes(node, "/db/load", bytes), '{"results":[]}');
      assert.equal(await state(node), want);
      const junk = await get(node, queryPath("SELECT * FROM junk"));
      assert.match(junk.text, /no such table: junk/);
    });

    await step("fmt=delete is rollback-journal and loads back", async () => {
      const { res, bytes } = await bytesOf(node, "/db/backup?fmt=delete");
      assert.equal(res.headers.get("content-type"), "application/octet-stream");
      assert.deepEqual([bytes[18], bytes[19]], [1, 1]);
      await scramble(node);
      assertJson(await postBytes(node, "/db/load", bytes), '{"results":[]}');
      assert.equal(await state(node), want);
    });

    await step("fmt=sql dump loads back as SQL text", async () => {
      const { res, bytes } = await bytesOf(node, "/db/backup?fmt=sql");
      assert.equal(res.status, 200);
      assert.equal(res.headers.get("content-type"), "application/sql");
      const text = new TextDecoder().decode(bytes);
      assert.ok(text.startsWith("PRAGMA foreign_keys=OFF;\nBEGIN TRANSACTION;\n"), text);
      assert.ok(text.endsWith("COMMIT;\n"));
      assert.ok(text.includes(`INSERT INTO "v" VALUES(1,9007199254740993,1.5,`), text);
      await post(node, "/db/execute", ["DROP TABLE v", "DROP TABLE other", "DROP TABLE junk"]);
      const r = await postBytes(node, "/db/load", text);
      assert.equal(r.status, 200);
      assert.match(r.text, /^\{"results":\[\{"last_insert_id":\d+,"rows_affected":\d+\}\]\}$/);
      assert.equal(await state(node), want);
    });

    await step("tables= limits the dump", async () => {
      const text = (await get(node, "/db/backup?fmt=sql&tables=other")).text;
      assert.ok(text.includes("INSERT INTO \"other\" VALUES(1,'a');"), text);
      assert.ok(!text.includes('"v"'), text);
      assert.ok(!text.includes("CREATE TABLE v"), text);
    });

    await step("compress is gzip of the same bytes", async () => {
      const plain = (await bytesOf(node, "/db/backup?fmt=sql")).bytes;
      const { res, bytes } = await bytesOf(node, "/db/backup?fmt=sql&compress");
      assert.equal(res.headers.get("content-encoding"), null);
      assert.deepEqual([bytes[0], bytes[1]], [0x1f, 0x8b]);
      assert.deepEqual(await gunzip(bytes), plain);
      const bin = (await bytesOf(node, "/db/backup")).bytes;
      assert.deepEqual(await gunzip((await bytesOf(node, "/db/backup?compress")).bytes), bin);
    });

    await step("vacuum: binary only; with sql/delete 500 invalid backup format", async () => {
      for (const fmt of ["sql", "delete"]) {
        assertTextError(
          await get(node, `/db/backup?fmt=${fmt}&vacuum`),
          500,
          "invalid backup format",
        );
      }
      const { res, bytes } = await bytesOf(node, "/db/backup?vacuum");
      assert.equal(res.status, 200);
      await scramble(node);
      assertJson(await postBytes(node, "/db/load", bytes), '{"results":[]}');
      assert.equal(await state(node), want);
    });

    await step("a corrupt SQLite file is refused with 400 and changes nothing", async () => {
      const junk = new Uint8Array(8192).fill(0x5a);
      junk.set(new TextEncoder().encode("SQLite format 3\0"));
      const r = await postBytes(node, "/db/load", junk);
      assert.equal(r.status, 400, r.text);
      assert.match(r.text, /^invalid SQLite data: .+\n$/);
      const good = (await bytesOf(node, "/db/backup")).bytes;
      const cut = await postBytes(node, "/db/load", good.subarray(0, 4096 + 7));
      assert.equal(cut.status, 400, cut.text);
      assert.equal(await state(node), want);
    });

    await step("SQL text failing midway reports the error and applies nothing", async () => {
      const r = await postBytes(
        node,
        "/db/load",
        "BEGIN TRANSACTION;\nINSERT INTO other(x) VALUES('new');\n" +
          "INSERT INTO nosuch VALUES(1);\nINSERT INTO other(x) VALUES('newer');\nCOMMIT;\n",
      );
      assertJson(r, '{"results":[{"error":"no such table: nosuch"}]}');
      assert.equal(await state(node), want);
      // No transaction was left open: a plain write still commits.
      const w = await post(node, "/db/execute", ["INSERT INTO other(x) VALUES('c')"]);
      assert.match(w.text, /"rows_affected":1/);
      await post(node, "/db/execute", ["DELETE FROM other WHERE x = 'c'"]);
    });

    await step("methods: backup is GET, load is POST", async () => {
      assertEmpty(await send(node, "/db/backup", { method: "POST", body: "x" }), 405);
      assertEmpty(await get(node, "/db/load"), 405);
    });

    await step(
      "at most 2 backups stream at once; a cancelled download frees its slot",
      async () => {
        const a = await node.fetch("/db/backup");
        const b = await node.fetch("/db/backup?fmt=sql");
        assert.equal(a.status, 200);
        assert.equal(b.status, 200);
        assertTextError(
          await get(node, "/db/backup"),
          503,
          "too many backups in progress (at most 2 at once); retry later",
        );
        await a.body?.cancel();
        await b.body?.cancel();
        const c = await bytesOf(node, "/db/backup");
        assert.equal(c.res.status, 200);
      },
    );
  });
});

Deno.test("backup/load: a load body beyond -max-body-bytes is 413", async () => {
  await withNode(["-max-body-bytes", "4096"], async (node) => {
    const r = await postBytes(node, "/db/load", "x".repeat(5000));
    assert.equal(r.status, 413);
    assert.match(r.text, /request body too large/);
    const ok = await postBytes(node, "/db/load", "CREATE TABLE small (x);");
    assert.equal(ok.status, 200, ok.text);
  });
});
