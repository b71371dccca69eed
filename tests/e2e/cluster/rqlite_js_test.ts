/**
 * A real rqlite client: the npm package rqlite-js (2.5.7, unmodified)
 * against a 3-node raftlite cluster, as its users use it (issue [8/8]
 * point 5): connect with every node's URL, create a table, execute with
 * and without parameters, query at every consistency level, BLOBs and
 * 64-bit integers, a failing transaction that applies nothing, errors, the
 * raw response; then fail over when the first host of its list is killed.
 *
 * The client runs in its own process with its own config
 * (tests/clients/deno.json): rqlite-js's CommonJS build requires
 * @babel/runtime without declaring it, which needs a node_modules
 * directory. The test skips with a message when npm cannot be reached.
 */

import assert from "node:assert/strict";
import { skipUnlessClustering } from "./available.ts";
import { type ClusterNode, withCluster } from "./harness.ts";

const ignore = skipUnlessClustering("rqlite-js client test (tests/e2e/cluster/rqlite_js_test.ts)");
const CLIENTS = new URL("../../clients/", import.meta.url).pathname;

async function runClient(phase: string, nodes: ClusterNode[]): Promise<Record<string, unknown>> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--config",
      `${CLIENTS}deno.json`,
      `${CLIENTS}rqlite_js_client.ts`,
      phase,
      ...nodes.map((n) => n.url),
    ],
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(120_000),
  }).output();
  const stderr = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, `rqlite-js client (${phase}) failed:\n${stderr.slice(-3000)}`);
  return JSON.parse(new TextDecoder().decode(out.stdout).trim().split("\n").at(-1)!);
}

Deno.test({
  name:
    "rqlite-js (npm) against a 3-node cluster: execute, parameters, levels, BLOBs, transactions, errors, failover",
  ignore,
  fn: () =>
    withCluster({ prefix: "rqlite-js", proxied: false }, async (c) => {
      const leader = await c.leader();
      const followers = c.followersOf(leader);
      // A follower first: rqlite-js follows raftlite's forwarding like rqlite's.
      const r = await runClient("main", [followers[0]!, leader, followers[1]!]);
      assert.equal(r.create, null);
      assert.equal(r.insertError, null);
      assert.equal(r.insertId, 1);
      assert.equal(r.paramError, null);
      assert.equal(r.paramRows, 1);
      for (const level of ["none", "weak", "linearizable", "strong", "auto"]) {
        const names = r[`names_${level}`] as string[];
        if (level === "none" || level === "auto") {
          // A follower serves these locally and may lag by a moment.
          assert.ok(Array.isArray(names), `${level}: ${JSON.stringify(names)}`);
        } else assert.deepEqual(names, ["fiona", "bound"], level);
      }
      assert.equal(r.blob, "AP8Q", "BLOBs come back base64-encoded, as rqlite sends them");
      // raftlite sends all 64 bits (tests/http); rqlite-js parses with JSON.parse, which rounds
      // to a double, exactly as it does against rqlite.
      assert.equal(r.bigint, 9007199254740992);
      assert.match(String(r.txError), /no such table: nosuchtable/);
      assert.equal(r.txRows, 0, "a failed transaction applies nothing");
      assert.match(String(r.queryError), /no such table: missing/);
      assert.equal(r.rawStatus, 200);
      assert.equal(r.rawResults, true);

      // The first host of the client's list dies: it must go on to the next.
      const victim = followers[0]!;
      await c.kill(victim);
      const f = await runClient("failover", [victim, leader, followers[1]!]);
      assert.equal(f.failoverError, null);
      assert.equal(f.failoverCount, 3);
    }),
});
