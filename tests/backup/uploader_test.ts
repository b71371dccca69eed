import assert from "node:assert/strict";
import { FileBackupStore } from "../../lib/backup/file_store.ts";
import { type BackupConfig, Uploader } from "../../lib/backup/mod.ts";
import { isVersionOf, newestVersion, timestampedKey } from "../../lib/backup/storage.ts";
import type { Log } from "../../lib/log/mod.ts";

const quiet: Log = { error() {}, warn() {}, info() {}, debug() {}, enabled: () => false };
const HEADER = "SQLite format 3\0";

/** An uploader over a directory, with the node's state in plain variables. */
async function setup(opts: Partial<BackupConfig> = {}) {
  const root = await Deno.makeTempDir({ prefix: "raftlite-uploader-" });
  const node = {
    leader: true,
    index: 5,
    data: "rows v1",
    nowMs: Date.UTC(2026, 10, 22, 11, 35, 1),
  };
  const vacuums: boolean[] = [];
  const config: BackupConfig = {
    intervalMs: 60_000,
    compress: true,
    timestamp: false,
    vacuum: false,
    storage: { type: "file", dir: `${root}/out`, name: "db.sqlite.gz" },
    ...opts,
  };
  const store = new FileBackupStore(`${root}/out`);
  const make = () =>
    new Uploader({
      config,
      store,
      key: "db.sqlite.gz",
      isLeader: () => node.leader,
      dataIndex: () => node.index,
      backup: async (path, { vacuum }) => {
        vacuums.push(vacuum);
        await Deno.writeTextFile(path, HEADER + node.data);
      },
      tempDir: `${root}/tmp`,
      log: quiet,
      nowMs: () => node.nowMs,
    });
  return {
    root,
    node,
    store,
    make,
    vacuums,
    cleanup: () => Deno.remove(root, { recursive: true }),
  };
}

async function gunzipText(path: string): Promise<string> {
  const bytes = await Deno.readFile(path);
  const out = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
  return await new Response(out).text();
}

Deno.test("uploader: the leader uploads a gzipped backup; unchanged data is skipped two ways", async () => {
  const t = await setup({ vacuum: true });
  try {
    // A round that died with its process left files behind: the first round removes them.
    await Deno.mkdir(`${t.root}/tmp/dead-round`, { recursive: true });
    await Deno.writeTextFile(`${t.root}/tmp/dead-round/backup.sqlite`, "partial");
    const up = t.make();
    assert.equal(await up.runOnce(), "uploaded");
    assert.equal(await gunzipText(`${t.root}/out/db.sqlite.gz`), HEADER + "rows v1");
    assert.deepEqual(t.vacuums, [true]);
    // No command applied since: not even a backup is written.
    assert.equal(await up.runOnce(), "skipped");
    assert.equal(t.vacuums.length, 1);
    // A no-op-like index move with the same data: backup written, upload skipped by id.
    t.node.index = 6;
    assert.equal(await up.runOnce(), "skipped_id");
    t.node.index = 7;
    t.node.data = "rows v2";
    assert.equal(await up.runOnce(), "uploaded");
    assert.equal(await gunzipText(`${t.root}/out/db.sqlite.gz`), HEADER + "rows v2");
    assert.deepEqual(up.stats, {
      uploadsOk: 2,
      uploadsFail: 0,
      uploadsSkipped: 1,
      uploadsSkippedId: 1,
      lastUploadMs: t.node.nowMs,
      lastError: "",
    });
    // A restarted node (new uploader) with the same data finds the stored copy identical.
    const again = t.make();
    t.node.index = 8;
    assert.equal(await again.runOnce(), "skipped_id");
    // Temporary files are gone after every round.
    assert.deepEqual([...Deno.readDirSync(`${t.root}/tmp`)], []);
    await up.stop();
    await again.stop();
  } finally {
    await t.cleanup();
  }
});

Deno.test("uploader: a database nothing was ever applied to is not uploaded", async () => {
  const t = await setup();
  try {
    t.node.index = 0;
    const up = t.make();
    assert.equal(await up.runOnce(), "skipped");
    assert.equal(t.vacuums.length, 0, "no backup was even written");
    assert.deepEqual([...Deno.readDirSync(t.root)].map((e) => e.name).includes("out"), false);
    t.node.index = 1;
    assert.equal(await up.runOnce(), "uploaded");
    await up.stop();
  } finally {
    await t.cleanup();
  }
});

Deno.test("uploader: followers do not upload; no_compress stores the SQLite file itself", async () => {
  const t = await setup({ compress: false });
  try {
    const up = t.make();
    t.node.leader = false;
    assert.equal(await up.runOnce(), "not_leader");
    assert.equal(up.stats.uploadsOk + up.stats.uploadsSkipped + up.stats.uploadsFail, 0);
    t.node.leader = true;
    assert.equal(await up.runOnce(), "uploaded");
    assert.equal(await Deno.readTextFile(`${t.root}/out/db.sqlite.gz`), HEADER + "rows v1");
    await up.stop();
  } finally {
    await t.cleanup();
  }
});

Deno.test("uploader: timestamped names keep every backup; the newest decides skipping", async () => {
  const t = await setup({ timestamp: true });
  try {
    const up = t.make();
    assert.equal(await up.runOnce(), "uploaded");
    t.node.index = 9;
    t.node.data = "rows v2";
    t.node.nowMs += 61_000;
    assert.equal(await up.runOnce(), "uploaded");
    const names = [...Deno.readDirSync(`${t.root}/out`)].map((e) => e.name).sort();
    assert.deepEqual(names, ["20261122113501_db.sqlite.gz", "20261122113602_db.sqlite.gz"]);
    assert.equal(await gunzipText(`${t.root}/out/${names[1]}`), HEADER + "rows v2");
    // After a restart the newest timestamped copy is compared, not the oldest.
    t.node.index = 10;
    assert.equal(await t.make().runOnce(), "skipped_id");
    await up.stop();
  } finally {
    await t.cleanup();
  }
});

Deno.test("uploader: a failing store is counted and logged; the next round retries", async () => {
  const t = await setup();
  try {
    // The target directory cannot be created: a file stands in its way.
    await Deno.writeTextFile(`${t.root}/out`, "not a directory");
    const up = t.make();
    assert.equal(await up.runOnce(), "failed");
    assert.equal(up.stats.uploadsFail, 1);
    assert.match(up.stats.lastError, /exists|directory/i);
    await Deno.remove(`${t.root}/out`);
    assert.equal(await up.runOnce(), "uploaded");
    assert.equal(up.stats.lastError, "");
    await up.stop();
  } finally {
    await t.cleanup();
  }
});

Deno.test("uploader: the timer runs rounds every interval and stop() ends them", async () => {
  const t = await setup({ intervalMs: 1_000 });
  try {
    const up = t.make();
    up.start();
    const deadline = Date.now() + 5_000;
    while (up.stats.uploadsOk === 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(up.stats.uploadsOk, 1);
    await up.stop();
    assert.equal(await up.runOnce(), "not_leader");
  } finally {
    await t.cleanup();
  }
});

Deno.test("timestamped names: UTC stamp before the base name, in the key's directory", () => {
  const ms = Date.UTC(2026, 0, 2, 3, 4, 5);
  assert.equal(timestampedKey("db.gz", ms), "20260102030405_db.gz");
  assert.equal(timestampedKey("a/b/db.gz", ms), "a/b/20260102030405_db.gz");
  assert.ok(isVersionOf("a/b/20260102030405_db.gz", "a/b/db.gz"));
  assert.ok(isVersionOf("a/b/db.gz", "a/b/db.gz"));
  assert.ok(!isVersionOf("a/20260102030405_db.gz", "a/b/db.gz"));
  assert.ok(!isVersionOf("a/b/2026_db.gz", "a/b/db.gz"));
  assert.ok(!isVersionOf("a/b/20260102030405_db.gz.old", "a/b/db.gz"));
  assert.equal(
    newestVersion(["x/db", "x/20260102030405_db", "x/20251231235959_db"]),
    "x/20260102030405_db",
  );
  assert.equal(newestVersion(["x/db"]), "x/db");
  assert.equal(newestVersion([]), undefined);
});
