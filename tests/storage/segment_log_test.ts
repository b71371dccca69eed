import assert from "node:assert/strict";
import {
  CorruptionError,
  StorageFailedError,
  StorageMisuseError,
} from "../../lib/storage/errors.ts";
import {
  LOG_META_FILE,
  RECORD_OVERHEAD,
  SegmentLog,
  type SegmentLogOptions,
  segmentName,
} from "../../lib/storage/segment_log.ts";
import { call, entry, flipByte, makeEntries, plain, segmentFiles, withTempDir } from "./helpers.ts";

async function openLog(dir: string, options?: SegmentLogOptions): Promise<SegmentLog> {
  return await SegmentLog.open(dir, options);
}

function all(log: SegmentLog) {
  if (log.lastIndex() < log.firstIndex()) return [];
  return log.entries(log.firstIndex(), log.lastIndex() + 1, Infinity);
}

Deno.test("segment log: append, read back, re-open sees the same log", async () => {
  await withTempDir(async (dir) => {
    const log = await openLog(dir);
    assert.equal(log.firstIndex(), 1);
    assert.equal(log.lastIndex(), 0);
    assert.equal(log.term(0), 0);
    const batch = makeEntries(1, 1000, 3, 100);
    await call((done) => log.append(batch, done));
    assert.equal(log.stats.writeCalls, 1, "one write for the whole batch");
    assert.equal(log.stats.dataSyncs, 1, "one fdatasync for the whole batch");
    assert.equal(log.stats.dirSyncs, 1, "the new segment's directory entry");
    await call((done) => log.append(makeEntries(1001, 10, 4), done));
    assert.equal(log.stats.dirSyncs, 1, "no directory fsync for appends to an existing segment");
    assert.equal(log.lastIndex(), 1010);
    assert.equal(log.term(1000), 3);
    assert.equal(log.term(1001), 4);
    const expected = plain([...batch, ...makeEntries(1001, 10, 4)]);
    assert.deepEqual(plain(all(log)), expected);
    await log.close();

    const again = await openLog(dir, { cacheBytes: 0 });
    assert.equal(again.openReport.torn, undefined);
    assert.equal(again.firstIndex(), 1);
    assert.equal(again.lastIndex(), 1010);
    assert.deepEqual(plain(all(again)), expected);
    assert.ok(again.stats.diskReads > 0, "served from disk after re-open");
    assert.equal(again.term(500), 3);
    await again.close();
  });
});

Deno.test("segment log: entries() returns at least one entry, then stays within maxBytes", async () => {
  await withTempDir(async (dir) => {
    for (const cacheBytes of [64 << 20, 0]) {
      const sub = `${dir}/c${cacheBytes}`;
      const log = await openLog(sub, { cacheBytes, segmentBytes: 1000 });
      await call((done) => log.append(makeEntries(1, 20, 1, 100), done));
      assert.equal(log.entries(1, 21, 0).length, 1, "maxBytes 0 still yields one");
      assert.equal(log.entries(5, 21, 99).length, 1, "an oversized first entry still comes");
      assert.equal(log.entries(1, 21, 100).length, 1);
      assert.equal(log.entries(1, 21, 299).length, 2);
      assert.equal(log.entries(1, 21, 300).length, 3);
      assert.equal(log.entries(3, 6, 10_000).length, 3, "bounded by hi");
      assert.deepEqual(plain(log.entries(7, 12, 350)), plain(makeEntries(7, 3, 1, 100)));
      if (cacheBytes === 0) assert.ok(log.stats.diskReads > 0);
      await log.close();
    }
  });
});

Deno.test("segment log: rollover at a tiny segment size, reads across segments", async () => {
  await withTempDir(async (dir) => {
    const log = await openLog(dir, { segmentBytes: 4 * (RECORD_OVERHEAD + 50), cacheBytes: 0 });
    for (let i = 1; i <= 30; i += 3) {
      await call((done) => log.append(makeEntries(i, 3, 1 + Math.floor(i / 10), 50), done));
    }
    const files = await segmentFiles(dir);
    assert.equal(files.length, 10, "a segment per batch (2 batches do not fit)");
    assert.equal(files[0], segmentName(1));
    assert.equal(files[1], segmentName(4));
    const expected: ReturnType<typeof plain> = [];
    for (let i = 1; i <= 30; i += 3) {
      expected.push(...plain(makeEntries(i, 3, 1 + Math.floor(i / 10), 50)));
    }
    assert.deepEqual(plain(log.entries(1, 31, Infinity)), expected);
    assert.deepEqual(plain(log.entries(2, 9, Infinity)), expected.slice(1, 8));
    await log.close();
    const again = await openLog(dir, { cacheBytes: 0 });
    assert.equal(again.openReport.segments, 10);
    assert.deepEqual(plain(all(again)), expected);
    await again.close();
  });
});

Deno.test("segment log: a batch larger than the segment size is one write in a new segment", async () => {
  await withTempDir(async (dir) => {
    const log = await openLog(dir, { segmentBytes: 1000 });
    await call((done) => log.append(makeEntries(1, 2, 1, 10), done));
    await call((done) => log.append(makeEntries(3, 100, 1, 100), done));
    assert.equal(log.stats.writeCalls, 2);
    assert.deepEqual(await segmentFiles(dir), [segmentName(1), segmentName(3)]);
    await log.close();
  });
});

Deno.test("segment log: replacing a conflicting suffix, within and across segments, survives re-open", async () => {
  await withTempDir(async (dir) => {
    const options = { segmentBytes: 5 * (RECORD_OVERHEAD + 20), cacheBytes: 0 };
    const log = await openLog(dir, options);
    for (let i = 1; i <= 20; i += 5) {
      await call((done) => log.append(makeEntries(i, 5, 1, 20), done));
    }
    assert.equal((await segmentFiles(dir)).length, 4);
    // Within the last segment.
    await call((done) => log.append(makeEntries(18, 2, 2, 20), done));
    assert.equal(log.lastIndex(), 19);
    // Across segments: 8.. replaced, segments starting at 11 and 16 removed.
    await call((done) => log.append(makeEntries(8, 3, 3, 20), done));
    assert.equal(log.lastIndex(), 10);
    assert.deepEqual(await segmentFiles(dir), [segmentName(1), segmentName(6)]);
    const expected = plain([...makeEntries(1, 7, 1, 20), ...makeEntries(8, 3, 3, 20)]);
    assert.deepEqual(plain(all(log)), expected);
    assert.equal(log.term(7), 1);
    assert.equal(log.term(8), 3);
    // Replace from the first entry of a segment.
    await call((done) => log.append(makeEntries(6, 1, 4, 20), done));
    assert.deepEqual(await segmentFiles(dir), [segmentName(1), segmentName(6)]);
    assert.equal(log.lastIndex(), 6);
    await log.close();

    const again = await openLog(dir, options);
    assert.equal(again.openReport.torn, undefined);
    assert.equal(again.lastIndex(), 6);
    assert.deepEqual(plain(all(again)), plain([...makeEntries(1, 5, 1, 20), entry(6, 4, 20)]));
    await call((done) => again.append(makeEntries(7, 3, 4), done));
    assert.equal(again.lastIndex(), 9);
    await again.close();
  });
});

Deno.test("segment log: truncation while the previous append is still queued", async () => {
  await withTempDir(async (dir) => {
    const log = await openLog(dir, { cacheBytes: 0 });
    const first = call((done) => log.append(makeEntries(1, 10, 1), done));
    const second = call((done) => log.append(makeEntries(6, 2, 2), done));
    // Visible at once, before durability.
    assert.equal(log.lastIndex(), 7);
    assert.equal(log.term(6), 2);
    assert.deepEqual(plain(all(log)), plain([...makeEntries(1, 5, 1), ...makeEntries(6, 2, 2)]));
    await Promise.all([first, second]);
    assert.deepEqual(plain(all(log)), plain([...makeEntries(1, 5, 1), ...makeEntries(6, 2, 2)]));
    await log.close();
    const again = await openLog(dir);
    assert.deepEqual(plain(all(again)), plain([...makeEntries(1, 5, 1), ...makeEntries(6, 2, 2)]));
    await again.close();
  });
});

Deno.test("segment log: compaction drops whole segments and survives re-open", async () => {
  await withTempDir(async (dir) => {
    const options = { segmentBytes: 5 * (RECORD_OVERHEAD + 10), cacheBytes: 0 };
    const log = await openLog(dir, options);
    for (let i = 1; i <= 25; i += 5) {
      await call((done) => log.append(makeEntries(i, 5, Math.ceil(i / 10), 10), done));
    }
    await call((done) => log.compact(12, 2, done));
    assert.equal(log.firstIndex(), 13);
    assert.equal(log.term(12), 2);
    assert.equal(log.lastIndex(), 25);
    assert.deepEqual(await segmentFiles(dir), [segmentName(11), segmentName(16), segmentName(21)]);
    assert.throws(() => log.term(11), StorageMisuseError);
    assert.throws(() => log.entries(12, 14, 100), StorageMisuseError);
    await log.close();

    const again = await openLog(dir, options);
    assert.equal(again.firstIndex(), 13);
    assert.equal(again.term(12), 2);
    assert.equal(again.lastIndex(), 25);
    const expected = [];
    for (let i = 13; i <= 25; i++) {
      expected.push(entry(i, Math.ceil((Math.floor((i - 1) / 5) * 5 + 1) / 10), 10));
    }
    assert.deepEqual(plain(all(again)), plain(expected));
    // Compact everything: no segment left, appends continue after.
    await call((done) => again.compact(25, again.term(25), done));
    assert.deepEqual(await segmentFiles(dir), []);
    assert.equal(again.firstIndex(), 26);
    assert.equal(again.lastIndex(), 25);
    await call((done) => again.append(makeEntries(26, 2, 3), done));
    await again.close();

    const third = await openLog(dir);
    assert.equal(third.firstIndex(), 26);
    assert.equal(third.term(25), 3);
    assert.deepEqual(plain(all(third)), plain(makeEntries(26, 2, 3)));
    await third.close();
  });
});

Deno.test("segment log: a segment left behind by a crash during compaction is removed at open", async () => {
  await withTempDir(async (dir) => {
    const options = { segmentBytes: 3 * (RECORD_OVERHEAD + 10) };
    const log = await openLog(dir, options);
    for (let i = 1; i <= 9; i += 3) {
      await call((done) => log.append(makeEntries(i, 3, 1, 10), done));
    }
    const saved = await Deno.readFile(`${dir}/${segmentName(1)}`);
    await call((done) => log.compact(5, 1, done));
    await log.close();
    // The crash: logmeta was durable, the deletion was not.
    await Deno.writeFile(`${dir}/${segmentName(1)}`, saved);
    const again = await openLog(dir, options);
    assert.deepEqual(again.openReport.removedStaleSegments, [segmentName(1)]);
    assert.equal(again.firstIndex(), 6);
    assert.deepEqual(plain(all(again)), plain(makeEntries(6, 4, 1, 10)));
    await again.close();
  });
});

Deno.test("segment log: reset discards everything and restarts after the snapshot", async () => {
  await withTempDir(async (dir) => {
    const log = await openLog(dir, { segmentBytes: 200 });
    await call((done) => log.append(makeEntries(1, 20, 1, 20), done));
    const conf = { voters: ["a"], learners: [] };
    await call((done) => log.reset({ index: 100, term: 7, conf }, done));
    assert.equal(log.firstIndex(), 101);
    assert.equal(log.lastIndex(), 100);
    assert.equal(log.term(100), 7);
    assert.deepEqual(await segmentFiles(dir), []);
    await call((done) => log.append(makeEntries(101, 3, 7), done));
    await log.close();

    const again = await openLog(dir);
    assert.equal(again.firstIndex(), 101);
    assert.equal(again.term(100), 7);
    assert.deepEqual(plain(all(again)), plain(makeEntries(101, 3, 7)));
    // Reset below the current log, then re-open: empty after 5.
    await call((done) => again.reset({ index: 5, term: 2, conf }, done));
    await again.close();
    const third = await openLog(dir);
    assert.equal(third.firstIndex(), 6);
    assert.equal(third.lastIndex(), 5);
    assert.equal(third.term(5), 2);
    await third.close();
  });
});

/** A log of 4 batches of 5 entries (40 data bytes each) in one segment; returns the file path. */
async function fourBatches(dir: string): Promise<string> {
  const log = await openLog(dir);
  for (let i = 1; i <= 20; i += 5) await call((done) => log.append(makeEntries(i, 5, 1, 40), done));
  await log.close();
  return `${dir}/${segmentName(1)}`;
}

const RECORD = RECORD_OVERHEAD + 40;

Deno.test("segment log: a torn last record is cut; the rest survives; appends continue", async () => {
  await withTempDir(async (dir) => {
    const path = await fourBatches(dir);
    const size = (await Deno.stat(path)).size;
    assert.equal(size, 20 * RECORD);
    await Deno.truncate(path, size - 30); // in the middle of record 20
    const log = await openLog(dir);
    assert.equal(log.lastIndex(), 19);
    assert.deepEqual(plain(all(log)), plain(makeEntries(1, 19, 1, 40)));
    const torn = log.openReport.torn;
    assert.ok(torn !== undefined);
    assert.equal(torn.offset, 19 * RECORD);
    assert.equal(torn.droppedBytes, RECORD - 30);
    assert.equal(torn.droppedIntactRecords, 0);
    assert.equal((await Deno.stat(path)).size, 19 * RECORD, "file cut at the torn record");
    await call((done) => log.append(makeEntries(20, 3, 2, 40), done));
    await log.close();
    const again = await openLog(dir);
    assert.equal(again.openReport.torn, undefined);
    assert.deepEqual(
      plain(all(again)),
      plain([...makeEntries(1, 19, 1, 40), ...makeEntries(20, 3, 2, 40)]),
    );
    await again.close();
  });
});

Deno.test("segment log: garbage or zeros after the last record are cut, no entry lost", async () => {
  await withTempDir(async (dir) => {
    const path = await fourBatches(dir);
    for (
      const tail of [
        crypto.getRandomValues(new Uint8Array(777)),
        new Uint8Array(4096),
        new Uint8Array(5),
      ]
    ) {
      const f = await Deno.open(path, { append: true });
      await f.write(tail);
      f.close();
      const log = await openLog(dir);
      assert.equal(log.lastIndex(), 20);
      assert.deepEqual(plain(all(log)), plain(makeEntries(1, 20, 1, 40)));
      assert.equal(log.openReport.torn?.droppedBytes, tail.length);
      assert.equal((await Deno.stat(path)).size, 20 * RECORD);
      await log.close();
    }
    const log = await openLog(dir);
    await call((done) => log.append(makeEntries(21, 1, 1, 40), done));
    assert.equal(log.lastIndex(), 21);
    await log.close();
  });
});

Deno.test("segment log: damage inside the last write batch cuts that batch only", async () => {
  await withTempDir(async (dir) => {
    const path = await fourBatches(dir);
    // Record 17 (2nd of the last batch 16..20) damaged, 18..20 intact: a torn multi-page write.
    await flipByte(path, 16 * RECORD + 40, 0xff);
    const log = await openLog(dir);
    assert.equal(log.lastIndex(), 16);
    assert.equal(log.openReport.torn?.droppedIntactRecords, 3);
    assert.deepEqual(plain(all(log)), plain(makeEntries(1, 16, 1, 40)));
    await log.close();
  });
});

Deno.test("segment log: damage followed by a later write throws naming the file and offset", async () => {
  await withTempDir(async (dir) => {
    const path = await fourBatches(dir);
    await flipByte(path, 2 * RECORD + 50); // entry 3, first batch; three later batches follow
    const err = await assertRejectsCorrupt(() => openLog(dir));
    assert.equal(err.file, path);
    assert.equal(err.offset, 2 * RECORD);
    assert.match(err.message, /log-00000000000000000001\.seg at offset 146:/);
    assert.match(err.message, /later write/);
    assert.equal((await Deno.stat(path)).size, 20 * RECORD, "nothing was cut");
  });
});

Deno.test("segment log: damage in a segment that is not the last throws", async () => {
  await withTempDir(async (dir) => {
    const options = { segmentBytes: 5 * RECORD };
    const log = await openLog(dir, options);
    for (let i = 1; i <= 15; i += 5) {
      await call((done) => log.append(makeEntries(i, 5, 1, 40), done));
    }
    await log.close();
    const path = `${dir}/${segmentName(6)}`;
    await flipByte(path, 5 * RECORD - 3, 0x10); // the last record of the middle segment
    const err = await assertRejectsCorrupt(() => openLog(dir, options));
    assert.equal(err.file, path);
    assert.equal(err.offset, 4 * RECORD);
    assert.match(err.message, /not the last/);
  });
});

Deno.test("segment log: a missing middle segment is a gap, not a shorter log", async () => {
  await withTempDir(async (dir) => {
    const options = { segmentBytes: 5 * RECORD };
    const log = await openLog(dir, options);
    for (let i = 1; i <= 15; i += 5) {
      await call((done) => log.append(makeEntries(i, 5, 1, 40), done));
    }
    await log.close();
    await Deno.remove(`${dir}/${segmentName(6)}`);
    const err = await assertRejectsCorrupt(() => openLog(dir, options));
    assert.match(err.message, /gap in the log/);
    assert.equal(err.file, `${dir}/${segmentName(11)}`);
  });
});

Deno.test("segment log: misuse throws at once; I/O errors reach done and stop the store", async () => {
  await withTempDir(async (dir) => {
    const raft = `${dir}/raft`;
    const log = await openLog(raft, { segmentBytes: 100 });
    await call((done) => log.append(makeEntries(1, 2, 1), done));
    assert.throws(() => log.append(makeEntries(5, 1, 1), () => {}), /gap/);
    assert.throws(() => log.append(makeEntries(3, 1, 0), () => {}), /term 0 after term 1/);
    assert.throws(() => log.compact(9, 1, () => {}), StorageMisuseError);
    // The directory vanishes: the next segment cannot be created.
    await Deno.remove(raft, { recursive: true });
    const results: (Error | undefined)[] = [];
    await new Promise<void>((resolve) => {
      log.append(makeEntries(3, 5, 1, 200), (err) => results.push(err));
      log.append(makeEntries(8, 1, 1), (err) => {
        results.push(err);
        resolve();
      });
    });
    assert.equal(results.length, 2);
    assert.ok(results[0] instanceof Deno.errors.NotFound, String(results[0]));
    assert.ok(results[1] instanceof StorageFailedError);
    await log.close();
  });
});

Deno.test("segment log: the cache stays bounded and entries come back from disk", async () => {
  await withTempDir(async (dir) => {
    const log = await openLog(dir, {
      cacheBytes: 10 * (100 + 64),
      segmentBytes: 20 * RECORD_OVERHEAD * 5,
    });
    for (let i = 1; i <= 100; i += 10) {
      await call((done) => log.append(makeEntries(i, 10, 1, 100), done));
    }
    const reads = log.stats.diskReads;
    assert.deepEqual(plain(log.entries(95, 101, Infinity)), plain(makeEntries(95, 6, 1, 100)));
    assert.equal(log.stats.diskReads, reads, "recent entries come from the cache");
    assert.deepEqual(plain(log.entries(1, 101, Infinity)), plain(makeEntries(1, 100, 1, 100)));
    assert.ok(log.stats.diskReads > reads, "older entries come from disk");
    await log.close();
  });
});

Deno.test("segment log: logmeta damaged in both slots throws", async () => {
  await withTempDir(async (dir) => {
    const log = await openLog(dir);
    await call((done) => log.append(makeEntries(1, 3, 1), done));
    await call((done) => log.compact(2, 1, done));
    await log.close();
    const path = `${dir}/${LOG_META_FILE}`;
    await flipByte(path, 10);
    await flipByte(path, 4096 + 10);
    const err = await assertRejectsCorrupt(() => openLog(dir));
    assert.equal(err.file, path);
    assert.match(err.message, /both slots/);
  });
});

async function assertRejectsCorrupt(fn: () => Promise<unknown>): Promise<CorruptionError> {
  try {
    await fn();
  } catch (e) {
    assert.ok(e instanceof CorruptionError, `expected CorruptionError, got ${e}`);
    return e;
  }
  assert.fail("expected open to throw");
}

Deno.test("segment log: a compaction point inside the last segment starts a new one, so the next compaction frees it", async () => {
  await withTempDir(async (dir) => {
    // Big segments: without the roll everything would stay in one file forever.
    const log = await openLog(dir, { segmentBytes: 1 << 20, cacheBytes: 0 });
    await call((done) => log.append(makeEntries(1, 10, 1, 10), done));
    await call((done) => log.compact(5, 1, done));
    assert.deepEqual(await segmentFiles(dir), [segmentName(1)]);
    await call((done) => log.append(makeEntries(11, 10, 1, 10), done));
    assert.deepEqual(await segmentFiles(dir), [segmentName(1), segmentName(11)]);
    await call((done) => log.compact(15, 1, done));
    assert.deepEqual(await segmentFiles(dir), [segmentName(11)], "the old segment went whole");
    assert.deepEqual(plain(all(log)), plain(makeEntries(16, 5, 1, 10)));
    await log.close();
  });
});
