/**
 * Snapshots as files end to end: the snapshot store adopts temp files,
 * verifies, quarantines and reaps; the TCP transport streams a stored
 * snapshot file to a peer that receives it into a temp file of its own
 * store, with the CRC checked on both ends and bounded memory.
 */

import assert from "node:assert/strict";
import type { SnapshotData } from "../../lib/node/interfaces.ts";
import type { Message, SnapshotMeta } from "../../lib/raft/types.ts";
import { SnapshotCorruptError } from "../../lib/storage/errors.ts";
import { FileSnapshotData, FileSnapshotStore } from "../../lib/storage/snapshot_store.ts";
import { fileSnapshotIo } from "../../lib/transport/file_snapshot_io.ts";
import { Mux } from "../../lib/transport/mux.ts";
import { TcpTransport } from "../../lib/transport/raft_transport.ts";

const conf = { voters: ["a", "b"], learners: [], context: { a: "x:1", b: "y:2" } };
const meta = (index: number, term: number): SnapshotMeta => ({ index, term, conf });

async function withDirs(fn: (a: string, b: string) => Promise<void>): Promise<void> {
  const root = await Deno.makeTempDir({ prefix: "raftlite-fsio-" });
  try {
    await fn(`${root}/a`, `${root}/b`);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}

function call(fn: (done: (err?: Error) => void) => void): Promise<void> {
  return new Promise((resolve, reject) => fn((err) => (err ? reject(err) : resolve())));
}

/** A temp file in `store` of `size` pseudo-random bytes (written in 1 MiB pieces). */
async function tempFile(store: FileSnapshotStore, size: number): Promise<FileSnapshotData> {
  const path = store.tempPath("local");
  const f = await Deno.open(path, { write: true, createNew: true });
  const piece = new Uint8Array(1 << 20);
  for (let i = 0; i < piece.length; i++) piece[i] = (i * 31 + 7) & 0xff;
  for (let left = size; left > 0; left -= piece.length) {
    const n = Math.min(left, piece.length);
    let off = 0;
    while (off < n) off += await f.write(piece.subarray(off, n));
  }
  f.close();
  return new FileSnapshotData(path, size);
}

Deno.test("file snapshots: adopt a temp file, verify, quarantine a damaged one, reap", async () => {
  await withDirs(async (dir) => {
    const store = await FileSnapshotStore.open(dir);
    for (const [i, t] of [[10, 1], [20, 1]] as const) {
      const data = await tempFile(store, 3 * 1024 * 1024 + i);
      await call((done) => store.write(meta(i, t), data, done));
      await assert.rejects(Deno.stat(data.path), Deno.errors.NotFound, "moved into place");
    }
    const newest = store.read(meta(20, 1));
    assert.equal(newest.byteLength, 3 * 1024 * 1024 + 20);
    assert.equal(typeof newest.crc32c, "number", "CRC computed on adoption");
    await store.verify(meta(20, 1));
    // Damage the newest in the middle: verify names it, quarantine moves it aside.
    const f = await Deno.open(newest.path, { write: true });
    await f.seek(1_000_000, Deno.SeekMode.Start);
    await f.write(new Uint8Array([1, 2, 3]));
    f.close();
    await assert.rejects(store.verify(meta(20, 1)), SnapshotCorruptError);
    const moved = await store.quarantine(meta(20, 1));
    assert.equal(moved.length, 2);
    assert.ok(moved.every((p) => p.endsWith(".corrupt")));
    assert.deepEqual(store.latest(), meta(10, 1));
    const again = await FileSnapshotStore.open(dir);
    assert.deepEqual(again.latest(), meta(10, 1), "quarantined files are ignored at open");
    const data = await tempFile(again, 100);
    await call((done) => again.write(meta(30, 2), data, done));
    assert.equal(again.list().length, 2);
    assert.equal(await again.reap(), 1);
    assert.deepEqual(again.list().map((i) => i.meta.index), [30]);
  });
});

Deno.test("file snapshots: a file outside the store's directory is refused", async () => {
  await withDirs(async (dir, other) => {
    const store = await FileSnapshotStore.open(dir);
    const elsewhere = await FileSnapshotStore.open(other);
    const data = await tempFile(elsewhere, 10);
    await assert.rejects(
      call((done) => store.write(meta(5, 1), data, done)),
      /must be a temp file inside/,
    );
  });
});

interface Peer {
  mux: Mux;
  transport: TcpTransport;
  store: FileSnapshotStore;
  got: { msg: Message; data: SnapshotData }[];
}

async function peer(id: string, dir: string, book: Map<string, string>): Promise<Peer> {
  const store = await FileSnapshotStore.open(dir);
  const mux = Mux.listen({ hostname: "127.0.0.1", port: 0 });
  book.set(id, mux.address);
  const transport = new TcpTransport({
    self: id,
    resolve: (x) => book.get(x),
    mux,
    snapshotIo: fileSnapshotIo(store),
    snapshotChunkBytes: 256 * 1024,
  });
  const got: { msg: Message; data: SnapshotData }[] = [];
  transport.listen({
    onMessage: () => {},
    onSnapshot: (msg, data) => void got.push({ msg, data }),
  });
  return { mux, transport, store, got };
}

function snapshotMsg(m: SnapshotMeta): Message {
  return {
    kind: "snapshot",
    from: "a",
    to: "b",
    term: m.term,
    index: 0,
    logTerm: 0,
    entries: [],
    commit: m.index,
    reject: false,
    rejectHint: 0,
    context: "",
    snapshot: m,
  };
}

Deno.test("file snapshots: streamed from a stored file into the receiver's directory, CRC checked", async () => {
  await withDirs(async (da, db) => {
    const book = new Map<string, string>();
    const a = await peer("a", da, book);
    const b = await peer("b", db, book);
    try {
      const size = 8 * 1024 * 1024 + 123;
      await call((done) =>
        tempFile(a.store, size).then((d) => a.store.write(meta(40, 2), d, done))
      );
      const stored = a.store.read(meta(40, 2));
      const heapBefore = Deno.memoryUsage().heapUsed;
      const ok = await new Promise<boolean>((r) =>
        a.transport.sendSnapshot(snapshotMsg(meta(40, 2)), stored, r)
      );
      assert.equal(ok, true);
      const heapGrowth = Deno.memoryUsage().heapUsed - heapBefore;
      assert.ok(heapGrowth < size / 2, `heap grew ${heapGrowth} bytes for a ${size}-byte snapshot`);
      assert.equal(b.got.length, 1);
      const received = b.got[0]!.data;
      assert.ok(received instanceof FileSnapshotData);
      assert.ok(received.path.startsWith(db + "/"), "received into b's snapshot directory");
      assert.equal(received.byteLength, size);
      assert.equal(received.crc32c, stored.crc32c, "CRC carried");
      await call((done) => b.store.write(meta(40, 2), received, done));
      await b.store.verify(meta(40, 2));
      // A stored file damaged at rest no longer matches its CRC: the send fails, nothing arrives.
      const f = await Deno.open(stored.path, { write: true });
      await f.write(new Uint8Array([0xde, 0xad]));
      f.close();
      const bad = await new Promise<boolean>((r) =>
        a.transport.sendSnapshot(snapshotMsg(meta(40, 2)), stored, r)
      );
      assert.equal(bad, false);
      assert.equal(b.got.length, 1, "a damaged snapshot is never delivered");
      // The receiver notices the dropped connection and removes its temp file.
      const leftovers = () => [...Deno.readDirSync(db)].filter((e) => e.name.endsWith(".tmp"));
      for (let i = 0; i < 100 && leftovers().length > 0; i++) {
        await new Promise((r) => setTimeout(r, 20));
      }
      assert.deepEqual(leftovers(), [], "the aborted transfer's temp file was removed");
    } finally {
      await a.transport.shutdown();
      await b.transport.shutdown();
      await a.mux.close();
      await b.mux.close();
      await a.store.close();
      await b.store.close();
    }
  });
});
