import assert from "node:assert/strict";
import { isComplete, splitStatements, StatementReader } from "../../lib/shell/statements.ts";

Deno.test("complete: a ; outside strings, quoted names and comments ends the text", () => {
  const complete = [
    "SELECT 1;",
    "SELECT 1;  ",
    "SELECT 1; -- trailing comment",
    "SELECT 1; /* block */",
    "SELECT 'a;b';",
    `SELECT "x;y" FROM t;`,
    "SELECT [a;b] FROM t;",
    "SELECT `a;b` FROM t;",
    "SELECT 1;\nSELECT 2;",
    "INSERT INTO t VALUES(x'0102');",
    "",
    "   ",
    "-- just a comment",
  ];
  for (const s of complete) assert.equal(isComplete(s), true, JSON.stringify(s));
  const incomplete = [
    "SELECT 1",
    "SELECT 'a;",
    "SELECT 'a;b",
    `SELECT "x;`,
    "SELECT 1 /* ; */",
    "SELECT 1; /* unterminated ",
    "SELECT 1; SELECT 2",
    "INSERT INTO t VALUES(x'01;",
    "SELECT 1 -- ;",
  ];
  for (const s of incomplete) assert.equal(isComplete(s), false, JSON.stringify(s));
});

Deno.test("complete: trigger bodies keep their semicolons (sqlite3_complete's machine)", () => {
  const trigger = "CREATE TRIGGER tr AFTER INSERT ON t BEGIN\n" +
    "  UPDATE t SET n = n + 1;\n  INSERT INTO log VALUES (1);\n";
  assert.equal(isComplete(trigger), false);
  assert.equal(isComplete(trigger + "END"), false);
  assert.equal(isComplete(trigger + "END;"), true);
  assert.equal(isComplete("CREATE TEMP TRIGGER tr AFTER INSERT ON t BEGIN SELECT 1; END;"), true);
  assert.equal(isComplete("EXPLAIN CREATE TRIGGER tr AFTER INSERT ON t BEGIN SELECT 1;"), false);
  // A table named "trigger"-ish or an END keyword elsewhere does not confuse it.
  assert.equal(isComplete("CREATE TABLE triggers (x);"), true);
  assert.equal(isComplete("SELECT CASE WHEN 1 THEN 2 END;"), true);
});

Deno.test("split: statements keep their ; and text; empty ones are dropped", () => {
  assert.deepEqual(splitStatements("SELECT 1; SELECT 'a;b';\n;; INSERT INTO t VALUES(1);"), [
    "SELECT 1;",
    "SELECT 'a;b';",
    "INSERT INTO t VALUES(1);",
  ]);
  assert.deepEqual(splitStatements("-- c\nSELECT 1; -- tail"), ["-- c\nSELECT 1;"]);
  assert.deepEqual(splitStatements("SELECT 1; SELECT 2"), ["SELECT 1;", "SELECT 2"]);
  const trig = "CREATE TRIGGER tr AFTER INSERT ON t BEGIN SELECT 1; SELECT 2; END;";
  assert.deepEqual(splitStatements(`${trig} SELECT 3;`), [trig, "SELECT 3;"]);
  assert.deepEqual(splitStatements("  ;  "), []);
});

Deno.test("reader: lines accumulate until complete, then come out as statements", () => {
  const r = new StatementReader();
  assert.deepEqual(r.push("SELECT"), []);
  assert.equal(r.pending, true);
  assert.deepEqual(r.push("  1,"), []);
  assert.deepEqual(r.push("  'x;"), []);
  assert.deepEqual(r.push("y'; SELECT 2;"), ["SELECT\n  1,\n  'x;\ny';", "SELECT 2;"]);
  assert.equal(r.pending, false);
  assert.deepEqual(r.push("SELECT 3"), []);
  assert.equal(r.take(), "SELECT 3");
  assert.equal(r.pending, false);
  // A block comment closing on a later line completes the text before it.
  assert.deepEqual(r.push("SELECT 4; /* open"), []);
  assert.deepEqual(r.push("still */"), ["SELECT 4;"]);
});

Deno.test("reader: a statement beyond the bound is an error, not unbounded growth", () => {
  const r = new StatementReader(100);
  r.push("SELECT '");
  assert.throws(
    () => r.push("x".repeat(200)),
    /longer than 100 characters.*';' or a quote missing/,
  );
  assert.equal(r.pending, false);
});
