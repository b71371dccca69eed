/**
 * Issue [3/8]: network partitions through the fault proxies (proxy.ts).
 *
 * - The leader isolated from the other two: the minority side never
 *   acknowledges a write (an error or a timeout, never a 200 success) and
 *   refuses linearizable reads; the majority elects a new leader and
 *   accepts writes through both its nodes; after healing all three nodes
 *   converge on the same database.
 * - A follower isolated: the majority keeps serving; the follower cannot
 *   serve leader-level reads; after healing it catches up.
 */

import assert from "node:assert/strict";
import { acknowledged } from "../helpers.ts";
import { skipUnlessClustering } from "./available.ts";
import { OnceClient } from "./client.ts";
import { type ClusterNode, rowsOn, waitConverged, withCluster } from "./harness.ts";

const ignore = skipUnlessClustering(
  "cluster partition tests (tests/e2e/cluster/partition_test.ts)",
);

/** How long a client waits on the minority side before calling it a refusal by timeout. */
const MINORITY_TIMEOUT_MS = 6_000;

type Outcome = { kind: "acked" | "answered"; status: number; text: string } | {
  kind: "failed";
  error: string;
};

async function tryWrite(http: OnceClient, n: ClusterNode, id: number, v: string): Promise<Outcome> {
  try {
    const a = await http.post(
      n.url,
      "/db/execute",
      [["INSERT INTO t(id, v) VALUES(?, ?)", id, v]],
      MINORITY_TIMEOUT_MS,
    );
    return { kind: acknowledged(a, 1) ? "acked" : "answered", status: a.status, text: a.text };
  } catch (err) {
    return { kind: "failed", error: (err as Error).message };
  }
}

async function tryRead(http: OnceClient, n: ClusterNode, level: string): Promise<Outcome> {
  try {
    const a = await http.post(
      n.url,
      `/db/query?level=${level}`,
      ["SELECT id, v FROM t ORDER BY id"],
      MINORITY_TIMEOUT_MS,
    );
    const ok = a.status === 200 && a.json?.error === undefined &&
      a.json?.results?.[0] !== undefined && a.json.results[0].error === undefined;
    return { kind: ok ? "acked" : "answered", status: a.status, text: a.text };
  } catch (err) {
    return { kind: "failed", error: (err as Error).message };
  }
}

function show(o: Outcome): string {
  return o.kind === "failed"
    ? `failed: ${o.error}`
    : `${o.kind} ${o.status} ${o.text.slice(0, 200)}`;
}

Deno.test({
  name: "cluster: leader isolated: minority refuses writes and linearizable reads, majority " +
    "elects and writes, all converge after heal",
  ignore,
  fn: () =>
    withCluster({ prefix: "partition-leader" }, async (c) => {
      const net = c.net!;
      const http = new OnceClient();
      try {
        const old = await c.leader();
        const majority = c.followersOf(old);
        const [a, b] = majority as [ClusterNode, ClusterNode];
        const setup = await http.post(old.url, "/db/execute", [
          "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)",
          ["INSERT INTO t(id, v) VALUES(?, ?)", 1, "before"],
        ], 10_000);
        assert.ok(
          setup.status === 200 && setup.json?.error === undefined &&
            setup.json?.results?.length === 2 && setup.json.results.every((r) => !r.error),
          setup.text,
        );
        await waitConverged(c.nodes);

        assert.deepEqual(
          await c.bypassingConnections(),
          [],
          "all Raft traffic goes through proxies",
        );
        const sources = Object.keys(net.proxy(a.name).stats.bySource);
        assert.ok(sources.includes(old.name), `P(${a.name}) identified its dialers: ${sources}`);
        assert.ok(!sources.includes("?unknown"), `unidentified dialers at P(${a.name})`);
        net.isolate(old.name, "stall");
        const t0 = performance.now();
        // The minority side, right away and in parallel with the majority's election.
        const minority = Promise.all([
          tryWrite(http, old, 2, "minority"),
          tryRead(http, old, "linearizable"),
        ]);
        const leader = await c.waitForLeader({ among: majority, timeoutMs: 20_000 });
        const electedMs = performance.now() - t0;
        const [minorityWrite, minorityRead] = await minority;
        assert.notEqual(
          minorityWrite.kind,
          "acked",
          `isolated leader acked: ${show(minorityWrite)}`,
        );
        assert.notEqual(
          minorityRead.kind,
          "acked",
          `isolated leader served: ${show(minorityRead)}`,
        );

        for (const [i, n] of [a, b].entries()) {
          const w = await tryWrite(http, n, 10 + i, `majority-${n.name}`);
          assert.equal(w.kind, "acked", `write through ${n.name} in the majority: ${show(w)}`);
        }
        for (const n of majority) {
          const rows = await rowsOn(
            n,
            "SELECT id FROM t WHERE id >= 10 ORDER BY id",
            "linearizable",
          );
          assert.deepEqual(rows, [[10], [11]], `${n.name} linearizable read in the majority`);
        }
        // Still cut off: the old leader must not acknowledge anything, nor serve leader reads.
        const late = await tryWrite(http, old, 3, "minority-late");
        assert.notEqual(late.kind, "acked", `isolated old leader acked later: ${show(late)}`);
        for (const level of ["linearizable", "strong"]) {
          const r = await tryRead(http, old, level);
          assert.notEqual(r.kind, "acked", `isolated old leader served level=${level}: ${show(r)}`);
        }

        net.heal();
        await c.waitForLeader({ timeoutMs: 20_000 });
        const hash = await waitConverged(c.nodes, 30_000, async (n) => {
          const rows = await rowsOn(n, "SELECT id FROM t WHERE id >= 10", "none");
          return rows.length === 2;
        });
        const minorityRows = await rowsOn(old, "SELECT id, v FROM t WHERE id IN (2, 3)", "none");
        console.log(
          `partition: ${old.name} isolated; ${leader.name} elected in ${
            electedMs.toFixed(0)
          } ms; ` +
            `minority write: ${show(minorityWrite)}; linearizable read: ${show(minorityRead)}; ` +
            `unacknowledged minority rows after heal: ${JSON.stringify(minorityRows)}; ` +
            `hash ${hash.slice(0, 16)}`,
        );
      } finally {
        http.close();
      }
    }),
});

Deno.test({
  name: "cluster: follower isolated: majority serves, follower refuses leader reads, catches up",
  ignore,
  fn: () =>
    withCluster({ prefix: "partition-follower" }, async (c) => {
      const net = c.net!;
      const http = new OnceClient();
      try {
        const leader = await c.leader();
        const [lone, other] = c.followersOf(leader) as [ClusterNode, ClusterNode];
        const setup = await http.post(leader.url, "/db/execute", [
          "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)",
        ], 10_000);
        assert.equal(setup.status, 200, setup.text);
        await waitConverged(c.nodes);

        net.isolate(lone.name, "reset");
        for (let i = 0; i < 20; i++) {
          const w = await tryWrite(http, i % 2 === 0 ? leader : other, 100 + i, "while-cut");
          assert.equal(w.kind, "acked", `write ${i} with one follower cut off: ${show(w)}`);
        }
        const r = await tryRead(http, lone, "linearizable");
        assert.notEqual(r.kind, "acked", `cut-off follower served a linearizable read: ${show(r)}`);
        // The leader keeps its leadership (no needless election).
        assert.equal((await c.leaderSeenBy(other)).nodeId, leader.name);

        net.heal();
        await waitConverged(c.nodes, 30_000, async (n) => {
          const rows = await rowsOn(n, "SELECT COUNT(*) FROM t", "none");
          return rows[0]?.[0] === 20;
        });
        assert.deepEqual(await rowsOn(lone, "SELECT COUNT(*) FROM t", "none"), [[20]]);
      } finally {
        http.close();
      }
    }),
});
