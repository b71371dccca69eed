/**
 * Statement rewriting for determinism (rqlite-api.md §7) seen from outside:
 * values produced by RANDOM()/'now' are fixed before the log, so a restart
 * that rebuilds the database from the log yields the same stored values;
 * GET|POST /db/sql shows the rewriting without executing anything.
 */

import assert from "node:assert/strict";
import {
  assertEmpty,
  assertJson,
  assertTextError,
  get,
  parse,
  post,
  queryPath,
  send,
  withNode,
} from "./helpers.ts";

/**
 * A fixed node id: the id defaults to the Raft address, which changes with
 * port 0, and a restarted node must find itself in its own configuration.
 */
const FLAGS = ["-node-id", "rewrite-node"];

Deno.test("rewrite: RANDOM(), RANDOMBLOB() and 'now' are stable across a restart", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "raftlite-http-rewrite-" });
  try {
    const sql = "SELECT * FROM rw_vals ORDER BY id";
    let before = "";
    await withNode(FLAGS, async (n) => {
      const r = await post(n, "/db/execute", [
        "CREATE TABLE rw_vals (id INTEGER PRIMARY KEY, r INTEGER, b BLOB, d TEXT, s TEXT, j REAL, k INTEGER)",
        "INSERT INTO rw_vals(r, b, d, s, j, k) VALUES(random(), randomblob(16), datetime('now')," +
        " strftime('%Y-%m-%d %H:%M:%f', 'now'), julianday('now'), abs(RANDOM()) % 1000000)",
        "INSERT INTO rw_vals(r, b, d, s, j, k) SELECT random(), randomblob(4), date('now'), time('now')," +
        " julianday('NOW'), unixepoch('now')",
      ]);
      assert.equal(parse(r).results.length, 3);
      before = (await get(n, queryPath(sql))).text;
      const rows = JSON.parse(before).results[0].values;
      assert.equal(rows.length, 2);
      assert.equal(typeof rows[0][1], "number");
      assert.match(rows[0][3], /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);
      assert.match(rows[0][4], /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}$/);
      // The same values from a second read (no re-evaluation at read time).
      assertJson(await get(n, queryPath(sql)), before);
    }, dataDir);
    // Let the clock move on, so an unrewritten 'now' would differ.
    await new Promise((r) => setTimeout(r, 20));
    await withNode(FLAGS, async (n) => {
      assertJson(await get(n, queryPath(sql)), before);
      assertJson(await get(n, queryPath(sql, "level=strong")), before);
    }, dataDir);
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("rewrite: a restart keeps everything written, in order", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "raftlite-http-restart-" });
  try {
    await withNode(FLAGS, async (n) => {
      await post(n, "/db/execute", ["CREATE TABLE rw_keep (id INTEGER PRIMARY KEY, v TEXT)"]);
      for (let i = 1; i <= 20; i++) {
        await post(n, "/db/execute", [["INSERT INTO rw_keep(v) VALUES(?)", `v${i}`]]);
      }
      await post(n, "/db/execute", ["DELETE FROM rw_keep WHERE id % 2 = 0"]);
    }, dataDir);
    await withNode(FLAGS, async (n) => {
      // A weak read right after start-up already sees every applied write.
      assertJson(
        await get(n, queryPath("SELECT COUNT(*), MAX(id) FROM rw_keep")),
        '{"results":[{"columns":["COUNT(*)","MAX(id)"],"types":["integer","integer"],"values":[[10,19]]}]}',
      );
      // The write connection continues where it was: ids go on after the restart.
      assertJson(
        await post(n, "/db/execute", ["INSERT INTO rw_keep(v) VALUES('after')"]),
        '{"results":[{"last_insert_id":20,"rows_affected":1}]}',
      );
    }, dataDir);
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("rewrite: /db/sql shows the original and the rewritten SQL", async (t) => {
  await withNode([], async (n) => {
    const sqlOf = async (path: string) => {
      const r = await get(n, path);
      const body = parse(r);
      assert.equal(r.headers.get("content-type"), "application/json; charset=utf-8");
      assert.equal(typeof body.time, "number");
      assert.deepEqual(Object.keys(body), ["results", "time"]);
      assert.equal(body.results.length, 1);
      return body.results[0];
    };
    const q = (sql: string, flags = "") =>
      `/db/sql?${flags === "" ? "" : `${flags}&`}q=${encodeURIComponent(sql)}`;

    await t.step("RANDOM() becomes a signed 64-bit literal", async () => {
      const sql = "INSERT INTO foo(name) VALUES(random())";
      const res = await sqlOf(q(sql));
      assert.deepEqual(Object.keys(res), ["original", "rewritten"]);
      assert.equal(res.original, sql);
      assert.match(res.rewritten, /^INSERT INTO foo\(name\) VALUES\(-?\d+\)$/);
      const v = BigInt(res.rewritten.match(/-?\d+/)[0]);
      assert.ok(v >= -(1n << 63n) && v < 1n << 63n);
      // Two analyses give different values.
      const again = await sqlOf(q(sql));
      assert.notEqual(again.rewritten, res.rewritten);
    });

    await t.step("RANDOMBLOB(N) becomes an uppercase hex blob of N bytes", async () => {
      const res = await sqlOf(q("SELECT randomblob(4)"));
      assert.match(res.rewritten, /^SELECT x'[0-9A-F]{8}'$/);
    });

    await t.step("'now' becomes a Julian day with 6 decimals", async () => {
      const res = await sqlOf(q("INSERT INTO t VALUES(datetime('now'), strftime('%s', 'now'))"));
      const m = res.rewritten.match(
        /^INSERT INTO t VALUES\(datetime\((\d+\.\d{6})\), strftime\('%s', (\d+\.\d{6})\)\)$/,
      );
      assert.ok(m, res.rewritten);
      // One clock reading per statement, and it is now.
      assert.equal(m[1], m[2]);
      const nowJd = Date.now() / 86_400_000 + 2440587.5;
      assert.ok(Math.abs(Number(m[1]) - nowJd) < 1 / 24, `${m[1]} vs ${nowJd}`);
    });

    await t.step("norwrandom leaves RANDOM() alone, norwtime leaves 'now'", async () => {
      const sql = "SELECT random(), datetime('now')";
      const plain = await sqlOf(q(sql, "norwrandom"));
      assert.match(plain.rewritten, /^SELECT random\(\), datetime\(\d+\.\d{6}\)$/);
      const noTime = await sqlOf(q(sql, "norwtime"));
      assert.match(noTime.rewritten, /^SELECT -?\d+, datetime\('now'\)$/);
      const none = await sqlOf(q(sql, "norwrandom&norwtime"));
      assert.equal(none.rewritten, sql);
    });

    await t.step("ORDER BY RANDOM() stays random; plain SQL is unchanged", async () => {
      const sql = "SELECT * FROM foo ORDER BY RANDOM()";
      assert.equal((await sqlOf(q(sql))).rewritten, sql);
      assert.equal((await sqlOf(q("SELECT 1"))).rewritten, "SELECT 1");
    });

    await t.step("nothing is executed", async () => {
      await sqlOf(q("CREATE TABLE rw_never (x)"));
      assertJson(
        await get(n, queryPath("SELECT * FROM rw_never")),
        '{"results":[{"error":"no such table: rw_never"}]}',
      );
    });

    await t.step("missing q is 400 query not specified; empty q 400", async () => {
      assertTextError(await get(n, "/db/sql"), 400, "query not specified");
      assertTextError(await get(n, "/db/sql?q="), 400, "query parameter not set");
    });

    await t.step("POST JSON array: one result per statement", async () => {
      const body = parse(await post(n, "/db/sql", ["SELECT random()", "SELECT 1"]));
      assert.equal(body.results.length, 2);
      assert.match(body.results[0].rewritten, /^SELECT -?\d+$/);
      assert.deepEqual(body.results[1], { original: "SELECT 1", rewritten: "SELECT 1" });
      assertTextError(await post(n, "/db/sql", "[]"), 400, "no statements");
      assertEmpty(await send(n, "/db/sql", { method: "PUT" }), 405);
    });

    await t.step("pretty", async () => {
      const r = await get(n, q("SELECT 1", "pretty"));
      assert.match(
        r.text,
        /^\{\n {4}"results": \[\n {8}\{\n {12}"original": "SELECT 1",\n {12}"rewritten": "SELECT 1"\n {8}\}\n {4}\],\n {4}"time": [0-9.e-]+\n\}$/,
      );
    });
  });
});

Deno.test("rewrite: random() in an executed write is stored as the logged literal", async () => {
  await withNode([], async (n) => {
    // With norwrandom the value is computed by SQLite at apply time; either way it is stored once.
    await post(n, "/db/execute", ["CREATE TABLE rw_exec (id INTEGER PRIMARY KEY, v INTEGER)"]);
    await post(n, "/db/execute", ["INSERT INTO rw_exec(v) VALUES(random())"]);
    await post(n, "/db/execute?norwrandom", ["INSERT INTO rw_exec(v) VALUES(random())"]);
    const a = parse(await get(n, queryPath("SELECT v FROM rw_exec"))).results[0].values;
    const b =
      parse(await get(n, queryPath("SELECT v FROM rw_exec", "level=strong"))).results[0].values;
    assert.equal(a.length, 2);
    assert.deepEqual(a, b);
  });
});
