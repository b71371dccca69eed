/**
 * Node lifecycle in a cluster: a leader stopped with SIGTERM hands
 * leadership over first (`-raft-shutdown-stepdown`), a node started with
 * `-raft-cluster-remove-shutdown` leaves the configuration on SIGTERM, a
 * node rejoining with the same id (same or new Raft address) after losing
 * its data, and a node joining through a follower's Raft address.
 *
 * @module
 */

import assert from "node:assert/strict";
import { get, mustExecute } from "../helpers.ts";
import { ClusterClient } from "../../../lib/cluster/mod.ts";
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

const ignore = skipUnlessClustering(
  "cluster lifecycle tests (tests/e2e/cluster/lifecycle_test.ts)",
);

interface NodeObject {
  id: string;
  addr: string;
}

/** /nodes (legacy map) as seen by `n`. */
async function nodesOf(n: ClusterNode): Promise<Record<string, NodeObject>> {
  const a = await get(n.url, "/nodes");
  assert.equal(a.status, 200, a.text);
  return JSON.parse(a.text);
}

/** `store.raft.term` from `n`'s /status. */
async function termOf(n: ClusterNode): Promise<number> {
  const a = await get(n.url, "/status", 2_000);
  assert.equal(a.status, 200, a.text);
  const term = (JSON.parse(a.text) as { store?: { raft?: { term?: number } } }).store?.raft?.term;
  assert.equal(typeof term, "number", `store.raft.term in ${a.text.slice(0, 200)}`);
  return term!;
}

Deno.test({
  name: "lifecycle: SIGTERM on the leader hands leadership over before exit",
  ignore,
  fn: () =>
    withCluster({ prefix: "lc-stepdown" }, async (c: Cluster) => {
      const leader = await c.leader();
      await mustExecute(leader.url, ["CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)"]);
      const survivors = c.followersOf(leader);
      await waitConverged(c.nodes);
      const before = await termOf(leader);
      for (const s of survivors) assert.equal(await termOf(s), before, `${s.name} term`);

      const t0 = performance.now();
      const status = await c.kill(leader, "SIGTERM");
      const exitMs = performance.now() - t0;
      assert.equal(status.code, 0, `leader exit code (after ${exitMs.toFixed(0)} ms)`);
      assert.ok(exitMs < 10_000, `leader took ${exitMs.toFixed(0)} ms to exit`);
      const t1 = performance.now();
      const next = await c.waitForLeader({ among: survivors, timeoutMs: 2_000 });
      console.log(
        `leader ${leader.name} exited in ${exitMs.toFixed(0)} ms; ` +
          `${next.name} known as leader ${(performance.now() - t1).toFixed(0)} ms later`,
      );
      assert.notEqual(next, leader);
      for (const s of survivors) {
        const view = await c.leaderSeenBy(s);
        assert.equal(view.nodeId, next.name, `${s.name} sees the new leader`);
        assert.equal(await termOf(s), before + 1, `${s.name}: one term up (a transfer)`);
      }
      await mustExecute(survivors[0]!.url, [["INSERT INTO t(v) VALUES(?)", "after handover"]]);
      await waitConverged(survivors);
    }),
});

Deno.test({
  name: "lifecycle: -raft-cluster-remove-shutdown removes the node on graceful exit",
  ignore,
  fn: () =>
    withCluster({ prefix: "lc-remove" }, async (c: Cluster) => {
      const leader = await c.leader();
      // A fourth voter that leaves the cluster when it is stopped gracefully.
      const leaving = joiningNode(c, "n4", leader.advAddr, undefined, [
        "-raft-cluster-remove-shutdown",
      ]);
      await c.restart(leaving);
      await eventually("n4 in /nodes", async () => "n4" in await nodesOf(leader));
      const status = await c.kill(leaving, "SIGTERM");
      assert.equal(status.code, 0, "graceful exit");
      await eventually("n4 leaves /nodes", async () => {
        const ids = Object.keys(await nodesOf(leader)).sort();
        return ids.join() === "n1,n2,n3";
      }, 5_000);
      for (const n of c.live()) {
        assert.deepEqual(Object.keys(await nodesOf(n)).sort(), ["n1", "n2", "n3"], n.name);
      }
      // The cluster still commits with one of its three voters down (it would
      // not if n4 were still a member: 2 of 4 is no majority).
      const [f] = c.followersOf(leader);
      await c.kill(f!);
      await mustExecute(leader.url, ["CREATE TABLE t(id INTEGER PRIMARY KEY)"]);
    }),
});

// A follower that lost its data rejoins with the same id and address: its
// join says it is fresh, so the leader replaces the stale entry (whose
// progress described a log that no longer exists) instead of ignoring it.
Deno.test({
  name: "lifecycle: a wiped node rejoining with the same id and address is replaced and catches up",
  ignore,
  fn: () =>
    withCluster({ prefix: "lc-rejoin-same", proxied: false }, async (c: Cluster) => {
      const leader = await c.leader();
      await mustExecute(leader.url, [
        "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)",
        ["INSERT INTO t(v) VALUES(?)", "before"],
      ]);
      // A follower that started with -join (n1 bootstrapped alone).
      const f = c.followersOf(leader).find((n) => n.flags.includes("-join"))!;
      await waitConverged(c.nodes);
      await c.kill(f);
      await Deno.remove(f.dataDir, { recursive: true });
      await mustExecute(leader.url, [["INSERT INTO t(v) VALUES(?)", "while away"]]);
      await c.restart(f, true, 15_000);
      await c.waitForLeader({ timeoutMs: 15_000 });
      const same = await nodesOf(leader);
      assert.deepEqual(Object.keys(same).sort(), ["n1", "n2", "n3"]);
      assert.equal(same[f.name]!.addr, f.raftAddr);
      await mustExecute(leader.url, [["INSERT INTO t(v) VALUES(?)", "after rejoin"]]);
      await waitConverged(c.nodes, 20_000, async (n) =>
        JSON.stringify(await rowsOn(n, "SELECT v FROM t ORDER BY id")) ===
          '[["before"],["while away"],["after rejoin"]]');
    }),
});

Deno.test({
  name: "lifecycle: rejoin with the same id and a changed address replaces the old entry",
  ignore,
  fn: () =>
    withCluster({ prefix: "lc-rejoin-moved", proxied: false }, async (c: Cluster) => {
      const leader = await c.leader();
      await mustExecute(leader.url, [
        "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)",
        ["INSERT INTO t(v) VALUES(?)", "before"],
      ]);
      const f = c.followersOf(leader).find((n) => n.flags.includes("-join"))!;
      await waitConverged(c.nodes);
      await c.kill(f);
      await Deno.remove(f.dataDir, { recursive: true });
      await mustExecute(leader.url, [["INSERT INTO t(v) VALUES(?)", "while away"]]);
      // Same id, new Raft address (fresh port), empty data dir.
      const moved = joiningNode(c, f.name, leader.advAddr);
      assert.notEqual(moved.raftAddr, f.raftAddr);
      await c.restart(moved, true, 20_000);
      await eventually(`${f.name} listed with its new address`, async () => {
        const m = await nodesOf(leader);
        return Object.keys(m).length === 3 && m[f.name]?.addr === moved.raftAddr;
      }, 15_000);
      assert.deepEqual(Object.keys(await nodesOf(leader)).sort(), ["n1", "n2", "n3"]);
      await mustExecute(leader.url, [["INSERT INTO t(v) VALUES(?)", "after move"]]);
      await waitConverged(c.nodes, 20_000, async (n) =>
        JSON.stringify(await rowsOn(n, "SELECT v FROM t ORDER BY id")) ===
          '[["before"],["while away"],["after move"]]');
      assert.equal((await c.leaderSeenBy(moved)).nodeId, leader.name);
    }),
});

Deno.test({
  name: "lifecycle: joining via a follower follows it to the leader",
  ignore,
  fn: () =>
    withCluster({ prefix: "lc-joinfollower" }, async (c: Cluster) => {
      const leader = await c.leader();
      await mustExecute(leader.url, ["CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)"]);
      const follower = c.followersOf(leader)[0]!;
      const n4 = joiningNode(c, "n4", follower.advAddr);
      await c.restart(n4);
      await eventually("n4 in /nodes on the leader", async () => "n4" in await nodesOf(leader));
      assert.deepEqual(Object.keys(await nodesOf(leader)).sort(), ["n1", "n2", "n3", "n4"]);
      await mustExecute(leader.url, [["INSERT INTO t(v) VALUES(?)", "to n4"]]);
      await eventually("the write reaches n4", async () =>
        JSON.stringify(await rowsOn(n4, "SELECT v FROM t")) === '[["to n4"]]');
      assert.equal((await c.leaderSeenBy(n4)).nodeId, leader.name);
      // The same join again (same id and address, not fresh) is ignored.
      const client = new ClusterClient({ timeoutMs: 10_000 });
      try {
        await client.join(leader.advAddr, { id: "n4", raftAddr: n4.advAddr, voter: true });
      } finally {
        await client.close();
      }
      const after = await nodesOf(leader);
      assert.deepEqual(Object.keys(after).sort(), ["n1", "n2", "n3", "n4"]);
      assert.equal(after.n4!.addr, n4.advAddr);
      await mustExecute(leader.url, [["INSERT INTO t(v) VALUES(?)", "again"]]);
      await eventually("n4 still follows", async () =>
        JSON.stringify(await rowsOn(n4, "SELECT v FROM t ORDER BY id")) ===
          '[["to n4"],["again"]]');
    }),
});
