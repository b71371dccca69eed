/**
 * DNS discovery (issue [8/8] point 2): three nodes started with the same
 * DNS name and `-bootstrap-expect 3` form one cluster, and a replacement
 * node (fresh data, same name) joins the running cluster instead of
 * waiting to bootstrap. Twice:
 *
 * - `-disco-mode dns` with the lookup result from `RQLITE_DISCO_DNS_HOSTS`
 *   (as in rqlite's own tests);
 * - `-disco-mode dns-srv` asking a real DNS server that the test starts on
 *   127.0.0.1 (tests/util/dns_server.ts, through -disco-config's
 *   "nameserver"), so Deno.resolveDns does the lookups. SRV records carry
 *   each node's port, so all nodes can live on 127.0.0.1; the server's
 *   table is changed to name the replacement instead of the killed node.
 *
 * The config file form and `dns` A/AAAA lookups against the real server
 * are covered by unit tests in tests/server/discovery_test.ts.
 */

import assert from "node:assert/strict";
import { mustExecute, queryRows } from "../helpers.ts";
import { freePort, type NodeProcess, spawnNode, waitFor } from "../../util/node.ts";
import { type DnsServer, startDnsServer } from "../../util/dns_server.ts";
import { skipUnlessClustering } from "./available.ts";

const ignore = skipUnlessClustering("DNS discovery test (tests/e2e/cluster/discovery_test.ts)");

async function nodesOf(n: NodeProcess): Promise<Record<string, { leader?: boolean }>> {
  const res = await fetch(`${n.url}/nodes`, { signal: AbortSignal.timeout(5_000) });
  return await res.json();
}

/** How the nodes learn the names: the flags for node `i`, and how DNS is made to name `hosts`. */
interface Naming {
  flags(): string[];
  env(hosts: string[]): Record<string, string>;
  publish(hosts: string[]): void;
}

/** Three nodes, a write, one killed and replaced; the replacement joins and gets the data. */
async function formAndReplace(naming: Naming): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "raftlite-disco-" });
  const raft = [0, 1, 2, 3].map(() => `127.0.0.1:${freePort()}`);
  const procs: NodeProcess[] = [];
  const start = (i: number, hosts: string[]) => {
    const p = spawnNode(`${dir}/n${i}`, [
      "-node-id",
      `n${i}`,
      "-raft-adv-addr",
      raft[i]!,
      ...naming.flags(),
      "-bootstrap-expect",
      "3",
      "-bootstrap-expect-timeout",
      "60s",
    ], { raftAddr: raft[i]!, env: naming.env(hosts) });
    procs.push(p);
    return p;
  };
  try {
    naming.publish(raft.slice(0, 3));
    const three = [0, 1, 2].map((i) => start(i, raft.slice(0, 3)));
    await Promise.all(three.map((p) => p.ready(60_000)));
    const members = Object.keys(await nodesOf(three[0]!)).sort();
    assert.deepEqual(members, ["n0", "n1", "n2"], "one cluster of the three");
    await mustExecute(three[1]!.url, ["CREATE TABLE t (x)", "INSERT INTO t VALUES (1)"]);

    // n2's VM is replaced: DNS now names n0, n1 and the new n3.
    await three[2]!.kill();
    const hosts = [raft[0]!, raft[1]!, raft[3]!];
    naming.publish(hosts);
    const replacement = start(3, hosts);
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
}

Deno.test({
  name: "discovery: three nodes with one DNS name form a cluster; a replacement joins it",
  ignore,
  fn: () =>
    formAndReplace({
      flags: () => ["-disco-mode", "dns", "-disco-config", '{"name":"rqlite.test","port":4002}'],
      env: (hosts) => ({ RQLITE_DISCO_DNS_HOSTS: hosts.join(",") }),
      publish: () => {},
    }),
});

Deno.test({
  name:
    "discovery: dns-srv against a real DNS server on 127.0.0.1 (nameserver); a replacement joins",
  ignore,
  fn: async () => {
    const dns: DnsServer = await startDnsServer({});
    const config = JSON.stringify({
      name: "raftlite.test",
      service: "rqlite-raft",
      nameserver: dns.address,
    });
    try {
      await formAndReplace({
        flags: () => ["-disco-mode", "dns-srv", "-disco-config", config],
        env: () => ({}),
        publish: (hosts) =>
          dns.setTable({
            srv: {
              "_rqlite-raft._tcp.raftlite.test": hosts.map((h) => ({
                // An address as the target: the nodes dial it without another lookup.
                target: "127.0.0.1",
                port: Number(h.slice(h.lastIndexOf(":") + 1)),
              })),
            },
          }),
      });
      assert.ok(dns.asked.includes("SRV _rqlite-raft._tcp.raftlite.test"), dns.asked.join(", "));
    } finally {
      await dns.close();
    }
  },
});
