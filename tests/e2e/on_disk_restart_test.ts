/**
 * -on-disk fast restart (issue [4/8] point 5): a node whose db.sqlite
 * matches its fingerprint starts without rebuilding it — after a graceful
 * stop (checkpointed at close) and after a crash past a snapshot (the file
 * as the snapshot left it; the WAL is dropped and the log tail replayed) —
 * and holds exactly the same data. A file changed behind the node's back
 * does not match and is rebuilt from snapshot + log.
 */

import assert from "node:assert/strict";
import { respawnNode, spawnNode } from "../util/node.ts";
import { databaseHash, mustExecute, queryRows, startTracked, withNodes } from "./helpers.ts";

const FLAGS = ["-on-disk", "-raft-snap", "40", "-raft-snap-int", "0s"];
const NOT_REBUILT = /matches its fingerprint at index (\d+); not rebuilt/;

async function writeRows(url: string, from: number, n: number): Promise<void> {
  for (let i = from; i < from + n; i++) {
    await mustExecute(url, [[
      "INSERT INTO t(id, big, b, s) VALUES(?, 9223372036854775000 + ?, randomblob(8), ?)",
      i,
      i,
      `row ${i}`,
    ]]);
  }
}

Deno.test("on-disk restart: a matching database file is used as is, after SIGTERM and after SIGKILL", () =>
  withNodes("ondisk-fast", async (dir, track) => {
    const first = await startTracked(track, () => spawnNode(dir, FLAGS));
    await mustExecute(first.url, [
      "CREATE TABLE t(id INTEGER PRIMARY KEY, big INTEGER, b BLOB, s TEXT)",
    ]);
    await writeRows(first.url, 0, 100);
    const before = await databaseHash(first.url);

    // Graceful stop: the final checkpoint leaves the file complete.
    const term = await first.kill("SIGTERM");
    assert.equal(term.code, 0, first.stderr());
    const second = await startTracked(track, () => respawnNode(first, FLAGS));
    const m = NOT_REBUILT.exec(second.stderr());
    assert.ok(m !== null, `no fast restart after SIGTERM:\n${second.stderr()}`);
    assert.equal((await databaseHash(second.url)).hash, before.hash);

    // Past a snapshot, then a crash: the file is as the snapshot left it,
    // the WAL (later writes) is dropped and the log replays them.
    await writeRows(second.url, 100, 60);
    const beforeKill = await databaseHash(second.url);
    await second.kill("SIGKILL");
    const third = await startTracked(track, () => respawnNode(first, FLAGS));
    const m2 = NOT_REBUILT.exec(third.stderr());
    assert.ok(m2 !== null, `no fast restart after SIGKILL:\n${third.stderr()}`);
    assert.equal((await databaseHash(third.url)).hash, beforeKill.hash);
    const count = await queryRows(third.url, "SELECT COUNT(*) FROM t");
    assert.deepEqual(count, [[160]]);
    await third.kill("SIGKILL");
  }));

Deno.test("on-disk restart: a database file changed behind the node's back is rebuilt", () =>
  withNodes("ondisk-tamper", async (dir, track) => {
    const first = await startTracked(track, () => spawnNode(dir, FLAGS));
    await mustExecute(first.url, [
      "CREATE TABLE t(id INTEGER PRIMARY KEY, big INTEGER, b BLOB, s TEXT)",
    ]);
    await writeRows(first.url, 0, 50);
    const before = await databaseHash(first.url);
    assert.equal((await first.kill("SIGTERM")).code, 0);
    // Someone edits the file (a different size and mtime): the fingerprint no longer matches.
    const f = await Deno.open(`${dir}/db.sqlite`, { append: true });
    await f.write(new Uint8Array(4096));
    f.close();
    const second = await startTracked(track, () => respawnNode(first, FLAGS));
    assert.equal(NOT_REBUILT.test(second.stderr()), false, "must not trust a changed file");
    assert.equal((await databaseHash(second.url)).hash, before.hash);
    await second.kill("SIGKILL");
  }));

Deno.test("on-disk restart: a damaged newest snapshot is caught in the background and replaced", () =>
  withNodes("ondisk-badsnap", async (dir, track) => {
    const first = await startTracked(track, () => spawnNode(dir, FLAGS));
    await mustExecute(first.url, [
      "CREATE TABLE t(id INTEGER PRIMARY KEY, big INTEGER, b BLOB, s TEXT)",
    ]);
    await writeRows(first.url, 0, 60);
    const before = await databaseHash(first.url);
    assert.equal((await first.kill("SIGTERM")).code, 0);
    const snaps = [...Deno.readDirSync(`${dir}/snapshots`)]
      .map((e) => e.name).filter((n) => n.endsWith(".snap")).sort((a, b) =>
        Number(a.split("-")[1]?.split(".")[0]) - Number(b.split("-")[1]?.split(".")[0])
      );
    const newest = snaps.at(-1)!;
    const f = await Deno.open(`${dir}/snapshots/${newest}`, { write: true });
    await f.seek(2000, Deno.SeekMode.Start);
    await f.write(new Uint8Array([1, 2, 3, 4]));
    f.close();
    const second = await startTracked(track, () => respawnNode(first, FLAGS));
    assert.ok(NOT_REBUILT.test(second.stderr()), "still a fast restart");
    for (let i = 0; i < 100 && !/replaces the damaged one/.test(second.stderr()); i++) {
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.match(second.stderr(), /failed its background check/);
    assert.match(second.stderr(), /replaces the damaged one/);
    const names = [...Deno.readDirSync(`${dir}/snapshots`)].map((e) => e.name);
    assert.ok(names.includes(`${newest}.corrupt`), names.join(" "));
    // The replacement is at the applied index (the new term's no-op may be past the old one).
    assert.ok(names.some((n) => n.endsWith(".snap")), names.join(" "));
    assert.equal((await databaseHash(second.url)).hash, before.hash);
    // The replacement is sound: a normal (in-memory) start restores from it.
    assert.equal((await second.kill("SIGTERM")).code, 0);
    const third = await startTracked(
      track,
      () => respawnNode(first, ["-raft-snap", "40", "-raft-snap-int", "0s"]),
    );
    assert.equal((await databaseHash(third.url)).hash, before.hash);
    assert.doesNotMatch(third.stderr(), /corrupt/, "the newest snapshot now verifies");
    await third.kill("SIGKILL");
  }));
