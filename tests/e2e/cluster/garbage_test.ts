/**
 * Issue [3/8]: a stranger connecting to a node's Raft port (ARCHITECTURE §6:
 * "a bad frame closes that connection, never the node"). Random bytes, an
 * unknown service byte, service byte 1 (Raft) or 2 (cluster service)
 * followed by garbage, and huge declared frame lengths: the node closes the
 * connection within a bound, stays up, and the cluster keeps serving writes
 * on every node. A connection that says nothing after its service byte must
 * not hold anything up either. Frame layouts tried: raftlite's (u32
 * big-endian length, lib/transport/frame.ts) and rqlite's cluster service
 * (u64 little-endian length, rqlite-api.md §9).
 */

import assert from "node:assert/strict";
import { Prng } from "../../../lib/sim/prng.ts";
import { mustExecute } from "../helpers.ts";
import { skipUnlessClustering } from "./available.ts";
import { type Cluster, type ClusterNode, rowsOn, waitConverged, withCluster } from "./harness.ts";
import { splitHostPort } from "./proxy.ts";
import { concat, sendUntilClosed } from "../../util/fuzz.ts";

const ignore = skipUnlessClustering(
  "cluster garbage-input test (tests/e2e/cluster/garbage_test.ts)",
);

const CLOSE_BOUND_MS = 5_000;

interface Case {
  name: string;
  bytes: (rng: Prng) => Uint8Array;
  /** Also half-close our side after sending (the node sees EOF). */
  halfClose: boolean;
}

function random(rng: Prng, n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = rng.nextInt(256);
  return out;
}

function u64le(n: bigint): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, n, true);
  return b;
}

const CASES: Case[] = [
  {
    name: "random bytes (first byte no service)",
    bytes: (rng) => {
      const b = random(rng, 64 * 1024);
      b[0] = 0x7f;
      return b;
    },
    halfClose: true,
  },
  { name: "unknown service byte 0", bytes: () => new Uint8Array([0]), halfClose: false },
  { name: "unknown service byte 3", bytes: () => new Uint8Array([3, 1, 2, 3]), halfClose: false },
  { name: "unknown service byte 255", bytes: () => new Uint8Array([255]), halfClose: false },
  {
    name: "service 1 (Raft) + random",
    bytes: (rng) => concat(new Uint8Array([1]), random(rng, 64 * 1024)),
    halfClose: true,
  },
  {
    name: "service 2 (cluster) + random",
    bytes: (rng) => concat(new Uint8Array([2]), random(rng, 64 * 1024)),
    halfClose: true,
  },
  {
    name: "service 2 + declared frame length 2^62",
    bytes: (rng) => concat(new Uint8Array([2]), u64le(1n << 62n), random(rng, 64)),
    halfClose: false,
  },
  {
    name: "service 2 + declared frame length 2^64-1",
    bytes: () => concat(new Uint8Array([2]), u64le(0xffff_ffff_ffff_ffffn)),
    halfClose: false,
  },
  {
    name: "service 2 + u32 big-endian length 0xFFFFFFFF",
    bytes: () => new Uint8Array([2, 0xff, 0xff, 0xff, 0xff]),
    halfClose: false,
  },
  {
    name: "service 1 + u32 big-endian length 2 GiB - 1 (above any frame limit), no payload",
    bytes: () => new Uint8Array([1, 0x7f, 0xff, 0xff, 0xff]),
    halfClose: false,
  },
  {
    name: "service 1 + a short frame of garbage",
    bytes: (rng) => concat(new Uint8Array([1, 0, 0, 0, 32]), random(rng, 32)),
    halfClose: false,
  },
  {
    name: "service 2 + a short frame of garbage",
    bytes: (rng) => concat(new Uint8Array([2, 0, 0, 0, 32]), random(rng, 32)),
    halfClose: false,
  },
  {
    name: "service 1 + all-ones header (huge length in any framing)",
    bytes: () => concat(new Uint8Array([1]), new Uint8Array(32).fill(0xff)),
    halfClose: false,
  },
  {
    name: "service 2 + a zero-length frame then garbage",
    bytes: (rng) => concat(new Uint8Array([2]), u64le(0n), u64le(16n), random(rng, 16)),
    halfClose: true,
  },
];

async function writesStillWork(c: Cluster, round: number): Promise<void> {
  for (const n of c.nodes) {
    await mustExecute(n.url, [["INSERT INTO t(round, via) VALUES(?, ?)", round, n.name]]);
  }
}

Deno.test({
  name: "cluster: garbage on the Raft port closes that connection, never the node",
  ignore,
  fn: () =>
    withCluster({ prefix: "garbage" }, async (c) => {
      const rng = new Prng(20240603);
      const leader = await c.leader();
      const follower = c.followersOf(leader)[0]!;
      await mustExecute(leader.url, [
        "CREATE TABLE t(id INTEGER PRIMARY KEY, round INTEGER, via TEXT)",
      ]);
      // A silent connection that chose the cluster service, held open throughout.
      const silent = await Deno.connect(splitHostPort(leader.raftAddr));
      await silent.write(new Uint8Array([2]));
      const silentRaft = await Deno.connect(splitHostPort(follower.raftAddr));
      await silentRaft.write(new Uint8Array([1]));
      try {
        let round = 0;
        for (const target of [follower, leader] as ClusterNode[]) {
          for (const cse of CASES) {
            // Straight to the bound port, and through the proxy like a peer would.
            for (const addr of [target.raftAddr, target.advAddr]) {
              const how = await sendUntilClosed(
                splitHostPort(addr),
                cse.bytes(rng),
                cse.halfClose,
                CLOSE_BOUND_MS,
              );
              assert.match(
                how,
                /^closed/,
                `${target.name} ${addr}: ${cse.name}: connection still open after ${CLOSE_BOUND_MS} ms`,
              );
            }
            for (const n of c.nodes) {
              assert.ok(n.alive && n.proc !== undefined, `${n.name} is still running`);
            }
          }
          await writesStillWork(c, round++);
        }
        // Still one leader, the same one, and the data is everywhere.
        assert.equal((await c.leader()).name, leader.name, "no leadership change from garbage");
        await waitConverged(c.nodes, 20_000, async (n) => {
          const rows = await rowsOn(n, "SELECT COUNT(*) FROM t", "none");
          return rows[0]?.[0] === 6;
        });
        for (const n of c.nodes) {
          const status = await Promise.race([
            n.proc!.child.status.then((s) => `exited ${s.code}`),
            new Promise<string>((r) => setTimeout(() => r("running"), 10)),
          ]);
          assert.equal(status, "running", `${n.name} process`);
        }
      } finally {
        silent.close();
        silentRaft.close();
      }
    }),
});
