import assert from "node:assert/strict";
import { CorruptionError, StorageMisuseError } from "../../lib/storage/errors.ts";
import { SLOT_BYTES } from "../../lib/storage/slot_file.ts";
import { FileStableStore, HARD_STATE_FILE } from "../../lib/storage/stable_store.ts";
import { call, flipByte, withTempDir } from "./helpers.ts";

Deno.test("stable store: new, set, re-open", async () => {
  await withTempDir(async (dir) => {
    const store = await FileStableStore.open(dir);
    assert.equal(store.openReport.created, true);
    assert.deepEqual(store.hardState(), { term: 0, vote: "", commit: 0 });
    await call((done) => store.setHardState({ term: 2, vote: "node-1", commit: 7 }, done));
    assert.deepEqual(store.hardState(), { term: 2, vote: "node-1", commit: 7 });
    await store.close();
    assert.equal((await Deno.stat(`${dir}/${HARD_STATE_FILE}`)).size, 2 * SLOT_BYTES);

    const again = await FileStableStore.open(dir);
    assert.equal(again.openReport.created, false);
    assert.equal(again.openReport.oneSlotDamaged, false);
    assert.deepEqual(again.hardState(), { term: 2, vote: "node-1", commit: 7 });
    await again.close();
  });
});

Deno.test("stable store: queued writes complete in order, exactly once, newest wins", async () => {
  await withTempDir(async (dir) => {
    const store = await FileStableStore.open(dir);
    const order: number[] = [];
    const writes = [];
    for (let term = 1; term <= 5; term++) {
      writes.push(
        call((done) =>
          store.setHardState({ term, vote: `n${term}`, commit: term * 10 }, (err) => {
            order.push(term);
            done(err);
          })
        ),
      );
    }
    // Memory reflects the newest at once.
    assert.deepEqual(store.hardState(), { term: 5, vote: "n5", commit: 50 });
    await Promise.all(writes);
    assert.deepEqual(order, [1, 2, 3, 4, 5]);
    await store.close();
    const again = await FileStableStore.open(dir);
    assert.deepEqual(again.hardState(), { term: 5, vote: "n5", commit: 50 });
    await again.close();
  });
});

Deno.test("stable store: a torn write falls back to the previous hard state", async () => {
  await withTempDir(async (dir) => {
    const store = await FileStableStore.open(dir);
    await call((done) => store.setHardState({ term: 1, vote: "a", commit: 1 }, done)); // seq 2, slot 0
    await call((done) => store.setHardState({ term: 2, vote: "b", commit: 2 }, done)); // seq 3, slot 1
    await call((done) => store.setHardState({ term: 3, vote: "c", commit: 3 }, done)); // seq 4, slot 0
    await store.close();
    // The last write (slot 0) is torn: its tail never reached the disk.
    const path = `${dir}/${HARD_STATE_FILE}`;
    const bytes = await Deno.readFile(path);
    bytes.fill(0, 20, SLOT_BYTES);
    await Deno.writeFile(path, bytes);
    const again = await FileStableStore.open(dir);
    assert.equal(again.openReport.oneSlotDamaged, true);
    assert.deepEqual(again.hardState(), { term: 2, vote: "b", commit: 2 });
    // Writing continues and re-open sees it.
    await call((done) => again.setHardState({ term: 3, vote: "", commit: 3 }, done));
    await again.close();
    const third = await FileStableStore.open(dir);
    assert.deepEqual(third.hardState(), { term: 3, vote: "", commit: 3 });
    await third.close();
  });
});

Deno.test("stable store: a torn first write falls back to the empty state", async () => {
  await withTempDir(async (dir) => {
    const store = await FileStableStore.open(dir);
    await call((done) => store.setHardState({ term: 9, vote: "x", commit: 0 }, done));
    await store.close();
    await flipByte(`${dir}/${HARD_STATE_FILE}`, 25);
    const again = await FileStableStore.open(dir);
    assert.deepEqual(again.hardState(), { term: 0, vote: "", commit: 0 });
    await again.close();
  });
});

Deno.test("stable store: both slots damaged is a clear error", async () => {
  await withTempDir(async (dir) => {
    const store = await FileStableStore.open(dir);
    await call((done) => store.setHardState({ term: 1, vote: "a", commit: 1 }, done));
    await store.close();
    const path = `${dir}/${HARD_STATE_FILE}`;
    await flipByte(path, 21);
    await flipByte(path, SLOT_BYTES + 21);
    await assert.rejects(() => FileStableStore.open(dir), (e: unknown) => {
      assert.ok(e instanceof CorruptionError);
      assert.equal(e.file, path);
      assert.match(e.message, /hardstate: both slots fail verification.*CRC mismatch/);
      return true;
    });
    // A file cut short is damaged too.
    await Deno.truncate(path, 10);
    await assert.rejects(() => FileStableStore.open(dir), CorruptionError);
  });
});

Deno.test("stable store: term never goes back, vote never changes within a term", async () => {
  await withTempDir(async (dir) => {
    const store = await FileStableStore.open(dir);
    await call((done) => store.setHardState({ term: 4, vote: "a", commit: 0 }, done));
    assert.throws(
      () => store.setHardState({ term: 3, vote: "", commit: 0 }, () => {}),
      StorageMisuseError,
    );
    assert.throws(
      () => store.setHardState({ term: 4, vote: "b", commit: 0 }, () => {}),
      /vote in term 4/,
    );
    assert.deepEqual(store.hardState(), { term: 4, vote: "a", commit: 0 });
    await store.close();
  });
});
