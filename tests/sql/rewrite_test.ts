import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { analyze, julianDayText, processStatements, rewriteSql } from "../../lib/sql/rewrite.ts";
import type { RewriteOptions } from "../../lib/sql/rewrite.ts";
import { seededRandom } from "../../lib/sql/random.ts";
import type { RandomSource } from "../../lib/sql/random.ts";

/** 2023-11-14T22:13:20Z. */
const NOW_MS = 1_700_000_000_000;
const JD = "2460263.425926";

/** A random source returning fixed values, to make expected texts readable. */
function fixedRandom(ints: bigint[] = [42n], byte = 0xab): RandomSource {
  let i = 0;
  return {
    int64: () => ints[i++ % ints.length]!,
    bytes: (n) => new Uint8Array(n).fill(byte),
  };
}

function opts(extra: Partial<RewriteOptions> = {}): RewriteOptions {
  return { random: fixedRandom(), nowMs: () => NOW_MS, ...extra };
}

function rw(sql: string, extra: Partial<RewriteOptions> = {}): string {
  return rewriteSql(sql, opts(extra)).sql;
}

Deno.test("julian day text: unixMs/86400000 + 2440587.5 with 6 decimals", () => {
  assert.equal(julianDayText(NOW_MS), JD);
  assert.equal(julianDayText(0), "2440587.500000");
});

Deno.test("RANDOM() becomes an integer literal in SELECT, VALUES and nested calls", () => {
  assert.equal(rw("SELECT random()"), "SELECT 42");
  assert.equal(rw("SELECT RANDOM() + 1"), "SELECT 42 + 1");
  assert.equal(rw("INSERT INTO t VALUES(random(), Random())"), "INSERT INTO t VALUES(42, 42)");
  assert.equal(rw("SELECT abs(random()) % 10"), "SELECT abs(42) % 10");
  assert.equal(rw("UPDATE t SET x = random() WHERE id = 1"), "UPDATE t SET x = 42 WHERE id = 1");
  assert.equal(rw("SELECT random ( /* c */ )"), "SELECT 42");
  const r = rewriteSql("SELECT random()", opts());
  assert.equal(r.rewritten, true);
});

Deno.test("RANDOM() uses the full signed 64-bit range and never fuses with neighbours", () => {
  const min = opts({ random: fixedRandom([-9223372036854775808n]) });
  assert.equal(rw("SELECT random()", min), "SELECT -9223372036854775808");
  // `5-random()` must not turn into a `--` comment.
  assert.equal(rw("SELECT 5-random()", min), "SELECT 5- -9223372036854775808");
  assert.equal(rw("SELECT -random()", min), "SELECT - -9223372036854775808");
  // Nor run into the next word.
  assert.equal(rw("SELECT random()AS x"), "SELECT 42 AS x");
  assert.equal(rw("SELECT randomblob(2)AS x"), "SELECT x'ABAB' AS x");
});

Deno.test("RANDOM() with arguments or as a non-call is left alone", () => {
  for (
    const sql of [
      "SELECT random(1)",
      "SELECT random",
      "SELECT t.random()",
      "INSERT INTO random(a) VALUES (1)",
      "SELECT * FROM random()",
      'SELECT "random"()',
    ]
  ) {
    assert.equal(rw(sql), sql, sql);
  }
});

Deno.test("RANDOMBLOB(N) becomes a blob literal of N bytes, uppercase hex", () => {
  assert.equal(rw("SELECT randomblob(4)"), "SELECT x'ABABABAB'");
  assert.equal(rw("SELECT RANDOMBLOB( 2 )"), "SELECT x'ABAB'");
  assert.equal(rw("SELECT randomblob(0)"), "SELECT x'AB'"); // min 1, as SQLite
  assert.equal(rw("SELECT hex(randomblob(1))"), "SELECT hex(x'AB')");
  const seeded = rw("SELECT randomblob(4)", { random: seededRandom(7n) });
  assert.match(seeded, /^SELECT x'[0-9A-F]{8}'$/);
  // Not an integer literal: left alone.
  for (
    const sql of [
      "SELECT randomblob(n)",
      "SELECT randomblob(-1)",
      "SELECT randomblob(1.5)",
      "SELECT randomblob(0x10)",
      "SELECT randomblob(?)",
      "SELECT randomblob()",
      "SELECT randomblob(1, 2)",
    ]
  ) {
    assert.equal(rw(sql), sql, sql);
  }
});

Deno.test("RANDOMBLOB above the bound is a rewrite error, not a silent non-determinism", () => {
  assert.throws(
    () => rewriteSql("SELECT randomblob(2000000)", opts()),
    /^RewriteError: SQL rewrite: randomblob\(2000000\)/,
  );
  assert.equal(
    rw("SELECT randomblob(16)", { maxRandomBlobBytes: 16 }),
    `SELECT x'${"AB".repeat(16)}'`,
  );
  const p = processStatements(
    [{ sql: "SELECT randomblob(99)", params: [] }],
    opts({ maxRandomBlobBytes: 8 }),
  );
  assert.equal(p.ok, false);
  assert.match(p.ok ? "" : p.error, /^SQL rewrite: /);
});

Deno.test("ORDER BY terms are not rewritten; everything around them is", () => {
  assert.equal(rw("SELECT * FROM t ORDER BY RANDOM()"), "SELECT * FROM t ORDER BY RANDOM()");
  assert.equal(
    rw("SELECT * FROM t ORDER BY abs(random()), a DESC LIMIT 1"),
    "SELECT * FROM t ORDER BY abs(random()), a DESC LIMIT 1",
  );
  assert.equal(
    rw("SELECT random() FROM t ORDER BY random() LIMIT random()"),
    "SELECT 42 FROM t ORDER BY random() LIMIT 42",
  );
  assert.equal(
    rw("SELECT * FROM (SELECT a FROM t ORDER BY random()) WHERE b = random()"),
    "SELECT * FROM (SELECT a FROM t ORDER BY random()) WHERE b = 42",
  );
  assert.equal(
    rw("SELECT a FROM t UNION SELECT random() ORDER BY random(); SELECT random()"),
    "SELECT a FROM t UNION SELECT 42 ORDER BY random(); SELECT 42",
  );
  assert.equal(
    rw(
      "SELECT row_number() OVER (ORDER BY random()), group_concat(a ORDER BY random()), random() FROM t",
    ),
    "SELECT row_number() OVER (ORDER BY random()), group_concat(a ORDER BY random()), 42 FROM t",
  );
  // A subquery inside an ORDER BY term is part of the term.
  assert.equal(
    rw("SELECT a FROM t ORDER BY (SELECT random() LIMIT 1), b"),
    "SELECT a FROM t ORDER BY (SELECT random() LIMIT 1), b",
  );
  assert.equal(
    rw("SELECT datetime('now') ORDER BY datetime('now')"),
    `SELECT datetime(${JD}) ORDER BY datetime('now')`,
  );
  // "order" as a quoted identifier is not the keyword.
  assert.equal(rw('SELECT "order" BY, random()'), 'SELECT "order" BY, 42');
});

Deno.test("nothing inside strings, quoted identifiers or comments is rewritten; comments kept", () => {
  const sql =
    "SELECT 'random()', \"random()\", [random()], `random()` -- random()\n/* random() date('now') */";
  assert.equal(rw(sql), sql);
  assert.equal(
    rw("SELECT /* keep */ random() -- and this\n, 'x'"),
    "SELECT /* keep */ 42 -- and this\n, 'x'",
  );
  assert.equal(rw("SELECT 'it''s', random(),\n\t'a'"), "SELECT 'it''s', 42,\n\t'a'");
});

Deno.test("'now' in date/time functions becomes the Julian day", () => {
  assert.equal(rw("SELECT datetime('now')"), `SELECT datetime(${JD})`);
  assert.equal(
    rw("SELECT date('now'), time('now'), julianday('now'), unixepoch('now')"),
    `SELECT date(${JD}), time(${JD}), julianday(${JD}), unixepoch(${JD})`,
  );
  assert.equal(rw("SELECT strftime('%s','now')"), `SELECT strftime('%s',${JD})`);
  assert.equal(rw("SELECT date(now)"), `SELECT date(${JD})`);
  assert.equal(rw("SELECT julianday('NOW')"), `SELECT julianday(${JD})`);
  assert.equal(rw("SELECT DateTime( 'Now' , '+1 day')"), `SELECT DateTime( ${JD} , '+1 day')`);
  assert.equal(rw("SELECT timediff('now','now')"), `SELECT timediff(${JD},${JD})`);
  assert.equal(rw('SELECT date("now")'), `SELECT date(${JD})`);
  assert.equal(
    rw("INSERT INTO t VALUES (datetime('now'), random())"),
    `INSERT INTO t VALUES (datetime(${JD}), 42)`,
  );
});

Deno.test("'now' in other positions or other forms is left alone", () => {
  for (
    const sql of [
      "SELECT strftime('now', 'x')", // first arg of strftime is the format
      "SELECT date('2020-01-01', 'now')", // second arg of date
      "SELECT date('now' || '')",
      "SELECT date(('now'))",
      "SELECT date('now ')",
      "SELECT upper('now')",
      "SELECT date()", // zero-argument form: not rewritten (as rqlite)
      "SELECT CURRENT_TIMESTAMP",
      "SELECT 'now'",
    ]
  ) {
    assert.equal(rw(sql), sql, sql);
  }
});

Deno.test("one clock reading per statement, only when needed", () => {
  let reads = 0;
  const clock = { random: fixedRandom(), nowMs: () => (reads++, NOW_MS + reads * 1000) };
  const r = rewriteSql("SELECT datetime('now'), date('now'); SELECT time('now')", clock);
  assert.equal(reads, 1);
  const jd = julianDayText(NOW_MS + 1000);
  assert.equal(r.sql, `SELECT datetime(${jd}), date(${jd}); SELECT time(${jd})`);
  rewriteSql("SELECT random()", clock);
  assert.equal(reads, 1);
});

Deno.test("norwrandom / norwtime / noparse", () => {
  const sql = "INSERT INTO t VALUES (random(), randomblob(2), datetime('now')) RETURNING *";
  assert.equal(
    rw(sql, { norwrandom: true }),
    `INSERT INTO t VALUES (random(), randomblob(2), datetime(${JD})) RETURNING *`,
  );
  assert.equal(
    rw(sql, { norwtime: true }),
    "INSERT INTO t VALUES (42, x'ABAB', datetime('now')) RETURNING *",
  );
  const both = rewriteSql(sql, opts({ norwrandom: true, norwtime: true }));
  assert.equal(both.sql, sql);
  assert.equal(both.forceQuery, true); // detection still on
  const none = rewriteSql(sql, opts({ noparse: true }));
  assert.deepEqual(none, { sql, rewritten: false, forceQuery: false, explain: false });
});

Deno.test("RETURNING: top-level keyword of a DML statement", () => {
  const fq = (sql: string) => rewriteSql(sql, opts()).forceQuery;
  assert.equal(fq("INSERT INTO foo(name) VALUES('fiona') RETURNING *"), true);
  assert.equal(fq("insert into foo(name) values('x') returning id, name"), true);
  assert.equal(fq("UPDATE foo SET a = 1 RETURNING\n*"), true);
  assert.equal(fq("DELETE FROM foo RETURNING id"), true);
  assert.equal(fq("REPLACE INTO foo VALUES (1) RETURNING *"), true);
  assert.equal(fq("WITH x AS (SELECT 1) INSERT INTO foo SELECT * FROM x RETURNING *"), true);
  assert.equal(fq("CREATE TABLE t (a); INSERT INTO t VALUES (1) RETURNING a"), true);
  assert.equal(fq("INSERT INTO foo VALUES ('returning ')"), false);
  assert.equal(fq('INSERT INTO foo ("returning") VALUES (1)'), false);
  assert.equal(fq("INSERT INTO foo VALUES (1) -- RETURNING *"), false);
  assert.equal(fq("SELECT returning FROM t"), false);
  assert.equal(fq("INSERT INTO foo VALUES (1)"), false);
});

Deno.test("EXPLAIN: first keyword only", () => {
  const ex = (sql: string) => rewriteSql(sql, opts()).explain;
  assert.equal(ex("EXPLAIN SELECT 1"), true);
  assert.equal(ex("  explain query plan SELECT * FROM t"), true);
  assert.equal(ex("/* c */ EXPLAIN\nSELECT 1"), true);
  assert.equal(ex("SELECT 'explain '"), false);
  assert.equal(ex("SELECT 1; EXPLAIN SELECT 1"), false);
  const r = rewriteSql("EXPLAIN QUERY PLAN SELECT random()", opts());
  assert.equal(r.sql, "EXPLAIN QUERY PLAN SELECT 42");
});

Deno.test("table, CTE and index names that look like calls are not calls", () => {
  for (
    const sql of [
      "INSERT INTO date(now) VALUES (1)",
      "WITH date(now) AS (SELECT 1) SELECT * FROM date",
      "WITH a AS (SELECT 1), time(now) AS MATERIALIZED (SELECT 2) SELECT 1",
      "WITH RECURSIVE random() AS (SELECT 1) SELECT 1",
      "SELECT * FROM t JOIN date(now)",
      "REPLACE INTO time(now) VALUES (1)",
    ]
  ) {
    assert.equal(rw(sql), sql, sql);
  }
  // But an alias after a real call is fine.
  assert.equal(rw("SELECT date('now') AS d"), `SELECT date(${JD}) AS d`);
});

Deno.test("CREATE/ALTER bodies are not frozen by default; rewriteInCreate restores rqlite", () => {
  const ddl =
    "CREATE TABLE t (id INTEGER, r INTEGER DEFAULT (random()), ts TEXT DEFAULT (datetime('now')))";
  assert.equal(rw(ddl), ddl);
  assert.equal(
    rw(ddl, { rewriteInCreate: true }),
    `CREATE TABLE t (id INTEGER, r INTEGER DEFAULT (42), ts TEXT DEFAULT (datetime(${JD})))`,
  );
  const trigger =
    "CREATE TRIGGER tr AFTER INSERT ON t BEGIN INSERT INTO log VALUES (datetime('now'), CASE WHEN 1 THEN random() END); UPDATE x SET y = random(); END; INSERT INTO t VALUES (random())";
  assert.equal(
    rw(trigger),
    "CREATE TRIGGER tr AFTER INSERT ON t BEGIN INSERT INTO log VALUES (datetime('now'), CASE WHEN 1 THEN random() END); UPDATE x SET y = random(); END; INSERT INTO t VALUES (42)",
  );
  assert.equal(
    rw("ALTER TABLE t ADD COLUMN c DEFAULT (random())"),
    "ALTER TABLE t ADD COLUMN c DEFAULT (random())",
  );
  assert.equal(rw("CREATE VIEW v AS SELECT random()"), "CREATE VIEW v AS SELECT random()");
  assert.equal(
    rw("CREATE INDEX i ON t (a) WHERE a > random()"),
    "CREATE INDEX i ON t (a) WHERE a > random()",
  );
  // CREATE TABLE ... AS SELECT evaluates its SELECT once: rewritten like a query.
  assert.equal(
    rw("CREATE TEMP TABLE IF NOT EXISTS t AS SELECT random() AS r, datetime('now') AS d"),
    `CREATE TEMP TABLE IF NOT EXISTS t AS SELECT 42 AS r, datetime(${JD}) AS d`,
  );
  assert.equal(
    rw("CREATE TABLE t (a INTEGER GENERATED ALWAYS AS (random()))"),
    "CREATE TABLE t (a INTEGER GENERATED ALWAYS AS (random()))",
  );
});

Deno.test("texts SQLite cannot tokenize: rewritten up to the bad token, reported by analyze", () => {
  const r = rewriteSql("INSERT INTO t VALUES (random()); SELECT 'open", opts());
  assert.equal(r.sql, "INSERT INTO t VALUES (42); SELECT 'open");
  assert.equal(r.lexError, `unrecognized token: "'open"`);
  assert.deepEqual(analyze("SELECT 'open", opts()), {
    original: "SELECT 'open",
    error: `unrecognized token: "'open"`,
  });
});

Deno.test("analyze: /db/sql shape, no pre-filter, respects norwrandom/norwtime", () => {
  assert.deepEqual(analyze("SELECT 1", opts()), { original: "SELECT 1", rewritten: "SELECT 1" });
  assert.deepEqual(analyze("SELECT random(), datetime('now')", opts()), {
    original: "SELECT random(), datetime('now')",
    rewritten: `SELECT 42, datetime(${JD})`,
  });
  assert.deepEqual(analyze("SELECT random(), datetime('now')", opts({ norwrandom: true })), {
    original: "SELECT random(), datetime('now')",
    rewritten: `SELECT random(), datetime(${JD})`,
  });
  assert.deepEqual(analyze("SELECT random(), datetime('now')", opts({ norwtime: true })), {
    original: "SELECT random(), datetime('now')",
    rewritten: "SELECT 42, datetime('now')",
  });
  assert.deepEqual(
    analyze("SELECT randomblob(5000000)", opts()).error?.startsWith("SQL rewrite: "),
    true,
  );
});

Deno.test("processStatements: flags set, params kept, inputs untouched", () => {
  const input = [
    { sql: "INSERT INTO t VALUES (?, random()) RETURNING *", params: [{ value: 1n }] },
    { sql: "SELECT 1", params: [] },
    { sql: "EXPLAIN SELECT 1", params: [] },
  ];
  const copy = structuredClone(input);
  const r = processStatements(input, opts());
  assert.ok(r.ok);
  assert.deepEqual(r.statements, [
    { sql: "INSERT INTO t VALUES (?, 42) RETURNING *", params: [{ value: 1n }], forceQuery: true },
    { sql: "SELECT 1", params: [] },
    { sql: "EXPLAIN SELECT 1", params: [], explain: true },
  ]);
  assert.equal(r.statements[1], input[1]); // unchanged statements are passed through
  assert.deepEqual(input, copy);
  const raw = processStatements(input, opts({ noparse: true }));
  assert.ok(raw.ok);
  assert.deepEqual(raw.statements, input);
});

Deno.test("deterministic: same seed and clock give the same text; different seeds differ", () => {
  const sql = "INSERT INTO t VALUES (random(), randomblob(8), datetime('now'), random())";
  const a = rewriteSql(sql, { random: seededRandom(123n), nowMs: () => NOW_MS }).sql;
  const b = rewriteSql(sql, { random: seededRandom(123n), nowMs: () => NOW_MS }).sql;
  const c = rewriteSql(sql, { random: seededRandom(124n), nowMs: () => NOW_MS }).sql;
  assert.equal(a, b);
  assert.notEqual(a, c);
  assert.match(
    a,
    new RegExp(`^INSERT INTO t VALUES \\(-?\\d+, x'[0-9A-F]{16}', datetime\\(${JD}\\), -?\\d+\\)$`),
  );
});

Deno.test("rewritten SQL runs in SQLite with the intended values", () => {
  const db = new DatabaseSync(":memory:");
  try {
    const run = (sql: string, extra: Partial<RewriteOptions> = {}) => {
      const stmt = db.prepare(rw(sql, extra));
      stmt.setReadBigInts(true);
      return stmt.get() as Record<string, unknown>;
    };
    const min = { random: fixedRandom([-9223372036854775808n]) };
    assert.deepEqual({ ...run("SELECT 5-random() AS v", { random: fixedRandom([-3n]) }) }, {
      v: 8n,
    });
    assert.deepEqual({ ...run("SELECT random() AS v, typeof(random()) AS t", min) }, {
      v: -9223372036854775808n,
      t: "integer",
    });
    assert.deepEqual({ ...run("SELECT hex(randomblob(3)) AS h, typeof(randomblob(1)) AS t") }, {
      h: "ABABAB",
      t: "blob",
    });
    assert.deepEqual(
      { ...run("SELECT datetime('now') AS d, date(now) AS dd, strftime('%Y', 'now') AS y") },
      { d: "2023-11-14 22:13:20", dd: "2023-11-14", y: "2023" },
    );
    assert.deepEqual({ ...run("SELECT unixepoch('now') AS u") }, { u: 1_700_000_000n });
    assert.deepEqual({ ...run("SELECT random()AS v", { random: fixedRandom([7n]) }) }, { v: 7n });
  } finally {
    db.close();
  }
});

Deno.test("property: random SQL-ish text: unchanged when rewriting is off, idempotent when on", () => {
  const pieces = [
    "SELECT ",
    "random()",
    "randomblob(3)",
    "datetime('now')",
    "date(now)",
    " ORDER BY ",
    " LIMIT ",
    "(",
    ")",
    ",",
    ";",
    "'",
    '"',
    "[",
    "]",
    "`",
    "--",
    "/*",
    "*/",
    "\n",
    "-",
    " RETURNING ",
    "EXPLAIN ",
    "x'",
    "0x",
    "1",
    "$",
    "CREATE TABLE t AS ",
    "BEGIN ",
    "END",
    "\u0000",
    "\ufeff",
  ];
  const rng = seededRandom(99n);
  for (let n = 0; n < 2_000; n++) {
    let sql = "";
    const count = Number(BigInt.asUintN(5, rng.int64()));
    for (let k = 0; k < count; k++) {
      sql += pieces[Number(BigInt.asUintN(32, rng.int64()) % BigInt(pieces.length))];
    }
    const off = rewriteSql(sql, opts({ norwrandom: true, norwtime: true }));
    assert.equal(off.sql, sql);
    const on = rewriteSql(sql, opts());
    assert.equal(on.rewritten, on.sql !== sql);
    // Idempotent: what a rewrite leaves behind holds nothing more to rewrite.
    assert.equal(rewriteSql(on.sql, opts()).rewritten, false, JSON.stringify(sql));
    assert.equal(typeof analyze(sql, opts()).original, "string");
  }
});
