import assert from "node:assert/strict";
import { SnapshotCorruptError, StorageMisuseError } from "../../lib/storage/errors.ts";
import { FileSnapshotStore } from "../../lib/storage/snapshot_store.ts";
import type { SnapshotMeta } from "../../lib/raft/types.ts";
import { crc32c } from "../../lib/storage/crc32c.ts";
import { call, flipByte, withTempDir } from "./helpers.ts";

const conf = { voters: ["a", "b", "c"], learners: ["d"] };
const meta = (index: number, term: number): SnapshotMeta => ({ index, term, conf });
const data = (n: number, seed: number) =>
  Uint8Array.from({ length: n }, (_, i) => (i * seed) & 0xff);

async function names(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) out.push(e.name);
  return out.sort();
}

async function collect(store: FileSnapshotStore, m: SnapshotMeta, chunk: number) {
  const parts: Uint8Array[] = [];
  for await (const c of store.readChunks(m, chunk)) parts.push(c);
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let pos = 0;
  for (const p of parts) {
    out.set(p, pos);
    pos += p.length;
  }
  return { out, chunks: parts.length };
}

Deno.test("snapshot store: write, read, latest, re-open", async () => {
  await withTempDir(async (dir) => {
    const store = await FileSnapshotStore.open(dir);
    assert.equal(store.latest(), undefined);
    const bytes = data(10_000, 7);
    await call((done) => store.write(meta(100, 3), bytes, done));
    assert.deepEqual(store.latest(), meta(100, 3));
    assert.deepEqual(store.readBytes(meta(100, 3)), bytes);
    const info = store.info(meta(100, 3));
    assert.equal(info?.size, 10_000);
    assert.equal(info?.crc32c, crc32c(bytes));
    assert.deepEqual(await names(dir), ["3-100.meta", "3-100.snap"]);
    const json = JSON.parse(await Deno.readTextFile(`${dir}/3-100.meta`));
    assert.equal(json.index, 100);
    assert.equal(json.term, 3);
    assert.deepEqual(json.conf, conf);
    assert.equal(json.size, 10_000);
    assert.equal(json.crc32c, crc32c(bytes));
    assert.equal(typeof json.createdMs, "number");
    await store.close();

    const again = await FileSnapshotStore.open(dir);
    assert.deepEqual(again.latest(), meta(100, 3));
    assert.deepEqual(again.readBytes(meta(100, 3)), bytes);
    const { out, chunks } = await collect(again, meta(100, 3), 4096);
    assert.deepEqual(out, bytes);
    assert.equal(chunks, 3);
    assert.throws(() => again.readBytes(meta(99, 3)), StorageMisuseError);
    await again.close();
  });
});

Deno.test("snapshot store: keeps the newest two, removes older ones after the new one is durable", async () => {
  await withTempDir(async (dir) => {
    const store = await FileSnapshotStore.open(dir);
    await call((done) => store.write(meta(10, 1), data(100, 1), done));
    await call((done) => store.write(meta(20, 1), data(100, 2), done));
    await call((done) => store.write(meta(30, 2), data(100, 3), done));
    assert.deepEqual(await names(dir), ["1-20.meta", "1-20.snap", "2-30.meta", "2-30.snap"]);
    assert.deepEqual(store.list().map((s) => s.meta.index), [30, 20]);
    // An older snapshot arriving late does not displace the newest.
    await call((done) => store.write(meta(25, 2), data(100, 4), done));
    assert.deepEqual(store.latest(), meta(30, 2));
    assert.deepEqual(store.list().map((s) => s.meta.index), [30, 25]);
    await store.close();
    const one = await FileSnapshotStore.open(dir, { retain: 1 });
    await call((done) => one.write(meta(40, 2), data(10, 5), done));
    assert.deepEqual(await names(dir), ["2-40.meta", "2-40.snap"]);
    await one.close();
  });
});

Deno.test("snapshot store: corrupt data is detected by read and by streaming", async () => {
  await withTempDir(async (dir) => {
    const store = await FileSnapshotStore.open(dir);
    await call((done) => store.write(meta(10, 1), data(50_000, 3), done));
    await store.close();
    await flipByte(`${dir}/1-10.snap`, 40_000);
    const again = await FileSnapshotStore.open(dir);
    // Same size: still listed (the CRC is checked when reading, not at open).
    assert.deepEqual(again.latest(), meta(10, 1));
    assert.throws(() => again.readBytes(meta(10, 1)), (e: unknown) => {
      assert.ok(e instanceof SnapshotCorruptError);
      assert.equal(e.file, `${dir}/1-10.snap`);
      assert.match(
        e.message,
        /1-10\.snap: snapshot data CRC32C is 0x[0-9a-f]{8} but its meta says/,
      );
      return true;
    });
    await assert.rejects(() => collect(again, meta(10, 1), 8192), SnapshotCorruptError);
    await again.close();
  });
});

Deno.test("snapshot store: truncated data is skipped by latest() at open and refused by read()", async () => {
  await withTempDir(async (dir) => {
    const store = await FileSnapshotStore.open(dir);
    await call((done) => store.write(meta(10, 1), data(1000, 3), done));
    await call((done) => store.write(meta(20, 1), data(1000, 5), done));
    await Deno.truncate(`${dir}/1-20.snap`, 600);
    // A store opened before the damage: read refuses it.
    assert.throws(
      () => store.readBytes(meta(20, 1)),
      /1-20\.snap: snapshot data has 600 bytes but its meta says 1000/,
    );
    await assert.rejects(() => store.openReader(meta(20, 1)), SnapshotCorruptError);
    await store.close();
    // At open: skipped, reported, left on disk; the older one is the latest.
    const again = await FileSnapshotStore.open(dir);
    assert.deepEqual(again.latest(), meta(10, 1));
    assert.equal(again.openReport.invalid.length, 1);
    assert.equal(again.openReport.invalid[0]?.file, `${dir}/1-20.meta`);
    assert.match(again.openReport.invalid[0]?.reason ?? "", /600 bytes but the meta says 1000/);
    assert.deepEqual(again.readBytes(meta(10, 1)), data(1000, 3));
    await again.close();
  });
});

Deno.test("snapshot store: temp files and incomplete snapshots are removed at open", async () => {
  await withTempDir(async (dir) => {
    const store = await FileSnapshotStore.open(dir);
    await call((done) => store.write(meta(10, 1), data(100, 3), done));
    await store.close();
    await Deno.writeFile(`${dir}/2-20.snap.0.tmp`, data(10, 1)); // crashed while streaming
    await Deno.writeFile(`${dir}/2-20.snap`, data(10, 1)); // crashed before its meta
    await Deno.writeFile(`${dir}/2-20.meta.1.tmp`, data(3, 1));
    await Deno.writeFile(`${dir}/3-30.meta`, new TextEncoder().encode("{not json"));
    const again = await FileSnapshotStore.open(dir);
    assert.deepEqual([...again.openReport.removedTemp].sort(), [
      "2-20.meta.1.tmp",
      "2-20.snap.0.tmp",
    ]);
    assert.deepEqual(again.openReport.removedIncomplete, ["2-20.snap"]);
    assert.match(again.openReport.invalid[0]?.reason ?? "", /does not parse/);
    assert.deepEqual(again.latest(), meta(10, 1));
    assert.deepEqual(await names(dir), ["1-10.meta", "1-10.snap", "3-30.meta"]);
    await again.close();
  });
});

Deno.test("snapshot store: streamed writer computes the CRC incrementally and commits atomically", async () => {
  await withTempDir(async (dir) => {
    const store = await FileSnapshotStore.open(dir);
    const whole = data(300_000, 11);
    const writer = await store.createWriter(meta(50, 4));
    for (let pos = 0; pos < whole.length; pos += 65_536) {
      await writer.write(whole.subarray(pos, pos + 65_536));
    }
    assert.equal(store.latest(), undefined, "invisible until commit");
    assert.equal(writer.size, whole.length);
    const info = await writer.commit();
    assert.equal(info.crc32c, crc32c(whole));
    assert.deepEqual(store.latest(), meta(50, 4));
    const { out, chunks } = await collect(store, meta(50, 4), 100_000);
    assert.deepEqual(out, whole);
    assert.equal(chunks, 3);
    // An aborted writer leaves nothing behind.
    const aborted = await store.createWriter(meta(60, 4));
    await aborted.write(data(10, 1));
    await aborted.abort();
    assert.deepEqual(await names(dir), ["4-50.meta", "4-50.snap"]);
    // Rewriting the same snapshot replaces it.
    await call((done) => store.write(meta(50, 4), data(5, 9), done));
    assert.deepEqual(store.readBytes(meta(50, 4)), data(5, 9));
    assert.equal(store.list().length, 1);
    await store.close();
  });
});

Deno.test("snapshot store: a failed write reaches done with the error", async () => {
  await withTempDir(async (dir) => {
    const sub = `${dir}/snapshots`;
    const store = await FileSnapshotStore.open(sub);
    await Deno.remove(sub, { recursive: true });
    let calls = 0;
    const err = await new Promise<Error | undefined>((resolve) =>
      store.write(meta(1, 1), data(10, 1), (e) => {
        calls++;
        resolve(e);
      })
    );
    assert.ok(err instanceof Deno.errors.NotFound, String(err));
    await store.close();
    assert.equal(calls, 1);
    assert.equal(store.latest(), undefined);
  });
});
