/**
 * Internode TLS on real clusters (certificates made by openssl during the
 * test): three nodes with mutual TLS on the Raft port (-node-cert,
 * -node-key, -node-ca-cert, -node-verify-client, -node-verify-common-name)
 * form with -join behind the harness's TCP proxies (TLS passes through
 * them), and a write through a follower (forwarded over TLS) reaches every
 * node. A node holding a self-signed certificate, and a node without TLS,
 * cannot join: each exits with a clear error, the membership stays the
 * same, the cluster keeps serving, and the refusals are logged once per
 * peer rather than once per attempt. Two-node clusters cover
 * -node-no-verify (self-signed certificates, no CA) and
 * -node-verify-server-name (certificates naming raft.internal only).
 */

import assert from "node:assert/strict";
import { mustExecute } from "../helpers.ts";
import { type CertFiles, type TestPki, withPki } from "../../util/certs.ts";
import { skipUnlessClustering } from "./available.ts";
import {
  type Cluster,
  type ClusterNode,
  joiningNode,
  rawRequest,
  rowsOn,
  waitConverged,
  withCluster,
} from "./harness.ts";

const ignore = skipUnlessClustering("internode TLS tests (tests/e2e/cluster/tls_test.ts)");

/** Flags of a node presenting `files` and requiring client certificates from `pki`'s CA. */
function mutualTls(pki: TestPki, files: CertFiles): string[] {
  return [
    "-node-cert",
    files.cert,
    "-node-key",
    files.key,
    "-node-ca-cert",
    pki.caCert,
    "-node-verify-client",
    "-node-verify-common-name",
    "raft-node",
  ];
}

/** Joins fail fast in these tests: two passes over the address, 300 ms apart. */
const QUICK_JOIN = ["-join-attempts", "2", "-join-interval", "300ms"];

/** Membership as the leader's /nodes lists it (ids, sorted). */
async function memberIds(n: ClusterNode): Promise<string[]> {
  const a = await rawRequest(`${n.url}/nodes`);
  assert.equal(a.status, 200, a.text);
  return Object.keys(JSON.parse(a.text)).sort();
}

/** Starts `n` (outside the formation), waits for it to exit, returns its code and stderr. */
async function joinMustFail(c: Cluster, n: ClusterNode): Promise<{ code: number; log: string }> {
  await c.spawn(n);
  const proc = n.proc!;
  const timer = setTimeout(() => proc.kill("SIGKILL"), 60_000);
  const status = await proc.child.status;
  clearTimeout(timer);
  const log = proc.stderr();
  await c.kill(n); // records the log, forgets the process (already exited)
  return { code: status.code, log };
}

async function writeThroughFollower(c: Cluster, rows: number): Promise<void> {
  const leader = await c.leader();
  const follower = c.followersOf(leader)[0]!;
  await mustExecute(follower.url, ["CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, v TEXT)"]);
  const inserts = Array.from(
    { length: rows },
    (_, i) =>
      ["INSERT OR REPLACE INTO t(id, v) VALUES(?, ?)", i, `row ${i}`] as [string, ...unknown[]],
  );
  const a = await mustExecute(follower.url, inserts);
  assert.equal(a.json?.results?.length, rows);
  await waitConverged(c.live(), 20_000, async (n) => {
    const [[count]] = await rowsOn(n, "SELECT COUNT(*) FROM t") as [[number]];
    return count === rows;
  });
  for (const n of c.live()) {
    assert.deepEqual(await rowsOn(n, "SELECT COUNT(*) FROM t"), [[rows]], n.name);
  }
}

Deno.test({
  name: "mutual TLS cluster: forms, forwards over TLS, refuses rogue and plain-TCP nodes",
  ignore,
  fn: async () => {
    await withPki(async (pki) => {
      const nodeCert = await pki.issue("node", { cn: "raft-node" });
      const rogue = await pki.selfSigned("rogue", { cn: "raft-node" });
      await withCluster(
        { voters: 3, prefix: "mtls", flags: mutualTls(pki, nodeCert) },
        async (c) => {
          await writeThroughFollower(c, 25);
          const leader = await c.leader();
          const before = await memberIds(leader);
          assert.deepEqual(before, ["n1", "n2", "n3"]);

          // A node whose certificate no CA vouches for (same name, self-signed).
          const n4 = joiningNode(c, "n4", leader.advAddr, undefined, [
            ...mutualTls(pki, rogue),
            ...QUICK_JOIN,
          ]);
          const rogueRun = await joinMustFail(c, n4);
          assert.equal(rogueRun.code, 1, rogueRun.log);
          assert.match(rogueRun.log, /fatal: failed to join cluster at /, rogueRun.log);
          assert.match(rogueRun.log, /may refuse this node's certificate/, rogueRun.log);

          // A node without TLS: its bytes are not a TLS handshake.
          const n5 = joiningNode(c, "n5", leader.advAddr, undefined, QUICK_JOIN);
          const plainRun = await joinMustFail(c, n5);
          assert.equal(plainRun.code, 1, plainRun.log);
          assert.match(plainRun.log, /fatal: failed to join cluster at /, plainRun.log);
          assert.match(plainRun.log, /answered with a TLS alert: it requires internode TLS/);

          assert.deepEqual(await memberIds(await c.leader()), before, "membership unchanged");
          await writeThroughFollower(c, 40);

          // Each refusing node logged each kind of refusal once, not once per attempt.
          for (const n of c.live()) {
            const lines = n.logs().split("\n").filter((l) => l.includes("[tls]"));
            const distinct = new Set(lines.map((l) => l.replace(/^.*?\[tls\]/, "")));
            assert.equal(lines.length, distinct.size, `${n.name} repeated:\n${lines.join("\n")}`);
          }
          const leaderLog = (await c.leader()).logs();
          assert.match(leaderLog, /\[tls\] TLS handshake from 127\.0\.0\.1 failed/, leaderLog);
        },
      );
    });
  },
});

Deno.test({
  name: "-node-no-verify: nodes with self-signed certificates and no CA form a cluster",
  ignore,
  fn: async () => {
    await withPki(async (pki) => {
      const self = await pki.selfSigned("self");
      const flags = ["-node-cert", self.cert, "-node-key", self.key, "-node-no-verify"];
      await withCluster({ voters: 2, proxied: false, prefix: "noverify", flags }, async (c) => {
        await writeThroughFollower(c, 10);
      });
    });
  },
});

Deno.test({
  name: "-node-verify-server-name: peers verified against a fixed name, not 127.0.0.1",
  ignore,
  fn: async () => {
    await withPki(async (pki) => {
      const named = await pki.issue("named", { cn: "raft-node", san: ["DNS:raft.internal"] });
      const flags = [
        ...mutualTls(pki, named),
        "-node-verify-server-name",
        "raft.internal",
      ];
      await withCluster({ voters: 2, proxied: false, prefix: "sname", flags }, async (c) => {
        await writeThroughFollower(c, 10);
        // Without the fixed name the same certificate fails verification against 127.0.0.1.
        const leader = await c.leader();
        const n3 = joiningNode(c, "n3", leader.advAddr, undefined, [
          ...mutualTls(pki, named),
          ...QUICK_JOIN,
        ]);
        const run = await joinMustFail(c, n3);
        assert.equal(run.code, 1, run.log);
        assert.match(run.log, /use -node-verify-server-name/, run.log);
        assert.deepEqual(await memberIds(await c.leader()), ["n1", "n2"]);
      });
    });
  },
});
