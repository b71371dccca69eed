/**
 * -auto-backup and -auto-restore with `"type": "s3"` against a real
 * S3-compatible server (s3rver from npm, SigV4-checking; started by the
 * test on 127.0.0.1, tests/util/s3_server.ts): a node process uploads
 * timestamped, gzipped backups with path-style URLs and the credentials
 * from the environment; a fresh node restores the newest one; wrong
 * credentials are counted as failed uploads with the server's reason in
 * the log, and stop a restore with a clear message.
 */

import assert from "node:assert/strict";
import { S3Client } from "../../lib/backup/s3.ts";
import { type NodeProcess, spawnNode, waitFor } from "../util/node.ts";
import { mustExecute, queryRows, uploaderVars } from "./helpers.ts";
import { s3Unavailable, startS3Server } from "../util/s3_server.ts";

const unavailable = await s3Unavailable();
if (unavailable !== undefined) console.log(`auto_backup_s3_test skipped: ${unavailable}`);

function s3Sub(endpoint: string, bucket = "backups") {
  return {
    access_key_id: "$TEST_S3_KEY",
    secret_access_key: "${TEST_S3_SECRET}",
    endpoint,
    region: "us-east-1",
    bucket,
    path: "prod/db.sqlite.gz",
    force_path_style: true,
  };
}

Deno.test({
  name:
    "auto-backup (s3): timestamped uploads to a real S3 server; a fresh node restores the newest",
  ignore: unavailable !== undefined,
  fn: async () => {
    const s3 = await startS3Server({ buckets: ["backups"] });
    const root = await Deno.makeTempDir({ prefix: "raftlite-autobackup-s3-" });
    const nodes: NodeProcess[] = [];
    const env = { TEST_S3_KEY: s3.accessKeyId, TEST_S3_SECRET: s3.secretAccessKey };
    try {
      await Deno.writeTextFile(
        `${root}/backup.json`,
        JSON.stringify({
          version: 1,
          type: "s3",
          interval: "1s",
          timestamp: true,
          vacuum: true,
          sub: s3Sub(s3.endpoint),
        }),
      );
      // The flag from the environment, as on a VM: RAFTLITE_AUTO_BACKUP.
      const a = spawnNode(`${root}/a`, [], {
        env: { ...env, RAFTLITE_AUTO_BACKUP: `${root}/backup.json` },
      });
      nodes.push(a);
      await a.ready();
      await mustExecute(a.url, [
        "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)",
        ["INSERT INTO t(v) VALUES (?)", "first"],
      ]);
      await waitFor(async () => (await uploaderVars(a.url)).num_uploads_ok >= 1, 20_000);
      await mustExecute(a.url, [["INSERT INTO t(v) VALUES (?)", "second"]]);
      await waitFor(async () => (await uploaderVars(a.url)).num_uploads_ok >= 2, 20_000);
      await waitFor(async () => (await uploaderVars(a.url)).num_uploads_skipped >= 1, 20_000);
      const vars = await uploaderVars(a.url);
      assert.equal(vars.num_uploads_fail, 0);
      assert.equal(vars.num_uploads_ok, 2, "unchanged data is not uploaded again");

      const client = new S3Client({
        endpoint: s3.endpoint,
        region: "us-east-1",
        bucket: "backups",
        accessKeyId: s3.accessKeyId,
        secretAccessKey: s3.secretAccessKey,
        forcePathStyle: true,
      });
      const keys = (await client.list("prod/", 100)).sort();
      assert.equal(keys.length, 2, keys.join(", "));
      for (const k of keys) assert.match(k, /^prod\/\d{14}_db\.sqlite\.gz$/);
      const head = await client.head(keys[1]!);
      assert.match(head?.metadata["raftlite-backup-id"] ?? "", /^[0-9a-f]{64}$/);
      await a.kill("SIGTERM");

      await Deno.writeTextFile(
        `${root}/restore.json`,
        JSON.stringify({ version: 1, type: "s3", timeout: "30s", sub: s3Sub(s3.endpoint) }),
      );
      const b = spawnNode(`${root}/b`, ["-auto-restore", `${root}/restore.json`], { env });
      nodes.push(b);
      await b.ready();
      assert.deepEqual(await queryRows(b.url, "SELECT v FROM t ORDER BY id"), [
        ["first"],
        ["second"],
      ]);
      assert.match(b.stderr(), /restored the database from s3:\/\/backups\/prod\/\d{14}_db/);
    } finally {
      for (const n of nodes) await n.kill();
      await s3.close();
      await Deno.remove(root, { recursive: true }).catch(() => {});
    }
  },
});

Deno.test({
  name: "auto-backup (s3): a wrong secret fails uploads (counted, logged) and stops a restore",
  ignore: unavailable !== undefined,
  fn: async () => {
    const s3 = await startS3Server({ buckets: ["backups"] });
    const root = await Deno.makeTempDir({ prefix: "raftlite-autobackup-s3-" });
    const nodes: NodeProcess[] = [];
    const env = { TEST_S3_KEY: s3.accessKeyId, TEST_S3_SECRET: "not-the-secret" };
    try {
      await Deno.writeTextFile(
        `${root}/backup.json`,
        JSON.stringify({ type: "s3", interval: "1s", sub: s3Sub(s3.endpoint) }),
      );
      const a = spawnNode(`${root}/a`, ["-auto-backup", `${root}/backup.json`], { env });
      nodes.push(a);
      await a.ready();
      await mustExecute(a.url, ["CREATE TABLE t (id INTEGER PRIMARY KEY)"]);
      await waitFor(async () => (await uploaderVars(a.url)).num_uploads_fail >= 1, 20_000);
      assert.equal((await uploaderVars(a.url)).num_uploads_ok, 0);
      assert.match(
        a.stderr(),
        /automatic backup failed: S3 HEAD s3:\/\/backups\/prod\/db\.sqlite\.gz failed: 403/,
      );

      await Deno.writeTextFile(
        `${root}/restore.json`,
        JSON.stringify({ type: "s3", sub: s3Sub(s3.endpoint) }),
      );
      const b = spawnNode(`${root}/b`, ["-auto-restore", `${root}/restore.json`], { env });
      nodes.push(b);
      const timer = setTimeout(() => b.kill(), 20_000);
      const status = await b.kill("SIGCONT"); // waits for its own exit
      clearTimeout(timer);
      assert.equal(status.code, 1);
      assert.match(
        b.stderr(),
        /fatal: automatic restore from s3:\/\/backups\/prod\/db\.sqlite\.gz failed: .*403/,
      );
    } finally {
      for (const n of nodes) await n.kill();
      await s3.close();
      await Deno.remove(root, { recursive: true }).catch(() => {});
    }
  },
});
