/**
 * File-based snapshots, restores and backups of lib/db (snapshot_file.ts,
 * sqlite_file.ts, dump.ts through DbClient): exact round trips of every
 * value type, consistency beside long reads, refusal of bad files with the
 * database untouched, rqlite's dump format byte for byte, and a bounded
 * heap for a large database.
 */

import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { DbClient } from "../../lib/db/client.ts";
import { DbError, RestoreError, SqliteEngine } from "../../lib/db/engine.ts";
import type { QueryResult, StatementResult } from "../../lib/db/result.ts";
import { copyLive, type LiveDatabase } from "../../lib/db/snapshot_file.ts";
import { runBounded } from "../util/run_bounded.ts";
import { cmd, type StmtSpec, tempDir } from "./helpers.ts";

const BIG = 9007199254740993n; // 2^53 + 1
const BLOB = Uint8Array.from({ length: 5000 }, (_, i) => (i * 37) & 0xff);

/** A table with every storage class, including the awkward values. */
const ALL_TYPES: StmtSpec[] = [
  "CREATE TABLE v (id INTEGER PRIMARY KEY, i INTEGER, r REAL, t TEXT, b BLOB, n)",
  "CREATE INDEX v_t ON v(t)",
  [
    "INSERT INTO v(i, r, t, b, n) VALUES(?, ?, ?, ?, ?)",
    BIG,
    1.5,
    "héllo wörld 🌍 ✓",
    BLOB,
    null,
  ],
  [
    "INSERT INTO v(i, r, t, b, n) VALUES(?, ?, ?, ?, ?)",
    -(2n ** 63n),
    1e300,
    "",
    new Uint8Array(0),
    7n,
  ],
  ["INSERT INTO v(i, r, t, b, n) VALUES(?, ?, ?, ?, ?)", 2n ** 63n - 1n, 0.1, "it's", null, "x"],
  "CREATE TABLE seq (id INTEGER PRIMARY KEY AUTOINCREMENT, x)",
  "INSERT INTO seq(x) VALUES(1), (2)",
];

function values(r: StatementResult[]): unknown[][] {
  const q = r[0] as QueryResult;
  assert.equal(q.error, undefined);
  return q.values ?? [];
}

function header(path: string): Uint8Array {
  using f = Deno.openSync(path, { read: true });
  const h = new Uint8Array(100);
  f.readSync(h);
  return h;
}

async function withClients(
  fn: (a: DbClient, b: DbClient, dir: string) => Promise<void>,
): Promise<void> {
  const dir = tempDir();
  const a = await DbClient.open({ path: `${dir}/a.sqlite` });
  const b = await DbClient.open();
  try {
    await fn(a, b, dir);
  } finally {
    await a.close();
    await b.close();
    Deno.removeSync(dir, { recursive: true });
  }
}

Deno.test("file snapshot: snapshotToFile -> restoreFromFile round trip of every value type", async () => {
  await withClients(async (a, b, dir) => {
    await a.execute(cmd(ALL_TYPES));
    await b.execute(cmd(["CREATE TABLE other (x)", "INSERT INTO other VALUES(1)"]));
    const snap = `${dir}/snap.sqlite`;
    const { sizeBytes } = await a.snapshotToFile(snap);
    assert.equal(sizeBytes, Deno.statSync(snap).size);
    const h = header(snap);
    assert.equal(new TextDecoder().decode(h.subarray(0, 15)), "SQLite format 3");
    assert.deepEqual([h[18], h[19]], [1, 1], "rollback-journal header");
    // Self-contained: opens on its own, with no -wal beside it.
    const raw = new DatabaseSync(snap, { readOnly: true });
    assert.deepEqual({ ...raw.prepare("SELECT count(*) AS n FROM v").get() }, { n: 3 });
    raw.close();

    for (const check of ["header", "quick_check"] as const) {
      await b.restoreFromFile(snap, { check });
      assert.equal(await b.stateHash(), await a.stateHash());
    }
    assert.ok(Deno.statSync(snap).isFile, "the source file stays where it is");
    const got = values(await b.query(cmd(["SELECT i, r, t, b, n FROM v ORDER BY id"])));
    assert.deepEqual(got[0], [BIG, 1.5, "héllo wörld 🌍 ✓", BLOB, null]);
    assert.deepEqual(got[1], [-(2n ** 63n), 1e300, "", new Uint8Array(0), 7]);
    // The restored database is writable, its schema intact, the other table gone.
    await b.execute(cmd(["INSERT INTO seq(x) VALUES(3)"]));
    assert.deepEqual(values(await b.query(cmd(["SELECT max(id) FROM seq"]))), [[3]]);
    assert.deepEqual(
      values(await b.query(cmd(["SELECT count(*) FROM sqlite_schema WHERE name = 'other'"]))),
      [[0]],
    );
  });
});

Deno.test("file snapshot: backupToFile formats (binary keeps the WAL header, delete, vacuum)", async () => {
  await withClients(async (a, b, dir) => {
    await a.execute(cmd(ALL_TYPES));
    const want = await a.stateHash();
    const cases = [
      ["binary", false, 2],
      ["delete", false, 1],
      ["binary", true, 1],
    ] as const;
    for (const [format, vacuum, journal] of cases) {
      const p = `${dir}/backup-${format}-${vacuum}.sqlite`;
      const { sizeBytes } = await a.backupToFile(p, { format, vacuum });
      assert.equal(sizeBytes, Deno.statSync(p).size);
      const h = header(p);
      assert.deepEqual([h[18], h[19]], [journal, journal], `${format} vacuum=${vacuum}`);
      // A WAL-header file restores too.
      await b.restoreFromFile(p, { check: "quick_check" });
      assert.equal(await b.stateHash(), want);
    }
    for (const format of ["sql", "delete"] as const) {
      await assert.rejects(
        a.backupToFile(`${dir}/x`, { format, vacuum: true }),
        (e) => e instanceof DbError && e.message === "invalid backup format",
      );
    }
  });
});

Deno.test("file snapshot: checkpoint() empties the WAL when no reader holds it", async () => {
  await withClients(async (a) => {
    await a.execute(cmd(["CREATE TABLE t (x)", "INSERT INTO t VALUES(1)"]));
    assert.ok(Deno.statSync(`${a.path}-wal`).size > 0);
    assert.equal(await a.checkpoint(), true);
    assert.equal(Deno.statSync(`${a.path}-wal`).size, 0);
    await a.execute(cmd(["BEGIN", "INSERT INTO t VALUES(2)"]));
    assert.equal(await a.checkpoint(), false, "not while a transaction is open");
  });
});

Deno.test("file snapshot: refused while an explicit transaction is open", async () => {
  await withClients(async (a, _b, dir) => {
    await a.execute(cmd(["CREATE TABLE t (x)", "BEGIN", "INSERT INTO t VALUES(1)"]));
    await assert.rejects(a.snapshotToFile(`${dir}/s`), (e) => e instanceof DbError);
    await assert.rejects(a.backupToFile(`${dir}/s`, { format: "binary" }), DbError);
    // The SQL dump only reads, so it works (and sees the open transaction's rows).
    await a.backupToFile(`${dir}/d.sql`, { format: "sql" });
    assert.match(Deno.readTextFileSync(`${dir}/d.sql`), /INSERT INTO "t" VALUES\(1\);/);
    await a.execute(cmd(["COMMIT"]));
    await a.snapshotToFile(`${dir}/s`);
  });
});

/** A live database over raw connections, for checking which copy path is taken. */
function rawLive(path: string): { live: LiveDatabase; w: DatabaseSync } {
  const w = new DatabaseSync(path);
  w.exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=OFF; PRAGMA busy_timeout=50");
  const live: LiveDatabase = {
    db: w,
    file: path,
    checkpoint: () => {
      const st = w.prepare("PRAGMA wal_checkpoint(TRUNCATE)");
      st.setReturnArrays(true);
      return st.get() as unknown as [number, number, number];
    },
  };
  return { live, w };
}

Deno.test("file snapshot: checkpoint + copy, or online backup when a reader holds an old snapshot", async () => {
  const dir = tempDir();
  const { live, w } = rawLive(`${dir}/db.sqlite`);
  const r = new DatabaseSync(`${dir}/db.sqlite`, { readOnly: true });
  try {
    w.exec("CREATE TABLE t (x); INSERT INTO t VALUES(1)");
    const count = (p: string) => {
      const d = new DatabaseSync(p, { readOnly: true });
      try {
        return d.prepare("SELECT count(*) AS n FROM t").get()?.n;
      } finally {
        d.close();
      }
    };
    assert.equal(await copyLive(live, `${dir}/c1`), "copy");
    assert.equal(count(`${dir}/c1`), 1);
    // A reader on the latest state: the WAL cannot be reset, but every frame is backfilled.
    r.exec("BEGIN");
    r.prepare("SELECT count(*) FROM t").get();
    w.exec("INSERT INTO t VALUES(2)");
    // Now the reader's snapshot is older than the last commit: backfill stops short.
    assert.equal(await copyLive(live, `${dir}/c2`), "backup");
    assert.equal(count(`${dir}/c2`), 2);
    r.exec("COMMIT");
    r.exec("BEGIN");
    r.prepare("SELECT count(*) FROM t").get();
    assert.equal(await copyLive(live, `${dir}/c3`), "copy");
    assert.equal(count(`${dir}/c3`), 2);
    r.exec("COMMIT");
  } finally {
    r.close();
    w.close();
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("file snapshot: consistent while a read worker holds a long read", async () => {
  await withClients(async (a, b, dir) => {
    await a.execute(cmd(["CREATE TABLE t (id INTEGER PRIMARY KEY, x)"]));
    await a.execute(cmd(["INSERT INTO t(x) VALUES(1)"]));
    const n = 4_000_000;
    let readDone = Infinity;
    const slow = a.query(cmd([
      `WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < ${n}) ` +
      `SELECT count(*) FROM c WHERE x > (SELECT count(*) FROM t)`,
    ])).then((r) => {
      readDone = performance.now();
      return r;
    });
    await new Promise((r) => setTimeout(r, 100));
    for (let i = 0; i < 50; i++) await a.execute(cmd([`INSERT INTO t(x) VALUES(${i})`]));
    const snap = `${dir}/snap.sqlite`;
    await a.snapshotToFile(snap);
    const snapDone = performance.now();
    const want = await a.stateHash();
    await b.restoreFromFile(snap, { check: "quick_check" });
    assert.equal(await b.stateHash(), want);
    assert.deepEqual(values(await b.query(cmd(["SELECT count(*) FROM t"]))), [[51]]);
    assert.deepEqual(values(await slow), [[n - 1]]);
    if (readDone < snapDone) {
      console.log("(the long read ended before the snapshot; still consistent)");
    }
  });
});

Deno.test("file snapshot: garbage, truncated and corrupt files are refused; the database is unchanged", async () => {
  await withClients(async (a, b, dir) => {
    await a.execute(cmd(ALL_TYPES));
    const snap = `${dir}/good.sqlite`;
    await a.snapshotToFile(snap);
    const good = Deno.readFileSync(snap);
    await b.execute(cmd(["CREATE TABLE keep (x)", "INSERT INTO keep VALUES('still here')"]));
    const hash = await b.stateHash();
    const junk = new Uint8Array(8192).fill(0x5a);
    junk.set(new TextEncoder().encode("SQLite format 3\0"));
    const corrupt = good.slice();
    for (let i = 4096 + 100; i < corrupt.length; i += 5) corrupt[i] = 0xff;
    const cases: [string, Uint8Array | undefined, "header" | "quick_check", RegExp][] = [
      ["missing", undefined, "header", /invalid SQLite data/],
      ["empty", new Uint8Array(0), "header", /too short/],
      ["garbage", new Uint8Array(8192).fill(7), "header", /bad header/],
      ["junk after magic", junk, "header", /invalid SQLite data/],
      ["half", good.subarray(0, good.length / 2), "header", /truncated/],
      ["odd size", good.subarray(0, 4096 + 1000), "header", /multiple of the page size/],
      ["corrupt pages", corrupt, "quick_check", /invalid SQLite data/],
    ];
    for (const [name, bytes, check, re] of cases) {
      const p = `${dir}/${name}.sqlite`;
      if (bytes !== undefined) Deno.writeFileSync(p, bytes);
      await assert.rejects(
        b.restoreFromFile(p, { check }),
        (e) => e instanceof RestoreError && re.test(e.message),
        name,
      );
      assert.equal(await b.stateHash(), hash, name);
      assert.deepEqual(values(await b.query(cmd(["SELECT x FROM keep"]))), [["still here"]]);
    }
    assert.deepEqual(
      [...Deno.readDirSync(dir)].filter((e) => e.name.includes("restore-tmp")),
      [],
      "no scratch file left",
    );
  });
});

Deno.test("file snapshot: rqlite's SQL dump, exact on a small example, loads back", async () => {
  await withClients(async (a, b, dir) => {
    await a.execute(cmd([
      "CREATE TABLE foo (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT, n INTEGER, r REAL, b BLOB)",
      [
        "INSERT INTO foo(name, n, r, b) VALUES(?, ?, ?, ?)",
        "fiona",
        2n ** 63n - 1n,
        1.5,
        Uint8Array.of(0, 255),
      ],
      ["INSERT INTO foo(name, n, r, b) VALUES(?, ?, ?, ?)", "it's 🌍", null, -0.25, null],
      'CREATE TABLE "we""ird" (x)',
      `INSERT INTO "we""ird" VALUES('a'), (0.1)`,
      // Named after sqlite_sequence: the dump must still load into an empty database.
      "CREATE TABLE users (id INTEGER PRIMARY KEY AUTOINCREMENT, x)",
      "INSERT INTO users(x) VALUES(X'CAFE')",
      "CREATE INDEX foo_name ON foo(name)",
      "CREATE VIEW v AS SELECT name FROM foo",
      'CREATE TRIGGER tr AFTER DELETE ON foo BEGIN DELETE FROM "we""ird"; END',
      "ANALYZE",
    ]));
    const p = `${dir}/dump.sql`;
    const { sizeBytes } = await a.backupToFile(p, { format: "sql" });
    const text = Deno.readTextFileSync(p);
    assert.equal(sizeBytes, new TextEncoder().encode(text).length);
    assert.equal(
      text,
      [
        "PRAGMA foreign_keys=OFF;",
        "BEGIN TRANSACTION;",
        "CREATE TABLE foo (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT, n INTEGER, r REAL, b BLOB);",
        `INSERT INTO "foo" VALUES(1,'fiona',9223372036854775807,1.5,X'00FF');`,
        `INSERT INTO "foo" VALUES(2,'it''s 🌍',NULL,-0.25,NULL);`,
        "CREATE TABLE users (id INTEGER PRIMARY KEY AUTOINCREMENT, x);",
        `INSERT INTO "users" VALUES(1,X'CAFE');`,
        'CREATE TABLE "we""ird" (x);',
        `INSERT INTO "we""ird" VALUES('a');`,
        `INSERT INTO "we""ird" VALUES(0.1);`,
        'DELETE FROM "sqlite_sequence";',
        `INSERT INTO "sqlite_sequence" VALUES('foo',2);`,
        `INSERT INTO "sqlite_sequence" VALUES('users',1);`,
        "CREATE INDEX foo_name ON foo(name);",
        "CREATE VIEW v AS SELECT name FROM foo;",
        'CREATE TRIGGER tr AFTER DELETE ON foo BEGIN DELETE FROM "we""ird"; END;',
        "COMMIT;",
        "",
      ].join("\n"),
    );
    // tables= limits tables and the indexes/triggers/views that belong to them.
    await a.backupToFile(p, { format: "sql", tables: ['we"ird'] });
    assert.equal(
      Deno.readTextFileSync(p),
      'PRAGMA foreign_keys=OFF;\nBEGIN TRANSACTION;\nCREATE TABLE "we""ird" (x);\n' +
        `INSERT INTO "we""ird" VALUES('a');\nINSERT INTO "we""ird" VALUES(0.1);\nCOMMIT;\n`,
    );
    // The full dump loads back into an empty database as one statement string.
    await a.backupToFile(p, { format: "sql" });
    const [r] = await b.execute(cmd([Deno.readTextFileSync(p)], { rollbackOnError: true }));
    assert.equal((r as { error?: string }).error, undefined);
    // ANALYZE's sqlite_stat1/sqlite_stat4 are not dumped (other sqlite_* tables are skipped).
    await a.execute(cmd(["DROP TABLE sqlite_stat1", "DROP TABLE sqlite_stat4"]));
    assert.equal(await b.stateHash(), await a.stateHash());
  });
});

Deno.test("file snapshot: a ~200 MB database is snapshotted and restored with a bounded heap", async () => {
  // In a child process: RSS is per process, and --parallel runs other test
  // files in this one, so their allocations would be counted here.
  const dir = tempDir();
  try {
    const child = new URL("./big_snapshot_child.ts", import.meta.url).pathname;
    const out = await runBounded(Deno.execPath(), ["run", "-A", child, dir], {
      timeoutMs: 120_000,
    });
    assert.equal(out.code, 0, `child failed: ${out.stderr}`);
    const r = JSON.parse(out.stdout.trim().split("\n").at(-1)!) as {
      sizeBytes: number;
      snapshotMs: number;
      restoreMs: number;
      heapGrowthBytes: number;
      rssGrowthBytes: number;
      restored: unknown[][];
    };
    const mib = (n: number) => (n / (1 << 20)).toFixed(1);
    console.log(
      `snapshot ${mib(r.sizeBytes)} MiB in ${r.snapshotMs.toFixed(0)} ms, restore in ${
        r.restoreMs.toFixed(0)
      } ms; main heap+external grew ${mib(r.heapGrowthBytes)} MiB, rss ${
        mib(r.rssGrowthBytes)
      } MiB`,
    );
    assert.ok(r.sizeBytes > 200e6);
    assert.ok(r.heapGrowthBytes < 8 << 20, "main heap stays flat");
    assert.ok(r.rssGrowthBytes < 64 << 20, "process memory stays flat");
    assert.deepEqual(r.restored, [[200000, 200000000]]);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("file snapshot: a :memory: engine snapshots through the online backup", async () => {
  const dir = tempDir();
  const e = new SqliteEngine();
  const f = new SqliteEngine({ path: `${dir}/f.sqlite` });
  try {
    e.execute(cmd(ALL_TYPES));
    await e.snapshotToFile(`${dir}/m.sqlite`);
    f.restoreFromFile(`${dir}/m.sqlite`);
    assert.equal(f.stateHash(), e.stateHash());
    const g = new SqliteEngine();
    g.restoreFromFile(`${dir}/m.sqlite`);
    assert.equal(g.stateHash(), e.stateHash());
    g.close();
  } finally {
    e.close();
    f.close();
    Deno.removeSync(dir, { recursive: true });
  }
});
