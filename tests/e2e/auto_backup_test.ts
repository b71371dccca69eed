/**
 * -auto-backup and -auto-restore with `"type": "file"` on real node
 * processes: a leader uploads gzipped backups on its interval and skips
 * when nothing changed; a fresh node restores the newest one before it
 * says ready (alone, and as three new nodes with -bootstrap-expect); a
 * node with state ignores -auto-restore; a missing backup starts empty; a
 * broken one stops the start unless `continue_on_failure`.
 * (tests/e2e/auto_backup_s3_test.ts does the same against S3.)
 */

import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { freePort, type NodeProcess, spawnNode, waitFor } from "../util/node.ts";
import { mustExecute, queryRows, uploaderVars } from "./helpers.ts";

async function tempDir(): Promise<string> {
  return await Deno.makeTempDir({ prefix: "raftlite-autobackup-" });
}

async function rows(node: NodeProcess): Promise<unknown[]> {
  return await queryRows(node.url, "SELECT id, name, hex(data) FROM t ORDER BY id");
}

async function writeJson(path: string, value: unknown): Promise<string> {
  await Deno.writeTextFile(path, JSON.stringify(value));
  return path;
}

/** The rows of a gzipped SQLite backup file, read with node:sqlite. */
async function backupRows(gzPath: string, scratch: string): Promise<unknown[]> {
  const gz = await Deno.readFile(gzPath);
  const raw = new Uint8Array(
    await new Response(new Blob([gz]).stream().pipeThrough(new DecompressionStream("gzip")))
      .arrayBuffer(),
  );
  const path = `${scratch}/check-${crypto.randomUUID()}.sqlite`;
  await Deno.writeFile(path, raw);
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    return db.prepare("SELECT id, name FROM t ORDER BY id").all().map((r) => [r.id, r.name]);
  } finally {
    db.close();
  }
}

const EXPECTED = [[1, "alpha", "00FF10"], [2, "beta", ""]]; // hex(NULL) is ""

async function fill(node: NodeProcess): Promise<void> {
  await mustExecute(node.url, [
    "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, data BLOB)",
    ["INSERT INTO t VALUES (?, ?, x'00ff10')", 1, "alpha"],
    ["INSERT INTO t VALUES (?, ?, NULL)", 2, "beta"],
  ]);
}

Deno.test("auto-backup (file): the leader uploads on its interval, skips unchanged data; a fresh node restores it", async () => {
  const root = await tempDir();
  const nodes: NodeProcess[] = [];
  try {
    const backupCfg = await writeJson(`${root}/backup.json`, {
      version: 1,
      type: "file",
      interval: "1s",
      sub: { dir: `${root}/backups`, name: "$BACKUP_NAME" },
    });
    const a = spawnNode(`${root}/a`, ["-auto-backup", backupCfg], {
      env: { BACKUP_NAME: "db.sqlite.gz" },
    });
    nodes.push(a);
    await a.ready();
    await fill(a);
    await waitFor(async () => (await uploaderVars(a.url)).num_uploads_ok >= 1, 15_000);
    assert.deepEqual(await backupRows(`${root}/backups/db.sqlite.gz`, root), [
      [1, "alpha"],
      [2, "beta"],
    ]);
    // Nothing changes: the next rounds are skipped, not uploaded again.
    await waitFor(async () => (await uploaderVars(a.url)).num_uploads_skipped >= 2, 15_000);
    const vars = await uploaderVars(a.url);
    assert.equal(vars.num_uploads_ok, 1);
    assert.equal(vars.num_uploads_fail, 0);
    // A new write is in the next backup.
    await mustExecute(a.url, [["INSERT INTO t VALUES (3, 'gamma', NULL)"]]);
    await waitFor(async () => (await uploaderVars(a.url)).num_uploads_ok >= 2, 15_000);
    assert.equal((await backupRows(`${root}/backups/db.sqlite.gz`, root)).length, 3);
    const metrics = await (await fetch(`${a.url}/metrics`)).text();
    assert.match(metrics, /^raftlite_backup_rounds_total\{outcome="uploaded"\} [2-9]$/m);
    assert.match(metrics, /^raftlite_backup_rounds_total\{outcome="failed"\} 0$/m);
    assert.match(metrics, /^raftlite_backup_last_upload_timestamp_seconds 1\d{9}(\.\d+)?$/m);
    await a.kill("SIGTERM");

    // A new VM: empty data directory, same storage → the data is back before /readyz says ready.
    const restoreCfg = await writeJson(`${root}/restore.json`, {
      version: 1,
      type: "file",
      sub: { dir: `${root}/backups`, name: "db.sqlite.gz" },
    });
    const b = spawnNode(`${root}/b`, ["-auto-restore", restoreCfg]);
    nodes.push(b);
    await b.ready();
    assert.deepEqual(await rows(b), [...EXPECTED, [3, "gamma", ""]]);
    assert.match(b.stderr(), /restored the database from file:\/\/.*db\.sqlite\.gz/);
    // The downloaded copy is gone.
    assert.ok(![...Deno.readDirSync(`${root}/b`)].some((e) => e.name.startsWith("auto-restore")));
    await b.kill("SIGTERM");

    // A new VM with both flags on the same storage (the usual deployment): the backup it
    // restores from is never replaced by its empty database, and later rounds back up the data.
    const c = spawnNode(`${root}/c`, ["-auto-restore", restoreCfg, "-auto-backup", backupCfg], {
      env: { BACKUP_NAME: "db.sqlite.gz" },
    });
    nodes.push(c);
    await c.ready();
    assert.equal((await rows(c)).length, 3);
    await waitFor(async () => {
      const v = await uploaderVars(c.url);
      return v.num_uploads_skipped + v.num_uploads_skipped_id >= 1;
    }, 15_000);
    assert.equal((await backupRows(`${root}/backups/db.sqlite.gz`, root)).length, 3);
    await c.kill("SIGTERM");

    // Restarted with state: -auto-restore is ignored, later writes stay.
    const b2 = spawnNode(`${root}/b`, ["-auto-restore", restoreCfg], {
      httpAddr: b.httpAddr,
      raftAddr: b.raftAddr,
    });
    nodes.push(b2);
    await b2.ready();
    assert.equal((await rows(b2)).length, 3);
    assert.match(b2.stderr(), /-auto-restore skipped/);
  } finally {
    for (const n of nodes) await n.kill();
    await Deno.remove(root, { recursive: true }).catch(() => {});
  }
});

Deno.test("auto-restore (file): no backup → empty node; a broken one stops the start unless continue_on_failure", async () => {
  const root = await tempDir();
  const nodes: NodeProcess[] = [];
  try {
    await Deno.mkdir(`${root}/backups`);
    const cfg = (extra: Record<string, unknown>) =>
      writeJson(`${root}/restore-${crypto.randomUUID()}.json`, {
        type: "file",
        sub: { dir: `${root}/backups`, name: "db.gz" },
        ...extra,
      });
    const empty = spawnNode(`${root}/empty`, ["-auto-restore", await cfg({})]);
    nodes.push(empty);
    await empty.ready();
    assert.match(empty.stderr(), /no backup at file:\/\/.*db\.gz; starting empty/);

    await Deno.writeTextFile(`${root}/backups/db.gz`, "this is not a database");
    const strict = spawnNode(`${root}/strict`, ["-auto-restore", await cfg({})]);
    nodes.push(strict);
    // SIGCONT leaves it running, so this waits for its own exit (bounded by the SIGKILL timer).
    const timer = setTimeout(() => strict.kill(), 20_000);
    const status = await strict.kill("SIGCONT");
    clearTimeout(timer);
    assert.equal(status.code, 1);
    assert.match(
      strict.stderr(),
      /fatal: automatic restore from file:\/\/.*db\.gz failed: it is not a SQLite database/,
    );

    // Larger than one log entry may be: refused before Raft starts, with the flag to raise.
    const big = new DatabaseSync(`${root}/big.sqlite`);
    big.exec(
      "CREATE TABLE b (x BLOB); INSERT INTO b SELECT randomblob(4096) FROM " +
        "(WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 600) SELECT i FROM n)",
    );
    big.close();
    await Deno.copyFile(`${root}/big.sqlite`, `${root}/backups/big.sqlite`);
    const tooBig = spawnNode(`${root}/toobig`, [
      "-auto-restore",
      await cfg({ sub: { dir: `${root}/backups`, name: "big.sqlite" } }),
      "-max-body-bytes",
      "1024",
      "-raft-max-frame-bytes",
      String(1024 * 1024 + 1024),
    ]);
    nodes.push(tooBig);
    const bigTimer = setTimeout(() => tooBig.kill(), 20_000);
    const bigStatus = await tooBig.kill("SIGCONT");
    clearTimeout(bigTimer);
    assert.equal(bigStatus.code, 1);
    assert.match(tooBig.stderr(), /big\.sqlite failed: .*raise -raft-max-frame-bytes/);

    const lenient = spawnNode(`${root}/lenient`, [
      "-auto-restore",
      await cfg({ continue_on_failure: true }),
    ]);
    nodes.push(lenient);
    await lenient.ready();
    assert.match(lenient.stderr(), /not a SQLite database.*starting empty \(continue_on_failure\)/);
  } finally {
    for (const n of nodes) await n.kill();
    await Deno.remove(root, { recursive: true }).catch(() => {});
  }
});

Deno.test("auto-restore (file): three new nodes with -bootstrap-expect form a cluster holding the backup", async () => {
  const root = await tempDir();
  const nodes: NodeProcess[] = [];
  try {
    // The backup: a node that writes and uploads once.
    const backupCfg = await writeJson(`${root}/backup.json`, {
      type: "file",
      interval: "1s",
      sub: { dir: `${root}/backups`, name: "db.gz" },
    });
    const src = spawnNode(`${root}/src`, ["-auto-backup", backupCfg]);
    nodes.push(src);
    await src.ready();
    await fill(src);
    await waitFor(async () => (await uploaderVars(src.url)).num_uploads_ok >= 1, 15_000);
    await src.kill("SIGTERM");

    const restoreCfg = await writeJson(`${root}/restore.json`, {
      type: "file",
      sub: { dir: `${root}/backups`, name: "db.gz" },
    });
    const raft = [0, 1, 2].map(() => `127.0.0.1:${freePort()}`);
    const cluster = raft.map((addr, i) =>
      spawnNode(`${root}/n${i}`, [
        "-auto-restore",
        restoreCfg,
        "-bootstrap-expect",
        "3",
        "-join",
        raft.join(","),
        "-join-interval",
        "200ms",
      ], { raftAddr: addr })
    );
    nodes.push(...cluster);
    await Promise.all(cluster.map((n) => n.ready(40_000)));
    for (const n of cluster) {
      await waitFor(async () => (await rows(n)).length === 2, 10_000);
      const local = await queryRows(n.url, "SELECT count(*) FROM t", "none");
      assert.deepEqual(local, [[2]], "every node holds the restored rows");
    }
    // Exactly one node loaded it; the others dropped their copies.
    const restored = cluster.filter((n) => /restored the database from/.test(n.stderr()));
    assert.equal(restored.length, 1, cluster.map((n) => n.stderr()).join("\n----\n"));
  } finally {
    for (const n of nodes) await n.kill();
    await Deno.remove(root, { recursive: true }).catch(() => {});
  }
});

Deno.test("auto-restore (file): a restore that did not settle before a stop is done at the next start", async () => {
  const root = await tempDir();
  const nodes: NodeProcess[] = [];
  try {
    await Deno.mkdir(`${root}/backups`);
    const made = new DatabaseSync(`${root}/backups/db.sqlite`);
    made.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO t VALUES (7, 'x')");
    made.close();
    const restoreCfg = await writeJson(`${root}/restore.json`, {
      type: "file",
      sub: { dir: `${root}/backups`, name: "db.sqlite" },
    });
    // A node that bootstrapped and stopped before its restore was loaded: state, no data, marker.
    const first = spawnNode(`${root}/n`);
    nodes.push(first);
    await first.ready();
    await first.kill("SIGTERM");
    await Deno.writeTextFile(`${root}/n/auto-restore.pending`, "interrupted\n");
    const again = spawnNode(`${root}/n`, ["-auto-restore", restoreCfg], {
      httpAddr: first.httpAddr,
      raftAddr: first.raftAddr,
    });
    nodes.push(again);
    await again.ready();
    assert.deepEqual(await queryRows(again.url, "SELECT id, name FROM t"), [[7, "x"]]);
    assert.match(again.stderr(), /did not finish before this node last stopped; restoring again/);
    await waitFor(
      () => Deno.stat(`${root}/n/auto-restore.pending`).then(() => false, () => true),
      5_000,
    );
  } finally {
    for (const n of nodes) await n.kill();
    await Deno.remove(root, { recursive: true }).catch(() => {});
  }
});
