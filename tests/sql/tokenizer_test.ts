import assert from "node:assert/strict";
import { tokenize, unquote } from "../../lib/sql/tokenizer.ts";
import type { TokenKind } from "../../lib/sql/tokenizer.ts";

/** Non-trivia tokens as [kind, text]. */
function sig(sql: string): [TokenKind, string][] {
  return tokenize(sql)
    .filter((t) => t.kind !== "ws" && t.kind !== "comment")
    .map((t) => [t.kind, sql.slice(t.start, t.end)]);
}

Deno.test("tokens cover the input exactly", () => {
  const sql = "SELECT a, 'b''c' -- x\n/* y */ FROM \"t\"\"q\" WHERE [z]=`w` AND x'AB' = ?1";
  const tokens = tokenize(sql);
  let pos = 0;
  for (const t of tokens) {
    assert.equal(t.start, pos);
    assert.ok(t.end > t.start);
    pos = t.end;
  }
  assert.equal(pos, sql.length);
});

Deno.test("strings, quoted identifiers, blobs and comments are single tokens", () => {
  assert.deepEqual(sig("SELECT 'it''s random()' AS \"a\"\"b\", [x y], `c``d`, x'0aFF', X''"), [
    ["ident", "SELECT"],
    ["string", "'it''s random()'"],
    ["ident", "AS"],
    ["quoted", '"a""b"'],
    ["punct", ","],
    ["quoted", "[x y]"],
    ["punct", ","],
    ["quoted", "`c``d`"],
    ["punct", ","],
    ["blob", "x'0aFF'"],
    ["punct", ","],
    ["blob", "X''"],
  ]);
  const kinds = tokenize("a -- random()\nb /* random() */ c /* open").map((t) => t.kind);
  assert.deepEqual(kinds, [
    "ident",
    "ws",
    "comment",
    "ws",
    "ident",
    "ws",
    "comment",
    "ws",
    "ident",
    "ws",
    "comment",
  ]);
});

Deno.test("numbers, parameters and operators", () => {
  assert.deepEqual(sig("1 1.5 .5 1e10 1.5E-3 0x1F 1_000 ? ?12 :a @b $c $d::e(f) #g"), [
    ["number", "1"],
    ["number", "1.5"],
    ["number", ".5"],
    ["number", "1e10"],
    ["number", "1.5E-3"],
    ["number", "0x1F"],
    ["number", "1_000"],
    ["param", "?"],
    ["param", "?12"],
    ["param", ":a"],
    ["param", "@b"],
    ["param", "$c"],
    ["param", "$d::e(f)"],
    ["param", "#g"],
  ]);
  assert.deepEqual(
    sig("a||b<=c>=d<>e!=f==g<<h>>i->j->>k.l").filter(([k]) => k === "punct").map(([, t]) => t),
    ["||", "<=", ">=", "<>", "!=", "==", "<<", ">>", "->", "->>", "."],
  );
  assert.deepEqual(sig("5--1"), [["number", "5"]]); // `--` starts a comment
  assert.deepEqual(sig("5- -1"), [["number", "5"], ["punct", "-"], ["punct", "-"], [
    "number",
    "1",
  ]]);
});

Deno.test("what SQLite rejects is an illegal token", () => {
  assert.deepEqual(sig("SELECT 'abc"), [["ident", "SELECT"], ["illegal", "'abc"]]);
  assert.deepEqual(sig('SELECT "abc'), [["ident", "SELECT"], ["illegal", '"abc']]);
  assert.deepEqual(sig("SELECT [abc"), [["ident", "SELECT"], ["illegal", "[abc"]]);
  assert.deepEqual(sig("SELECT x'ABC'"), [["ident", "SELECT"], ["illegal", "x'ABC'"]]);
  assert.deepEqual(sig("SELECT x'GG'"), [["ident", "SELECT"], ["illegal", "x'GG'"]]);
  assert.deepEqual(sig("SELECT 12abc"), [["ident", "SELECT"], ["illegal", "12abc"]]);
  assert.deepEqual(sig("SELECT !"), [["ident", "SELECT"], ["illegal", "!"]]);
  assert.deepEqual(sig("SELECT :"), [["ident", "SELECT"], ["illegal", ":"]]);
  assert.deepEqual(sig("x\vy").map(([k]) => k), ["ident", "illegal", "ident"]);
});

Deno.test("identifiers: letters, digits, _, $ and non-ASCII", () => {
  assert.deepEqual(sig("_a1$b \u00e9t\u00e9 x"), [["ident", "_a1$b"], ["ident", "\u00e9t\u00e9"], [
    "ident",
    "x",
  ]]);
  assert.deepEqual(sig("xyz'"), [["ident", "xyz"], ["illegal", "'"]]);
});

Deno.test("unquote", () => {
  assert.equal(unquote("'it''s'"), "it's");
  assert.equal(unquote('"a""b"'), 'a"b');
  assert.equal(unquote("`a``b`"), "a`b");
  assert.equal(unquote("[a]]"), "a]");
  assert.equal(unquote("now"), "now");
});

Deno.test("a BOM at a token start is space; NUL ends the text", () => {
  assert.deepEqual(sig("\ufeffSELECT\ufeff1"), [["ident", "SELECT\ufeff1"]]);
  assert.deepEqual(sig("\ufeffSELECT \ufeff1"), [["ident", "SELECT"], ["number", "1"]]);
  assert.deepEqual(sig("SELECT 1\u0000 'open"), [["ident", "SELECT"], ["number", "1"]]);
});
