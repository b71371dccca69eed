import assert from "node:assert/strict";
import { formatResult, valueText } from "../../lib/shell/format.ts";
import { parseJsonExact } from "../../lib/shell/json.ts";
import { formatBytes, Progress } from "../../lib/shell/progress.ts";
import { displayWidth } from "../../lib/shell/text_width.ts";

const rs = {
  columns: ["id", "name", "score", "note"],
  types: ["integer", "text", "real", "text"],
  values: [
    [1, "fiona", 2.5, null],
    [20, "declan", 3, "a,b"],
  ],
};

Deno.test("column: rqlite's boxed table, numbers right-aligned, NULL shown", () => {
  assert.equal(
    formatResult(rs, "column"),
    [
      "+----+--------+-------+------+",
      "| id | name   | score | note |",
      "+----+--------+-------+------+",
      "|  1 | fiona  |   2.5 | NULL |",
      "| 20 | declan |   3.0 | a,b  |",
      "+----+--------+-------+------+",
      "",
    ].join("\n"),
  );
});

Deno.test("column: no rows prints the header box only; no columns prints nothing", () => {
  assert.equal(
    formatResult({ columns: ["a"], types: ["text"] }, "column"),
    "+---+\n| a |\n+---+\n",
  );
  assert.equal(formatResult({ columns: [] }, "column"), "");
});

Deno.test("column: widths count terminal columns (CJK, emoji, combining accents)", () => {
  const out = formatResult({
    columns: ["v"],
    values: [["中文"], ["e\u0301"], ["🙂x"], ["abcd"]],
  }, "column");
  const lines = out.trimEnd().split("\n");
  const widths = new Set(lines.map(displayWidth));
  assert.equal(widths.size, 1, out);
  assert.equal(lines[3], "| 中文 |");
  assert.equal(lines[4], "| e\u0301    |");
  assert.equal(lines[5], "| 🙂x  |");
});

Deno.test("column: multi-line cells span lines, control characters are made visible", () => {
  const out = formatResult({
    columns: ["sql", "n"],
    values: [["CREATE TABLE t (\n  a INT\n)", 1], ["x\ty\x01", 2]],
  }, "column");
  assert.equal(
    out,
    [
      "+------------------+---+",
      "| sql              | n |",
      "+------------------+---+",
      "| CREATE TABLE t ( | 1 |",
      "|   a INT          |   |",
      "| )                |   |",
      "| x    y\\x01       | 2 |",
      "+------------------+---+",
      "",
    ].join("\n"),
  );
});

Deno.test("csv: header, RFC 4180 quoting, NULL empty", () => {
  assert.equal(
    formatResult({
      columns: ["a", "b"],
      values: [[1, 'say "hi"'], [null, "x,y"], [2, "two\nlines"]],
    }, "csv"),
    'a,b\n1,"say ""hi"""\n,"x,y"\n2,"two\nlines"\n',
  );
});

Deno.test("json: one object per row, exact big integers, null", () => {
  const values = (parseJsonExact('{"v":[[9007199254740993,"x",null,[1,2]]]}') as {
    v: unknown[][];
  }).v;
  assert.equal(
    formatResult({ columns: ["big", "s", "n", "blob"], values }, "json"),
    '[{"big":9007199254740993,"s":"x","n":null,"blob":[1,2]}]\n',
  );
  assert.equal(formatResult({ columns: ["a"], values: [] }, "json"), "[]\n");
});

Deno.test("line: name = value, names right-aligned, blank line between rows", () => {
  assert.equal(
    formatResult(rs, "line"),
    [
      "   id = 1",
      " name = fiona",
      "score = 2.5",
      " note = NULL",
      "",
      "   id = 20",
      " name = declan",
      "score = 3.0",
      " note = a,b",
      "",
    ].join("\n"),
  );
});

Deno.test("values: big integers exact, REAL whole numbers as 1.0, booleans, arrays", () => {
  const parsed = parseJsonExact("[12345678901234567890, -9007199254740993, 1.5, 3]") as unknown[];
  assert.equal(parsed[0], 12345678901234567890n);
  assert.equal(parsed[1], -9007199254740993n);
  assert.equal(parsed[2], 1.5);
  assert.equal(parsed[3], 3);
  assert.equal(valueText(parsed[0]), "12345678901234567890");
  assert.equal(valueText(3, "REAL"), "3.0");
  assert.equal(valueText(3, "integer"), "3");
  assert.equal(valueText(true), "true");
  assert.equal(valueText([1, 2]), "[1,2]");
  assert.equal(valueText(null), null);
});

Deno.test("progress: bytes, total, rate; silent when the sink is off", () => {
  assert.equal(formatBytes(812), "812 B");
  assert.equal(formatBytes(12.3 * 1024), "12.3 KiB");
  assert.equal(formatBytes(4.56 * 1024 * 1024), "4.56 MiB");
  assert.equal(formatBytes(1.5 * 1024 ** 3), "1.50 GiB");
  let t = 0;
  const written: string[] = [];
  const p = new Progress(
    "backup",
    { enabled: true, write: (s) => written.push(s) },
    4 << 20,
    () => t,
  );
  t = 1000;
  p.add(2 << 20);
  assert.equal(p.line(), "backup: 2.00 MiB of 4.00 MiB (50%), 2.00 MiB/s");
  assert.equal(written[0], "\rbackup: 2.00 MiB of 4.00 MiB (50%), 2.00 MiB/s\x1b[K");
  t = 1050;
  p.add(1); // within the redraw interval: no redraw
  assert.equal(written.length, 1);
  t = 2000;
  p.finish(true);
  assert.equal(written.at(-1), "\rbackup: 2.00 MiB in 2.0 s (1.00 MiB/s)\x1b[K\n");
  const quiet: string[] = [];
  const q = new Progress("dump", { enabled: false, write: (s) => quiet.push(s) });
  q.add(10);
  q.finish(true);
  assert.deepEqual(quiet, []);
});
