import assert from "node:assert/strict";
import { parseHexBlobLiteral, parseJsonRequest, parseTextRequest } from "../../lib/sql/request.ts";
import type { Param, Statement } from "../../lib/sql/types.ts";

function ok(body: string): Statement[] {
  const r = parseJsonRequest(body);
  if (!r.ok) throw new Error(`expected ${body} to parse, got ${r.error}`);
  return r.statements;
}

function err(body: string, maxStatements?: number): string {
  const r = parseJsonRequest(body, { maxStatements });
  assert.equal(r.ok, false, `expected ${body} to fail`);
  return r.ok ? "" : r.error;
}

/** The params of the single statement `["SQL", ...json]`. */
function params(json: string): Param[] {
  const s = ok(`[["SQL", ${json}]]`);
  assert.equal(s.length, 1);
  return s[0]!.params;
}

function value(json: string): Param["value"] {
  const p = params(json);
  assert.equal(p.length, 1);
  return p[0]!.value;
}

Deno.test("simple form: array of SQL strings", () => {
  assert.deepEqual(ok('["CREATE TABLE foo (id INTEGER PRIMARY KEY, name TEXT)"]'), [
    { sql: "CREATE TABLE foo (id INTEGER PRIMARY KEY, name TEXT)", params: [] },
  ]);
  assert.deepEqual(ok(' [ "a" , "b" ] \n'), [
    { sql: "a", params: [] },
    { sql: "b", params: [] },
  ]);
});

Deno.test("parameterized form, mixed with plain strings (rqlite-api.md §2 example)", () => {
  const s = ok(
    '[["INSERT INTO foo(name, age) VALUES(?, ?)", "fiona", 20], ["SELECT * FROM foo WHERE name=:name", {"name":"fiona"}], "SELECT 1", ["SELECT 2"]]',
  );
  assert.deepEqual(s, [
    {
      sql: "INSERT INTO foo(name, age) VALUES(?, ?)",
      params: [{ value: "fiona" }, { value: 20n }],
    },
    { sql: "SELECT * FROM foo WHERE name=:name", params: [{ name: "name", value: "fiona" }] },
    { sql: "SELECT 1", params: [] },
    { sql: "SELECT 2", params: [] },
  ]);
});

Deno.test("named params: objects anywhere after the SQL, mixed with positional", () => {
  assert.deepEqual(params('1, {"a": 2, "b": "x"}, 3, {"c": null}'), [
    { value: 1n },
    { name: "a", value: 2n },
    { name: "b", value: "x" },
    { value: 3n },
    { name: "c", value: null },
  ]);
  assert.deepEqual(params("{}"), []);
  // A repeated key keeps its last value, as Go's map.
  assert.deepEqual(params('{"a": 1, "a": 2}'), [{ name: "a", value: 2n }]);
  // Keys are kept as given (SQLite binds them to :key, @key or $key).
  assert.deepEqual(params('{"$x": 1, "2": 3}'), [{ name: "$x", value: 1n }, {
    name: "2",
    value: 3n,
  }]);
});

Deno.test("integers are exact bigint, int64 range only", () => {
  assert.equal(value("9223372036854775807"), 9223372036854775807n);
  assert.equal(value("-9223372036854775808"), -9223372036854775808n);
  assert.equal(value("9007199254740993"), 9007199254740993n); // 2^53 + 1
  assert.equal(value("0"), 0n);
  assert.equal(value("-0"), 0n);
  assert.equal(value("20"), 20n);
  // Outside int64: float64, as Go's json.Number.Int64() fails and Float64() succeeds.
  assert.equal(value("9223372036854775808"), 9223372036854775808);
  assert.equal(typeof value("9223372036854775808"), "number");
  assert.equal(typeof value("-9223372036854775809"), "number");
});

Deno.test("non-integer literals are REAL (number)", () => {
  assert.equal(value("1.0"), 1);
  assert.equal(typeof value("1.0"), "number");
  assert.equal(value("1.5"), 1.5);
  assert.equal(value("-2.25"), -2.25);
  assert.equal(value("1e2"), 100);
  assert.equal(typeof value("1e2"), "number");
  assert.equal(value("1E-2"), 0.01);
  assert.ok(Object.is(value("-0.0"), -0));
  assert.equal(
    err('[["SQL", 1e400]]'),
    'strconv.ParseFloat: parsing "1e400": value out of range',
  );
});

Deno.test("booleans, null, strings", () => {
  assert.equal(value("true"), true);
  assert.equal(value("false"), false);
  assert.equal(value("null"), null);
  assert.equal(value('"fiona"'), "fiona");
  assert.equal(value('""'), "");
  assert.equal(value('"a\\"b\\\\c\\n\\u00e9\\ud83d\\ude00"'), 'a"b\\c\n\u00e9\ud83d\ude00');
  // Lone surrogate escapes become U+FFFD, as in Go.
  assert.equal(value('"\\ud800x"'), "\ufffdx");
  assert.equal(value('"\\udc00"'), "\ufffd");
  assert.equal(value('"\\ud800\\u0041"'), "\ufffdA");
});

Deno.test("hex blob literals become BLOBs (trimmed); malformed ones stay text", () => {
  assert.deepEqual(value(`"x'DEADBEEF'"`), new Uint8Array([0xde, 0xad, 0xbe, 0xef]));
  assert.deepEqual(value(`"X'deadbeef'"`), new Uint8Array([0xde, 0xad, 0xbe, 0xef]));
  assert.deepEqual(value(`"  x'0001'\\n\\t"`), new Uint8Array([0, 1]));
  assert.deepEqual(value(`"x''"`), new Uint8Array([]));
  // Not blob literals: text as sent (untrimmed).
  assert.equal(value(`"x'ABC'"`), "x'ABC'"); // odd digit count
  assert.equal(value(`"x'GG'"`), "x'GG'"); // not hex
  assert.equal(value(`" x'GG' "`), " x'GG' ");
  assert.equal(value(`"x'AB"`), "x'AB");
  assert.equal(value(`"x 'AB'"`), "x 'AB'");
  assert.equal(value(`"y'AB'"`), "y'AB'");
  assert.equal(value(`"0x'AB'"`), "0x'AB'");
  assert.equal(value(`"x'AB' x'CD'"`), "x'AB' x'CD'");
});

Deno.test("parseHexBlobLiteral uses Go's TrimSpace set", () => {
  assert.deepEqual(parseHexBlobLiteral("\u00a0x'FF'\u3000"), new Uint8Array([255]));
  assert.deepEqual(parseHexBlobLiteral("\u0085x'FF'\v"), new Uint8Array([255]));
  // U+FEFF is not space for Go (JS trim() would strip it).
  assert.equal(parseHexBlobLiteral("\ufeffx'FF'"), undefined);
});

Deno.test("arrays of byte values become BLOBs", () => {
  assert.deepEqual(value("[222, 173, 190, 239]"), new Uint8Array([222, 173, 190, 239]));
  assert.deepEqual(value("[0, 255]"), new Uint8Array([0, 255]));
  assert.deepEqual(value("[]"), new Uint8Array([]));
});

Deno.test("unsupported parameter types", () => {
  for (
    const bad of ["[256]", "[-1]", "[1.5]", "[1.0]", '["a"]', "[null]", "[true]", "[[1]]", "[{}]"]
  ) {
    assert.equal(err(`[["SQL", ${bad}]]`), "unsupported type", bad);
  }
  for (const bad of ['{"a": {"b": 1}}', '{"a": {}}', '{"a": [1, 300]}']) {
    assert.equal(err(`[["SQL", ${bad}]]`), "unsupported type", bad);
  }
  assert.deepEqual(params('{"a": [1, 2]}'), [{ name: "a", value: new Uint8Array([1, 2]) }]);
});

Deno.test("invalid JSON body", () => {
  for (
    const bad of [
      "[",
      '["a"',
      '["a",]',
      "[1,]",
      "{",
      "nope",
      "'a'",
      '["a"] x',
      '["a"]]',
      '["a\u0001"]', // raw control character
      '["\\x"]', // bad escape
      '["\\u12"]',
      "[01]",
      "[1.]",
      "[.5]",
      "[+1]",
      "[NaN]",
      "[Infinity]",
      "[-]",
      "[1e]",
      "[tru]",
      "\u00a0[]", // only space, tab, LF, CR are JSON whitespace
      " ",
    ]
  ) {
    assert.equal(err(bad), "invalid JSON body", JSON.stringify(bad));
  }
});

Deno.test("invalid request: valid JSON of the wrong shape", () => {
  for (
    const bad of [
      "{}",
      '{"a": 1}',
      '"SELECT 1"',
      "1",
      "true",
      "[1]",
      "[null]",
      "[true]",
      "[{}]",
      '["a", 1]',
      "[[]]", // empty inner array
      "[[1]]", // non-string first element
      '[[null, "a"]]',
      '[[["SELECT 1"]]]',
      '[[{"a":1}]]',
    ]
  ) {
    assert.equal(err(bad), "invalid request", bad);
  }
});

Deno.test("no statements", () => {
  assert.equal(err("[]"), "no statements");
  assert.equal(err(" [ ] "), "no statements");
  assert.equal(err("null"), "no statements");
  assert.equal(err(""), "no statements");
});

Deno.test("empty-string statements are skipped, but are not 'no statements'", () => {
  assert.deepEqual(ok('[""]'), []);
  assert.deepEqual(ok('["", "SELECT 1", [""], ["", 1]]'), [{ sql: "SELECT 1", params: [] }]);
  assert.deepEqual(ok('[" "]'), [{ sql: " ", params: [] }]);
});

Deno.test("syntax errors win over shape errors (whole body decoded first)", () => {
  assert.equal(err('[[], "a"'), "invalid JSON body");
  assert.equal(err('[[{"a": {"b": 1}}], ]'), "invalid JSON body");
});

Deno.test("statement count is bounded by the caller's limit", () => {
  assert.equal(ok('["a", "b", "c"]').length, 3);
  assert.ok(err('["a", "b", "c"]', 2).startsWith("too many statements"));
  assert.equal(parseJsonRequest('["a", "b"]', { maxStatements: 2 }).ok, true);
});

Deno.test("deep nesting: Go's 10000 limit is invalid JSON; below it the shape decides", () => {
  const deep = (d: number) => `[["SQL", ${"[".repeat(d)}${"]".repeat(d)}]]`;
  assert.equal(err(deep(9_000)), "unsupported type");
  assert.equal(err(deep(9_998)), "unsupported type");
  assert.equal(err(deep(9_999)), "invalid JSON body"); // 10001 levels in total
  assert.equal(err("[".repeat(1_000_000) + "]".repeat(1_000_000)), "invalid JSON body");
});

Deno.test("large bodies keep every value exact", () => {
  const rows: string[] = [];
  for (let i = 0; i < 10_000; i++) {
    rows.push(
      `["INSERT INTO t VALUES(?, ?, ?)", ${9007199254740993n + BigInt(i)}, "n${i}", ${i}.5]`,
    );
  }
  const s = ok(`[${rows.join(",")}]`);
  assert.equal(s.length, 10_000);
  assert.deepEqual(s[9_999]!.params, [
    { value: 9007199254740993n + 9_999n },
    { value: "n9999" },
    { value: 9_999.5 },
  ]);
});

Deno.test("text/plain body: one statement, empty gives none", () => {
  assert.deepEqual(parseTextRequest("SELECT 1; SELECT 2"), [{
    sql: "SELECT 1; SELECT 2",
    params: [],
  }]);
  assert.deepEqual(parseTextRequest(""), []);
});
