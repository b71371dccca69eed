/**
 * Restart equivalence (issue [2/8]): after a varied workload the database
 * seen through the API hashes the same before a graceful stop (SIGTERM),
 * after the restart, and after a crash (SIGKILL) and second restart. The
 * workload uses every column type, BLOBs, 64-bit integers, non-deterministic
 * functions (`random()`, `randomblob()`, `datetime('now')`, rewritten before
 * Raft so replay gives the same values), updates, deletes, a trigger, an
 * index, a view, a WITHOUT ROWID table and a rolled-back transaction.
 *
 * Not covered by the promise (and shown by the ignored test at the end):
 * `'now'` or `random()` evaluated inside a trigger body or a column DEFAULT
 * is not rewritten (rqlite does not either), so replaying the log at start
 * computes new values.
 */

import assert from "node:assert/strict";
import { respawnNode, spawnNode } from "../util/node.ts";
import {
  databaseHash,
  mustExecute,
  post,
  queryRows,
  raftStatus,
  startTracked,
  type Stmt,
  withNodes,
} from "./helpers.ts";

async function workload(url: string): Promise<void> {
  await mustExecute(url, [
    `CREATE TABLE typed(
       id INTEGER PRIMARY KEY, i INTEGER, r REAL, t TEXT, b BLOB, n NUMERIC, u,
       d DATETIME, f BOOLEAN, j JSON)`,
    "CREATE TABLE kv(k TEXT PRIMARY KEY, v, updated INTEGER) WITHOUT ROWID",
    "CREATE TABLE audit(seq INTEGER PRIMARY KEY AUTOINCREMENT, what TEXT, at TEXT)",
    "CREATE INDEX typed_i ON typed(i)",
    "CREATE VIEW big AS SELECT id, i FROM typed WHERE abs(i) > 1000000",
    `CREATE TRIGGER typed_del AFTER DELETE ON typed BEGIN
       INSERT INTO audit(what, at) VALUES('deleted ' || old.id, old.d);
     END`,
  ]);
  // 64-bit edges and exotic values as SQL literals (exact digits, no JSON number rounding).
  await mustExecute(url, [
    `INSERT INTO typed VALUES(1, 9223372036854775807, 1e300, 'max', X'00FF10', 12.50, 'u',
       '2024-02-29 23:59:59', 1, '{"a":[1,2,3]}')`,
    `INSERT INTO typed VALUES(2, -9223372036854775808, -0.0, '', X'', 1e2, 7,
       datetime('now'), 0, json_object('now', datetime('now')))`,
    `INSERT INTO typed VALUES(3, 9007199254740993, 0.1, 'ünïcødé ✓ 🦀 "q" ''s''
newline', zeroblob(5), '0012', 3.25, NULL, NULL, NULL)`,
    `INSERT INTO typed(id, i, r, b, u) VALUES(4, random(), random() / 3.0, randomblob(16),
       randomblob(3))`,
    "INSERT INTO typed(id, t, d) VALUES(5, strftime('%s','now'), julianday('now'))",
  ]);
  // Parameterised rows in batches (JSON numbers, strings, nulls).
  for (let batch = 0; batch < 10; batch++) {
    const stmts: Stmt[] = [];
    for (let k = 0; k < 20; k++) {
      const id = 100 + batch * 20 + k;
      stmts.push([
        "INSERT INTO typed(id, i, r, t, n, u, f) VALUES(?, ?, ?, ?, ?, ?, ?)",
        id,
        id * 1_000_003,
        id / 7,
        `row ${id}`,
        id % 3 === 0 ? null : String(id * 11),
        k % 2 === 0 ? id : `text ${id}`,
        k % 2,
      ]);
    }
    await mustExecute(url, stmts, batch % 2 === 0 ? "?transaction" : "");
  }
  for (let k = 0; k < 30; k++) {
    await mustExecute(url, [
      ["INSERT INTO kv(k, v, updated) VALUES(?, ?, ?)", `key${k}`, k * 1.5, k],
    ]);
  }
  // Updates, including non-deterministic ones, and deletes (fire the trigger).
  await mustExecute(url, [
    "UPDATE typed SET r = r * 2, t = t || '!' WHERE id % 3 = 0",
    "UPDATE typed SET u = random() WHERE id BETWEEN 120 AND 125",
    "UPDATE typed SET b = randomblob(8), d = datetime('now', '+1 day') WHERE id % 7 = 0",
    "UPDATE kv SET v = hex(randomblob(4)), updated = updated + 100 WHERE updated % 4 = 0",
    "DELETE FROM typed WHERE id % 5 = 0",
    "DELETE FROM kv WHERE k LIKE 'key1%'",
  ]);
  // The unified endpoint with a write and a read.
  const req = await post(url, "/db/request", [
    ["INSERT INTO kv(k, v, updated) VALUES(?, ?, ?)", "via-request", "x", 1],
    "SELECT count(*) FROM kv",
  ]);
  assert.equal(req.status, 200, req.text);
  // A transaction that fails half-way leaves nothing behind, before and after restart.
  const failed = await post(url, "/db/execute?transaction", [
    "INSERT INTO kv(k, v, updated) VALUES('rolled-back', 1, 1)",
    "INSERT INTO typed(id) VALUES(1)",
  ]);
  assert.equal(failed.status, 200);
  assert.ok(
    failed.json?.results?.some((r) => r.error !== undefined),
    `the duplicate id failed the transaction: ${failed.text}`,
  );
  // A non-transactional request whose second statement fails keeps the first.
  await post(url, "/db/execute", [
    "INSERT INTO kv(k, v, updated) VALUES('kept', 2, 2)",
    "INSERT INTO nowhere VALUES(1)",
  ]);
}

async function restartsKeepTheHash(flags: string[]): Promise<void> {
  await withNodes("restart", async (dir, track) => {
    const first = await startTracked(track, () => spawnNode(dir, flags));
    await workload(first.url);
    const before = await databaseHash(first.url);
    assert.deepEqual(
      await queryRows(first.url, "SELECT k FROM kv WHERE k IN ('rolled-back', 'kept')"),
      [["kept"]],
    );
    const audit = await queryRows(first.url, "SELECT count(*) FROM audit");
    assert.ok(Number(audit[0]?.[0]) > 10, "the trigger ran");

    // Graceful stop: SIGTERM, clean exit, then a restart.
    const term = await first.kill("SIGTERM");
    assert.equal(term.code, 0, `SIGTERM exit status; stderr:\n${first.stderr()}`);
    const second = await startTracked(track, () => respawnNode(first, flags));
    const afterTerm = await databaseHash(second.url);
    assert.equal(afterTerm.hash, before.hash, diff(before.text, afterTerm.text));

    // Crash: SIGKILL, then a restart.
    await second.kill("SIGKILL");
    const third = await startTracked(track, () => respawnNode(first, flags));
    const afterKill = await databaseHash(third.url);
    assert.equal(afterKill.hash, before.hash, diff(before.text, afterKill.text));
    const raft = await raftStatus(third.url);
    console.log(
      `restart ${flags.join(" ") || "(in-memory)"}: hash ${before.hash.slice(0, 16)}, ` +
        `${before.text.length} bytes of dump, log ${raft.first_log_index}..${raft.last_log_index}, ` +
        `snapshot at ${raft.last_snapshot_index}`,
    );
    if (flags.includes("-raft-snap")) {
      assert.ok(Number(raft.last_snapshot_index) > 0, "a snapshot was taken and restored");
    }
    await third.kill("SIGKILL");
  });
}

/** The first differing line, for a readable failure. */
function diff(a: string, b: string): string {
  const la = a.split("\n"), lb = b.split("\n");
  for (let i = 0; i < Math.max(la.length, lb.length); i++) {
    if (la[i] !== lb[i]) {
      return `database differs after restart at line ${i}:\n- ${la[i]?.slice(0, 400)}\n+ ${
        lb[i]?.slice(0, 400)
      }`;
    }
  }
  return "database differs after restart";
}

Deno.test("restart: SIGTERM then SIGKILL restarts keep the database hash (in-memory)", () =>
  restartsKeepTheHash([]));

Deno.test("restart: SIGTERM then SIGKILL restarts keep the database hash (-on-disk)", () =>
  restartsKeepTheHash(["-on-disk"]));

Deno.test("restart: same hash when the start restores a snapshot plus a log tail", () =>
  restartsKeepTheHash(["-raft-snap", "16", "-raft-snap-int", "100ms"]));

// DESIGN (not lib/e2e): non-deterministic SQL inside a trigger body (or a column DEFAULT) is not
// rewritten before Raft (rqlite-api.md §7 rewrites only the statement's own calls; rqlite behaves
// the same), and raftlite replays the whole log after the newest snapshot at EVERY start, so such
// values change at each restart — on a single node, with no failure involved. Remove `ignore` once
// this is decided (e.g. reject, or document, or snapshot at shutdown so replay is short).
Deno.test({
  name: "restart: a trigger that calls julianday('now') keeps its values across a restart",
  ignore: true,
  fn: () =>
    withNodes("restart-trigger", async (dir, track) => {
      const first = await startTracked(track, () => spawnNode(dir));
      await mustExecute(first.url, [
        "CREATE TABLE t(id INTEGER PRIMARY KEY)",
        "CREATE TABLE log(id INTEGER, at REAL)",
        "CREATE TRIGGER t_ins AFTER INSERT ON t BEGIN INSERT INTO log VALUES(new.id, julianday('now')); END",
        "INSERT INTO t(id) VALUES(1)",
      ]);
      const before = await queryRows(first.url, "SELECT id, at FROM log");
      await first.kill("SIGTERM");
      const second = await startTracked(track, () => respawnNode(first));
      assert.deepEqual(await queryRows(second.url, "SELECT id, at FROM log"), before);
      await second.kill("SIGKILL");
    }),
});
