/**
 * POST /snapshot, /reap and /boot on a real node (rqlite-api.md §4).
 * /boot streams a SQLite file into a lone leader and forces a snapshot, so
 * the booted data survives a crash right after it; bad files change nothing.
 */

import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { respawnNode, spawnNode } from "../util/node.ts";
import { mustExecute, post, queryRows, raftStatus, startTracked, withNodes } from "./helpers.ts";

async function send(url: string, path: string, body?: BodyInit): Promise<[number, string]> {
  const res = await fetch(url + path, { method: "POST", body });
  return [res.status, await res.text()];
}

/** A SQLite file with every column type, `rows` rows. */
function makeDb(path: string, rows: number): void {
  const db = new DatabaseSync(path);
  db.exec("CREATE TABLE b(id INTEGER PRIMARY KEY, big INTEGER, r REAL, s TEXT, bl BLOB, n)");
  db.exec("CREATE INDEX b_big ON b(big)");
  const ins = db.prepare("INSERT INTO b VALUES(?, ?, ?, ?, ?, NULL)");
  db.exec("BEGIN");
  for (let i = 0; i < rows; i++) {
    ins.run(i, 9223372036854770000n + BigInt(i), i / 7, `s${i} ✓`, new Uint8Array([i & 255, 0]));
  }
  db.exec("COMMIT");
  db.close();
}

Deno.test("snapshot and reap: 200 then 204 when nothing is new; reap keeps only the newest", () =>
  withNodes("maint-snap", async (dir, track) => {
    const n = await startTracked(track, () => spawnNode(dir, ["-raft-snap-int", "0s"]));
    await mustExecute(n.url, ["CREATE TABLE t(x)", "INSERT INTO t VALUES(1)"]);
    assert.deepEqual(await send(n.url, "/snapshot"), [200, ""]);
    assert.deepEqual(await send(n.url, "/snapshot"), [204, ""], "nothing new");
    await mustExecute(n.url, ["INSERT INTO t VALUES(2)"]);
    assert.deepEqual(await send(n.url, "/snapshot?trailing_logs=1"), [200, ""]);
    const after = await raftStatus(n.url);
    assert.equal(after.first_log_index, after.last_snapshot_index, "one trailing entry kept");
    assert.deepEqual(await send(n.url, "/snapshot?trailing_logs=x"), [
      400,
      "trailing_logs is not a valid integer\n",
    ]);
    const get = await fetch(n.url + "/snapshot");
    await get.body?.cancel();
    assert.equal(get.status, 405);
    const [code, body] = await send(n.url, "/reap");
    assert.equal(code, 200);
    const reaped = JSON.parse(body);
    assert.equal(reaped.snapshots_reaped, 1, body);
    assert.equal(typeof reaped.wals_checkpointed, "number");
    const snaps = [...Deno.readDirSync(`${dir}/snapshots`)].filter((e) => e.name.endsWith(".snap"));
    assert.equal(snaps.length, 1);
    assert.deepEqual(await queryRows(n.url, "SELECT x FROM t ORDER BY x"), [[1], [2]]);
  }));

Deno.test("boot: a SQLite file replaces the database, survives a crash right after, bad files change nothing", () =>
  withNodes("maint-boot", async (dir, track) => {
    const file = `${dir}/seed.sqlite`;
    makeDb(file, 5000);
    const first = await startTracked(track, () => spawnNode(`${dir}/node`));
    await mustExecute(first.url, ["CREATE TABLE old(x)", "INSERT INTO old VALUES(1)"]);
    const f = await Deno.open(file);
    assert.deepEqual(await send(first.url, "/boot", f.readable), [200, ""]);
    const rows = await queryRows(first.url, "SELECT COUNT(*), CAST(MAX(big) AS TEXT) FROM b");
    assert.deepEqual(rows, [[5000, "9223372036854774999"]]);
    const old = await post(first.url, "/db/query", ["SELECT * FROM old"]);
    assert.match(old.text, /no such table: old/, "boot replaced the whole database");
    // Garbage and a damaged SQLite file: 400, the database stays as it is.
    assert.deepEqual(await send(first.url, "/boot", "not a database at all"), [
      400,
      "invalid SQLite data\n",
    ]);
    const damaged = await Deno.readFile(file);
    damaged.fill(0x5a, 4096, 4096 * 3);
    const [code, text] = await send(first.url, "/boot", damaged);
    assert.equal(code, 400, text);
    assert.match(text, /invalid SQLite data/);
    assert.deepEqual(await queryRows(first.url, "SELECT COUNT(*) FROM b"), [[5000]]);
    // Crash right after: the forced snapshot carries the booted data.
    await first.kill("SIGKILL");
    const second = await startTracked(track, () => respawnNode(first));
    assert.deepEqual(await queryRows(second.url, "SELECT COUNT(*) FROM b"), [[5000]]);
    await mustExecute(second.url, [["INSERT INTO b(id, s) VALUES(?, ?)", 99999, "after boot"]]);
    assert.deepEqual(await queryRows(second.url, "SELECT s FROM b WHERE id = 99999"), [[
      "after boot",
    ]]);
  }));
