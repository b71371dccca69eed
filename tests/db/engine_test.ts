import assert from "node:assert/strict";
import { SqliteEngine } from "../../lib/db/engine.ts";
import type { StatementResult } from "../../lib/db/result.ts";
import { body, cmd, type StmtSpec } from "./helpers.ts";

function withEngine(fn: (e: SqliteEngine) => void): () => void {
  return () => {
    const e = new SqliteEngine();
    try {
      fn(e);
    } finally {
      e.close();
    }
  };
}

const FOO = "CREATE TABLE foo (id INTEGER PRIMARY KEY, name TEXT)";

function exec(e: SqliteEngine, specs: StmtSpec[], transaction = false): string {
  return body(e.execute(cmd(specs, { transaction })));
}
function query(e: SqliteEngine, specs: StmtSpec[], opts = {}): string {
  return body(e.query(cmd(specs, {}, "query")), opts);
}

Deno.test(
  "execute: create, insert, rqlite's exact result objects",
  withEngine((e) => {
    assert.equal(
      exec(e, [FOO, ["INSERT INTO foo(name) VALUES(?)", "fiona"]]),
      '{"results":[{},{"last_insert_id":1,"rows_affected":1}]}',
    );
  }),
);

Deno.test(
  "execute: counters carry over from earlier statements (DROP TABLE after INSERT)",
  withEngine((e) => {
    exec(e, [FOO, "INSERT INTO foo(name) VALUES('fiona')"]);
    assert.equal(
      exec(e, ["CREATE TABLE bar (x)", "DROP TABLE foo"]),
      '{"results":[{"last_insert_id":1,"rows_affected":1},{"last_insert_id":1,"rows_affected":1}]}',
    );
  }),
);

Deno.test(
  "execute: UPDATE reports changes and keeps the last rowid",
  withEngine((e) => {
    exec(e, [FOO, "INSERT INTO foo(name) VALUES('a')", "INSERT INTO foo(name) VALUES('b')"]);
    assert.equal(
      exec(e, ["UPDATE foo SET name = 'c'"]),
      '{"results":[{"last_insert_id":2,"rows_affected":2}]}',
    );
  }),
);

Deno.test(
  "execute: per-statement SQLite errors do not stop the batch",
  withEngine((e) => {
    assert.equal(
      exec(e, [
        FOO,
        "INSERT INTO foo(id, name) VALUES(1, 'fiona')",
        "INSERT INTO foo(id, name) VALUES(1, 'fiona')",
        "INSERT INTO bar(x) VALUES(1)",
        "INSERT blah blah",
        "INSERT INTO foo(id, name) VALUES(2, 'declan')",
      ]),
      '{"results":[{},{"last_insert_id":1,"rows_affected":1},' +
        '{"error":"UNIQUE constraint failed: foo.id"},{"error":"no such table: bar"},' +
        '{"error":"near \\"blah\\": syntax error"},{"last_insert_id":2,"rows_affected":1}]}',
    );
  }),
);

Deno.test(
  "execute: transaction rolls back on the first error and stops",
  withEngine((e) => {
    exec(e, [FOO]);
    assert.equal(
      exec(e, [
        "INSERT INTO foo(id, name) VALUES(1, 'fiona')",
        "INSERT INTO foo(id, name) VALUES(2, 'declan')",
        "INSERT INTO foo(id, name) VALUES(1, 'again')",
        "INSERT INTO foo(id, name) VALUES(3, 'never')",
      ], true),
      '{"results":[{"last_insert_id":1,"rows_affected":1},{"last_insert_id":2,"rows_affected":1},' +
        '{"error":"UNIQUE constraint failed: foo.id"}]}',
    );
    assert.equal(query(e, ["SELECT COUNT(*) FROM foo"]).includes('"values":[[0]]'), true);
    assert.equal(e.inTransaction, false);
    // A successful transaction commits.
    exec(e, [
      "INSERT INTO foo(id, name) VALUES(1, 'a')",
      "INSERT INTO foo(id, name) VALUES(2, 'b')",
    ], true);
    assert.equal(query(e, ["SELECT COUNT(*) FROM foo"]).includes('"values":[[2]]'), true);
  }),
);

Deno.test(
  "execute: BEGIN while a transaction is open is a whole-command error",
  withEngine((e) => {
    exec(e, [FOO, "BEGIN"]);
    const out = e.apply(cmd(["INSERT INTO foo(name) VALUES('x')"], { transaction: true }));
    assert.deepEqual(out, {
      results: [],
      error: "cannot start a transaction within a transaction",
    });
    exec(e, ["ROLLBACK"]);
  }),
);

Deno.test(
  "execute: empty statements are skipped, blank ones report carried counters",
  withEngine((e) => {
    exec(e, [FOO, "INSERT INTO foo(name) VALUES('a')"]);
    assert.equal(
      exec(e, ["", "  ", "-- only a comment", ";"]),
      '{"results":[{"last_insert_id":1,"rows_affected":1},{"last_insert_id":1,"rows_affected":1},' +
        '{"last_insert_id":1,"rows_affected":1}]}',
    );
  }),
);

Deno.test(
  "execute: a multi-statement string runs every statement, reports the last",
  withEngine((e) => {
    assert.equal(
      exec(e, [
        `${FOO}; INSERT INTO foo(name) VALUES('a'); INSERT INTO foo(name) VALUES('b'); -- done\n`,
      ]),
      '{"results":[{"last_insert_id":2,"rows_affected":1}]}',
    );
    // An error part way stops the string; earlier statements stay applied.
    assert.equal(
      exec(e, [
        "INSERT INTO foo(name) VALUES('c'); INSERT INTO nope VALUES(1); INSERT INTO foo(name) VALUES('d')",
      ]),
      '{"results":[{"error":"no such table: nope"}]}',
    );
    assert.equal(
      query(e, ["SELECT name FROM foo"]),
      '{"results":[{"columns":["name"],"types":["text"],"values":[["a"],["b"],["c"]]}]}',
    );
  }),
);

Deno.test(
  "execute: a statement with a CREATE TRIGGER body (semicolons inside) runs whole",
  withEngine((e) => {
    exec(e, [
      FOO,
      "CREATE TABLE log(x); CREATE TRIGGER t AFTER INSERT ON foo BEGIN INSERT INTO log VALUES(new.id); INSERT INTO log VALUES(-new.id); END;",
      "INSERT INTO foo(name) VALUES('a')",
    ]);
    assert.equal(
      query(e, ["SELECT x FROM log ORDER BY x"]),
      '{"results":[{"columns":["x"],"types":["integer"],"values":[[-1],[1]]}]}',
    );
  }),
);

Deno.test(
  "execute: positional, numbered and named parameters (:, @, $)",
  withEngine((e) => {
    exec(e, ["CREATE TABLE p (id INTEGER PRIMARY KEY, name TEXT, age INTEGER)"]);
    assert.equal(
      exec(e, [
        ["INSERT INTO p(name, age) VALUES(?, ?)", "fiona", 20n],
        ["INSERT INTO p(name, age) VALUES(?2, ?1)", 30n, "declan"],
        ["INSERT INTO p(name, age) VALUES(:name, @age)", { name: "aoife", age: 40n }],
        ["INSERT INTO p(name, age) VALUES($name, ?)", { name: "mixed" }, 50n],
      ]),
      '{"results":[{"last_insert_id":1,"rows_affected":1},{"last_insert_id":2,"rows_affected":1},' +
        '{"last_insert_id":3,"rows_affected":1},{"last_insert_id":4,"rows_affected":1}]}',
    );
    assert.equal(
      query(e, [["SELECT name, age FROM p WHERE age >= :min ORDER BY id", { min: 30n }]]),
      '{"results":[{"columns":["name","age"],"types":["text","integer"],"values":[["declan",30],["aoife",40],["mixed",50]]}]}',
    );
    // Too many positional values: SQLite's message, as go-sqlite3 reports it.
    assert.equal(
      exec(e, [["SELECT ?", 1n, 2n]]),
      '{"results":[{"error":"column index out of range"}]}',
    );
    // Unknown named parameters are ignored and missing ones bind NULL (go-sqlite3).
    assert.equal(
      query(e, [["SELECT :a, :b", { a: 1n, zz: 2n }]]),
      '{"results":[{"columns":[":a",":b"],"types":["integer",""],"values":[[1,null]]}]}',
    );
  }),
);

Deno.test(
  "execute: double-quoted string literals are accepted (rqlite's own examples use them)",
  withEngine((e) => {
    exec(e, [FOO, 'INSERT INTO foo(name) VALUES("fiona")']);
    assert.equal(
      query(e, ["SELECT name FROM foo"]),
      '{"results":[{"columns":["name"],"types":["text"],"values":[["fiona"]]}]}',
    );
  }),
);

Deno.test("execute: foreign keys are OFF by default and ON by option", () => {
  const schema = [
    "CREATE TABLE parent (id INTEGER PRIMARY KEY)",
    "CREATE TABLE child (id INTEGER PRIMARY KEY, p INTEGER REFERENCES parent(id))",
  ];
  const off = new SqliteEngine();
  const on = new SqliteEngine({ foreignKeys: true });
  try {
    assert.equal(
      exec(off, [...schema, "INSERT INTO child VALUES(1, 99)"]),
      '{"results":[{},{},{"last_insert_id":1,"rows_affected":1}]}',
    );
    assert.equal(
      exec(on, [...schema, "INSERT INTO child VALUES(1, 99)"]),
      '{"results":[{},{},{"error":"FOREIGN KEY constraint failed"}]}',
    );
    assert.equal(
      query(off, ["PRAGMA foreign_keys"]),
      '{"results":[{"columns":["foreign_keys"],"types":["integer"],"values":[[0]]}]}',
    );
  } finally {
    off.close();
    on.close();
  }
});

Deno.test(
  "execute: RETURNING statements (forceQuery) return rows",
  withEngine((e) => {
    exec(e, [FOO, "INSERT INTO foo(name) VALUES('fiona')"]);
    const results = e.execute({
      kind: "execute",
      transaction: false,
      statements: [{
        sql: "INSERT INTO foo(name) VALUES('declan') RETURNING *",
        params: [],
        forceQuery: true,
      }],
    });
    assert.equal(
      body(results),
      '{"results":[{"columns":["id","name"],"types":["integer","text"],"values":[[2,"declan"]]}]}',
    );
  }),
);

Deno.test(
  "execute: timings add per-statement time",
  withEngine((e) => {
    const r = e.execute(cmd([FOO, "INSERT INTO foo(name) VALUES('a')"], { timings: true }));
    assert.equal(r.length, 2);
    for (const x of r) assert.ok(typeof x.timeSec === "number" && x.timeSec >= 0);
    assert.match(
      body(r),
      /^\{"results":\[\{"time":[0-9.e-]+\},\{"last_insert_id":1,"rows_affected":1,"time":[0-9.e-]+\}\]\}$/,
    );
  }),
);

Deno.test(
  "execute: rollbackOnError closes a transaction the SQL text opened (SQL load)",
  withEngine((e) => {
    exec(e, [FOO]);
    const dump =
      "BEGIN TRANSACTION; INSERT INTO foo VALUES(1,'a'); INSERT INTO foo VALUES(1,'dup'); COMMIT;";
    const r = e.execute(cmd([dump], { rollbackOnError: true }));
    assert.equal(body(r), '{"results":[{"error":"UNIQUE constraint failed: foo.id"}]}');
    assert.equal(e.inTransaction, false);
    assert.equal(query(e, ["SELECT COUNT(*) FROM foo"]).includes('"values":[[0]]'), true);
  }),
);

Deno.test(
  "query: rows, no-rows shape, errors, statement with no columns",
  withEngine((e) => {
    exec(e, [
      FOO,
      "INSERT INTO foo(name) VALUES('fiona')",
      "INSERT INTO foo(name) VALUES('declan')",
    ]);
    assert.equal(
      query(e, [
        "SELECT * FROM foo",
        "SELECT * FROM foo WHERE id > 5",
        "SELECT * FROM bar",
        "SELEC 1",
      ]),
      '{"results":[{"columns":["id","name"],"types":["integer","text"],"values":[[1,"fiona"],[2,"declan"]]},' +
        '{"columns":["id","name"],"types":["integer","text"]},{"error":"no such table: bar"},' +
        '{"error":"near \\"SELEC\\": syntax error"}]}',
    );
  }),
);

Deno.test(
  "query: writes are refused with rqlite's message and change nothing",
  withEngine((e) => {
    exec(e, [FOO]);
    const msg = '{"error":"attempt to change database via query operation"}';
    assert.equal(
      query(e, [
        "INSERT INTO foo(name) VALUES('x')",
        "CREATE TABLE t2 (x)",
        "DROP TABLE foo",
        "BEGIN",
        "PRAGMA foreign_keys=ON",
        "PRAGMA user_version=7",
        "VACUUM",
        "SELECT 1; DELETE FROM foo",
      ]),
      `{"results":[${Array(8).fill(msg).join(",")}]}`,
    );
    assert.equal(
      query(e, ["PRAGMA foreign_keys", "PRAGMA user_version", "SELECT name FROM sqlite_schema"]),
      '{"results":[{"columns":["foreign_keys"],"types":["integer"],"values":[[0]]},' +
        '{"columns":["user_version"],"types":["integer"],"values":[[0]]},' +
        '{"columns":["name"],"types":["text"],"values":[["foo"]]}]}',
    );
    // Read-only pragmas with arguments and EXPLAIN of a write are reads.
    const r = e.query(cmd(["PRAGMA table_info(foo)", "EXPLAIN INSERT INTO foo(name) VALUES('x')"]));
    assert.equal(r.every((x) => x.error === undefined), true);
    assert.equal(query(e, ["SELECT COUNT(*) FROM foo"]).includes('"values":[[0]]'), true);
    // The write connection is writable again afterwards.
    assert.equal(
      exec(e, ["INSERT INTO foo(name) VALUES('ok')"]),
      '{"results":[{"last_insert_id":1,"rows_affected":1}]}',
    );
  }),
);

Deno.test(
  "query: a multi-statement string returns the rows of the last statement",
  withEngine((e) => {
    assert.equal(
      query(e, ["SELECT 1; SELECT 2 AS two"]),
      '{"results":[{"columns":["two"],"types":["integer"],"values":[[2]]}]}',
    );
  }),
);

Deno.test(
  "query: qualify_columns prefixes table names",
  withEngine((e) => {
    exec(e, [FOO, "INSERT INTO foo(name) VALUES('a')"]);
    assert.equal(
      body(e.query(cmd(["SELECT id, name, 1 AS one FROM foo"], { qualifyColumns: true }))),
      '{"results":[{"columns":["foo.id","foo.name","one"],"types":["integer","text","integer"],"values":[[1,"a",1]]}]}',
    );
  }),
);

Deno.test(
  "query: db_timeout cuts a long read short with `query timeout`",
  withEngine((e) => {
    const slow =
      "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 5000000) SELECT x FROM c";
    const t0 = performance.now();
    const r = e.query(cmd([slow, "SELECT 1"], { dbTimeoutMs: 50 }));
    const ms = performance.now() - t0;
    assert.equal(
      body(r),
      '{"results":[{"columns":["x"],"types":[""],"error":"query timeout"},{"columns":["1"],"types":["integer"],"values":[[1]]}]}',
    );
    assert.ok(ms < 1000, `took ${ms} ms`);
    // Fast reads under a timeout are unaffected.
    assert.equal(
      body(e.query(cmd(["SELECT 2"], { dbTimeoutMs: 5000 }))),
      '{"results":[{"columns":["2"],"types":["integer"],"values":[[2]]}]}',
    );
  }),
);

Deno.test(
  "query: transaction reads in one snapshot and leaves no transaction open",
  withEngine((e) => {
    exec(e, [FOO]);
    const r = e.query(cmd(["SELECT COUNT(*) FROM foo", "SELECT 1"], { transaction: true }));
    assert.equal(r.length, 2);
    assert.equal(e.inTransaction, false);
  }),
);

Deno.test(
  "request: mixed reads and writes in order, with rqlite's shapes",
  withEngine((e) => {
    const r = e.request(cmd(
      [
        FOO,
        ["INSERT INTO foo(name) VALUES(?)", "fiona"],
        "SELECT * FROM foo",
        "INSERT blah blah",
        "SELECT COUNT(*) FROM foo",
        "EXPLAIN QUERY PLAN SELECT * FROM foo",
      ],
      {},
      "request",
    ));
    assert.equal(
      body(r.slice(0, 5)),
      '{"results":[{},{"last_insert_id":1,"rows_affected":1},' +
        '{"columns":["id","name"],"types":["integer","text"],"values":[[1,"fiona"]]},' +
        '{"error":"near \\"blah\\": syntax error"},' +
        '{"columns":["COUNT(*)"],"types":["integer"],"values":[[1]]}]}',
    );
    assert.ok("columns" in r[5]!);
  }),
);

Deno.test(
  "request: prepare errors continue even in a transaction; execution errors stop it",
  withEngine((e) => {
    e.execute(cmd([FOO]));
    const r = e.request(cmd(
      [
        "INSERT INTO foo(id, name) VALUES(1, 'a')",
        "INSERT blah blah",
        "INSERT INTO foo(id, name) VALUES(2, 'b')",
        "INSERT INTO foo(id, name) VALUES(1, 'dup')",
        "INSERT INTO foo(id, name) VALUES(3, 'never')",
      ],
      { transaction: true },
      "request",
    ));
    assert.equal(
      body(r),
      '{"results":[{"last_insert_id":1,"rows_affected":1},{"error":"near \\"blah\\": syntax error"},' +
        '{"last_insert_id":2,"rows_affected":1},{"error":"UNIQUE constraint failed: foo.id"}]}',
    );
    assert.equal(query(e, ["SELECT COUNT(*) FROM foo"]).includes('"values":[[0]]'), true);
  }),
);

Deno.test(
  "request: RETURNING (forceQuery) gives rows; reads see the batch's writes",
  withEngine((e) => {
    const r: StatementResult[] = e.request({
      kind: "request",
      transaction: true,
      statements: [
        { sql: FOO, params: [] },
        {
          sql: "INSERT INTO foo(name) VALUES('x') RETURNING id, name",
          params: [],
          forceQuery: true,
        },
        { sql: "SELECT name FROM foo", params: [] },
      ],
    });
    assert.equal(
      body(r),
      '{"results":[{},{"columns":["id","name"],"types":["integer","text"],"values":[[1,"x"]]},' +
        '{"columns":["name"],"types":["text"],"values":[["x"]]}]}',
    );
  }),
);

Deno.test(
  "disallowed pragmas are denied by the engine too (backstop)",
  withEngine((e) => {
    assert.equal(
      exec(e, [
        "PRAGMA journal_mode=DELETE",
        "PRAGMA synchronous=FULL",
        "PRAGMA wal_checkpoint(TRUNCATE)",
        "PRAGMA query_only=1",
      ]),
      '{"results":[{"error":"not authorized"},{"error":"not authorized"},{"error":"not authorized"},{"error":"not authorized"}]}',
    );
    assert.equal(
      query(e, ["PRAGMA journal_mode", "PRAGMA synchronous"]),
      '{"results":[{"columns":["journal_mode"],"types":["text"],"values":[["memory"]]},{"columns":["synchronous"],"types":["integer"],"values":[[2]]}]}',
    );
  }),
);

Deno.test(
  "apply: dispatches every kind and never throws",
  withEngine((e) => {
    assert.deepEqual(e.apply(cmd([FOO])), { results: [{ lastInsertId: 0, rowsAffected: 0 }] });
    assert.deepEqual(e.apply(cmd(["SELECT COUNT(*) FROM foo"], {}, "query")), {
      results: [{ columns: ["COUNT(*)"], types: ["integer"], values: [[0]] }],
    });
    assert.deepEqual(e.apply({ kind: "noop", statements: [], transaction: false }), {
      results: [],
    });
    assert.equal(
      e.apply({ kind: "load", statements: [], transaction: false }).error,
      "load command without data",
    );
    const bad = e.apply({
      kind: "load",
      statements: [],
      transaction: false,
      data: new Uint8Array(10),
    });
    assert.match(bad.error!, /^invalid SQLite data/);
    e.close();
    assert.equal(e.apply(cmd(["SELECT 1"])).error, "database is closed");
  }),
);

Deno.test(
  "execute: db_timeout never cuts a write short (replicas must not diverge)",
  withEngine((e) => {
    const fill = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 200000) ";
    const r = e.execute({
      kind: "execute",
      transaction: false,
      dbTimeoutMs: 1,
      statements: [
        { sql: "CREATE TABLE big (x INTEGER)", params: [] },
        { sql: `INSERT INTO big ${fill} SELECT x FROM c`, params: [] },
        {
          sql: `INSERT INTO big ${fill} SELECT x FROM c RETURNING x`,
          params: [],
          forceQuery: true,
        },
      ],
    });
    assert.equal(r[0]!.error, undefined);
    assert.equal(body([r[1]!]), '{"results":[{"last_insert_id":200000,"rows_affected":200000}]}');
    assert.equal(r[2]!.error, undefined);
    assert.equal((r[2] as { values: unknown[] }).values.length, 200000);
  }),
);

Deno.test("query: a cached SELECT * sees a column added since (same and other connection)", () => {
  const dir = Deno.makeTempDirSync();
  const w = new SqliteEngine({ path: `${dir}/db.sqlite` });
  const r = new SqliteEngine({ path: `${dir}/db.sqlite`, readOnly: true });
  try {
    exec(w, ["CREATE TABLE x(a)", "INSERT INTO x VALUES(1)"]);
    for (const e of [w, r]) assert.match(query(e, ["SELECT * FROM x"]), /"values":\[\[1\]\]/);
    exec(w, ["ALTER TABLE x ADD COLUMN b DEFAULT 7"]);
    // Cached statements, and one never prepared before (the schema changed on another connection).
    for (const sql of ["SELECT * FROM x", "SELECT * FROM x WHERE 1"]) {
      for (const e of [w, r]) {
        const out = query(e, [sql]);
        assert.match(out, /"columns":\["a","b"\]/, out);
        assert.match(out, /"values":\[\[1,7\]\]/, out);
      }
    }
  } finally {
    r.close();
    w.close();
    Deno.removeSync(dir, { recursive: true });
  }
});
