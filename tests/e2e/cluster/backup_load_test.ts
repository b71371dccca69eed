/**
 * /db/backup and /db/load through a follower of a 3-node cluster
 * (rqlite-api.md §4, §11): a backup is fetched from the leader and its
 * bytes streamed back (the same bytes the leader serves), `redirect`
 * answers 301 to the leader, and loads (a database file, SQL text) are
 * forwarded and replicated to every node.
 */

import assert from "node:assert/strict";
import { mustExecute } from "../helpers.ts";
import { skipUnlessClustering } from "./available.ts";
import {
  type ClusterNode,
  localHash,
  rawRequest,
  rowsOn,
  waitConverged,
  withCluster,
} from "./harness.ts";

const ignore = skipUnlessClustering(
  "backup/load cluster test (tests/e2e/cluster/backup_load_test.ts)",
);

async function download(
  n: ClusterNode,
  path: string,
): Promise<{ status: number; bytes: Uint8Array }> {
  const res = await fetch(`${n.url}${path}`, {
    redirect: "manual",
    signal: AbortSignal.timeout(10_000),
  });
  return { status: res.status, bytes: new Uint8Array(await res.arrayBuffer()) };
}

function load(n: ClusterNode, body: Uint8Array | string) {
  return rawRequest(`${n.url}/db/load`, { method: "POST", body: body as BodyInit });
}

Deno.test({
  name: "cluster: backup and load through a follower are served by the leader",
  ignore,
  fn: () =>
    withCluster({ prefix: "backup", proxied: false }, async (c) => {
      const leader = await c.leader();
      const [f1, f2] = c.followersOf(leader) as [ClusterNode, ClusterNode];
      await mustExecute(leader.url, [
        "CREATE TABLE t (id INTEGER PRIMARY KEY, i INTEGER, b BLOB, s TEXT)",
        "INSERT INTO t(i, b, s) VALUES(9223372036854775807, x'00ff', 'π ✓')",
      ]);
      // A follower's backup is the leader's, byte for byte.
      const viaFollower = await download(f1, "/db/backup?fmt=sql");
      assert.equal(viaFollower.status, 200);
      const onLeader = await download(leader, "/db/backup?fmt=sql");
      assert.deepEqual(viaFollower.bytes, onLeader.bytes);
      const text = new TextDecoder().decode(viaFollower.bytes);
      assert.ok(text.includes(`INSERT INTO "t" VALUES(1,9223372036854775807,X'00FF','π ✓');`));

      const redirected = await rawRequest(`${f2.url}/db/backup?redirect&fmt=sql`);
      assert.equal(redirected.status, 301);
      assert.equal(
        redirected.headers.get("Location"),
        `http://${leader.httpAddr}/db/backup?redirect&fmt=sql`,
      );

      // A binary backup taken through a follower, loaded back through the other one.
      const image = await download(f1, "/db/backup");
      assert.equal(image.status, 200);
      const before = await localHash(leader);
      await mustExecute(leader.url, ["DROP TABLE t", "CREATE TABLE gone (x)"]);
      const loaded = await load(f2, image.bytes);
      assert.equal(loaded.status, 200, loaded.text);
      assert.equal(loaded.text, '{"results":[]}');
      assert.equal(await waitConverged(c.nodes), before);

      // SQL text through a follower: one replicated execute.
      const sql = await load(f1, "INSERT INTO t(i, s) VALUES(2, 'two');");
      assert.equal(sql.text, '{"results":[{"last_insert_id":2,"rows_affected":1}]}');
      await waitConverged(c.nodes);
      assert.deepEqual(await rowsOn(f2, "SELECT count(*) FROM t"), [[2]]);
    }),
});
