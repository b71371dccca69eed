import assert from "node:assert/strict";
import { FileBackupStore } from "../../lib/backup/file_store.ts";
import { downloadBackup, installRestore, type RestoreConfig } from "../../lib/backup/mod.ts";
import { gzipFile } from "../../lib/backup/uploader.ts";
import type { Log } from "../../lib/log/mod.ts";

const quiet: Log = { error() {}, warn() {}, info() {}, debug() {}, enabled: () => false };
const IMAGE = "SQLite format 3\0" + "x".repeat(1000);

async function setup() {
  const root = await Deno.makeTempDir({ prefix: "raftlite-restore-" });
  await Deno.mkdir(`${root}/store`);
  await Deno.mkdir(`${root}/data`);
  const config: RestoreConfig = {
    timeoutMs: 10_000,
    continueOnFailure: false,
    storage: { type: "file", dir: `${root}/store`, name: "db.gz" },
  };
  const store = new FileBackupStore(`${root}/store`);
  const fetchTo = (key = "db.gz", maxBytes = 1 << 20) =>
    downloadBackup(config, store, key, `${root}/data`, maxBytes, quiet);
  const dataFiles = () => [...Deno.readDirSync(`${root}/data`)].map((e) => e.name).sort();
  return { root, fetchTo, dataFiles, cleanup: () => Deno.remove(root, { recursive: true }) };
}

Deno.test("restore download: a gzipped backup is unpacked; a plain SQLite file taken as is", async () => {
  const t = await setup();
  try {
    await Deno.writeTextFile(`${t.root}/raw`, IMAGE);
    await gzipFile(`${t.root}/raw`, `${t.root}/store/db.gz`);
    const got = await t.fetchTo();
    assert.ok(got !== undefined);
    assert.equal(got.path, `${t.root}/data/auto-restore.sqlite`);
    assert.equal(got.sizeBytes, IMAGE.length);
    assert.equal(await Deno.readTextFile(got.path), IMAGE);
    assert.deepEqual(t.dataFiles(), ["auto-restore.sqlite"]);
    await Deno.remove(got.path);
    await Deno.copyFile(`${t.root}/raw`, `${t.root}/store/db.gz`);
    assert.equal(await Deno.readTextFile((await t.fetchTo())!.path), IMAGE);
  } finally {
    await t.cleanup();
  }
});

Deno.test("restore download: without the plain name, the newest timestamped copy", async () => {
  const t = await setup();
  try {
    assert.equal(await t.fetchTo(), undefined, "nothing stored: nothing to restore");
    await Deno.writeTextFile(`${t.root}/store/20260101000000_db.gz`, IMAGE + "old");
    await Deno.writeTextFile(`${t.root}/store/20261122000000_db.gz`, IMAGE + "new");
    await Deno.writeTextFile(`${t.root}/store/20991122000000_other.gz`, IMAGE + "other");
    const got = await t.fetchTo();
    assert.ok(got !== undefined && got.source.endsWith("/20261122000000_db.gz"));
    assert.equal(await Deno.readTextFile(got.path), IMAGE + "new");
  } finally {
    await t.cleanup();
  }
});

Deno.test("restore download: not SQLite, broken gzip, or too large → a clear error, no files left", async () => {
  const t = await setup();
  try {
    const cases: [Uint8Array | string, RegExp, number?][] = [
      ["hello, not a database", /not a SQLite database/],
      [new Uint8Array([0x1f, 0x8b, 8, 0, 1, 2, 3]), /could not be decompressed/],
      [IMAGE, /holds 1016 bytes, more than the 100 bytes allowed/, 100],
    ];
    for (const [content, re, max] of cases) {
      await Deno.writeFile(
        `${t.root}/store/db.gz`,
        typeof content === "string" ? new TextEncoder().encode(content) : content,
      );
      await assert.rejects(t.fetchTo("db.gz", max), (err: Error) => {
        assert.match(err.message, /^automatic restore from file:\/\/.*db\.gz failed: /);
        assert.match(err.message, re);
        return true;
      });
      assert.deepEqual(t.dataFiles(), []);
    }
    // A gzip that inflates past the bound is stopped while decompressing.
    await Deno.writeTextFile(`${t.root}/raw`, IMAGE + "y".repeat(100_000));
    await Deno.remove(`${t.root}/store/db.gz`);
    await gzipFile(`${t.root}/raw`, `${t.root}/store/db.gz`);
    await assert.rejects(t.fetchTo("db.gz", 50_000), /decompresses to more than 50000 bytes/);
    assert.deepEqual(t.dataFiles(), []);
  } finally {
    await t.cleanup();
  }
});

Deno.test("restore install: waits for a leader; only a leader with no data loads; file removed", async () => {
  const t = await setup();
  try {
    const run = async (state: { leader: string; self: boolean; dataIndex: number }) => {
      const path = `${t.root}/data/auto-restore.sqlite`;
      await Deno.writeTextFile(path, IMAGE);
      const loaded: number[] = [];
      const outcome = installRestore(
        { path, source: "s", sizeBytes: IMAGE.length },
        {
          leaderId: () => state.leader,
          isLeader: () => state.self,
          dataIndex: () => state.dataIndex,
          load: (image) => {
            loaded.push(image.byteLength);
            return Promise.resolve();
          },
        },
        new AbortController().signal,
        5,
      );
      return { outcome: await outcome, loaded, left: t.dataFiles() };
    };
    assert.deepEqual(await run({ leader: "n1", self: true, dataIndex: 0 }), {
      outcome: "restored",
      loaded: [IMAGE.length],
      left: [],
    });
    assert.deepEqual(await run({ leader: "n2", self: false, dataIndex: 0 }), {
      outcome: "not_leader",
      loaded: [],
      left: [],
    });
    assert.deepEqual(await run({ leader: "n1", self: true, dataIndex: 3 }), {
      outcome: "has_data",
      loaded: [],
      left: [],
    });
    // No leader yet: it waits; a stop (abort) ends the wait.
    const path = `${t.root}/data/auto-restore.sqlite`;
    await Deno.writeTextFile(path, IMAGE);
    const stop = new AbortController();
    const waiting = installRestore(
      { path, source: "s", sizeBytes: 1 },
      {
        leaderId: () => "",
        isLeader: () => false,
        dataIndex: () => 0,
        load: () => Promise.reject(new Error("must not load")),
      },
      stop.signal,
      5,
    );
    await new Promise((r) => setTimeout(r, 30));
    stop.abort();
    await assert.rejects(waiting);
    assert.deepEqual(t.dataFiles(), []);
  } finally {
    await t.cleanup();
  }
});
