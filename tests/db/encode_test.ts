import assert from "node:assert/strict";
import {
  encodeResponse,
  encodeResult,
  indentJson,
  JsonEncodeError,
  jsonNumber,
  jsonString,
} from "../../lib/db/encode.ts";
import { SqliteEngine } from "../../lib/db/engine.ts";
import type { StatementResult } from "../../lib/db/result.ts";
import { cmd } from "./helpers.ts";

const E2E_COMPACT =
  '{"results":[{"columns":["id","name"],"types":["integer","text"],"values":[[1,"fiona"],[2,"declan"]]}]}';
const E2E_ASSOC =
  '{"results":[{"types":{"id":"integer","name":"text"},"rows":[{"id":1,"name":"fiona"},{"id":2,"name":"declan"}]}]}';
const E2E_PRETTY = `{
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
}`;

Deno.test("encode: the exact e2e texts of rqlite-api §3 from a real engine", () => {
  const e = new SqliteEngine();
  try {
    e.execute(cmd([
      "CREATE TABLE foo (id INTEGER PRIMARY KEY, name TEXT)",
      ["INSERT INTO foo(name) VALUES(?)", "fiona"],
      ["INSERT INTO foo(name) VALUES(?)", "declan"],
    ]));
    const results = e.query(cmd(["SELECT * FROM foo"], {}, "query"));
    assert.equal(encodeResponse({ results }), E2E_COMPACT);
    assert.equal(encodeResponse({ results }, { associative: true }), E2E_ASSOC);
    assert.equal(encodeResponse({ results }, { pretty: true }), E2E_PRETTY);
    assert.equal(E2E_PRETTY, JSON.stringify(JSON.parse(E2E_COMPACT), null, 4));
  } finally {
    e.close();
  }
});

Deno.test("encode: write results omit zero values; errors; top-level field order", () => {
  assert.equal(encodeResponse({ results: [] }), '{"results":[]}');
  assert.equal(
    encodeResponse({ results: [], error: "disallowed pragma" }),
    '{"results":[],"error":"disallowed pragma"}',
  );
  assert.equal(
    encodeResponse({ results: [], sequenceNumber: 1700000000000000001n }),
    '{"results":[],"sequence_number":1700000000000000001}',
  );
  assert.equal(
    encodeResponse({
      results: [{ lastInsertId: 0, rowsAffected: 0 }, { lastInsertId: 1, rowsAffected: 1 }, {
        error: "no such table: bar",
      }],
      error: "",
      timeSec: 0.000123,
      sequenceNumber: 0,
      raftIndex: 42,
    }),
    '{"results":[{},{"last_insert_id":1,"rows_affected":1},{"error":"no such table: bar"}],' +
      '"time":0.000123,"raft_index":42}',
  );
  assert.equal(
    encodeResponse({ results: [], error: "x", timeSec: 1.5, sequenceNumber: 3, raftIndex: 4 }),
    '{"results":[],"error":"x","time":1.5,"sequence_number":3,"raft_index":4}',
  );
  assert.equal(
    encodeResult({ lastInsertId: 9223372036854775807n, rowsAffected: 2, timeSec: 1e-7 }),
    '{"last_insert_id":9223372036854775807,"rows_affected":2,"time":1e-7}',
  );
  assert.equal(
    encodeResult({ columns: ["id", "name"], types: ["integer", "text"], values: [] }),
    '{"columns":["id","name"],"types":["integer","text"]}',
  );
  assert.equal(encodeResult({ columns: [], types: [], values: [] }), "{}");
  assert.equal(
    encodeResult({ columns: ["x"], types: [""], values: [], error: "query timeout" }),
    '{"columns":["x"],"types":[""],"error":"query timeout"}',
  );
});

Deno.test("encode: associative form — sorted keys, rows:null for writes, errors alone", () => {
  const a = { associative: true };
  assert.equal(
    encodeResult({ lastInsertId: 1, rowsAffected: 1 }, a),
    '{"last_insert_id":1,"rows_affected":1,"rows":null}',
  );
  assert.equal(encodeResult({ lastInsertId: 0, rowsAffected: 0 }, a), '{"rows":null}');
  assert.equal(
    encodeResult({ lastInsertId: 5, timeSec: 0.5 }, a),
    '{"last_insert_id":5,"time":0.5,"rows":null}',
  );
  assert.equal(encodeResult({ error: "no such table: bar" }, a), '{"error":"no such table: bar"}');
  assert.equal(
    encodeResult({ columns: ["a"], types: ["text"], values: [], error: "query timeout" }, a),
    '{"error":"query timeout"}',
  );
  assert.equal(encodeResult({ columns: [], types: [], values: [] }, a), '{"types":{},"rows":[]}');
  assert.equal(
    encodeResult(
      {
        columns: ["zeta", "Alpha", "alpha", "b", "é", "b"],
        types: ["text", "integer", "real", "x", "text", "y"],
        values: [["z", 1, 1.5, "first", "e", "second"]],
      },
      a,
    ),
    '{"types":{"Alpha":"integer","alpha":"real","b":"y","zeta":"text","é":"text"},' +
      '"rows":[{"Alpha":1,"alpha":1.5,"b":"second","zeta":"z","é":"e"}]}',
  );
  assert.equal(
    encodeResult({ columns: ["id"], types: ["integer"], values: [[1]], timeSec: 0.25 }, a),
    '{"types":{"id":"integer"},"rows":[{"id":1}],"time":0.25}',
  );
  // Map keys sort by UTF-8 bytes: U+FF5E sorts before U+1F600 (not so in UTF-16).
  assert.equal(
    encodeResult({ columns: ["\u{1F600}", "\uFF5E"], types: ["", ""], values: [] }, a),
    '{"types":{"～":"","😀":""},"rows":[]}',
  );
});

Deno.test("encode: floats as Go writes float64", () => {
  const cases: [number, string][] = [
    [1, "1"],
    [2.0, "2"],
    [1.5, "1.5"],
    [-0, "-0"],
    [0, "0"],
    [1e21, "1e+21"],
    [1e20, "100000000000000000000"],
    [1e-7, "1e-7"],
    [1.5e-7, "1.5e-7"],
    [1e-6, "0.000001"],
    [9.99e-7, "9.99e-7"],
    [123456789.123, "123456789.123"],
    [0.1 + 0.2, "0.30000000000000004"],
    [-1.25e-10, "-1.25e-10"],
    [5e-324, "5e-324"],
    [1.7976931348623157e308, "1.7976931348623157e+308"],
    [123456789012345680000, "123456789012345680000"],
    [1.2345678901234568e21, "1.2345678901234568e+21"],
  ];
  for (const [n, want] of cases) assert.equal(jsonNumber(n), want, String(n));
  assert.throws(
    () => jsonNumber(Infinity),
    (e) => e instanceof JsonEncodeError && e.message === "json: unsupported value: +Inf",
  );
  assert.throws(() => jsonNumber(-Infinity), /json: unsupported value: -Inf/);
  assert.throws(() => jsonNumber(NaN), /json: unsupported value: NaN/);
});

Deno.test("encode: real values from SQLite", () => {
  const e = new SqliteEngine();
  try {
    const r = e.query(
      cmd(["SELECT 1.0, 1.5, 1e21, 1e-7, -0.0, 123456789.123, 2.5e-300"], {}, "query"),
    );
    assert.equal(
      encodeResponse({ results: r }),
      '{"results":[{"columns":["1.0","1.5","1e21","1e-7","-0.0","123456789.123","2.5e-300"],' +
        '"types":["real","real","real","real","real","real","real"],' +
        '"values":[[1,1.5,1e+21,1e-7,-0,123456789.123,2.5e-300]]}]}',
    );
  } finally {
    e.close();
  }
});

Deno.test("encode: strings escaped as Go's encoding/json does", () => {
  assert.equal(jsonString("plain"), '"plain"');
  assert.equal(jsonString('a"b\\c'), '"a\\"b\\\\c"');
  assert.equal(
    jsonString("<a href='x'>&amp;</a>"),
    "\"\\u003ca href='x'\\u003e\\u0026amp;\\u003c/a\\u003e\"",
  );
  assert.equal(jsonString("\b\f\n\r\t"), '"\\b\\f\\n\\r\\t"');
  assert.equal(jsonString("\u0000\u0001\u001f\u007f"), '"\\u0000\\u0001\\u001f\u007f"');
  assert.equal(jsonString("\u2028\u2029"), '"\\u2028\\u2029"');
  assert.equal(jsonString("é😀\ufffd"), '"é😀\ufffd"');
  assert.equal(jsonString("x\ud800y\udc00z"), '"x\\ufffdy\\ufffdz"');
  // Column names and error texts are escaped as well.
  assert.equal(
    encodeResult({ columns: ["a<b"], types: ["text"], values: [["x&y"]], error: 'near "<"' }),
    '{"columns":["a\\u003cb"],"types":["text"],"values":[["x\\u0026y"]],"error":"near \\"\\u003c\\""}',
  );
});

Deno.test("encode: blobs, booleans, nulls, big integers", () => {
  const r: StatementResult = {
    columns: ["b", "t", "n", "i"],
    types: ["blob", "boolean", "", "integer"],
    values: [[new Uint8Array([0xde, 0xad, 0xbe, 0xef]), true, null, -9223372036854775808n], [
      new Uint8Array(0),
      false,
      null,
      9007199254740991,
    ]],
  };
  assert.equal(
    encodeResult(r),
    '{"columns":["b","t","n","i"],"types":["blob","boolean","","integer"],' +
      '"values":[["3q2+7w==",true,null,-9223372036854775808],["",false,null,9007199254740991]]}',
  );
  assert.equal(
    encodeResult(r, { blobArray: true, associative: true }),
    '{"types":{"b":"blob","i":"integer","n":"","t":"boolean"},' +
      '"rows":[{"b":[222,173,190,239],"i":-9223372036854775808,"n":null,"t":true},{"b":[],"i":9007199254740991,"n":null,"t":false}]}',
  );
  const big = new Uint8Array(100_000).map((_, i) => i & 0xff);
  const b64 = encodeResult({ columns: ["b"], types: ["blob"], values: [[big]] });
  const got = JSON.parse(b64).values[0][0] as string;
  assert.deepEqual(Uint8Array.from(atob(got), (c) => c.charCodeAt(0)), big);
});

Deno.test("encode: pretty layout equals Go MarshalIndent (empty containers, nulls, nesting)", () => {
  const compact = encodeResponse({
    results: [
      { lastInsertId: 1, rowsAffected: 1 },
      { columns: ["a", "b"], types: ["text", ""], values: [["x:y,{z}", null]] },
      { columns: [], types: [], values: [] },
    ],
    error: "e",
  });
  const pretty = encodeResponse({
    results: [
      { lastInsertId: 1, rowsAffected: 1 },
      { columns: ["a", "b"], types: ["text", ""], values: [["x:y,{z}", null]] },
      { columns: [], types: [], values: [] },
    ],
    error: "e",
  }, { pretty: true });
  assert.equal(pretty, JSON.stringify(JSON.parse(compact), null, 4));
  assert.equal(
    indentJson('{"a":[],"b":{},"c":[{}],"d":"\\"[,]\\""}'),
    `{
    "a": [],
    "b": {},
    "c": [
        {}
    ],
    "d": "\\"[,]\\""
}`,
  );
  assert.equal(
    encodeResponse({ results: [{ lastInsertId: 2, rowsAffected: 1 }] }, {
      associative: true,
      pretty: true,
    }),
    `{
    "results": [
        {
            "last_insert_id": 2,
            "rows_affected": 1,
            "rows": null
        }
    ]
}`,
  );
  assert.equal(encodeResponse({ results: [] }, { pretty: true }), '{\n    "results": []\n}');
});

Deno.test("encode: fast enough for large results", () => {
  const values = Array.from({ length: 100_000 }, (_, i) => [i, `name ${i}`, i * 1.5, null]);
  const r: StatementResult = {
    columns: ["a", "b", "c", "d"],
    types: ["integer", "text", "real", ""],
    values,
  };
  const t0 = performance.now();
  const s = encodeResponse({ results: [r] });
  const ms = performance.now() - t0;
  assert.ok(s.length > 2_000_000);
  assert.ok(ms < 1000, `100k rows took ${ms} ms`);
});
