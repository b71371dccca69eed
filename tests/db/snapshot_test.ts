import assert from "node:assert/strict";
import { SqliteEngine } from "../../lib/db/engine.ts";
import { RestoreError } from "../../lib/db/engine.ts";
import { body, cmd, tempDir } from "./helpers.ts";

const SETUP = [
  "CREATE TABLE foo (id INTEGER PRIMARY KEY, name TEXT, data BLOB)",
  "CREATE INDEX foo_name ON foo(name)",
  "INSERT INTO foo(name, data) VALUES('fiona', x'0102')",
  "INSERT INTO foo(name, data) VALUES('declan', NULL)",
];
const READ = "SELECT * FROM foo ORDER BY id";

function read(e: SqliteEngine, sql = READ): string {
  return body(e.query(cmd([sql], {}, "query")));
}

Deno.test("snapshot: serialize/restore round trip in memory", () => {
  const a = new SqliteEngine();
  const b = new SqliteEngine();
  try {
    a.execute(cmd(SETUP));
    b.execute(cmd(["CREATE TABLE other (x)", "INSERT INTO other VALUES(1)"]));
    const img = a.serialize();
    assert.equal(new TextDecoder().decode(img.subarray(0, 15)), "SQLite format 3");
    b.restore(img);
    assert.equal(read(b), read(a));
    assert.equal(
      read(b, "SELECT name FROM sqlite_schema WHERE name = 'other'"),
      '{"results":[{"columns":["name"],"types":["text"]}]}',
    );
    assert.equal(b.stateHash(), a.stateHash());
    // The restored database is writable and keeps the engine's settings.
    assert.equal(
      body(b.execute(cmd(["INSERT INTO foo(name) VALUES('x')"]))),
      '{"results":[{"last_insert_id":3,"rows_affected":1}]}',
    );
    assert.equal(
      read(b, "PRAGMA foreign_keys"),
      '{"results":[{"columns":["foreign_keys"],"types":["integer"],"values":[[0]]}]}',
    );
    assert.notEqual(b.stateHash(), a.stateHash());
  } finally {
    a.close();
    b.close();
  }
});

Deno.test("snapshot: garbage is refused and the old database stays intact", () => {
  const e = new SqliteEngine();
  try {
    e.execute(cmd(SETUP));
    const before = read(e);
    const hash = e.stateHash();
    const good = e.serialize();
    const corrupt = good.slice();
    for (let i = 200; i < corrupt.length; i += 7) corrupt[i] = 0xff;
    const headerOnly = new Uint8Array(4096);
    headerOnly.set(new TextEncoder().encode("SQLite format 3\0"));
    const cases: [Uint8Array, RegExp][] = [
      [new Uint8Array(0), /too short/],
      [new Uint8Array(4096).fill(7), /bad header/],
      [new TextEncoder().encode("SQLite format 2\0" + "x".repeat(600)), /bad header/],
      [headerOnly, /invalid SQLite data/],
      [corrupt, /invalid SQLite data/],
      [good.subarray(0, 512), /invalid SQLite data/],
    ];
    for (const [bytes, re] of cases) {
      assert.throws(
        () => e.restore(bytes),
        (err) => err instanceof RestoreError && re.test(err.message),
      );
      assert.equal(read(e), before);
    }
    assert.equal(e.stateHash(), hash);
    // A load through the log fails the same way, as a command error.
    const out = e.apply({ kind: "load", statements: [], transaction: false, data: corrupt });
    assert.match(out.error!, /^invalid SQLite data/);
    assert.equal(read(e), before);
  } finally {
    e.close();
  }
});

Deno.test("snapshot: file database — WAL, read connection, restore swaps the file", () => {
  const dir = tempDir();
  const path = `${dir}/db.sqlite`;
  const e = new SqliteEngine({ path });
  const mem = new SqliteEngine();
  try {
    assert.equal(
      read(e, "PRAGMA journal_mode"),
      '{"results":[{"columns":["journal_mode"],"types":["text"],"values":[["wal"]]}]}',
    );
    e.execute(cmd(SETUP));
    mem.execute(cmd(SETUP));
    // Reads (read-only connection) see committed writes at once.
    assert.equal(read(e), read(mem));
    assert.equal(e.stateHash(), mem.stateHash());
    // Writes through query are refused on the read connection too.
    assert.equal(
      read(e, "DELETE FROM foo"),
      '{"results":[{"error":"attempt to change database via query operation"}]}',
    );
    // The image of a WAL database deserializes into a memory engine.
    const img = e.serialize();
    assert.equal(img[18], 1);
    assert.equal(img[19], 1);
    const copy = new SqliteEngine();
    copy.restore(img);
    assert.equal(read(copy), read(e));
    copy.close();
    // Restore into the file engine: different content replaces the file.
    mem.execute(cmd(["INSERT INTO foo(name) VALUES('from memory')"]));
    e.restore(mem.serialize());
    assert.equal(read(e), read(mem));
    assert.equal(e.stateHash(), mem.stateHash());
    e.execute(cmd(["INSERT INTO foo(name) VALUES('after restore')"]));
    assert.equal(read(e, "PRAGMA journal_mode").includes('"wal"'), true);
    // Garbage leaves the file database intact.
    const before = read(e);
    assert.throws(() => e.restore(new Uint8Array(1024)), RestoreError);
    assert.equal(read(e), before);
    e.close();
    // Data survives reopening the file.
    const again = new SqliteEngine({ path });
    assert.equal(read(again), before);
    again.close();
  } finally {
    e.close();
    mem.close();
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("classify: side-effect-free read/write classification for /db/request routing", () => {
  const e = new SqliteEngine();
  try {
    e.execute(cmd(SETUP));
    const stmts = cmd([
      "SELECT * FROM foo",
      "EXPLAIN INSERT INTO foo(name) VALUES('x')",
      "INSERT INTO foo(name) VALUES('x')",
      "INSERT blah blah",
      "PRAGMA foreign_keys=ON",
      "EXPLAIN PRAGMA foreign_keys=ON",
      "PRAGMA table_info(foo)",
      "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x<3) SELECT * FROM c",
      "SELECT 1; SELECT 2",
      "SELECT 1; DELETE FROM foo",
      "BEGIN",
      "",
      "VACUUM",
    ]).statements;
    assert.deepEqual(e.classify(stmts), [
      true,
      true,
      false,
      false,
      false,
      false,
      true,
      true,
      true,
      false,
      false,
      true,
      false,
    ]);
    // Nothing took effect.
    assert.equal(
      read(e, "PRAGMA foreign_keys"),
      '{"results":[{"columns":["foreign_keys"],"types":["integer"],"values":[[0]]}]}',
    );
    assert.equal(
      read(e, "SELECT COUNT(*) FROM foo"),
      '{"results":[{"columns":["COUNT(*)"],"types":["integer"],"values":[[2]]}]}',
    );
    assert.equal(e.inTransaction, false);
  } finally {
    e.close();
  }
});
