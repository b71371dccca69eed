import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import {
  cleanSqliteMessage,
  isBlankSql,
  leadingKeyword,
  skipBlank,
  statementStarts,
} from "../../lib/db/sql_text.ts";

Deno.test("sql_text: blank SQL (never to be prepared)", () => {
  for (
    const s of [
      "",
      " ",
      "\t\n\r\f",
      ";",
      " ; ;; ",
      "-- c",
      "-- c\n",
      "/* c",
      "/* c */",
      "\uFEFF",
      "\0select 1",
      " ;\0x",
    ]
  ) assert.equal(isBlankSql(s), true, JSON.stringify(s));
  for (const s of ["x", "\v", "select 1", "-", "/", "; select 1", "/* */ -- \n ;\u00a0"]) {
    assert.equal(isBlankSql(s), false, JSON.stringify(s));
  }
});

Deno.test("sql_text: skipBlank agrees with SQLite on where a statement starts", () => {
  // Text skipBlank calls non-blank must prepare without crashing; random fuzz
  // over the characters SQLite's tokenizer treats specially.
  const db = new DatabaseSync(":memory:");
  const alpha = [
    " ",
    "\t",
    "\n",
    "\r",
    "\f",
    "\v",
    "\0",
    ";",
    "-",
    "/",
    "*",
    "a",
    "'",
    "\u00a0",
    "\ufeff",
    "1",
    "select 1",
  ];
  let seed = 7;
  const rnd = () => (seed = (seed * 1103515245 + 12345) >>> 0) >>> 8;
  let prepared = 0;
  for (let k = 0; k < 20_000; k++) {
    let s = "";
    for (let i = 0, n = 1 + (rnd() % 8); i < n; i++) s += alpha[rnd() % alpha.length];
    const p = skipBlank(s, 0);
    if (p >= s.length) continue;
    try {
      const st = db.prepare(s.slice(p));
      assert.ok(st.sourceSQL.length > 0);
      prepared++;
    } catch {
      // A syntax error is fine; a crash would end the test process.
    }
  }
  assert.ok(prepared > 0);
  db.close();
});

Deno.test("sql_text: leading keyword and statement starts", () => {
  assert.equal(leadingKeyword("  /* x */ explain query plan select 1"), "EXPLAIN");
  assert.equal(leadingKeyword(";;\n-- c\nSELECT"), "SELECT");
  assert.equal(leadingKeyword('"explain"'), "");
  assert.equal(leadingKeyword(""), "");
  const sql = "select ';'; select \"a;b\" -- ;\n; /* ; */ select [x;y]; `q;`";
  assert.deepEqual(statementStarts(sql).map((i) => sql.slice(i, i + 6)), [
    "select",
    "select",
    "select",
    "`q;`",
  ]);
});

Deno.test("sql_text: exec's ' in <sql> at offset N' suffix is removed", () => {
  assert.equal(
    cleanSqliteMessage('near "blah": syntax error in insert blah blah at offset 7'),
    'near "blah": syntax error',
  );
  assert.equal(cleanSqliteMessage("no such table: x"), "no such table: x");
});
