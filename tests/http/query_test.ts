/**
 * GET|POST /db/query over real HTTP (rqlite-api.md §2, §3, §4, §5): request
 * forms, consistency levels, result encoding byte-for-byte.
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

const FIONA_DECLAN =
  '{"results":[{"columns":["id","name"],"types":["integer","text"],"values":[[1,"fiona"],[2,"declan"]]}]}';

Deno.test("query: the exact texts rqlite's e2e suite asserts", async () => {
  await withNode([], async (n) => {
    assertJson(
      await post(n, "/db/execute", [
        "CREATE TABLE bar (id INTEGER NOT NULL PRIMARY KEY, name TEXT)",
      ]),
      '{"results":[{}]}',
    );
    assertJson(
      await post(n, "/db/execute", [["INSERT INTO bar(name) VALUES(?)", "fiona"]]),
      '{"results":[{"last_insert_id":1,"rows_affected":1}]}',
    );
    assertJson(
      await post(n, "/db/execute", [["INSERT INTO bar(name) VALUES(?)", "declan"]]),
      '{"results":[{"last_insert_id":2,"rows_affected":1}]}',
    );
    assertJson(await get(n, queryPath("SELECT * FROM bar")), FIONA_DECLAN);
    assertJson(
      await get(n, queryPath("SELECT * FROM bar", "associative")),
      '{"results":[{"types":{"id":"integer","name":"text"},' +
        '"rows":[{"id":1,"name":"fiona"},{"id":2,"name":"declan"}]}]}',
    );
    assertJson(
      await get(n, queryPath("SELECT * FROM bar", "pretty")),
      JSON.stringify(JSON.parse(FIONA_DECLAN), null, 4),
    );
    assertJson(
      await get(n, queryPath("SELECT * FROM bar", "pretty")),
      `{
    "results": [
        {
            "columns": [
                "id",
                "name"
            ],
            "types": [
                "integer",
                "text"
            ],
            "values": [
                [
                    1,
                    "fiona"
                ],
                [
                    2,
                    "declan"
                ]
            ]
        }
    ]
}`,
    );
    // A table with no rows: `values` omitted.
    await post(n, "/db/execute", ["CREATE TABLE empty_bar (id INTEGER PRIMARY KEY, name TEXT)"]);
    assertJson(
      await get(n, queryPath("SELECT * FROM empty_bar")),
      '{"results":[{"columns":["id","name"],"types":["integer","text"]}]}',
    );
  });
});

Deno.test("query: /db/query request forms, levels and encoding", async (t) => {
  await withNode([], async (node) => {
    const step = (name: string, fn: (n: TestNode) => Promise<void>) => t.step(name, () => fn(node));
    await post(node, "/db/execute", [
      "CREATE TABLE q_people (id INTEGER PRIMARY KEY, name TEXT)",
      ["INSERT INTO q_people(name) VALUES(?)", "fiona"],
      ["INSERT INTO q_people(name) VALUES(?)", "declan"],
    ]);
    const people = FIONA_DECLAN;

    await step("GET with q=", async (n) => {
      assertJson(await get(n, queryPath("SELECT * FROM q_people")), people);
      const r = await get(n, queryPath("SELECT * FROM q_people"));
      assert.equal(r.headers.get("x-rqlite-served-by"), n.url.slice("http://".length));
    });

    await step("absent q is an empty batch; empty q is 400", async (n) => {
      assertJson(await get(n, "/db/query"), '{"results":[]}');
      assertJson(await get(n, "/db/query?level=weak"), '{"results":[]}');
      assertTextError(await get(n, "/db/query?q="), 400, "query parameter not set");
      assertTextError(await get(n, "/db/query?level=strong&q="), 400, "query parameter not set");
    });

    await step("POST JSON: several statements and parameters", async (n) => {
      assertJson(
        await post(n, "/db/query", [
          "SELECT * FROM q_people",
          ["SELECT name FROM q_people WHERE id = ?", 2],
          ["SELECT id FROM q_people WHERE name = :name", { name: "fiona" }],
          "SELECT * FROM q_people WHERE id > 100",
        ]),
        '{"results":[{"columns":["id","name"],"types":["integer","text"],"values":[[1,"fiona"],[2,"declan"]]},' +
          '{"columns":["name"],"types":["text"],"values":[["declan"]]},' +
          '{"columns":["id"],"types":["integer"],"values":[[1]]},' +
          '{"columns":["id","name"],"types":["integer","text"]}]}',
      );
      assertTextError(await post(n, "/db/query", "[]"), 400, "no statements");
      assertTextError(await post(n, "/db/query", "nope"), 400, "invalid JSON body");
    });

    await step("POST text/plain: the body is the statement", async (n) => {
      assertJson(await postText(n, "/db/query", "SELECT * FROM q_people"), people);
      // Several statements in one text: the last one's rows (go-sqlite3's Query loop).
      assertJson(
        await postText(n, "/db/query", "SELECT 1; SELECT name FROM q_people WHERE id = 1"),
        '{"results":[{"columns":["name"],"types":["text"],"values":[["fiona"]]}]}',
      );
    });

    await step("every level answers on a single node", async (n) => {
      for (
        const level of ["none", "weak", "strong", "linearizable", "auto", "STRONG", "Weak", "bogus"]
      ) {
        assertJson(await get(n, queryPath("SELECT * FROM q_people", `level=${level}`)), people);
        assertJson(
          await post(n, `/db/query?level=${level}`, ["SELECT * FROM q_people"]),
          people,
        );
      }
      assertJson(
        await get(n, queryPath("SELECT * FROM q_people", "level=none&freshness=1s")),
        people,
      );
      assertJson(
        await get(
          n,
          queryPath("SELECT * FROM q_people", "level=none&freshness=1s&freshness_strict"),
        ),
        people,
      );
      assertJson(
        await get(
          n,
          queryPath("SELECT * FROM q_people", "level=linearizable&linearizable_timeout=2s"),
        ),
        people,
      );
    });

    await step("raft_index: strong reads go through the log, weak/none/auto do not", async (n) => {
      const rows = '"values":[[1,"fiona"],[2,"declan"]]}]';
      const strong = await get(n, queryPath("SELECT * FROM q_people", "level=strong&raft_index"));
      assert.match(
        strong.text,
        new RegExp(`^\\{"results":\\[.*${escape(rows)},"raft_index":\\d+\\}$`),
      );
      const a = parse(strong).raft_index;
      const b = parse(await get(n, queryPath("SELECT 1", "level=strong&raft_index"))).raft_index;
      assert.ok(a > 0 && b > a, `${a} then ${b}`);
      for (const level of ["none", "weak", "auto"]) {
        assertJson(
          await get(n, queryPath("SELECT * FROM q_people", `level=${level}&raft_index`)),
          people,
        );
      }
      // Without the flag a strong read has no raft_index either.
      assertJson(await get(n, queryPath("SELECT * FROM q_people", "level=strong")), people);
    });

    await step("a write through /db/query fails per statement and changes nothing", async (n) => {
      const msg = '{"error":"attempt to change database via query operation"}';
      assertJson(
        await get(n, queryPath("INSERT INTO q_people(name) VALUES('mallory')")),
        `{"results":[${msg}]}`,
      );
      assertJson(
        await post(n, "/db/query", [
          "SELECT COUNT(*) FROM q_people",
          "DELETE FROM q_people",
          "CREATE TABLE q_never (x)",
          "SELECT COUNT(*) FROM q_people",
        ]),
        '{"results":[{"columns":["COUNT(*)"],"types":["integer"],"values":[[2]]},' +
          `${msg},${msg},` +
          '{"columns":["COUNT(*)"],"types":["integer"],"values":[[2]]}]}',
      );
      assertJson(
        await get(n, queryPath("INSERT INTO q_people(name) VALUES('x')", "level=strong")),
        `{"results":[${msg}]}`,
      );
      assertJson(await get(n, queryPath("SELECT * FROM q_people")), people);
    });

    await step("statement errors in queries", async (n) => {
      assertJson(
        await post(n, "/db/query", ["SELECT * FROM bar_nope", "SELEC 1", "SELECT * FROM q_people"]),
        '{"results":[{"error":"no such table: bar_nope"},{"error":"near \\"SELEC\\": syntax error"},' +
          people.slice('{"results":['.length),
      );
    });

    await step("associative: sorted keys, rows always present, errors", async (n) => {
      await post(n, "/db/execute", [
        "CREATE TABLE q_assoc (zeta TEXT, alpha INTEGER, mid REAL, b BLOB)",
        "INSERT INTO q_assoc VALUES('z', 1, 1.5, x'0102')",
        "INSERT INTO q_assoc VALUES(NULL, 2, 2.0, NULL)",
      ]);
      assertJson(
        await get(n, queryPath("SELECT * FROM q_assoc", "associative")),
        '{"results":[{"types":{"alpha":"integer","b":"blob","mid":"real","zeta":"text"},' +
          '"rows":[{"alpha":1,"b":"AQI=","mid":1.5,"zeta":"z"},{"alpha":2,"b":null,"mid":2,"zeta":null}]}]}',
      );
      assertJson(
        await get(n, queryPath("SELECT * FROM q_assoc WHERE alpha > 9", "associative")),
        '{"results":[{"types":{"alpha":"integer","b":"blob","mid":"real","zeta":"text"},"rows":[]}]}',
      );
      assertJson(
        await get(n, queryPath("SELECT b FROM q_assoc", "associative&blob_array")),
        '{"results":[{"types":{"b":"blob"},"rows":[{"b":[1,2]},{"b":null}]}]}',
      );
      assertJson(
        await post(n, "/db/query?associative", ["SELECT * FROM nope", "SELECT 1 AS one"]),
        '{"results":[{"error":"no such table: nope"},{"types":{"one":"integer"},"rows":[{"one":1}]}]}',
      );
      // Writes in associative form carry "rows":null.
      assertJson(
        await post(n, "/db/execute?associative", ["INSERT INTO q_assoc(alpha) VALUES(3)"]),
        '{"results":[{"last_insert_id":3,"rows_affected":1,"rows":null}]}',
      );
      assertJson(
        await get(n, queryPath("SELECT alpha FROM q_assoc WHERE alpha = 3", "associative&pretty")),
        '{\n    "results": [\n        {\n            "types": {\n                "alpha": "integer"\n' +
          '            },\n            "rows": [\n                {\n                    "alpha": 3\n' +
          "                }\n            ]\n        }\n    ]\n}",
      );
    });

    await step("BLOBs: base64 by default, byte arrays with blob_array", async (n) => {
      await post(n, "/db/execute", [
        "CREATE TABLE q_blob (id INTEGER PRIMARY KEY, b BLOB)",
        "INSERT INTO q_blob(b) VALUES(x'deadbeef')",
        "INSERT INTO q_blob(b) VALUES(x'')",
        "INSERT INTO q_blob(b) VALUES('text in a blob column')",
        "INSERT INTO q_blob(b) VALUES(NULL)",
      ]);
      assertJson(
        await get(n, queryPath("SELECT b FROM q_blob")),
        '{"results":[{"columns":["b"],"types":["blob"],' +
          '"values":[["3q2+7w=="],[""],["text in a blob column"],[null]]}]}',
      );
      assertJson(
        await get(n, queryPath("SELECT b FROM q_blob WHERE id = 1", "blob_array")),
        '{"results":[{"columns":["b"],"types":["blob"],"values":[[[222,173,190,239]]]}]}',
      );
    });

    await step("64-bit integers are exact beyond 2^53, as params and values", async (n) => {
      await post(n, "/db/execute", ["CREATE TABLE q_big (id INTEGER PRIMARY KEY, v INTEGER)"]);
      // Raw body: JSON.stringify cannot write these integers exactly.
      assertJson(
        await post(
          n,
          "/db/execute",
          '[["INSERT INTO q_big(id, v) VALUES(1, ?)", 9223372036854775807],' +
            '["INSERT INTO q_big(id, v) VALUES(2, ?)", -9223372036854775808],' +
            '["INSERT INTO q_big(id, v) VALUES(3, :v)", {"v": 9007199254740993}],' +
            '"INSERT INTO q_big(id, v) VALUES(4, 9223372036854775806)"]',
        ),
        '{"results":[{"last_insert_id":1,"rows_affected":1},{"last_insert_id":2,"rows_affected":1},' +
          '{"last_insert_id":3,"rows_affected":1},{"last_insert_id":4,"rows_affected":1}]}',
      );
      assertJson(
        await get(n, queryPath("SELECT v, typeof(v) FROM q_big")),
        '{"results":[{"columns":["v","typeof(v)"],"types":["integer","text"],"values":[' +
          '[9223372036854775807,"integer"],[-9223372036854775808,"integer"],' +
          '[9007199254740993,"integer"],[9223372036854775806,"integer"]]}]}',
      );
      assertJson(
        await post(
          n,
          "/db/query",
          '[["SELECT id FROM q_big WHERE v = ?", 9223372036854775807],' +
            '["SELECT ?, ?", -9223372036854775808, 9007199254740993]]',
        ),
        '{"results":[{"columns":["id"],"types":["integer"],"values":[[1]]},' +
          '{"columns":["?","?"],"types":["integer","integer"],' +
          '"values":[[-9223372036854775808,9007199254740993]]}]}',
      );
      // The largest rowid as last_insert_id.
      assertJson(
        await post(n, "/db/execute", ["INSERT INTO q_big(id, v) VALUES(9223372036854775807, 0)"]),
        '{"results":[{"last_insert_id":9223372036854775807,"rows_affected":1}]}',
      );
      // Beyond int64 a JSON number is a REAL.
      assertJson(
        await post(n, "/db/query", '[["SELECT typeof(?)", 9223372036854775808]]'),
        '{"results":[{"columns":["typeof(?)"],"types":["text"],"values":[["real"]]}]}',
      );
    });

    await step("declared types lower-cased; expression types inferred", async (n) => {
      await post(n, "/db/execute", [
        "CREATE TABLE q_types (a varchar(64), b INT, c DATETIME, d Text, e, f DOUBLE PRECISION, g BLOB)",
        "INSERT INTO q_types VALUES('x', 1, NULL, 'y', NULL, 1.5, NULL)",
      ]);
      assertJson(
        await get(n, queryPath("SELECT * FROM q_types")),
        '{"results":[{"columns":["a","b","c","d","e","f","g"],' +
          '"types":["varchar(64)","int","datetime","text","","double precision","blob"],' +
          '"values":[["x",1,null,"y",null,1.5,null]]}]}',
      );
      assertJson(
        await get(
          n,
          queryPath("SELECT 1 + 1, 2.5, 'x', NULL, x'41', 1 AS n, a || 'y' FROM q_types"),
        ),
        '{"results":[{"columns":["1 + 1","2.5","\'x\'","NULL","x\'41\'","n","a || \'y\'"],' +
          '"types":["integer","real","text","","text","integer","text"],' +
          '"values":[[2,2.5,"x",null,"A",1,"xy"]]}]}',
      );
      // No rows: expression types stay "".
      assertJson(
        await get(n, queryPath("SELECT 1 AS one, b FROM q_types WHERE 0")),
        '{"results":[{"columns":["one","b"],"types":["","int"]}]}',
      );
      // The first row's value decides an untyped column's type.
      await post(n, "/db/execute", [
        "CREATE TABLE q_untyped (v)",
        "INSERT INTO q_untyped VALUES(NULL), (1)",
      ]);
      assertJson(
        await get(n, queryPath("SELECT v FROM q_untyped")),
        '{"results":[{"columns":["v"],"types":[""],"values":[[null],[1]]}]}',
      );
    });

    await step("DATE/DATETIME/TIMESTAMP values are converted", async (n) => {
      await post(n, "/db/execute", [
        "CREATE TABLE q_dates (id INTEGER PRIMARY KEY, d DATETIME, dd DATE, ts TIMESTAMP, d6 DATETIME(6))",
      ]);
      const rows: [unknown, string][] = [
        ["2004-02-14", "2004-02-14T00:00:00Z"],
        ["2021-10-22 19:39:32.016087", "2021-10-22T19:39:32.016087Z"],
        ["2021-10-22T19:39:32Z", "2021-10-22T19:39:32Z"],
        ["2021-10-22 19:39", "2021-10-22T19:39:00Z"],
        ["not a date", "0001-01-01T00:00:00Z"],
        [1700000000, "2023-11-14T22:13:20Z"],
        [1700000000123, "2023-11-14T22:13:20.123Z"],
        [0, "1970-01-01T00:00:00Z"],
      ];
      const stmts = rows.map(([v], i) => [
        "INSERT INTO q_dates(id, d, dd, ts, d6) VALUES(?, ?, ?, ?, ?)",
        i + 1,
        v,
        v,
        v,
        v,
      ]);
      assert.equal(parse(await post(n, "/db/execute", stmts)).results.length, rows.length);
      const expected = rows.map(([v, out], i) =>
        `[${i + 1},${JSON.stringify(out)},${JSON.stringify(out)},${JSON.stringify(out)},${
          JSON.stringify(v)
        }]`
      ).join(",");
      assertJson(
        await get(n, queryPath("SELECT * FROM q_dates")),
        '{"results":[{"columns":["id","d","dd","ts","d6"],' +
          '"types":["integer","datetime","date","timestamp","datetime(6)"],' +
          `"values":[${expected}]}]}`,
      );
      // NULL stays null; expressions over the column are not converted.
      await post(n, "/db/execute", ["INSERT INTO q_dates(id) VALUES(100)"]);
      assertJson(
        await get(n, queryPath("SELECT d, d || '' AS raw FROM q_dates WHERE id IN (1, 100)")),
        '{"results":[{"columns":["d","raw"],"types":["datetime","text"],' +
          '"values":[["2004-02-14T00:00:00Z","2004-02-14"],[null,null]]}]}',
      );
    });

    await step("BOOLEAN integers become true/false", async (n) => {
      await post(n, "/db/execute", [
        "CREATE TABLE q_bool (id INTEGER PRIMARY KEY, b BOOLEAN)",
        "INSERT INTO q_bool(b) VALUES(1), (0), (2), (-1), (NULL), ('yes')",
        ["INSERT INTO q_bool(b) VALUES(?)", true],
        ["INSERT INTO q_bool(b) VALUES(?)", false],
      ]);
      assertJson(
        await get(n, queryPath("SELECT b FROM q_bool")),
        '{"results":[{"columns":["b"],"types":["boolean"],' +
          '"values":[[true],[false],[true],[false],[null],["yes"],[true],[false]]}]}',
      );
    });

    await step("REAL formatting follows Go", async (n) => {
      assertJson(
        await get(
          n,
          queryPath("SELECT 2.0, 1.5, 0.1, -0.5, 1e21, 1e20, 1e-7, 0.000001, 123456789.125, 1.0/3"),
        ),
        '{"results":[{"columns":["2.0","1.5","0.1","-0.5","1e21","1e20","1e-7","0.000001","123456789.125","1.0/3"],' +
          '"types":["real","real","real","real","real","real","real","real","real","real"],' +
          '"values":[[2,1.5,0.1,-0.5,1e+21,100000000000000000000,1e-7,0.000001,123456789.125,0.3333333333333333]]}]}',
      );
      await post(n, "/db/execute", [
        "CREATE TABLE q_real (r REAL)",
        "INSERT INTO q_real VALUES(2.0), (3)",
      ]);
      assertJson(
        await get(n, queryPath("SELECT r FROM q_real")),
        '{"results":[{"columns":["r"],"types":["real"],"values":[[2],[3]]}]}',
      );
    });

    await step("strings are escaped as Go's encoder does", async (n) => {
      assertJson(
        await post(n, "/db/query", [["SELECT ? AS s", '<a&b> \u2028 \u2029 "q" \\ \n é 😀']]),
        '{"results":[{"columns":["s"],"types":["text"],' +
          '"values":[["\\u003ca\\u0026b\\u003e \\u2028 \\u2029 \\"q\\" \\\\ \\n é 😀"]]}]}',
      );
    });

    await step("405 for methods other than GET and POST", async (n) => {
      for (const method of ["PUT", "DELETE", "PATCH"]) {
        assertEmpty(await send(n, queryPath("SELECT 1"), { method }), 405);
      }
    });
  });
});

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
