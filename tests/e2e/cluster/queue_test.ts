/**
 * Queued writes through a follower of a 3-node cluster (rqlite-api.md §4,
 * §11): the follower answers at once, its drainer forwards each batch to
 * the leader, `wait` returns once the rows are on the leader, and every
 * node converges on them; `?queue&redirect` on a follower answers 301 to
 * the leader instead.
 */

import assert from "node:assert/strict";
import { mustExecute } from "../helpers.ts";
import { skipUnlessClustering } from "./available.ts";
import { type ClusterNode, rawRequest, rowsOn, waitConverged, withCluster } from "./harness.ts";

const ignore = skipUnlessClustering("queued-write cluster test (tests/e2e/cluster/queue_test.ts)");

function queue(n: ClusterNode, statements: unknown[], query = "") {
  return rawRequest(`${n.url}/db/execute?queue${query}`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(statements),
  });
}

const QUEUED = /^\{"results":\[\],"sequence_number":\d{19}\}$/;

Deno.test({
  name: "cluster: queued writes on a follower are forwarded to the leader in batches",
  ignore,
  fn: () =>
    withCluster({ prefix: "queue", proxied: false }, async (c) => {
      const leader = await c.leader();
      const [f1, f2] = c.followersOf(leader) as [ClusterNode, ClusterNode];
      await mustExecute(leader.url, ["CREATE TABLE q (id INTEGER PRIMARY KEY, v INTEGER)"]);

      const rows = 200;
      const answers = await Promise.all(
        Array.from({ length: rows }, (_, i) => queue(f1, [["INSERT INTO q(v) VALUES(?)", i]])),
      );
      for (const a of answers) assert.match(a.text, QUEUED, `${a.status} ${a.text}`);
      const flush = await queue(f1, [], "&wait");
      assert.equal(flush.status, 200, flush.text);
      assert.match(flush.text, QUEUED);
      // Written means committed through the leader: it has every row now.
      assert.deepEqual(await rowsOn(leader, "SELECT COUNT(*) FROM q", "weak"), [[rows]]);
      const status = JSON.parse((await rawRequest(`${f1.url}/status`)).text);
      const q = status.http.queue._default;
      assert.ok(q.num_batches >= 1 && q.num_batches <= 20, `batches: ${q.num_batches}`);
      assert.equal(q.num_statements, rows);
      await waitConverged([leader, f1, f2], 20_000, async (n) => {
        const [[count]] = await rowsOn(n, "SELECT COUNT(*) FROM q") as [[number]];
        return count === rows;
      });

      const redirected = await queue(f2, [["INSERT INTO q(v) VALUES(-1)"]], "&redirect");
      assert.equal(redirected.status, 301, redirected.text);
      assert.equal(
        redirected.headers.get("Location"),
        `http://${leader.httpAddr}/db/execute?queue&redirect`,
      );
    }),
});
