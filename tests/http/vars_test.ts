/**
 * /debug/vars counters of rqlite-api.md §4 that need a cluster event or a
 * restart: joins (`cluster.num_join_req`, `store.num_ignored_joins`,
 * `store.num_removed_before_joins`) and the restore at start or its skip
 * (`store.num_restores_start`, `store.num_restores_start_skipped`,
 * `store.num_restores`). Snapshots and reaps: tests/http/metrics_test.ts.
 */

import assert from "node:assert/strict";
import { ClusterClient } from "../../lib/cluster/mod.ts";
import { startTestNode, type TestNode } from "../util/node.ts";
import { withTempDir } from "../storage/helpers.ts";

// deno-lint-ignore no-explicit-any
async function vars(node: TestNode, key?: string): Promise<any> {
  const res = await node.fetchSocket(`/debug/vars${key === undefined ? "" : `?key=${key}`}`);
  assert.equal(res.status, 200);
  return JSON.parse(await res.text());
}

async function post(node: TestNode, path: string, body?: unknown): Promise<number> {
  const res = await node.fetchSocket(path, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  await res.body?.cancel();
  return res.status;
}

Deno.test("debug/vars: joins count as requests, ignored joins and replacements", async () => {
  const node = await startTestNode();
  const client = new ClusterClient({ timeoutMs: 10_000 });
  try {
    const raftAddr = node.node.raftAddr;
    const before = await vars(node);
    assert.equal(before.cluster.num_join_req, 0);
    assert.equal(before.store.num_ignored_joins, 0);
    assert.equal(before.store.num_removed_before_joins, 0);
    // A read-only member (no vote, so the lone voter keeps its quorum) at an address nobody serves.
    const ghost = { id: "ghost", voter: false };
    await client.join(raftAddr, { ...ghost, raftAddr: "127.0.0.1:9" });
    let v = await vars(node);
    assert.deepEqual(
      [v.cluster.num_join_req, v.store.num_ignored_joins, v.store.num_removed_before_joins],
      [1, 0, 0],
      "added",
    );
    // Same id and address again: nothing to do.
    await client.join(raftAddr, { ...ghost, raftAddr: "127.0.0.1:9" });
    v = await vars(node);
    assert.deepEqual(
      [v.cluster.num_join_req, v.store.num_ignored_joins, v.store.num_removed_before_joins],
      [2, 1, 0],
      "ignored",
    );
    // Same id at a new address: the old entry is removed first.
    await client.join(raftAddr, { ...ghost, raftAddr: "127.0.0.1:7" });
    v = await vars(node);
    assert.deepEqual(
      [v.cluster.num_join_req, v.store.num_ignored_joins, v.store.num_removed_before_joins],
      [3, 1, 1],
      "replaced",
    );
    const status = JSON.parse(await (await node.fetchSocket("/status?key=store")).text());
    assert.deepEqual(
      status.nodes.map((n: { id: string; addr: string }) => `${n.id}@${n.addr}`).sort(),
      [`ghost@127.0.0.1:7`, `${status.node_id}@${raftAddr}`].sort(),
    );
    // The same counters, restricted with key=.
    const one = await (await node.fetchSocket("/debug/vars?key=cluster")).text();
    assert.match(one, /^\{\n"cluster": \{.*"num_join_req": 3[,}].*\n\}\n$/s);
  } finally {
    await client.close();
    await node.close();
  }
});

Deno.test("debug/vars: a restart restores the newest snapshot; -on-disk with a matching file skips it", async () => {
  await withTempDir(async (dir) => {
    // In memory: every start rebuilds from the snapshot.
    const first = await startTestNode(["-node-id", "n1"], `${dir}/mem`);
    try {
      const fresh = await vars(first, "store");
      assert.deepEqual(
        [
          fresh.store.num_restores,
          fresh.store.num_restores_start,
          fresh.store.num_restores_start_skipped,
        ],
        [0, 0, 0],
        "a new node restores nothing",
      );
      assert.equal(await post(first, "/db/execute", ["CREATE TABLE t (x)"]), 200);
      assert.equal(await post(first, "/snapshot"), 200);
      assert.equal((await vars(first, "store")).store.num_snapshots, 1);
    } finally {
      await first.close();
    }
    const again = await startTestNode(["-node-id", "n1"], `${dir}/mem`);
    try {
      const v = await vars(again, "store");
      assert.deepEqual(
        [v.store.num_restores, v.store.num_restores_start, v.store.num_restores_start_skipped],
        [1, 1, 0],
      );
    } finally {
      await again.close();
    }

    // -on-disk: db.sqlite was closed cleanly at the snapshot's index, so it is used as is.
    const disk = await startTestNode(["-node-id", "n2", "-on-disk"], `${dir}/disk`);
    try {
      assert.equal(await post(disk, "/db/execute", ["CREATE TABLE t (x)"]), 200);
      assert.equal(await post(disk, "/snapshot"), 200);
    } finally {
      await disk.close();
    }
    const fast = await startTestNode(["-node-id", "n2", "-on-disk"], `${dir}/disk`);
    try {
      const v = await vars(fast, "store");
      assert.deepEqual(
        [v.store.num_restores, v.store.num_restores_start, v.store.num_restores_start_skipped],
        [0, 0, 1],
      );
    } finally {
      await fast.close();
    }
  });
});
