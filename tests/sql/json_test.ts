import assert from "node:assert/strict";
import { JsonNumber, JsonObject, JsonSyntaxError, parseJsonExact } from "../../lib/sql/json.ts";

Deno.test("numbers keep their source text", () => {
  const v = parseJsonExact("[9223372036854775807, 1.0, -0, 1e2, 0.5E-3]");
  assert.ok(Array.isArray(v));
  assert.deepEqual(v.map((n) => (n as JsonNumber).raw), [
    "9223372036854775807",
    "1.0",
    "-0",
    "1e2",
    "0.5E-3",
  ]);
});

Deno.test("objects keep first-seen key order, last value wins; no prototype tricks", () => {
  const v = parseJsonExact('{"b": 1, "a": "x", "2": null, "b": true, "__proto__": []}');
  assert.ok(v instanceof JsonObject);
  assert.deepEqual([...v.entries.keys()], ["b", "a", "2", "__proto__"]);
  assert.equal(v.entries.get("b"), true);
  assert.deepEqual(v.entries.get("__proto__"), []);
});

Deno.test("scalars, nesting and whitespace", () => {
  assert.equal(parseJsonExact(' \t\r\n"x" '), "x");
  assert.equal(parseJsonExact("null"), null);
  assert.equal(parseJsonExact("false"), false);
  assert.deepEqual(parseJsonExact('[[], {}, [[1]], {"a": [{"b": "c"}]}]'), [
    [],
    new JsonObject(new Map()),
    [[new JsonNumber("1")]],
    new JsonObject(new Map([["a", [new JsonObject(new Map([["b", "c"]]))]]])),
  ]);
});

Deno.test("syntax errors carry an offset", () => {
  assert.throws(() => parseJsonExact("[1, 2"), JsonSyntaxError);
  assert.throws(() => parseJsonExact('{"a" 1}'), JsonSyntaxError);
  assert.throws(() => parseJsonExact('{"a": 1,}'), JsonSyntaxError);
  assert.throws(() => parseJsonExact("{1: 2}"), JsonSyntaxError);
  assert.throws(() => parseJsonExact(""), JsonSyntaxError);
  try {
    parseJsonExact("[1, x]");
    assert.fail("should throw");
  } catch (e) {
    assert.ok(e instanceof JsonSyntaxError);
    assert.equal(e.offset, 4);
  }
});

Deno.test("depth limit: maxDepth containers allowed, one more rejected", () => {
  assert.deepEqual(parseJsonExact("[[[]]]", 3), [[[]]]);
  assert.throws(() => parseJsonExact("[[[[]]]]", 3), /exceeded max depth/);
  assert.throws(() => parseJsonExact('[{"a": {}}]', 2), /exceeded max depth/);
});
