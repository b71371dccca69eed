/**
 * Issue [3/8]: the leader of a 3-node cluster is SIGKILLed while several
 * clients write. A new leader is elected within a bound, the clients keep
 * going (each retries a failed request's successor on the next node), the
 * old leader restarts and catches up, and in the end every node holds the
 * same rows: every acknowledged write, nothing that was never sent.
 */

import assert from "node:assert/strict";
import { acknowledged } from "../helpers.ts";
import { skipUnlessClustering } from "./available.ts";
import { OnceClient } from "./client.ts";
import {
  type Cluster,
  type ClusterNode,
  rowsOn,
  sleep,
  waitConverged,
  withCluster,
} from "./harness.ts";

const ignore = skipUnlessClustering("cluster failover test (tests/e2e/cluster/failover_test.ts)");

const CLIENTS = 6;
const REQUEST_TIMEOUT_MS = 5_000;
const LOAD_BEFORE_KILL_MS = 1_500;
const ELECTION_BOUND_MS = 15_000;
const LOAD_AFTER_ELECTION_MS = 1_500;
const LOAD_AFTER_RESTART_MS = 1_000;

interface Sent {
  id: number;
  node: string;
  callMs: number;
  returnMs: number;
  acked: boolean;
}

/** One client: INSERTs one unique row per request; after a failure moves to the next node. */
async function client(
  c: Cluster,
  index: number,
  stop: () => boolean,
  http: OnceClient,
): Promise<Sent[]> {
  const sent: Sent[] = [];
  let at = index % c.nodes.length;
  for (let seq = 0; !stop() && seq < 100_000; seq++) {
    const node = c.nodes[at]!;
    const id = index * 1_000_000 + seq;
    const callMs = performance.now();
    let acked = false;
    try {
      const a = await http.post(
        node.url,
        "/db/execute",
        [["INSERT INTO t(id, client, seq) VALUES(?, ?, ?)", id, index, seq]],
        REQUEST_TIMEOUT_MS,
      );
      acked = acknowledged(a, 1);
    } catch {
      acked = false;
    }
    sent.push({ id, node: node.name, callMs, returnMs: performance.now(), acked });
    if (!acked) {
      at = (at + 1) % c.nodes.length;
      await sleep(50);
    }
  }
  return sent;
}

Deno.test({
  name: "cluster: leader SIGKILLed under write load: re-election, no acknowledged write lost",
  ignore,
  fn: () =>
    withCluster({ prefix: "failover" }, async (c) => {
      const old = await c.leader();
      const http = new OnceClient();
      await http.post(
        old.url,
        "/db/execute",
        ["CREATE TABLE t(id INTEGER PRIMARY KEY, client INTEGER, seq INTEGER)"],
        REQUEST_TIMEOUT_MS,
      );
      let stopped = false;
      const clients = Array.from(
        { length: CLIENTS },
        (_, i) => client(c, i, () => stopped, http),
      );
      let electedMs = 0;
      let killMs = 0;
      let newLeader: ClusterNode | undefined;
      let logs: Sent[][];
      try {
        await sleep(LOAD_BEFORE_KILL_MS);
        killMs = performance.now();
        const status = await c.kill(old, "SIGKILL");
        assert.equal(status.signal, "SIGKILL");
        newLeader = await c.waitForLeader({
          among: c.live(),
          exclude: [old],
          timeoutMs: ELECTION_BOUND_MS,
        });
        electedMs = performance.now();
        await sleep(LOAD_AFTER_ELECTION_MS);
        await c.restart(old);
        await sleep(LOAD_AFTER_RESTART_MS);
      } finally {
        stopped = true;
        logs = await Promise.all(clients);
        http.close();
      }
      const all = logs.flat();
      const acked = all.filter((s) => s.acked);
      const ackedAfter = acked.filter((s) => s.callMs > electedMs);
      console.log(
        `failover: old leader ${old.name}, new leader ${newLeader?.name} elected ` +
          `${(electedMs - killMs).toFixed(0)} ms after the kill; ${all.length} requests, ` +
          `${acked.length} acknowledged (${ackedAfter.length} after the election)`,
      );
      assert.ok(acked.length > 50, `the load ran (acknowledged ${acked.length})`);
      assert.ok(ackedAfter.length > 0, "writes were acknowledged after the new leader was elected");

      // Everyone converges, the restarted old leader included.
      const leader = await c.leader();
      await waitConverged(c.nodes, 30_000);
      const sentIds = new Set(all.map((s) => s.id));
      for (const n of c.nodes) {
        const ids = new Set(
          (await rowsOn(n, "SELECT id FROM t", "none")).map((r) => r[0] as number),
        );
        const lost = acked.filter((s) => !ids.has(s.id));
        assert.deepEqual(
          lost.slice(0, 10),
          [],
          `${n.name} lacks ${lost.length} acknowledged writes (leader now ${leader.name})`,
        );
        const phantom = [...ids].filter((id) => !sentIds.has(id));
        assert.deepEqual(phantom, [], `${n.name} has rows nobody sent`);
      }
    }),
});
