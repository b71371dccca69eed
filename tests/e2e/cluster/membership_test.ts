/**
 * Issue [3/8]: cluster membership and operations through the HTTP API
 * (rqlite-api.md §4): GET /nodes (legacy map and `ver=2`), GET /leader,
 * POST /leader stepdown (to a given id, with `wait`, and its errors),
 * DELETE /remove of a follower, a non-voter (`-raft-non-voter`) that serves
 * local reads and is listed only with `nonvoters`, and a whole cluster
 * stopped with SIGTERM and started again with its data.
 */

import assert from "node:assert/strict";
import { get, mustExecute, queryRows } from "../helpers.ts";
import { skipUnlessClustering } from "./available.ts";
import {
  type Cluster,
  type ClusterNode,
  eventually,
  localHash,
  rawRequest,
  rowsOn,
  waitConverged,
  withCluster,
} from "./harness.ts";

const ignore = skipUnlessClustering(
  "cluster membership tests (tests/e2e/cluster/membership_test.ts)",
);

interface NodeObject {
  id: string;
  api_addr?: string;
  addr: string;
  version: string;
  voter: boolean;
  reachable: boolean;
  leader: boolean;
  time: number;
  time_s: string;
  error?: string;
}

const KEY_ORDER = [
  "id",
  "api_addr",
  "addr",
  "version",
  "voter",
  "reachable",
  "leader",
  "time",
  "time_s",
  "error",
];

function checkNodeObject(o: NodeObject, n: ClusterNode, leader: ClusterNode, where: string): void {
  const msg = `${where}: ${JSON.stringify(o)}`;
  assert.equal(o.id, n.name, msg);
  assert.equal(o.api_addr, `http://${n.httpAddr}`, msg);
  assert.equal(o.addr, n.advAddr, msg);
  assert.equal(o.voter, n.voter, msg);
  assert.equal(o.reachable, true, msg);
  assert.equal(o.leader, n === leader, msg);
  assert.equal(typeof o.time, "number", msg);
  assert.equal(typeof o.time_s, "string", msg);
  assert.ok(typeof o.version === "string" && o.version !== "", msg);
  const keys = Object.keys(o);
  assert.deepEqual(keys, KEY_ORDER.filter((k) => keys.includes(k)), `${where}: key order`);
}

async function nodesLegacy(n: ClusterNode, query = ""): Promise<Record<string, NodeObject>> {
  const a = await get(n.url, `/nodes${query}`);
  assert.equal(a.status, 200, a.text);
  return JSON.parse(a.text);
}

function stepdown(via: ClusterNode, body: unknown) {
  return rawRequest(`${via.url}/leader?wait`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
    timeoutMs: 20_000,
  });
}

Deno.test({
  name: "cluster: /nodes, /leader, stepdown to a given node, remove a follower",
  ignore,
  fn: () =>
    withCluster({ prefix: "members" }, async (c: Cluster) => {
      let leader = await c.leader();
      for (const via of c.nodes) {
        const legacy = await nodesLegacy(via);
        assert.deepEqual(Object.keys(legacy).sort(), ["n1", "n2", "n3"], `/nodes via ${via.name}`);
        for (const n of c.nodes) {
          checkNodeObject(legacy[n.name]!, n, leader, `/nodes via ${via.name}`);
        }
        const v2 = await get(via.url, "/nodes?ver=2");
        assert.equal(v2.status, 200, v2.text);
        const list = (JSON.parse(v2.text) as { nodes: NodeObject[] }).nodes;
        assert.deepEqual(
          list.map((o) => o.id),
          ["n1", "n2", "n3"],
          "ver=2 sorted by id",
        );
        for (const o of list) {
          checkNodeObject(o, c.node(o.id), leader, `/nodes?ver=2 via ${via.name}`);
        }
        const l = await get(via.url, "/leader");
        assert.equal(l.status, 200, l.text);
        checkNodeObject(JSON.parse(l.text), leader, leader, `/leader via ${via.name}`);
      }

      // Stepdown errors.
      const [f1, f2] = c.followersOf(leader) as [ClusterNode, ClusterNode];
      const self = await stepdown(leader, { id: leader.name });
      assert.equal(self.status, 500, self.text);
      assert.match(self.text, /cannot step down to the current Leader/);
      const unknown = await stepdown(leader, { id: "nope" });
      assert.equal(unknown.status, 500, unknown.text);
      assert.match(unknown.text, /node not found in cluster/);

      // Stepdown to f1, asked through f2 (forwarded with wait).
      await mustExecute(leader.url, ["CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)"]);
      const moved = await stepdown(f2, { id: f1.name });
      assert.equal(moved.status, 200, moved.text);
      leader = await c.waitForLeader({ timeoutMs: 15_000 });
      assert.equal(leader.name, f1.name, "leadership moved to the requested node");
      await mustExecute(f2.url, [["INSERT INTO t(v) VALUES(?)", "after stepdown"]]);

      // Remove a follower of the new leader, through the other follower.
      const [gone, stays] = c.followersOf(leader) as [ClusterNode, ClusterNode];
      const removed = await rawRequest(`${stays.url}/remove`, {
        method: "DELETE",
        body: JSON.stringify({ id: gone.name }),
      });
      assert.equal(removed.status, 200, removed.text);
      await eventually("the removed node leaves /nodes", async () => {
        const legacy = await nodesLegacy(leader);
        return Object.keys(legacy).sort().join() === [leader.name, stays.name].sort().join();
      });
      await c.kill(gone);
      // Two voters left: both needed, both there.
      await mustExecute(stays.url, [["INSERT INTO t(v) VALUES(?)", "after remove"]]);
      assert.deepEqual(
        await queryRows(stays.url, "SELECT v FROM t ORDER BY id", "linearizable"),
        [["after stepdown"], ["after remove"]],
      );
      const bad = await rawRequest(`${leader.url}/remove`, {
        method: "DELETE",
        body: JSON.stringify({ id: "nope" }),
      });
      assert.notEqual(bad.status, 200, `removing an unknown node: ${bad.text}`);
    }),
});

Deno.test({
  name: "cluster: a non-voter joins, serves local reads, is listed only with nonvoters",
  ignore,
  fn: () =>
    withCluster({ prefix: "nonvoter", nonVoters: 1 }, async (c: Cluster) => {
      const leader = await c.leader();
      const reader = c.node("n4");
      assert.equal(reader.voter, false);
      assert.notEqual(leader, reader);
      await mustExecute(leader.url, [
        "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)",
        ["INSERT INTO t(v) VALUES(?)", "replicated"],
      ]);
      for (const level of ["none", "auto"]) {
        await eventually(`n4 level=${level} read`, async () => {
          const rows = await rowsOn(reader, "SELECT v FROM t", level);
          return JSON.stringify(rows) === '[["replicated"]]';
        }, 10_000);
      }
      const voters = await nodesLegacy(leader);
      assert.deepEqual(Object.keys(voters).sort(), ["n1", "n2", "n3"], "non-voter not in /nodes");
      const all = await nodesLegacy(leader, "?nonvoters");
      assert.deepEqual(Object.keys(all).sort(), ["n1", "n2", "n3", "n4"]);
      checkNodeObject(all["n4"]!, reader, leader, "/nodes?nonvoters");
      // Writes through the non-voter are forwarded like anywhere else.
      await mustExecute(reader.url, [["INSERT INTO t(v) VALUES(?)", "via n4"]]);
      await waitConverged(c.nodes);
    }),
});

Deno.test({
  name: "cluster: all nodes stopped with SIGTERM and started again keep the data",
  ignore,
  fn: () =>
    withCluster({ prefix: "fullrestart" }, async (c: Cluster) => {
      const leader = await c.leader();
      await mustExecute(leader.url, ["CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)"]);
      for (let i = 0; i < 5; i++) {
        const via = c.nodes[i % 3]!;
        await mustExecute(
          via.url,
          Array.from({ length: 10 }, (_, k) => ["INSERT INTO t(v) VALUES(?)", `row ${i}.${k}`]),
        );
      }
      const before = await waitConverged(c.nodes);
      const t0 = performance.now();
      const statuses = await c.stopAll("SIGTERM");
      console.log(
        `full restart: SIGTERM to all three took ${(performance.now() - t0).toFixed(0)} ms`,
      );
      assert.deepEqual(statuses.map((s) => s.code), [0, 0, 0], "graceful exits (within 20 s)");
      // Start them all at once, as after a power cut.
      await Promise.all(c.nodes.map((n) => c.spawn(n)));
      const after = await c.leader(30_000);
      const hash = await waitConverged(c.nodes, 30_000);
      assert.equal(hash, before, "same database after the restart");
      assert.deepEqual(await queryRows(after.url, "SELECT COUNT(*) FROM t", "linearizable"), [[
        50,
      ]]);
      await mustExecute(c.nodes[2]!.url, [["INSERT INTO t(v) VALUES(?)", "after restart"]]);
      await waitConverged(c.nodes);
      assert.notEqual(await localHash(c.nodes[0]!), before);
    }),
});
