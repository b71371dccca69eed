/**
 * A follower whose snapshots are damaged on disk (bytes flipped in the
 * middle of every `.snap` file while it was down, its log compacted behind
 * them) detects it at start, never loads them, says so, keeps them as
 * `*.corrupt`, and fetches a good snapshot from the leader
 * (lib/server/snapshot_recovery.ts). `-raft-snap 50` makes every node
 * snapshot and compact often.
 *
 * @module
 */

import assert from "node:assert/strict";
import { get, mustExecute } from "../helpers.ts";
import { skipUnlessClustering } from "./available.ts";
import { type Cluster, type ClusterNode, eventually, rowsOn, withCluster } from "./harness.ts";

const ignore = skipUnlessClustering(
  "corrupt snapshot test (tests/e2e/cluster/corrupt_snapshot_test.ts)",
);

const SNAP_FLAGS = ["-raft-snap", "50", "-raft-snap-int", "1s"];

async function writeRows(url: string, from: number, n: number, width = 8): Promise<void> {
  for (let i = from; i < from + n; i += width) {
    const batch = [];
    for (let k = i; k < Math.min(i + width, from + n); k++) {
      batch.push(mustExecute(url, [["INSERT INTO t(id, s) VALUES(?, ?)", k, `row ${k}`]]));
    }
    await Promise.all(batch);
  }
}

async function countOn(n: ClusterNode): Promise<number> {
  return Number((await rowsOn(n, "SELECT COUNT(*) FROM t"))[0]?.[0]);
}

async function snapshotsTaken(n: ClusterNode): Promise<number> {
  const a = await get(n.url, "/status", 2_000);
  const s = JSON.parse(a.text) as { store?: { snapshots_taken?: number } };
  return s.store?.snapshots_taken ?? -1;
}

async function filesIn(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) out.push(e.name);
  return out.sort();
}

/** Flips a run of bytes in the middle of `path` (same size: only the CRC can tell). */
async function damage(path: string): Promise<void> {
  const bytes = await Deno.readFile(path);
  assert.ok(bytes.length > 64, `${path} is too small to damage (${bytes.length} bytes)`);
  const mid = Math.floor(bytes.length / 2);
  for (let i = mid; i < mid + 16; i++) bytes[i] = bytes[i]! ^ 0x5a;
  await Deno.writeFile(path, bytes);
}

Deno.test({
  name:
    "corrupt snapshot: a follower with damaged snapshots reports them, keeps them as *.corrupt and recovers from the leader",
  ignore,
  fn: () =>
    withCluster({ prefix: "corrupt-snap", flags: SNAP_FLAGS }, async (c: Cluster) => {
      const leader = await c.leader();
      await mustExecute(leader.url, ["CREATE TABLE t(id INTEGER PRIMARY KEY, s TEXT)"]);
      const f = c.followersOf(leader)[0]!;
      await writeRows(leader.url, 0, 300);
      await eventually("the follower has every row", async () => await countOn(f) === 300);
      await eventually(
        "the follower took two snapshots",
        async () => (await snapshotsTaken(f)) >= 2,
        20_000,
      );
      await c.kill(f, "SIGTERM");

      const snapDir = `${f.dataDir}/snapshots`;
      const snaps = (await filesIn(snapDir)).filter((n) => n.endsWith(".snap"));
      assert.ok(snaps.length >= 1, `snapshots on disk: ${snaps.join(", ")}`);
      for (const name of snaps) await damage(`${snapDir}/${name}`);
      // The cluster moves on while the follower is down.
      await writeRows(leader.url, 300, 100);

      await c.restart(f);
      await eventually("the follower has every row again", async () =>
        await countOn(f) === 400, 30_000);
      const logs = f.logs();
      for (const name of snaps) {
        assert.match(
          logs,
          new RegExp(`snapshot \\S*/${name.replace(".", "\\.")} is corrupt and will not be loaded`),
          `the corruption of ${name} is reported`,
        );
      }
      assert.match(logs, /CRC32C/);
      assert.match(logs, /recovering from the leader/);
      const after = await filesIn(snapDir);
      for (const name of snaps) {
        assert.ok(after.includes(`${name}.corrupt`), `${name}.corrupt kept: ${after.join(", ")}`);
      }
      await eventually(
        "the recovery marker is removed once caught up",
        async () =>
          !(await filesIn(`${f.dataDir}/raft`)).includes("recovery.json"),
        20_000,
      );
      // The line is written as the marker goes; stderr reaches the harness a moment later.
      await eventually("the end of the recovery is logged", () =>
        Promise.resolve(/recovery finished/.test(f.logs())), 5_000);

      // The follower serves the same data and keeps replicating.
      const rows = await rowsOn(f, "SELECT id, s FROM t WHERE id IN (0, 299, 399) ORDER BY id");
      assert.deepEqual(rows, [[0, "row 0"], [299, "row 299"], [399, "row 399"]]);
      await mustExecute(leader.url, [["INSERT INTO t(id, s) VALUES(?, ?)", 400, "row 400"]]);
      await eventually("a new write reaches the follower", async () =>
        await countOn(f) === 401);
    }),
});
