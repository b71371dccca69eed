/**
 * POST /db/request, the unified endpoint (rqlite-api.md §4): reads and
 * writes in one batch, all-read batches served as queries, prepare errors.
 */

import assert from "node:assert/strict";
import {
  assertEmpty,
  assertJson,
  assertTextError,
  get,
  parse,
  post,
  postText,
  queryPath,
  send,
  type TestNode,
  withNode,
} from "./helpers.ts";

Deno.test("request: /db/request mixes reads and writes", async (t) => {
  await withNode([], async (node) => {
    const step = (name: string, fn: (n: TestNode) => Promise<void>) => t.step(name, () => fn(node));

    await step("mixed batch: results in order with both shapes", async (n) => {
      const r = await post(n, "/db/request", [
        "CREATE TABLE rq_mix (id INTEGER PRIMARY KEY, name TEXT)",
        ["INSERT INTO rq_mix(name) VALUES(?)", "fiona"],
        "SELECT * FROM rq_mix",
        ["INSERT INTO rq_mix(name) VALUES(:name)", { name: "declan" }],
        "SELECT COUNT(*) FROM rq_mix",
      ]);
      const body = parse(r);
      assert.equal(body.results.length, 5);
      assert.equal(
        r.text.slice(r.text.indexOf("},") + 2),
        '{"last_insert_id":1,"rows_affected":1},' +
          '{"columns":["id","name"],"types":["integer","text"],"values":[[1,"fiona"]]},' +
          '{"last_insert_id":2,"rows_affected":1},' +
          '{"columns":["COUNT(*)"],"types":["integer"],"values":[[2]]}]}',
      );
      assert.equal(r.headers.get("x-rqlite-served-by"), n.url.slice("http://".length));
      // Associative: reads get types/rows, writes "rows":null.
      assertJson(
        await post(n, "/db/request?associative", [
          "SELECT name FROM rq_mix WHERE id = 1",
          "UPDATE rq_mix SET name = 'x' WHERE id = 2",
          "SELECT name FROM rq_mix WHERE id = 99",
        ]),
        '{"results":[{"types":{"name":"text"},"rows":[{"name":"fiona"}]},' +
          '{"last_insert_id":2,"rows_affected":1,"rows":null},' +
          '{"types":{"name":"text"},"rows":[]}]}',
      );
    });

    await step("a write goes through the log: raft_index present", async (n) => {
      await post(n, "/db/request", ["CREATE TABLE rq_idx (x)"]);
      const r = await post(n, "/db/request?raft_index", [
        "SELECT COUNT(*) FROM rq_idx",
        "INSERT INTO rq_idx VALUES(1)",
      ]);
      assert.match(
        r.text,
        /^\{"results":\[\{"columns":\["COUNT\(\*\)"\],"types":\["integer"\],"values":\[\[0\]\]\},\{"last_insert_id":1,"rows_affected":1\}\],"raft_index":\d+\}$/,
      );
    });

    await step("an all-read batch is served as a query (no raft_index)", async (n) => {
      await post(n, "/db/request", [
        "CREATE TABLE rq_read (id INTEGER PRIMARY KEY, v TEXT)",
        "INSERT INTO rq_read(v) VALUES('a')",
      ]);
      const rows =
        '{"results":[{"columns":["id","v"],"types":["integer","text"],"values":[[1,"a"]]}]}';
      for (
        const level of ["", "level=weak&", "level=none&", "level=auto&", "level=linearizable&"]
      ) {
        assertJson(
          await post(n, `/db/request?${level}raft_index`, ["SELECT * FROM rq_read"]),
          rows,
        );
      }
      // EXPLAIN is read-only too.
      const explain = parse(
        await post(n, "/db/request?raft_index", ["EXPLAIN QUERY PLAN SELECT * FROM rq_read"]),
      );
      assert.equal(explain.raft_index, undefined);
      assert.ok(Array.isArray(explain.results[0].columns));
      // level=strong sends even an all-read batch through the log.
      const strong = await post(n, "/db/request?level=strong&raft_index", [
        "SELECT * FROM rq_read",
      ]);
      assert.match(strong.text, /^\{"results":\[\{"columns":\["id","v"\].*\],"raft_index":\d+\}$/);
      assert.deepEqual(parse(strong).results, JSON.parse(rows).results);
    });

    await step("every level answers a mixed batch", async (n) => {
      await post(n, "/db/request", ["CREATE TABLE rq_lvl (id INTEGER PRIMARY KEY)"]);
      let id = 0;
      for (const level of ["none", "weak", "strong", "linearizable", "auto"]) {
        id++;
        assertJson(
          await post(n, `/db/request?level=${level}`, [
            `INSERT INTO rq_lvl VALUES(${id})`,
            `SELECT id FROM rq_lvl WHERE id = ${id}`,
          ]),
          `{"results":[{"last_insert_id":${id},"rows_affected":1},` +
            `{"columns":["id"],"types":["integer"],"values":[[${id}]]}]}`,
        );
      }
    });

    await step(
      "a statement that fails to prepare yields an error and the batch continues",
      async (n) => {
        await post(n, "/db/request", ["CREATE TABLE rq_prep (id INTEGER PRIMARY KEY)"]);
        assertJson(
          await post(n, "/db/request", [
            "SELECT * FROM rq_nope",
            "INSERT INTO rq_prep VALUES(1)",
            "SELEC 1",
            "SELECT id FROM rq_prep",
          ]),
          '{"results":[{"error":"no such table: rq_nope"},{"last_insert_id":1,"rows_affected":1},' +
            '{"error":"near \\"SELEC\\": syntax error"},' +
            '{"columns":["id"],"types":["integer"],"values":[[1]]}]}',
        );
        // Even with `transaction`, prepare errors do not stop the batch.
        assertJson(
          await post(n, "/db/request?transaction", [
            "INSERT INTO rq_prep VALUES(2)",
            "INSERT blah blah",
            "INSERT INTO rq_prep VALUES(3)",
          ]),
          '{"results":[{"last_insert_id":2,"rows_affected":1},{"error":"near \\"blah\\": syntax error"},' +
            '{"last_insert_id":3,"rows_affected":1}]}',
        );
        assertJson(
          await get(n, queryPath("SELECT id FROM rq_prep")),
          '{"results":[{"columns":["id"],"types":["integer"],"values":[[1],[2],[3]]}]}',
        );
      },
    );

    await step("INSERT blah blah is a write: through Raft, syntax error result", async (n) => {
      assertJson(
        await post(n, "/db/request", ["INSERT blah blah"]),
        '{"results":[{"error":"near \\"blah\\": syntax error"}]}',
      );
      const r = await post(n, "/db/request?raft_index", ["INSERT blah blah"]);
      assert.match(
        r.text,
        /^\{"results":\[\{"error":"near \\"blah\\": syntax error"\}\],"raft_index":\d+\}$/,
      );
    });

    await step("transaction: an execution error rolls back and stops", async (n) => {
      await post(n, "/db/request", [
        "CREATE TABLE rq_tx (id INTEGER PRIMARY KEY)",
        "INSERT INTO rq_tx VALUES(5)",
      ]);
      assertJson(
        await post(n, "/db/request?transaction", [
          "INSERT INTO rq_tx VALUES(1)",
          "SELECT COUNT(*) FROM rq_tx",
          "INSERT INTO rq_tx VALUES(5)",
          "INSERT INTO rq_tx VALUES(6)",
        ]),
        '{"results":[{"last_insert_id":1,"rows_affected":1},' +
          '{"columns":["COUNT(*)"],"types":["integer"],"values":[[2]]},' +
          '{"error":"UNIQUE constraint failed: rq_tx.id"}]}',
      );
      assertJson(
        await get(n, queryPath("SELECT id FROM rq_tx")),
        '{"results":[{"columns":["id"],"types":["integer"],"values":[[5]]}]}',
      );
      // Without `transaction` the batch goes on past the error.
      assertJson(
        await post(n, "/db/request", [
          "INSERT INTO rq_tx VALUES(5)",
          "INSERT INTO rq_tx VALUES(7)",
        ]),
        '{"results":[{"error":"UNIQUE constraint failed: rq_tx.id"},{"last_insert_id":7,"rows_affected":1}]}',
      );
    });

    await step("RETURNING in a request returns rows", async (n) => {
      await post(n, "/db/request", ["CREATE TABLE rq_ret (id INTEGER PRIMARY KEY, v TEXT)"]);
      assertJson(
        await post(n, "/db/request", ["INSERT INTO rq_ret(v) VALUES('a') RETURNING id, v"]),
        '{"results":[{"columns":["id","v"],"types":["integer","text"],"values":[[1,"a"]]}]}',
      );
      assertJson(
        await get(n, queryPath("SELECT COUNT(*) FROM rq_ret")),
        '{"results":[{"columns":["COUNT(*)"],"types":["integer"],"values":[[1]]}]}',
      );
    });

    await step("bodies: JSON only, 400 texts, 405", async (n) => {
      // text/plain is not a /db/request form: the body is parsed as JSON.
      assertTextError(await postText(n, "/db/request", "SELECT 1"), 400, "invalid JSON body");
      assertTextError(await post(n, "/db/request", "[]"), 400, "no statements");
      assertTextError(await post(n, "/db/request", '{"a":1}'), 400, "invalid request");
      assertTextError(
        await post(n, "/db/request", '[["SELECT ?", {"a": {}}]]'),
        400,
        "unsupported type",
      );
      assertJson(await post(n, "/db/request", [""]), '{"results":[]}');
      for (const method of ["GET", "PUT", "DELETE"]) {
        assertEmpty(await send(n, "/db/request", { method }), 405);
      }
    });

    await step("timings and pretty", async (n) => {
      const r = parse(await post(n, "/db/request?timings", ["SELECT 1", "CREATE TABLE rq_t (x)"]));
      assert.equal(typeof r.time, "number");
      for (const res of r.results) assert.equal(typeof res.time, "number");
      assertJson(
        await post(n, "/db/request?pretty", ["SELECT 1 AS one"]),
        JSON.stringify(
          { results: [{ columns: ["one"], types: ["integer"], values: [[1]] }] },
          null,
          4,
        ),
      );
    });
  });
});
