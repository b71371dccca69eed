/**
 * DNS discovery (`-disco-mode dns`, issue [8/8] point 2): three nodes started
 * with the same DNS name and `-bootstrap-expect 3` form one cluster, and a
 * replacement node (fresh data, same name) joins the running cluster instead
 * of waiting to bootstrap. The lookup result comes from
 * `RQLITE_DISCO_DNS_HOSTS` (as in rqlite's own tests); `dns-srv`, the
 * config file form and the resolver path are covered by unit tests in
 * tests/server/discovery_test.ts.
 */

import assert from "node:assert/strict";
import { mustExecute, queryRows } from "../helpers.ts";
import { freePort, type NodeProcess, spawnNode, waitFor } from "../../util/node.ts";
import { skipUnlessClustering } from "./available.ts";

const ignore = skipUnlessClustering("DNS discovery test (tests/e2e/cluster/discovery_test.ts)");

async function nodesOf(n: NodeProcess): Promise<Record<string, { leader?: boolean }>> {
  const res = await fetch(`${n.url}/nodes`, { signal: AbortSignal.timeout(5_000) });
  return await res.json();
}

Deno.test({
  name: "discovery: three nodes with one DNS name form a cluster; a replacement joins it",
  ignore,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "raftlite-disco-" });
    const raftPorts = [freePort(), freePort(), freePort(), freePort()];
    const raft = raftPorts.map((p) => `127.0.0.1:${p}`);
    const procs: NodeProcess[] = [];
    const start = (i: number, hosts: string[]) => {
      const p = spawnNode(`${dir}/n${i}`, [
        "-node-id",
        `n${i}`,
        "-raft-adv-addr",
        raft[i]!,
        "-disco-mode",
        "dns",
        "-disco-config",
        '{"name":"rqlite.test","port":4002}',
        "-bootstrap-expect",
        "3",
        "-bootstrap-expect-timeout",
        "60s",
      ], { raftAddr: raft[i]!, env: { RQLITE_DISCO_DNS_HOSTS: hosts.join(",") } });
      procs.push(p);
      return p;
    };
    try {
      const three = [0, 1, 2].map((i) => start(i, raft.slice(0, 3)));
      await Promise.all(three.map((p) => p.ready(60_000)));
      const members = Object.keys(await nodesOf(three[0]!)).sort();
      assert.deepEqual(members, ["n0", "n1", "n2"], "one cluster of the three");
      await mustExecute(three[1]!.url, ["CREATE TABLE t (x)", "INSERT INTO t VALUES (1)"]);

      // n2's VM is replaced: DNS now names n0, n1 and the new n3.
      await three[2]!.kill();
      const replacement = start(3, [raft[0]!, raft[1]!, raft[3]!]);
      await replacement.ready(60_000);
      const after = Object.keys(await nodesOf(three[0]!)).sort();
      assert.ok(after.includes("n3"), `n3 joined: ${after.join(", ")}`);
      // Ready (a leader known) can come just before the join call returns and logs.
      await waitFor(
        () => Promise.resolve(/joined the cluster via/.test(replacement.stderr())),
        10_000,
      );
      const deadline = performance.now() + 20_000;
      for (;;) {
        const rows = await queryRows(replacement.url, "SELECT x FROM t", "none").catch(() => []);
        if (JSON.stringify(rows) === "[[1]]") break;
        assert.ok(performance.now() < deadline, "the replacement never received the data");
        await new Promise((r) => setTimeout(r, 100));
      }
    } finally {
      await Promise.all(procs.map((p) => p.kill()));
      await Deno.remove(dir, { recursive: true });
    }
  },
});
