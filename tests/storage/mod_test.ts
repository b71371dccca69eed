import assert from "node:assert/strict";
import { CorruptionError, openStorage } from "../../lib/storage/mod.ts";
import { call, makeEntries, plain, withTempDir } from "./helpers.ts";

Deno.test("openStorage: lays out the data dir and round-trips all three stores", async () => {
  await withTempDir(async (dir) => {
    const s = await openStorage(dir);
    assert.deepEqual(s.warnings, []);
    await call((done) => s.stable.setHardState({ term: 2, vote: "n1", commit: 3 }, done));
    await call((done) => s.log.append(makeEntries(1, 5, 2, 10), done));
    await call((done) =>
      s.snapshots.write(
        { index: 3, term: 2, conf: { voters: ["n1"], learners: [] } },
        new Uint8Array([1, 2, 3]),
        done,
      )
    );
    await call((done) => s.log.compact(2, 2, done));
    await s.close();
    const names: string[] = [];
    for await (const e of Deno.readDir(`${dir}/raft`)) names.push(e.name);
    assert.deepEqual(names.sort(), ["hardstate", "log-00000000000000000001.seg", "logmeta"]);

    const again = await openStorage(dir);
    assert.deepEqual(again.stable.hardState(), { term: 2, vote: "n1", commit: 3 });
    assert.equal(again.log.firstIndex(), 3);
    assert.deepEqual(plain(again.log.entries(3, 6, Infinity)), plain(makeEntries(3, 3, 2, 10)));
    assert.equal(again.snapshots.latest()?.index, 3);
    await again.close();
  });
});

Deno.test("openStorage: a missing hard state beside an existing log is refused", async () => {
  await withTempDir(async (dir) => {
    const s = await openStorage(dir);
    await call((done) => s.log.append(makeEntries(1, 1, 1), done));
    await s.close();
    await Deno.remove(`${dir}/raft/hardstate`);
    await assert.rejects(() => openStorage(dir), (e: unknown) => {
      assert.ok(e instanceof CorruptionError);
      assert.match(e.message, /hardstate.*missing/);
      return true;
    });
  });
});

Deno.test("openStorage: a torn tail and a commit index beyond the log become warnings", async () => {
  await withTempDir(async (dir) => {
    const s = await openStorage(dir);
    await call((done) => s.stable.setHardState({ term: 1, vote: "", commit: 4 }, done));
    await call((done) => s.log.append(makeEntries(1, 4, 1, 10), done));
    await s.close();
    const seg = `${dir}/raft/log-00000000000000000001.seg`;
    await Deno.truncate(seg, (await Deno.stat(seg)).size - 1);
    const again = await openStorage(dir);
    assert.equal(again.log.lastIndex(), 3);
    assert.equal(again.warnings.length, 2);
    assert.match(again.warnings[0] ?? "", /torn tail cut/);
    assert.match(again.warnings[1] ?? "", /commit index 4 is beyond the stored log/);
    await again.close();
  });
});
