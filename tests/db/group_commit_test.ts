/**
 * Group commit (SqliteEngine.applyBatch): whatever the batch boundaries, the
 * outcomes and the database state must be exactly those of applying every
 * command on its own (SqliteEngine.apply), or replicas would diverge.
 */

import assert from "node:assert/strict";
import { DbClient } from "../../lib/db/client.ts";
import { type Command, encodeCommand } from "../../lib/db/command.ts";
import { GROUP_COMMIT_MAX, SqliteEngine } from "../../lib/db/engine.ts";
import type { CommandOutcome } from "../../lib/db/result.ts";
import { cmd, type StmtSpec, tempDir } from "./helpers.ts";

type Item = Command | string;

/** Deterministic PRNG (mulberry32). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function json(v: unknown): string {
  return JSON.stringify(v, (_k, x) => {
    if (typeof x === "bigint") return `${x}n`;
    if (x instanceof Uint8Array) return `blob:${Array.from(x).join(",")}`;
    return x;
  });
}

function exec(specs: StmtSpec[], extra: Partial<Command> = {}): Command {
  return cmd(specs, extra);
}

/** Execute one statement whose result rows are returned (RETURNING). */
function returning(sql: string, ...params: bigint[]): Command {
  const c = cmd([[sql, ...params]]);
  c.statements[0]!.forceQuery = true;
  return c;
}

const SCHEMA: Command[] = [
  exec([
    "CREATE TABLE t (id INTEGER PRIMARY KEY, u INTEGER UNIQUE, n TEXT NOT NULL, c INTEGER CHECK (c >= 0))",
  ]),
  exec(["CREATE TABLE a (id INTEGER PRIMARY KEY AUTOINCREMENT, v)"]),
  exec(["CREATE TABLE r (x INTEGER UNIQUE ON CONFLICT ROLLBACK, y)"]),
  exec(["CREATE TABLE w (k TEXT PRIMARY KEY, v) WITHOUT ROWID"]),
  exec(["CREATE TABLE log (x)"]),
  exec(["CREATE TABLE parent (id INTEGER PRIMARY KEY)"]),
  exec(["CREATE TABLE child (p INTEGER REFERENCES parent(id) DEFERRABLE INITIALLY DEFERRED)"]),
  exec([
    "CREATE TRIGGER t_raise BEFORE INSERT ON t BEGIN " +
    "SELECT RAISE(ROLLBACK, 'trigger rollback') WHERE new.n = 'rb'; " +
    "SELECT RAISE(ABORT, 'trigger abort') WHERE new.n = 'ab'; " +
    "SELECT RAISE(FAIL, 'trigger fail') WHERE new.n = 'fl'; " +
    "SELECT RAISE(IGNORE) WHERE new.n = 'ig'; END",
  ]),
  exec(["CREATE TRIGGER t_log AFTER INSERT ON t BEGIN INSERT INTO log VALUES (new.id); END"]),
];

const CONFLICT = ["", "OR IGNORE ", "OR REPLACE ", "OR FAIL ", "OR ROLLBACK ", "OR ABORT "];
const NAMES = ["x", "y", "z", "rb", "ab", "fl", "ig"];

/** A random command (or a string standing for one that did not decode). */
function randomItem(r: () => number): Item {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const int = (n: number) => BigInt(Math.floor(r() * n));
  const name =
    () => (r() < 0.06 ? "NULL" : `'${r() < 0.2 ? pick(NAMES) : pick(NAMES.slice(0, 3))}'`);
  const cval = () => (r() < 0.08 ? -1n : int(50));
  const row = () => `(${int(24)}, ${name()}, ${cval()})`;
  const x = r();
  if (x < 0.30) {
    const rows = Array.from({ length: 1 + Math.floor(r() * 3) }, row).join(", ");
    return exec([`INSERT ${pick(CONFLICT)}INTO t (u, n, c) VALUES ${rows}`]);
  }
  if (x < 0.36) return exec([["INSERT INTO t (u, n, c) VALUES (?, ?, ?)", int(24), "p", int(9)]]);
  if (x < 0.42) {
    return exec([
      `UPDATE ${pick(CONFLICT)}t SET u = u + ${int(3)}, c = c - ${int(5)} WHERE id % 3 = ${int(3)}`,
    ]);
  }
  if (x < 0.46) return exec([`DELETE FROM t WHERE u < ${int(8)}`]);
  if (x < 0.51) {
    return r() < 0.5
      ? exec([`INSERT INTO a (v) VALUES (${int(100)})`])
      : exec([`INSERT ${pick(CONFLICT)}INTO a (id, v) VALUES (${int(6)}, 'dup')`]);
  }
  if (x < 0.55) return exec([`INSERT INTO r (x, y) VALUES (${int(12)}, 'r')`]);
  if (x < 0.58) return exec([`REPLACE INTO w (k, v) VALUES ('k${int(5)}', ${int(9)})`]);
  if (x < 0.60) return exec([`INSERT INTO w (k, v) VALUES ('k${int(5)}', 1)`]);
  if (x < 0.63) {
    return returning(
      `INSERT ${pick(CONFLICT)}INTO t (u, n, c) VALUES (?, 'ret', 1) RETURNING id, u`,
      int(24),
    );
  }
  if (x < 0.65) return returning("DELETE FROM a WHERE id > ? RETURNING id, v", int(20));
  if (x < 0.70) {
    // DDL; the results of DDL report the counters carried over from earlier statements.
    const k = int(3);
    return exec([
      pick([
        `CREATE TABLE x${k} (id INTEGER PRIMARY KEY, v)`,
        `CREATE TABLE IF NOT EXISTS x${k} (id INTEGER PRIMARY KEY, v)`,
        `DROP TABLE x${k}`,
        `DROP TABLE IF EXISTS x${k}`,
        `ALTER TABLE x${k} ADD COLUMN c${int(1000)}`,
        `CREATE INDEX IF NOT EXISTS t_c${k} ON t(c)`,
        `INSERT INTO x${k} (v) VALUES (${int(9)})`,
      ]),
    ]);
  }
  if (x < 0.72) {
    return exec([
      "/* comment */ INSERT INTO log VALUES (1)",
      "  -- c\n  UPDATE log SET x = x + 1 WHERE x < 0",
      " ; ",
    ]);
  }
  if (x < 0.74) {
    // Several statements in one command: each one checked on its own.
    return exec([
      `INSERT ${pick(CONFLICT)}INTO t (u, n, c) VALUES ${row()}`,
      `INSERT INTO r (x) VALUES (${int(12)})`,
      "CREATE TABLE IF NOT EXISTS y (v)",
      `INSERT INTO log VALUES (${int(5)})`,
    ]);
  }
  if (x < 0.77) {
    return exec([
      pick([
        `INSERT INTO log VALUES (${int(9)}); INSERT INTO log VALUES (${int(9)})`,
        `INSERT INTO t (u, n, c) VALUES ${row()}; COMMIT`,
        "INSERT INTO log VALUES($a(')); COMMIT; SELECT 1 --')",
        `BEGIN; INSERT INTO t (u, n, c) VALUES ${row()}; ROLLBACK`,
        "SAVEPOINT s1; INSERT INTO log VALUES (7); RELEASE s1",
      ]),
    ]);
  }
  if (x < 0.80) {
    return exec([
      `INSERT INTO t (u, n, c) VALUES ${row()}`,
      `INSERT INTO a (v) VALUES (${int(9)})`,
      `UPDATE t SET c = c - ${int(40)}`,
    ], { transaction: true });
  }
  if (x < 0.86) {
    return exec([
      pick([
        "BEGIN",
        "BEGIN IMMEDIATE",
        "COMMIT",
        "ROLLBACK",
        "END",
        "SAVEPOINT sp",
        "RELEASE sp",
        "ROLLBACK TO sp",
      ]),
    ]);
  }
  if (x < 0.88) {
    return cmd(
      ["SELECT count(*), sum(c), max(id) FROM t", `INSERT INTO log VALUES (${int(9)})`],
      {},
      "request",
    );
  }
  if (x < 0.90) {
    return cmd(
      [
        `INSERT ${pick(CONFLICT)}INTO t (u, n, c) VALUES ${row()}`,
        "WITH q AS (SELECT 1) SELECT * FROM q",
      ],
      {},
      "request",
    );
  }
  if (x < 0.92) {
    return cmd(["SELECT count(*), total(c) FROM t", "SELECT count(*) FROM log"], {}, "query");
  }
  if (x < 0.93) return exec([pick(["PRAGMA foreign_keys=ON", "PRAGMA foreign_keys=OFF"])]);
  if (x < 0.95) {
    return exec([
      pick([
        `INSERT INTO parent (id) VALUES (${int(4)})`,
        `INSERT INTO child (p) VALUES (${int(8)})`,
        `DELETE FROM parent WHERE id = ${int(4)}`,
      ]),
    ]);
  }
  if (x < 0.96) {
    return exec([
      "WITH s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < 5) INSERT INTO log SELECT n FROM s",
    ]);
  }
  if (x < 0.97) return exec(["", "   ", "/* only a comment */"]);
  if (x < 0.98) return { kind: "noop", statements: [], transaction: false };
  if (x < 0.99) return "command decode: bad flags 0x80";
  return exec(["VACUUM"]);
}

/** The reference: every command on its own, as before group commit. */
function applyOneByOne(e: SqliteEngine, items: readonly Item[]): CommandOutcome[] {
  return items.map((it) => (typeof it === "string" ? { results: [], error: it } : e.apply(it)));
}

/** Counters and transaction state, read without changing them. */
function probe(e: SqliteEngine): string {
  const [o] = e.applyBatch([cmd(["SELECT last_insert_rowid(), changes()"], {}, "request")]);
  return json({ o, tx: e.inTransaction });
}

function newEngine(dir: string | undefined, name: string): SqliteEngine {
  return new SqliteEngine(dir === undefined ? {} : { path: `${dir}/${name}.db` });
}

/**
 * Runs a random sequence three ways: (a) in random batches through
 * applyBatch, comparing with the reference after every batch; (b) the
 * reference, one command at a time; (c) the whole sequence as one batch.
 */
function differential(seed: number, dir?: string): void {
  const r = rng(seed);
  const items: Item[] = [...SCHEMA];
  const n = 60 + Math.floor(r() * 120);
  for (let i = 0; i < n; i++) items.push(randomItem(r));
  const a = newEngine(dir, `a${seed}`);
  const b = newEngine(dir, `b${seed}`);
  const c = newEngine(dir, `c${seed}`);
  try {
    const outA: CommandOutcome[] = [];
    const outB: CommandOutcome[] = [];
    let at = 0;
    while (at < items.length) {
      const size = r() < 0.15 ? 1 : 1 + Math.floor(r() * 40);
      const batch = items.slice(at, at + size);
      outA.push(...a.applyBatch(batch));
      outB.push(...applyOneByOne(b, batch));
      at += batch.length;
      const where = `seed ${seed}, after entry ${at}`;
      assert.equal(json(outA), json(outB), `outcomes differ, ${where}`);
      assert.equal(a.stateHash(), b.stateHash(), `state differs, ${where}`);
      assert.equal(probe(a), probe(b), `counters differ, ${where}`);
    }
    const outC = c.applyBatch(items);
    assert.equal(json(outC), json(outB), `one batch: outcomes differ, seed ${seed}`);
    assert.equal(c.stateHash(), b.stateHash(), `one batch: state differs, seed ${seed}`);
    assert.equal(probe(c), probe(b), `one batch: counters differ, seed ${seed}`);
  } finally {
    a.close();
    b.close();
    c.close();
  }
}

Deno.test("group commit: random sequences, in-memory, batched = one by one", () => {
  for (let seed = 1; seed <= 300; seed++) differential(seed);
});

Deno.test("group commit: random sequences, WAL files, batched = one by one", () => {
  const dir = tempDir();
  try {
    for (let seed = 1001; seed <= 1030; seed++) differential(seed, dir);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

// ---------------------------------------------------------------------------
// Focused tests.

/** Applies `items` batched and one by one; asserts equality; returns the batched outcomes. */
function same(setup: readonly Item[], items: readonly Item[]): CommandOutcome[] {
  const a = new SqliteEngine();
  const b = new SqliteEngine();
  try {
    a.applyBatch(setup);
    applyOneByOne(b, setup);
    const outA = a.applyBatch(items);
    const outB = applyOneByOne(b, items);
    assert.equal(json(outA), json(outB));
    assert.equal(a.stateHash(), b.stateHash());
    assert.equal(probe(a), probe(b));
    assert.equal(a.inTransaction, false);
    return outA;
  } finally {
    a.close();
    b.close();
  }
}

/** Counts the BEGINs and COMMITs the engine issues itself. */
function spyTransactions(e: SqliteEngine): { begins: number; commits: number; rollbacks: number } {
  const counts = { begins: 0, commits: 0, rollbacks: 0 };
  // deno-lint-ignore no-explicit-any
  const w = (e as any).w as { internalExec(sql: string): void };
  const orig = w.internalExec.bind(w);
  w.internalExec = (sql: string) => {
    if (sql === "BEGIN") counts.begins++;
    if (sql === "COMMIT") counts.commits++;
    if (sql === "ROLLBACK") counts.rollbacks++;
    orig(sql);
  };
  return counts;
}

const ins = (v: number | string) => exec([`INSERT INTO log VALUES (${v})`]);

Deno.test("group commit: simple commands share one transaction; others end it", () => {
  const e = new SqliteEngine();
  try {
    e.applyBatch([exec(["CREATE TABLE log (x)"])]);
    const n = spyTransactions(e);
    e.applyBatch(Array.from({ length: 100 }, (_, i) => ins(i)));
    assert.deepEqual(n, { begins: 1, commits: 1, rollbacks: 0 });
    e.applyBatch([ins(1), cmd(["SELECT 1"], {}, "query"), ins(2), ins(3)]);
    assert.deepEqual(n, { begins: 3, commits: 3, rollbacks: 0 });
    // noops and undecodable entries do not end a group.
    e.applyBatch([ins(1), { kind: "noop", statements: [], transaction: false }, "bad", ins(2)]);
    assert.deepEqual(n, { begins: 4, commits: 4, rollbacks: 0 });
    // Never inside a client's transaction; grouping resumes after its COMMIT.
    e.applyBatch([exec(["BEGIN"]), ins(1), ins(2), exec(["COMMIT"]), ins(3), ins(4)]);
    assert.deepEqual(n, { begins: 5, commits: 5, rollbacks: 0 });
    e.applyBatch([exec(["BEGIN"]), ins(1)]);
    assert.equal(e.inTransaction, true);
    e.applyBatch([ins(2), ins(3)]);
    assert.deepEqual(n, { begins: 5, commits: 5, rollbacks: 0 });
    e.applyBatch([exec(["ROLLBACK"]), ins(5), ins(6)]);
    assert.deepEqual(n, { begins: 6, commits: 6, rollbacks: 0 });
    // Not with foreign keys on.
    e.applyBatch([exec(["PRAGMA foreign_keys=ON"]), ins(1), ins(2)]);
    assert.deepEqual(n, { begins: 6, commits: 6, rollbacks: 0 });
    e.applyBatch([exec(["PRAGMA foreign_keys=OFF"]), ins(1), ins(2)]);
    assert.deepEqual(n, { begins: 7, commits: 7, rollbacks: 0 });
    // Multi-statement strings and transaction commands run alone.
    e.applyBatch([
      ins(1),
      exec(["INSERT INTO log VALUES (1); INSERT INTO log VALUES (2)"]),
      ins(2),
    ]);
    assert.deepEqual(n, { begins: 9, commits: 9, rollbacks: 0 });
    e.applyBatch([ins(1), exec(["INSERT INTO log VALUES (1)"], { transaction: true }), ins(2)]);
    // The transaction command issues its own BEGIN/COMMIT.
    assert.deepEqual(n, { begins: 12, commits: 12, rollbacks: 0 });
    // A group holds GROUP_COMMIT_MAX commands at most.
    e.applyBatch(Array.from({ length: GROUP_COMMIT_MAX + 10 }, (_, i) => ins(i)));
    assert.deepEqual(n, { begins: 14, commits: 14, rollbacks: 0 });
  } finally {
    e.close();
  }
});

Deno.test("group commit: a multi-statement string SQLite splits differently than a lexer would is not grouped", () => {
  // `$a(')` is one TCL-style parameter token: the quote does not open a string.
  const out = same([exec(["CREATE TABLE log (x)"])], [
    ins(1),
    exec(["INSERT INTO log VALUES($a(')); COMMIT; SELECT 1 --')"]),
    ins(2),
  ]);
  assert.equal(out[1]!.results[0]!.error, "cannot commit - no transaction is active");
});

const RSETUP: Item[] = [
  exec(["CREATE TABLE log (x)"]),
  exec(["CREATE TABLE r (x INTEGER UNIQUE ON CONFLICT ROLLBACK)"]),
  exec(["CREATE TABLE u (x INTEGER UNIQUE)"]),
  exec(["CREATE TABLE big (x)"]),
  exec(["INSERT INTO r VALUES (1)"]),
  exec(["INSERT INTO u VALUES (1)"]),
  exec([
    "CREATE TRIGGER log_rb BEFORE INSERT ON log WHEN new.x = 'rb' BEGIN SELECT RAISE(ROLLBACK, 'no'); END",
  ]),
];

Deno.test("group commit: OR ROLLBACK undoes the group; it is redone one by one", () => {
  const out = same(RSETUP, [
    ins(10),
    ins(11),
    exec(["INSERT OR ROLLBACK INTO u VALUES (1)"]),
    ins(12),
    exec(["CREATE TABLE later (x)"]),
  ]);
  assert.equal(out[2]!.results[0]!.error, "UNIQUE constraint failed: u.x");
  assert.deepEqual(out[4]!.results[0], { lastInsertId: 3, rowsAffected: 1 });
});

Deno.test("group commit: ON CONFLICT ROLLBACK column and RAISE(ROLLBACK) trigger", () => {
  same(RSETUP, [ins(1), exec(["INSERT INTO r VALUES (1)"]), ins(2), ins("'rb'"), ins(3)]);
  same(RSETUP, [ins("'rb'"), ins(1)]);
  same(RSETUP, [exec(["INSERT INTO r VALUES (2)"]), exec(["INSERT INTO r VALUES (2)"])]);
});

Deno.test("group commit: a rollback in the middle of a command stops it before the rest runs", () => {
  // After the rolled-back statement, the command's next statement would
  // otherwise commit on its own before the group is redone.
  const out = same(RSETUP, [
    ins(1),
    exec(["INSERT INTO log VALUES (2)", "INSERT INTO r VALUES (1)", "INSERT INTO log VALUES (3)"]),
    ins(4),
  ]);
  assert.equal(out[1]!.results.length, 3);
  same(RSETUP, [
    ins(1),
    cmd(
      ["INSERT INTO log VALUES (2)", "INSERT INTO r VALUES (1)", "SELECT count(*) FROM log"],
      {},
      "request",
    ),
  ]);
});

Deno.test("group commit: the redo restores last_insert_rowid and changes (DDL and blanks report them)", () => {
  const setup: Item[] = [
    ...RSETUP,
    exec([
      "WITH s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < 5000) INSERT INTO big SELECT n FROM s",
    ]),
    exec(["INSERT INTO log (rowid, x) VALUES (-9223372036854775808, 0)"]),
    exec(["UPDATE big SET x = x + 1"]),
  ];
  const out = same(setup, [
    exec(["CREATE TABLE d1 (x)", " "]),
    exec(["INSERT INTO log VALUES (1)"]),
    exec(["INSERT INTO r VALUES (1)"]),
  ]);
  assert.deepEqual(out[0]!.results, [
    { lastInsertId: -9223372036854775808n, rowsAffected: 5000 },
    { lastInsertId: -9223372036854775808n, rowsAffected: 5000 },
  ]);
  // Counters of zero.
  same([exec(["CREATE TABLE log (x)"]), exec(["CREATE TABLE r (x UNIQUE ON CONFLICT ROLLBACK)"])], [
    exec(["CREATE TABLE d (x)"]),
    exec(["INSERT INTO r VALUES (1)"]),
    exec(["INSERT INTO r VALUES (1)"]),
  ]);
});

Deno.test("group commit: OR FAIL and RAISE(FAIL) keep partial changes; ABORT rolls back the statement alone", () => {
  const setup: Item[] = [
    exec(["CREATE TABLE a (id INTEGER PRIMARY KEY AUTOINCREMENT, u UNIQUE)"]),
    exec(["CREATE TABLE f (x)"]),
    exec([
      "CREATE TRIGGER f_fail BEFORE INSERT ON f WHEN new.x = 3 BEGIN SELECT RAISE(FAIL, 'three'); END",
    ]),
  ];
  const out = same(setup, [
    exec(["INSERT INTO a (u) VALUES (1)"]),
    exec(["INSERT OR FAIL INTO a (u) VALUES (2), (3), (1), (4)"]),
    exec(["INSERT INTO a (u) VALUES (5), (1)"]),
    exec(["INSERT INTO f VALUES (1), (2), (3), (4)"]),
    exec(["INSERT INTO a (u) VALUES (6)"]),
    exec(["UPDATE OR FAIL a SET u = u + 10 WHERE id < 4"]),
  ]);
  assert.equal(out[1]!.results[0]!.error, "UNIQUE constraint failed: a.u");
  assert.equal(out[3]!.results[0]!.error, "three");
});

Deno.test("group commit: a failing COMMIT redoes the group in autocommit", () => {
  const a = new SqliteEngine();
  const b = new SqliteEngine();
  try {
    const setup = [exec(["CREATE TABLE log (x)"]), ins(0)];
    a.applyBatch(setup);
    applyOneByOne(b, setup);
    // deno-lint-ignore no-explicit-any
    const w = (a as any).w as { internalExec(sql: string): void };
    const orig = w.internalExec.bind(w);
    let failed = 0;
    w.internalExec = (sql: string) => {
      if (sql === "COMMIT" && failed++ === 0) throw new Error("disk I/O error");
      orig(sql);
    };
    const items = [exec(["CREATE TABLE t2 (x)"]), ins(1), ins(2), exec(["CREATE TABLE t3 (x)"])];
    assert.equal(json(a.applyBatch(items)), json(applyOneByOne(b, items)));
    assert.equal(failed, 1); // one group, one COMMIT: failed, then redone in autocommit
    assert.equal(a.inTransaction, false);
    assert.equal(a.stateHash(), b.stateHash());
    assert.equal(probe(a), probe(b));
  } finally {
    a.close();
    b.close();
  }
});

Deno.test("group commit: a COMMIT that fails after committing (WAL hook) or rolling back", () => {
  const dir = tempDir();
  try {
    for (const mode of ["after commit", "rolled back", "left open"]) {
      const a = new SqliteEngine({ path: `${dir}/a-${mode}.db` });
      const b = new SqliteEngine({ path: `${dir}/b-${mode}.db` });
      try {
        const setup = [exec(["CREATE TABLE log (x)"]), ins(0)];
        a.applyBatch(setup);
        applyOneByOne(b, setup);
        // deno-lint-ignore no-explicit-any
        const w = (a as any).w as { internalExec(sql: string): void };
        const orig = w.internalExec.bind(w);
        let failed = 0;
        w.internalExec = (sql: string) => {
          if (sql === "COMMIT" && failed++ === 0) {
            if (mode === "after commit") orig(sql);
            if (mode === "rolled back") orig("ROLLBACK");
            throw new Error("disk I/O error");
          }
          orig(sql);
        };
        const items = [
          exec(["CREATE TABLE t2 (x)"]),
          ins(1),
          ins(2),
          exec(["UPDATE log SET x = x + 1"]),
        ];
        assert.equal(json(a.applyBatch(items)), json(applyOneByOne(b, items)), mode);
        assert.equal(failed, 1);
        assert.equal(a.inTransaction, false);
        assert.equal(a.stateHash(), b.stateHash(), mode);
        assert.equal(probe(a), probe(b), mode);
      } finally {
        a.close();
        b.close();
      }
    }
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("group commit: SQLITE_FULL inside a group", () => {
  for (const pages of [3, 4, 6, 10]) {
    const big = (i: number) => exec([`INSERT INTO log VALUES (${i}, zeroblob(1500))`]);
    same(
      [exec(["CREATE TABLE log (x, b)"]), exec([`PRAGMA max_page_count=${pages}`])],
      Array.from({ length: 20 }, (_, i) => big(i)),
    );
  }
});

Deno.test("group commit: deferred foreign keys (groups stop while enforcement is on)", () => {
  same([
    exec(["CREATE TABLE parent (id INTEGER PRIMARY KEY)"]),
    exec(["CREATE TABLE child (p INTEGER REFERENCES parent(id) DEFERRABLE INITIALLY DEFERRED)"]),
  ], [
    exec(["INSERT INTO child VALUES (1)"]),
    exec(["PRAGMA foreign_keys=ON"]),
    exec(["INSERT INTO child VALUES (2)"]),
    exec(["INSERT INTO parent VALUES (3)"]),
    exec(["INSERT INTO child VALUES (3)"]),
    exec(["PRAGMA defer_foreign_keys=ON"]),
    exec(["INSERT INTO child VALUES (4)"]),
    exec(["PRAGMA foreign_keys=OFF"]),
    exec(["INSERT INTO child VALUES (5)"]),
  ]);
  // A violation that a later command repairs: in autocommit the first fails
  // (its own commit checks it); in one transaction it would not.
  const out = same([
    exec(["CREATE TABLE parent (id INTEGER PRIMARY KEY)"]),
    exec(["CREATE TABLE child (p INTEGER REFERENCES parent(id) DEFERRABLE INITIALLY DEFERRED)"]),
    exec(["PRAGMA foreign_keys=ON"]),
  ], [
    exec(["INSERT INTO child VALUES (6)"]),
    exec(["INSERT INTO parent VALUES (6)"]),
  ]);
  assert.equal(out[0]!.results[0]!.error, "FOREIGN KEY constraint failed");
});

Deno.test("group commit: through the write worker; a read after the outcomes sees the whole batch", async () => {
  const dir = tempDir();
  const c = await DbClient.open({ path: `${dir}/db` });
  const ref = new SqliteEngine();
  try {
    const r = rng(7);
    const items: Item[] = [...SCHEMA];
    for (let i = 0; i < 400; i++) items.push(randomItem(r));
    const encoded = items.map((it) =>
      typeof it === "string" ? new Uint8Array([1, 0, 0x80]) : encodeCommand(it)
    );
    const got: CommandOutcome[] = [];
    for (let at = 0; at < encoded.length; at += 50) {
      got.push(...await c.applyCommands(encoded.slice(at, at + 50)));
    }
    const want = applyOneByOne(ref, items).map((o, i) =>
      typeof items[i] === "string" ? { results: [], error: "command decode: bad flags 0x80" } : o
    );
    assert.equal(json(got), json(want));
    assert.equal(await c.stateHash(), ref.stateHash());
    await c.applyCommands([exec(["COMMIT"])].map(encodeCommand)); // in case a client BEGIN is open
    ref.apply(exec(["COMMIT"]));
    const inserts = Array.from({ length: 1000 }, (_, i) => encodeCommand(ins(i)));
    await c.applyCommands([encodeCommand(exec(["DELETE FROM log"])), ...inserts]);
    const q = await c.query(cmd(["SELECT count(*) FROM log"], {}, "query"));
    assert.deepEqual((q[0] as { values: unknown[][] }).values, [[1000]]);
  } finally {
    await c.close();
    ref.close();
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("group commit: speed of 100k single-INSERT entries (printed, not asserted)", () => {
  const dir = tempDir();
  try {
    const entries = Array.from(
      { length: 100_000 },
      (_, i) => cmd([["INSERT INTO t (id, v) VALUES (?, ?)", BigInt(i + 1), `value ${i}`]]),
    );
    const run = (name: string, grouped: boolean) => {
      const e = new SqliteEngine({ path: `${dir}/${name}.db` });
      try {
        e.apply(exec(["CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"]));
        const t0 = performance.now();
        for (let at = 0; at < entries.length; at += 4096) {
          const batch = entries.slice(at, at + 4096);
          if (grouped) e.applyBatch(batch);
          else for (const c of batch) e.apply(c);
          e.maintain();
        }
        return performance.now() - t0;
      } finally {
        e.close();
      }
    };
    const one = run("one", false);
    const grouped = run("grouped", true);
    console.log(
      `  100,000 single-INSERT entries (WAL file, batches of 4096): one commit each ` +
        `${one.toFixed(0)} ms (${Math.round(1e8 / one)}/s), group commit ` +
        `${grouped.toFixed(0)} ms (${Math.round(1e8 / grouped)}/s)`,
    );
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
