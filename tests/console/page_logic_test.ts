/**
 * The console page's pure parts, run in Deno: splitting the editor's text
 * into statements, reading exact integers, showing NULL/BLOB cells, and the
 * query history's navigation.
 */

import assert from "node:assert/strict";
import { splitStatements } from "../../lib/console/assets/sql.js";
import {
  cellView,
  formatBytes,
  formatSeconds,
  hexOf,
  parseJson,
  plural,
} from "../../lib/console/assets/format.js";
import { HISTORY_MAX, QueryHistory } from "../../lib/console/assets/history.js";

Deno.test("statements split at top-level semicolons only", () => {
  assert.deepEqual(splitStatements("SELECT 1; SELECT 2;"), ["SELECT 1", "SELECT 2"]);
  assert.deepEqual(splitStatements("  SELECT 1  "), ["SELECT 1"]);
  assert.deepEqual(splitStatements(""), []);
  assert.deepEqual(splitStatements(" ; ;\n"), []);
  assert.deepEqual(
    splitStatements("INSERT INTO t VALUES('a;b', \"c;d\", `e;f`, [g;h]); SELECT 'it''s;'"),
    ["INSERT INTO t VALUES('a;b', \"c;d\", `e;f`, [g;h])", "SELECT 'it''s;'"],
  );
});

Deno.test("comments do not split and comment-only statements are dropped", () => {
  assert.deepEqual(
    splitStatements("-- first; not a split\nSELECT 1; /* a ; b */ SELECT 2; -- trailing"),
    ["-- first; not a split\nSELECT 1", "/* a ; b */ SELECT 2"],
  );
  assert.deepEqual(splitStatements("-- only a comment;\n/* and; another */"), []);
});

Deno.test("a CREATE TRIGGER body stays one statement (CASE ... END nests)", () => {
  const trigger = "CREATE TEMP TRIGGER tr AFTER INSERT ON t BEGIN\n" +
    "  UPDATE t SET n = CASE WHEN n > 1 THEN 1 ELSE 0 END;\n" +
    "  INSERT INTO log VALUES (new.id);\nEND";
  assert.deepEqual(splitStatements(`${trigger};\nSELECT 1;`), [trigger, "SELECT 1"]);
  assert.deepEqual(splitStatements("BEGIN; INSERT INTO t VALUES(1); END;"), [
    "BEGIN",
    "INSERT INTO t VALUES(1)",
    "END",
  ]);
});

Deno.test("unterminated strings and comments run to the end without hanging", () => {
  assert.deepEqual(splitStatements("SELECT 'abc; SELECT 2"), ["SELECT 'abc; SELECT 2"]);
  assert.deepEqual(splitStatements("SELECT 1 /* x; y"), ["SELECT 1 /* x; y"]);
  assert.deepEqual(splitStatements("SELECT [a; b"), ["SELECT [a; b"]);
});

Deno.test("integers beyond 2^53 stay exact; others parse as usual", () => {
  const v = parseJson(
    '{"values":[[9223372036854775807,-9007199254740993,1.5,2,"9007199254740993"]]}',
  );
  assert.deepEqual(v.values[0], [
    9223372036854775807n,
    -9007199254740993n,
    1.5,
    2,
    "9007199254740993",
  ]);
  assert.equal(parseJson("1e300"), 1e300);
});

Deno.test("cells: NULL, BLOB (size and hex), numbers, text are told apart", () => {
  assert.deepEqual(cellView(null), { kind: "null", text: "NULL", title: "NULL" });
  const blob = cellView([222, 173, 190, 239]);
  assert.equal(blob.kind, "blob");
  assert.equal(blob.text, "x'deadbeef'");
  assert.match(blob.title, /^BLOB, 4 B: x'deadbeef'$/);
  const long = cellView(Array.from({ length: 40 }, (_, i) => i));
  assert.equal(long.text, "x'000102030405060708090a0b0c0d0e0f…'");
  assert.equal(cellView(12).kind, "num");
  assert.equal(cellView(12n).text, "12");
  assert.equal(cellView("NULL").kind, "text", "the text NULL is not a NULL");
  assert.equal(cellView("").text, "");
  assert.equal(cellView(true).kind, "bool");
});

Deno.test("numbers for people", () => {
  assert.equal(hexOf([0, 15, 255], 2), "000f");
  assert.equal(formatBytes(512), "512 B");
  assert.equal(formatBytes(1536), "1.5 KiB");
  assert.equal(formatBytes(5 * 1024 * 1024), "5.0 MiB");
  assert.equal(formatSeconds(0.000235), "235 µs");
  assert.equal(formatSeconds(0.0124), "12.4 ms");
  assert.equal(formatSeconds(1.4249), "1.42 s");
  assert.equal(plural(1, "row"), "1 row");
  assert.equal(plural(1234, "row"), "1,234 rows");
});

class MemoryStorage {
  data = new Map<string, string>();
  getItem(k: string): string | null {
    return this.data.get(k) ?? null;
  }
  setItem(k: string, v: string): void {
    this.data.set(k, v);
  }
}

Deno.test("history: back and forward like a shell, the draft is kept", () => {
  const storage = new MemoryStorage();
  const h = new QueryHistory(storage);
  h.add("SELECT 1");
  h.add("SELECT 2");
  h.add("SELECT 2"); // not twice in a row
  h.add("   "); // blanks are not remembered
  assert.equal(h.back("draft text"), "SELECT 2");
  assert.equal(h.back("ignored"), "SELECT 1");
  assert.equal(h.back("ignored"), undefined, "nothing older");
  assert.equal(h.forward(), "SELECT 2");
  assert.equal(h.forward(), "draft text");
  assert.equal(h.forward(), undefined);
  // Survives a reload.
  const again = new QueryHistory(storage);
  assert.deepEqual(again.entries, ["SELECT 1", "SELECT 2"]);
});

Deno.test("history: bounded, and corrupt storage is ignored", () => {
  const storage = new MemoryStorage();
  const h = new QueryHistory(storage);
  for (let i = 0; i < HISTORY_MAX + 20; i++) h.add(`SELECT ${i}`);
  assert.equal(h.entries.length, HISTORY_MAX);
  assert.equal(h.entries[0], "SELECT 20");
  storage.data.set("raftlite.console.history", "{not json");
  assert.deepEqual(new QueryHistory(storage).entries, []);
});
