/**
 * Automatic backups of a large database: one upload round of
 * lib/backup/uploader.ts (SQLite backup of the live database, gzip,
 * SHA-256, store) to a directory and to a real S3-compatible server
 * (s3rver from npm, tests/util/s3_server.ts), and the restore download
 * (fetch, gunzip, header check), each set against ceilings measured in
 * the same run on the same file:
 *
 * - `copy`: `Deno.copyFile` of the database file (the disk);
 * - `gzip`: the file through node:zlib at the uploader's level into a file;
 * - `sha256`: node:crypto over the file.
 *
 * A round does at least copy + gzip + sha256 of the data, so their sum is
 * the lower bound a round is compared with. Peak RSS growth during each
 * step (sampled every 20 ms) shows that nothing holds the database in
 * memory. The database: `RAFTLITE_BENCH_BACKUP_MIB` MiB (default 128) of
 * rows with half-random text, built with node:sqlite. MB = 10^6 bytes.
 *
 * Run: `deno task bench auto_backup` (about a minute).
 *
 * @module
 */

import { DatabaseSync } from "node:sqlite";
import { DbClient } from "../lib/db/mod.ts";
import {
  type BackupConfig,
  downloadBackup,
  FileBackupStore,
  S3BackupStore,
  Uploader,
} from "../lib/backup/mod.ts";
import { S3Client } from "../lib/backup/s3.ts";
import { gzipFile } from "../lib/backup/uploader.ts";
import { sha256File } from "../lib/backup/storage.ts";
import type { Log } from "../lib/log/mod.ts";
import { s3Unavailable, startS3Server } from "../tests/util/s3_server.ts";
import { alignTable, recordResults } from "./lib/results.ts";

const MIB = 1 << 20;
const SIZE_MIB = Number(Deno.env.get("RAFTLITE_BENCH_BACKUP_MIB") ?? "128");
const quiet: Log = { error() {}, warn() {}, info() {}, debug() {}, enabled: () => false };

/** A database of about `mib` MiB: 1 KiB rows, half random hex (so gzip has work and limits). */
function buildDb(path: string, mib: number): void {
  const db = new DatabaseSync(path);
  db.exec("PRAGMA journal_mode=OFF; CREATE TABLE t (id INTEGER PRIMARY KEY, payload TEXT)");
  const insert = db.prepare("INSERT INTO t(payload) VALUES (?)");
  const words = "raftlite replicates sqlite through raft ".repeat(13).slice(0, 512);
  const random = new Uint8Array(256);
  db.exec("BEGIN");
  for (let i = 0; i < mib * 1024; i++) {
    crypto.getRandomValues(random);
    const hex = Array.from(random, (b) => b.toString(16).padStart(2, "0")).join("");
    insert.run(words + hex);
  }
  db.exec("COMMIT");
  db.close();
}

/** Runs `fn`, returning its wall time and the process's peak RSS growth meanwhile. */
async function measure(fn: () => Promise<unknown>): Promise<{ ms: number; rssMiB: number }> {
  const base = Deno.memoryUsage().rss;
  let peak = base;
  const sampler = setInterval(() => peak = Math.max(peak, Deno.memoryUsage().rss), 20);
  const t0 = performance.now();
  try {
    await fn();
  } finally {
    clearInterval(sampler);
  }
  const ms = performance.now() - t0;
  peak = Math.max(peak, Deno.memoryUsage().rss);
  return { ms, rssMiB: (peak - base) / MIB };
}

/** Runs the benchmark and records its table. */
export async function run(): Promise<void> {
  const root = await Deno.makeTempDir({ prefix: "raftlite-bench-backup-" });
  const s3Why = await s3Unavailable();
  const s3 = s3Why === undefined ? await startS3Server({ buckets: ["bench"] }) : undefined;
  let db: DbClient | undefined;
  try {
    const source = `${root}/source.sqlite`;
    buildDb(source, SIZE_MIB);
    const bytes = (await Deno.stat(source)).size;
    const mbps = (ms: number) => (bytes / 1e6 / (ms / 1000)).toFixed(0);
    db = await DbClient.open({});
    await db.restoreFromFile(source, { check: "header" });

    const rows: string[][] = [["step", "ms", "MB/s", "x floor", "peak RSS +MiB"]];
    const ceilings: Record<string, number> = {};
    for (
      const [name, fn] of [
        ["copy", () => Deno.copyFile(source, `${root}/copy`)],
        ["gzip", () => gzipFile(source, `${root}/copy.gz`)],
        ["sha256", () => sha256File(source)],
      ] as const
    ) {
      const m = await measure(fn);
      ceilings[name] = m.ms;
      rows.push([`ceiling: ${name}`, m.ms.toFixed(0), mbps(m.ms), "", m.rssMiB.toFixed(0)]);
    }
    // The part of a round that holds the SQLite write worker (writes wait meanwhile).
    for (const vacuum of [false, true]) {
      const m = await measure(() =>
        db!.backupToFile(`${root}/held.sqlite`, { format: "binary", vacuum })
      );
      rows.push([
        `writes wait: backup${vacuum ? " with vacuum" : ""}`,
        m.ms.toFixed(0),
        mbps(m.ms),
        "",
        m.rssMiB.toFixed(0),
      ]);
      await Deno.remove(`${root}/held.sqlite`);
    }
    const floorMs = (ceilings.copy ?? 0) + (ceilings.gzip ?? 0) + (ceilings.sha256 ?? 0);
    rows.push(["floor: copy + gzip + sha256", floorMs.toFixed(0), mbps(floorMs), "1.00", ""]);
    const gzBytes = (await Deno.stat(`${root}/copy.gz`)).size;
    await Deno.remove(`${root}/copy`);
    await Deno.remove(`${root}/copy.gz`);

    const stores: [string, FileBackupStore | S3BackupStore, string][] = [
      ["file", new FileBackupStore(`${root}/backups`), "db.sqlite.gz"],
    ];
    if (s3 !== undefined) {
      const client = new S3Client({
        endpoint: s3.endpoint,
        region: "us-east-1",
        bucket: "bench",
        accessKeyId: s3.accessKeyId,
        secretAccessKey: s3.secretAccessKey,
        forcePathStyle: true,
      });
      stores.push(["s3 (s3rver)", new S3BackupStore(client), "bench/db.sqlite.gz"]);
    }
    for (const [name, store, baseKey] of stores) {
      for (const compress of [true, false]) {
        // Each configuration its own name: the same data under one name would be skipped by id.
        const key = compress ? baseKey : baseKey.replace(/\.gz$/, "");
        const config: BackupConfig = {
          intervalMs: 3_600_000,
          compress,
          timestamp: false,
          vacuum: false,
          storage: { type: "file", dir: root, name: key },
        };
        let index = 1;
        const uploader = new Uploader({
          config,
          store,
          key,
          isLeader: () => true,
          dataIndex: () => index,
          backup: (path, { vacuum }) =>
            db!.backupToFile(path, { format: "binary", vacuum }).then(() => {}),
          tempDir: `${root}/tmp`,
          log: quiet,
          nowMs: () => Date.now(),
        });
        let outcome = "";
        const m = await measure(async () => outcome = await uploader.runOnce());
        if (outcome !== "uploaded") throw new Error(`${name} upload: ${outcome}`);
        const label = `upload round to ${name}${compress ? ", gzip" : ""}`;
        rows.push([
          label,
          m.ms.toFixed(0),
          mbps(m.ms),
          compress ? (m.ms / floorMs).toFixed(2) : "",
          m.rssMiB.toFixed(0),
        ]);
        index++;
        const again = await measure(async () => outcome = await uploader.runOnce());
        rows.push([`  same data again (${outcome})`, again.ms.toFixed(0), "", "", ""]);
        await uploader.stop();
        const restore = await measure(() =>
          downloadBackup(
            { timeoutMs: 600_000, continueOnFailure: false, storage: config.storage },
            store,
            key,
            root,
            2 * bytes,
            quiet,
          )
        );
        rows.push([
          `  restore download from ${name}`,
          restore.ms.toFixed(0),
          mbps(restore.ms),
          "",
          restore.rssMiB.toFixed(0),
        ]);
        await Deno.remove(`${root}/auto-restore.sqlite`).catch(() => {});
      }
    }
    const table = alignTable(rows);
    for (const line of table) console.log(`  ${line}`);
    await recordResults("Automatic backups (bench/auto_backup_bench.ts)", table, [
      `database ${(bytes / 1e6).toFixed(0)} MB (gzip: ${(gzBytes / 1e6).toFixed(0)} MB), ` +
      "in-memory node database (/dev/shm), store and temp files on the same disk",
      "MB/s = database bytes / wall time; x floor = the gzip round's time over copy + gzip + " +
      "sha256 of the same file",
      s3 === undefined ? `S3 rows missing: ${s3Why}` : "S3: s3rver 3.7.1 on 127.0.0.1 (node " +
        "compat under Deno), SigV4 with payload hashes, 16 MiB multipart parts",
    ]);
  } finally {
    await db?.close();
    await s3?.close();
    await Deno.remove(root, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) await run();
