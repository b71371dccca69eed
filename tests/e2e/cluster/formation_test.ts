/**
 * Issue [3/8]: three nodes form a cluster over TCP (through `-join` and
 * through `-bootstrap-expect 3`), and any node serves any request:
 * writes through a follower are forwarded to the leader (200, with
 * `X-RQLITE-SERVED-BY` = the leader's Raft address; rqlite-api.md §4),
 * `?redirect` answers 301 with the leader's API URL + path + query (§11),
 * and reads at every consistency level (§5) from every node return the
 * data: levels that involve the leader at once after the write, level none
 * after a brief catch-up.
 */

import assert from "node:assert/strict";
import { post } from "../helpers.ts";
import { skipUnlessClustering } from "./available.ts";
import {
  type Cluster,
  type ClusterNode,
  eventually,
  type Formation,
  rawRequest,
  rowsOn,
  withCluster,
} from "./harness.ts";

const ignore = skipUnlessClustering(
  "cluster formation tests (tests/e2e/cluster/formation_test.ts)",
);

const LEVELS = ["none", "weak", "strong", "linearizable", "auto"] as const;

function execute(n: ClusterNode, statements: unknown[], query = "") {
  return rawRequest(`${n.url}/db/execute${query}`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(statements),
  });
}

function assertAcked(a: { status: number; text: string }, what: string): void {
  assert.equal(a.status, 200, `${what}: ${a.text}`);
  const body = JSON.parse(a.text) as { error?: string; results?: { error?: string }[] };
  assert.equal(body.error, undefined, `${what}: ${a.text}`);
  assert.ok(
    (body.results ?? []).length > 0 && body.results!.every((r) => r.error === undefined),
    `${what}: ${a.text}`,
  );
}

async function checkCluster(c: Cluster): Promise<void> {
  const leader = await c.leader();
  const followers = c.followersOf(leader);
  assert.equal(followers.length, 2, "two followers");
  const [f1, f2] = followers as [ClusterNode, ClusterNode];
  for (const n of c.nodes) {
    const view = await c.leaderSeenBy(n);
    assert.equal(view.nodeId, leader.name, `${n.name} knows the leader's id`);
    assert.equal(view.addr, leader.advAddr, `${n.name} knows the leader's advertised Raft address`);
  }

  // A write through a follower is forwarded; the header names the leader's Raft address.
  const create = await execute(f1, ["CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)"]);
  assertAcked(create, "CREATE through a follower");
  assert.equal(create.headers.get("X-RQLITE-SERVED-BY"), leader.advAddr);
  // Served locally on the leader: its advertised HTTP address.
  const onLeader = await execute(leader, [["INSERT INTO t(id, v) VALUES(?, ?)", 1, "leader"]]);
  assertAcked(onLeader, "INSERT on the leader");
  assert.equal(onLeader.headers.get("X-RQLITE-SERVED-BY"), leader.httpAddr);

  // ?redirect on a follower: 301 to the leader's API URL with the same path and raw query.
  const redirected = await execute(
    f2,
    [["INSERT INTO t(id, v) VALUES(?, ?)", 99, "no"]],
    "?redirect",
  );
  assert.equal(redirected.status, 301, redirected.text);
  assert.equal(redirected.headers.get("Location"), `http://${leader.httpAddr}/db/execute?redirect`);
  const q = await rawRequest(
    `${f1.url}/db/query?level=strong&redirect&q=${encodeURIComponent("SELECT 1")}`,
  );
  assert.equal(q.status, 301, q.text);
  assert.equal(
    q.headers.get("Location"),
    `http://${leader.httpAddr}/db/query?level=strong&redirect&q=${encodeURIComponent("SELECT 1")}`,
  );
  // Following the redirect by hand works and writes once.
  const followed = await rawRequest(redirected.headers.get("Location")!, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify([["INSERT INTO t(id, v) VALUES(?, ?)", 2, "redirected"]]),
  });
  assertAcked(followed, "INSERT at the redirect target");

  // Writes through every node, each followed at once by reads at every level from every node.
  let expected: unknown[][] = [[1, "leader"], [2, "redirected"]];
  let id = 10;
  for (const writer of c.nodes) {
    id++;
    const a = await execute(writer, [["INSERT INTO t(id, v) VALUES(?, ?)", id, writer.name]]);
    assertAcked(a, `INSERT through ${writer.name}`);
    expected = [...expected, [id, writer.name]];
    await checkReads(c, expected);
  }
}

/** Reads at every level from every node; only level none may lag (briefly). */
async function checkReads(c: Cluster, expected: unknown[][]): Promise<void> {
  const sql = "SELECT id, v FROM t ORDER BY id";
  for (const n of c.nodes) {
    for (const level of LEVELS) {
      if (level === "none") {
        await eventually(`${n.name} level=none catches up`, async () => {
          const rows = await rowsOn(n, sql, "none");
          return JSON.stringify(rows) === JSON.stringify(expected);
        }, 5_000);
        continue;
      }
      const a = await post(n.url, `/db/query?level=${level}`, [sql]);
      assert.equal(a.status, 200, `${n.name} level=${level}: ${a.text}`);
      assert.equal(a.json?.error, undefined, `${n.name} level=${level}: ${a.text}`);
      assert.deepEqual(
        a.json?.results?.[0]?.values ?? [],
        expected,
        `${n.name} level=${level} right after the write`,
      );
    }
  }
}

for (const formation of ["join", "bootstrap-expect"] as Formation[]) {
  Deno.test({
    name:
      `cluster: 3 nodes via ${formation}: forwarding, redirect, reads at every level everywhere`,
    ignore,
    fn: () => withCluster({ formation, prefix: `form-${formation}` }, checkCluster),
  });
}
