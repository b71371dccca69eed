/**
 * Randomized model test: SegmentLog against a plain array under random
 * appends (with conflicting suffixes), compactions, resets, re-opens and
 * torn tails, with tiny segments and a tiny cache so every path runs.
 */

import assert from "node:assert/strict";
import type { Entry } from "../../lib/raft/types.ts";
import { SegmentLog } from "../../lib/storage/segment_log.ts";
import { call, entry, plain, withTempDir } from "./helpers.ts";

/** mulberry32: a small seeded generator. */
function prng(seed: number): (n: number) => number {
  let a = seed >>> 0;
  return (n) => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * n);
  };
}

class Model {
  prevIndex = 0;
  prevTerm = 0;
  entries: Entry[] = [];
  get lastIndex() {
    return this.prevIndex + this.entries.length;
  }
  term(i: number) {
    return i === this.prevIndex ? this.prevTerm : this.entries[i - this.prevIndex - 1]!.term;
  }
}

function assertSame(log: SegmentLog, model: Model, where: string) {
  assert.equal(log.firstIndex(), model.prevIndex + 1, `${where}: firstIndex`);
  assert.equal(log.lastIndex(), model.lastIndex, `${where}: lastIndex`);
  assert.equal(log.term(model.prevIndex), model.prevTerm, `${where}: term at prev`);
  if (model.entries.length > 0) {
    const got = log.entries(model.prevIndex + 1, model.lastIndex + 1, Infinity);
    assert.deepEqual(plain(got), plain(model.entries), `${where}: entries`);
    for (const e of model.entries) assert.equal(log.term(e.index), e.term);
  }
}

for (const seed of [1, 2, 3, 4, 5, 6]) {
  Deno.test(`segment log model: seed ${seed}`, async () => {
    await withTempDir(async (dir) => {
      const rand = prng(seed);
      const options = { segmentBytes: 300 + rand(400), cacheBytes: rand(2) * 500 };
      let log = await SegmentLog.open(dir, options);
      const model = new Model();
      let term = 1;
      for (let step = 0; step < 300; step++) {
        const op = rand(100);
        if (op < 65) {
          // Append, sometimes replacing a suffix.
          let from = model.lastIndex + 1;
          if (rand(4) === 0 && model.entries.length > 0) {
            from = model.prevIndex + 1 + rand(model.entries.length);
            term++;
          } else if (rand(10) === 0) term++;
          const n = 1 + rand(8);
          const batch: Entry[] = [];
          for (let i = 0; i < n; i++) batch.push(entry(from + i, term, rand(60)));
          const pending = call((done) => log.append(batch, done));
          model.entries.length = from - model.prevIndex - 1;
          model.entries.push(...batch);
          // Sometimes let a second operation queue behind the first.
          if (rand(3) > 0) await pending;
          else {
            assertSame(log, model, `seed ${seed} step ${step} (queued)`);
            await pending;
          }
        } else if (op < 80) {
          if (model.entries.length === 0) continue;
          const index = model.prevIndex + rand(model.entries.length + 1);
          const t = model.term(index);
          await call((done) => log.compact(index, t, done));
          model.entries = model.entries.slice(index - model.prevIndex);
          model.prevIndex = index;
          model.prevTerm = t;
        } else if (op < 84) {
          const index = model.lastIndex + rand(5) - 2;
          if (index < 0) continue;
          term++;
          await call((done) =>
            log.reset({ index, term, conf: { voters: [], learners: [] } }, done)
          );
          model.entries = [];
          model.prevIndex = index;
          model.prevTerm = term;
        } else if (op < 94) {
          await log.close();
          log = await SegmentLog.open(dir, options);
          assert.equal(log.openReport.torn, undefined);
        } else {
          // A torn last write: cut into the last batch's records, re-open.
          await log.close();
          const segs: string[] = [];
          for await (const e of Deno.readDir(dir)) if (e.name.endsWith(".seg")) segs.push(e.name);
          segs.sort();
          const last = segs.at(-1);
          if (last !== undefined) {
            const path = `${dir}/${last}`;
            const size = (await Deno.stat(path)).size;
            if (size > 0) await Deno.truncate(path, size - 1 - rand(Math.min(size, 40)));
          }
          log = await SegmentLog.open(dir, options);
          assert.ok(log.lastIndex() <= model.lastIndex, `seed ${seed}: torn open grew the log`);
          assert.ok(log.lastIndex() >= model.prevIndex, `seed ${seed}: below the compaction point`);
          model.entries.length = Math.max(0, log.lastIndex() - model.prevIndex);
        }
        assertSame(log, model, `seed ${seed} step ${step}`);
      }
      await log.close();
      const final = await SegmentLog.open(dir, options);
      assertSame(final, model, `seed ${seed} final`);
      await final.close();
    });
  });
}
