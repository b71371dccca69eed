/**
 * Snapshots in a real cluster: a follower that was down while the leader
 * compacted its log catches up through a snapshot streamed over the Raft
 * transport; a new node joining a cluster with data gets it the same way;
 * and every node rebuilt from snapshot + log after a full restart holds the
 * same data as before. `-raft-snap 50` makes the leader compact often.
 *
 * @module
 */

import assert from "node:assert/strict";
import { get, mustExecute } from "../helpers.ts";
import { skipUnlessClustering } from "./available.ts";
import {
  type Cluster,
  type ClusterNode,
  eventually,
  joiningNode,
  rowsOn,
  waitConverged,
  withCluster,
} from "./harness.ts";

const ignore = skipUnlessClustering("cluster snapshot tests (tests/e2e/cluster/snapshot_test.ts)");

const SNAP_FLAGS = ["-raft-snap", "50", "-raft-snap-int", "1s"];

/** Writes `n` rows, one Raft entry each, `width` at a time; every value carries a blob and a 64-bit int. */
async function writeRows(url: string, from: number, n: number, width = 8): Promise<void> {
  for (let i = from; i < from + n; i += width) {
    const batch = [];
    for (let k = i; k < Math.min(i + width, from + n); k++) {
      batch.push(
        mustExecute(url, [[
          "INSERT INTO t(id, big, b, r, s) VALUES(?, 9007199254740993 + ?, x'00ff10', ?, ?)",
          k,
          k,
          k / 3,
          `row ${k} ✓`,
        ]]),
      );
    }
    await Promise.all(batch);
  }
}

/** `store.snapshots_installed`-like counters from /status (driver stats). */
async function snapshotStats(n: ClusterNode): Promise<{ installed: number; taken: number }> {
  const a = await get(n.url, "/status", 2_000);
  assert.equal(a.status, 200, a.text);
  const s = JSON.parse(a.text) as {
    store?: { snapshots_installed?: number; snapshots_taken?: number };
  };
  return { installed: s.store?.snapshots_installed ?? -1, taken: s.store?.snapshots_taken ?? -1 };
}

async function countOn(n: ClusterNode): Promise<number> {
  const rows = await rowsOn(n, "SELECT COUNT(*) FROM t");
  return Number(rows[0]?.[0]);
}

Deno.test({
  name: "snapshot: a follower behind the compacted log catches up from a streamed snapshot",
  ignore,
  fn: () =>
    withCluster({ prefix: "snap-lag", flags: SNAP_FLAGS }, async (c: Cluster) => {
      const leader = await c.leader();
      await mustExecute(leader.url, [
        "CREATE TABLE t(id INTEGER PRIMARY KEY, big INTEGER, b BLOB, r REAL, s TEXT)",
      ]);
      // /boot is for a lone node only: a cluster would silently diverge.
      const sqlite = new TextEncoder().encode("SQLite format 3\0");
      for (
        const [n, why] of [[leader, "not single-node"], [
          c.followersOf(leader)[1]!,
          "not leader",
        ]] as const
      ) {
        const res = await fetch(`${n.url}/boot`, { method: "POST", body: sqlite });
        assert.deepEqual([res.status, await res.text()], [503, `${why}\n`], `/boot on ${n.name}`);
      }
      const lagging = c.followersOf(leader)[0]!;
      await c.kill(lagging, "SIGKILL");
      await writeRows(leader.url, 0, 400);
      await eventually("leader compacted past the lagging node", async () => {
        return (await snapshotStats(leader)).taken >= 2;
      });
      await c.restart(lagging);
      await eventually("lagging node has every row", async () => await countOn(lagging) === 400);
      const stats = await snapshotStats(lagging);
      assert.ok(stats.installed >= 1, `lagging node installed ${stats.installed} snapshots`);
      await waitConverged(c.nodes);
      // 64-bit integers and blobs survive the snapshot exactly (read as text: JSON numbers would round).
      const big = await rowsOn(lagging, "SELECT CAST(big AS TEXT), hex(b) FROM t WHERE id = 399");
      assert.deepEqual(big, [["9007199254741392", "00FF10"]]);
    }),
});

Deno.test({
  name:
    "snapshot: a node joining a cluster with data receives it as a snapshot; full restart keeps everything",
  ignore,
  fn: () =>
    withCluster({ prefix: "snap-join", flags: SNAP_FLAGS }, async (c: Cluster) => {
      const leader = await c.leader();
      await mustExecute(leader.url, [
        "CREATE TABLE t(id INTEGER PRIMARY KEY, big INTEGER, b BLOB, r REAL, s TEXT)",
      ]);
      await writeRows(leader.url, 0, 300);
      await eventually(
        "leader took snapshots",
        async () => (await snapshotStats(leader)).taken >= 2,
      );
      const joiner = joiningNode(c, "n4", leader.advAddr, undefined, SNAP_FLAGS);
      await c.restart(joiner);
      await eventually("joiner has every row", async () => await countOn(joiner) === 300);
      assert.ok((await snapshotStats(joiner)).installed >= 1, "joiner installed a snapshot");
      const before = await waitConverged(c.nodes);
      // Full restart: every node rebuilds from its newest snapshot plus its log.
      await c.stopAll("SIGTERM");
      for (const n of c.nodes) await c.restart(n, false);
      for (const n of c.nodes) await c.waitReady(n);
      await c.leader();
      const after = await waitConverged(c.nodes);
      assert.equal(after, before, "same data after a full restart");
      await writeRows((await c.leader()).url, 300, 20);
      await waitConverged(c.nodes, 20_000, async (n) => await countOn(n) === 320);
    }),
});
