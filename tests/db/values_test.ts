import assert from "node:assert/strict";
import { SqliteEngine } from "../../lib/db/engine.ts";
import { formatTimeInteger, formatTimeText, GO_ZERO_TIME } from "../../lib/db/go_time.ts";
import type { QueryResult } from "../../lib/db/result.ts";
import { body, cmd, type StmtSpec } from "./helpers.ts";

function run(specs: StmtSpec[], read: StmtSpec[], opts = {}): string {
  const e = new SqliteEngine();
  try {
    const w = e.execute(cmd(specs));
    for (const r of w) assert.equal(r.error, undefined, JSON.stringify(r));
    return body(e.query(cmd(read, {}, "query")), opts);
  } finally {
    e.close();
  }
}

Deno.test("types: declared types lower-cased exactly as written", () => {
  assert.equal(
    run(
      [
        "CREATE TABLE t (a INTEGER, b VARCHAR(64), c DateTime, d Int, e BLOB, f DOUBLE PRECISION, g)",
        "INSERT INTO t VALUES(1, 'x', NULL, 2, x'00', 1.5, 'free')",
      ],
      ["SELECT * FROM t"],
    ),
    '{"results":[{"columns":["a","b","c","d","e","f","g"],' +
      '"types":["integer","varchar(64)","datetime","int","blob","double precision","text"],' +
      '"values":[[1,"x",null,2,"AA==",1.5,"free"]]}]}',
  );
});

Deno.test('types: expression columns inferred from the first row; NULL or no rows give ""', () => {
  assert.equal(
    run([], ["SELECT 1 AS i, 1.5 AS r, 'a' AS t, x'41' AS b, NULL AS n", "SELECT 1 AS i WHERE 0"]),
    '{"results":[{"columns":["i","r","t","b","n"],"types":["integer","real","text","text",""],' +
      '"values":[[1,1.5,"a","A",null]]},{"columns":["i"],"types":[""]}]}',
  );
  // Only the first row decides.
  assert.equal(
    run([], ["SELECT NULL AS x UNION ALL SELECT 5", "SELECT 1.5 AS x UNION ALL SELECT 2"]),
    '{"results":[{"columns":["x"],"types":[""],"values":[[null],[5]]},' +
      '{"columns":["x"],"types":["real"],"values":[[1.5],[2]]}]}',
  );
});

Deno.test("values: integers beyond 2^53 are exact both ways", () => {
  const big = 9223372036854775807n;
  const small = -9223372036854775808n;
  const justOver = 9007199254740993n;
  const e = new SqliteEngine();
  try {
    e.execute(cmd([
      "CREATE TABLE n (id INTEGER PRIMARY KEY, v INTEGER)",
      ["INSERT INTO n(v) VALUES(?)", big],
      ["INSERT INTO n(v) VALUES(?)", small],
      ["INSERT INTO n(v) VALUES(?)", justOver],
      ["INSERT INTO n(id, v) VALUES(?, 1)", justOver],
    ]));
    const r = e.query(
      cmd(
        ["SELECT v FROM n ORDER BY id", "SELECT ? + 0", "SELECT id FROM n WHERE v = 1"],
        {},
        "query",
      ),
    );
    const q = r[0] as QueryResult;
    assert.deepEqual(q.values, [[big], [small], [justOver], [1]]);
    assert.equal(
      body(r.slice(0, 1)),
      '{"results":[{"columns":["v"],"types":["integer"],"values":[[9223372036854775807],[-9223372036854775808],[9007199254740993],[1]]}]}',
    );
    // The last insert id is exact too.
    const ins = e.execute(cmd([["INSERT INTO n(id, v) VALUES(?, 2)", big]]));
    assert.equal(
      body(ins),
      '{"results":[{"last_insert_id":9223372036854775807,"rows_affected":1}]}',
    );
    assert.deepEqual((r[2] as QueryResult).values, [[justOver]]);
    assert.equal(typeof (r[2] as QueryResult).values[0]![0], "bigint");
  } finally {
    e.close();
  }
});

Deno.test("values: reals, and JS numbers bind as REAL while bigints bind as INTEGER", () => {
  assert.equal(
    run([], [["SELECT typeof(?), typeof(?), ?, ?", 1, 1n, 2.0, 0.1]]),
    '{"results":[{"columns":["typeof(?)","typeof(?)","?","?"],"types":["text","text","real","real"],' +
      '"values":[["real","integer",2,0.1]]}]}',
  );
});

Deno.test("values: booleans bind as 1/0; BOOLEAN columns read as true/false", () => {
  assert.equal(
    run(
      [
        "CREATE TABLE b (id INTEGER PRIMARY KEY, flag BOOLEAN, other INTEGER)",
        ["INSERT INTO b(flag, other) VALUES(?, ?)", true, true],
        ["INSERT INTO b(flag, other) VALUES(?, ?)", false, false],
        "INSERT INTO b(flag, other) VALUES(7, -1)",
        "INSERT INTO b(flag, other) VALUES(-3, 0)",
        "INSERT INTO b(flag, other) VALUES('yes', NULL)",
        "INSERT INTO b(flag, other) VALUES(NULL, NULL)",
      ],
      ["SELECT flag, other FROM b ORDER BY id"],
    ),
    '{"results":[{"columns":["flag","other"],"types":["boolean","integer"],' +
      '"values":[[true,1],[false,0],[true,-1],[false,0],["yes",null],[null,null]]}]}',
  );
});

Deno.test("values: BLOBs as base64 or blob_array; bound Uint8Array is a BLOB", () => {
  const rows = [
    "CREATE TABLE bl (id INTEGER PRIMARY KEY, data BLOB)",
    ["INSERT INTO bl(data) VALUES(?)", new Uint8Array([0xde, 0xad, 0xbe, 0xef])],
    "INSERT INTO bl(data) VALUES(x'')",
    "INSERT INTO bl(data) VALUES('text in a blob column')",
  ] satisfies StmtSpec[];
  const read: StmtSpec[] = ["SELECT data, typeof(data) FROM bl ORDER BY id"];
  assert.equal(
    run(rows, read),
    '{"results":[{"columns":["data","typeof(data)"],"types":["blob","text"],' +
      '"values":[["3q2+7w==","blob"],["","blob"],["text in a blob column","text"]]}]}',
  );
  assert.equal(
    run(rows, read, { blobArray: true }),
    '{"results":[{"columns":["data","typeof(data)"],"types":["blob","text"],' +
      '"values":[[[222,173,190,239],"blob"],[[],"blob"],["text in a blob column","text"]]}]}',
  );
  // A BLOB stored in a TEXT-typed column comes back as text.
  assert.equal(
    run(["CREATE TABLE tb (v TEXT, w VARCHAR(3))", "INSERT INTO tb VALUES(x'6869', x'6f6b')"], [
      "SELECT * FROM tb",
    ]),
    '{"results":[{"columns":["v","w"],"types":["text","varchar(3)"],"values":[["hi","ok"]]}]}',
  );
});

Deno.test("values: DATE/DATETIME/TIMESTAMP conversions of §3", () => {
  assert.equal(
    run(
      [
        "CREATE TABLE d (id INTEGER PRIMARY KEY, a DATE, b DATETIME, c TIMESTAMP, e DATETIME(6), f TEXT)",
        "INSERT INTO d(a, b, c, e, f) VALUES('2004-02-14', '2021-10-22 19:39:32.016087', 'nonsense', '2004-02-14', '2004-02-14')",
        "INSERT INTO d(a, b, c) VALUES(1634931572, 1634931572016, '2021-10-22T19:39:32Z')",
        "INSERT INTO d(a, b, c) VALUES('2021-10-22 19:39', '2021-10-22T19:39:32.5+02:00', 1.5)",
        "INSERT INTO d(a, b, c) VALUES(NULL, '2021-02-29', '2020-02-29 00:00:00-00:00')",
      ],
      ["SELECT a, b, c, e, f FROM d ORDER BY id"],
    ),
    '{"results":[{"columns":["a","b","c","e","f"],"types":["date","datetime","timestamp","datetime(6)","text"],' +
      '"values":[' +
      '["2004-02-14T00:00:00Z","2021-10-22T19:39:32.016087Z","0001-01-01T00:00:00Z","2004-02-14","2004-02-14"],' +
      '["2021-10-22T19:39:32Z","2021-10-22T19:39:32.016Z","2021-10-22T19:39:32Z",null,null],' +
      '["2021-10-22T19:39:00Z","2021-10-22T19:39:32.5+02:00",1.5,null,null],' +
      '[null,"0001-01-01T00:00:00Z","2020-02-29T00:00:00Z",null,null]]}]}',
  );
});

Deno.test("go_time: text layouts as Go's time.Parse accepts them", () => {
  const cases: [string, string][] = [
    ["2004-02-14", "2004-02-14T00:00:00Z"],
    ["2004-02-14Z", "2004-02-14T00:00:00Z"],
    ["2004-02-14 07:08", "2004-02-14T07:08:00Z"],
    ["2004-02-14T7:08", "2004-02-14T07:08:00Z"],
    ["2004-02-14 07:08:09", "2004-02-14T07:08:09Z"],
    ["2004-02-14 07:08:09.000", "2004-02-14T07:08:09Z"],
    ["2004-02-14 07:08:09,123", "2004-02-14T07:08:09.123Z"],
    ["2004-02-14 07:08:09.1234567891234", "2004-02-14T07:08:09.123456789Z"],
    ["2004-02-14 07:08:09-05:30", "2004-02-14T07:08:09-05:30"],
    ["2004-02-14T07:08:09.25+00:00", "2004-02-14T07:08:09.25Z"],
    ["2004-02-14 07:08:09+24:00", ""], // parses, but MarshalText refuses
    ["2004-02-14 07:08:09.", GO_ZERO_TIME],
    ["2004-02-14 07:08-05:00", GO_ZERO_TIME],
    ["2004-2-14", GO_ZERO_TIME],
    ["2004-02-30", GO_ZERO_TIME],
    ["2004-13-01", GO_ZERO_TIME],
    ["2004-02-14 24:00", GO_ZERO_TIME],
    ["2004-02-14 07:60", GO_ZERO_TIME],
    ["2004-02-14 07:08:60", GO_ZERO_TIME],
    ["2004-02-14 07:08:09 ", GO_ZERO_TIME],
    ["2004-02-14ZZ", GO_ZERO_TIME],
    ["", GO_ZERO_TIME],
    ["0000-01-01", "0000-01-01T00:00:00Z"],
  ];
  for (const [input, want] of cases) {
    if (want === "") {
      assert.throws(() => formatTimeText(input), /timezone hour outside of range/);
    } else {
      assert.equal(formatTimeText(input), want, input);
    }
  }
});

Deno.test("go_time: integers are Unix seconds, or milliseconds beyond 1e12", () => {
  assert.equal(formatTimeInteger(0n), "1970-01-01T00:00:00Z");
  assert.equal(formatTimeInteger(-1n), "1969-12-31T23:59:59Z");
  assert.equal(formatTimeInteger(951782400n), "2000-02-29T00:00:00Z");
  // Exactly 1e12 is still seconds (year 33658: MarshalText refuses it).
  assert.throws(() => formatTimeInteger(1_000_000_000_000n), /year outside of range/);
  assert.equal(formatTimeInteger(1_000_000_000_001n), "2001-09-09T01:46:40.001Z");
  assert.equal(formatTimeInteger(-1_000_000_000_001n), "1938-04-24T22:13:19.999Z");
  assert.equal(formatTimeInteger(253402300799n), "9999-12-31T23:59:59Z");
  assert.throws(() => formatTimeInteger(253402300800n), /year outside of range \[0,9999\]/);
  // Go's int64 nanosecond multiplication wraps around.
  assert.equal(formatTimeInteger(9223372036854775807n), "1969-12-31T23:59:59.999Z");
});
