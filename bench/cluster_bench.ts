/**
 * Replicated writes on a 3-node raftlite cluster on this machine (issue
 * [3/8]): one single-row INSERT per `POST /db/execute` (bench/lua/insert.lua),
 * with 1, 16 and 64 concurrent clients (wrk connections), sent to the
 * leader and then to a follower (which forwards each request to the leader
 * over the cluster service). Reports writes/s, p50/p99 latency and the CPU
 * the three nodes used together, and records the table in bench/RESULTS.md.
 *
 * Every request's status and body are checked by the wrk script, and the
 * table must grow by at least the number of acknowledged inserts, read back
 * at level strong. All three nodes, wrk and this process share the
 * machine's cores, so these are lower bounds for three real machines (and
 * there is no network latency between the nodes).
 *
 * Until clustering exists (`main.ts -join` refused) the benchmark prints a
 * skip line and records nothing.
 *
 * Run: `deno task bench cluster` (or `deno run -A bench/cluster_bench.ts`).
 * Environment: `BENCH_CLUSTER_SECONDS` (length of each measured row, default 6).
 *
 * @module
 */

import { Cluster, type ClusterNode } from "../tests/e2e/cluster/harness.ts";
import { probeClustering } from "../tests/e2e/cluster/probe.ts";
import {
  BUSY_THRESHOLD,
  cpuSnapshot,
  cpuUse,
  processCpuSeconds,
  waitForQuiet,
} from "./lib/machine.ts";
import { alignTable, recordResults } from "./lib/results.ts";
import { ensureWrk, runWrk, type WrkResult } from "./lib/wrk.ts";

const SECONDS = Number(Deno.env.get("BENCH_CLUSTER_SECONDS") ?? "6");
const CONNS = [1, 16, 64] as const;
const THREADS = 1;

interface Row {
  via: "leader" | "follower";
  conns: number;
  result: WrkResult;
  /** CPU seconds per wall second of the three nodes together. */
  nodeCores: number;
  /** Cores used by everything else except wrk and the nodes. */
  otherCores: number;
}

async function rqlite(url: string, path: string, body: unknown): Promise<unknown[][]> {
  const res = await fetch(`${url}${path}`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(30_000),
  });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`${path}: status ${res.status}: ${text}`);
  const json = JSON.parse(text) as {
    results?: { error?: string; values?: unknown[][] }[];
    error?: string;
  };
  const failed = json.error ?? json.results?.find((r) => r.error !== undefined)?.error;
  if (failed !== undefined) throw new Error(`${path}: ${failed}`);
  return json.results?.[0]?.values ?? [];
}

async function countRows(leader: ClusterNode): Promise<number> {
  const values = await rqlite(leader.url, "/db/query?level=strong", ["SELECT COUNT(*) FROM bench"]);
  const n = values[0]?.[0];
  if (typeof n !== "number") throw new Error(`COUNT(*) returned ${JSON.stringify(values)}`);
  return n;
}

async function nodesCpuSeconds(c: Cluster): Promise<number> {
  let total = 0;
  for (const n of c.nodes) total += await processCpuSeconds(n.proc!.pid);
  return total;
}

async function measure(
  c: Cluster,
  leader: ClusterNode,
  target: ClusterNode,
  via: Row["via"],
  conns: number,
): Promise<Row> {
  const before = await countRows(leader);
  const nodes0 = await nodesCpuSeconds(c);
  const cpu0 = await cpuSnapshot();
  const result = await runWrk({
    url: target.url,
    script: "insert.lua",
    connections: conns,
    threads: THREADS,
    durationSec: SECONDS,
  });
  const cpu1 = await cpuSnapshot();
  const wall = cpu1.at - cpu0.at;
  const nodeCores = (await nodesCpuSeconds(c) - nodes0) / wall;
  const use = cpuUse(cpu0, cpu1);
  const added = (await countRows(leader)) - before;
  if (added < result.requests) {
    throw new Error(
      `${result.requests} inserts via the ${via} were acknowledged but only ${added} rows were added`,
    );
  }
  return {
    via,
    conns,
    result,
    nodeCores,
    otherCores: Math.max(0, use.machine - nodeCores - use.children - use.self),
  };
}

function formatTable(rows: readonly Row[]): string[] {
  const header = [
    "writes sent to",
    "conns",
    "writes/s",
    "p50 ms",
    "p99 ms",
    "cpu: 3 nodes",
    "other",
  ];
  const body = rows.map((r) => [
    r.via,
    String(r.conns),
    Math.round(r.result.rps).toLocaleString("en-US"),
    r.result.latencyMs.p50.toFixed(2),
    r.result.latencyMs.p99.toFixed(2),
    r.nodeCores.toFixed(2),
    r.otherCores.toFixed(2),
  ]);
  return alignTable([header, ...body]);
}

/** Runs the benchmark and prints its table. */
export async function run(): Promise<void> {
  if (!(SECONDS > 0)) throw new Error(`BENCH_CLUSTER_SECONDS must be > 0, got ${SECONDS}`);
  const availability = await probeClustering();
  if (!availability.available) {
    console.log(`  cluster: skipped: ${availability.reason}`);
    return;
  }
  await ensureWrk();
  const warnings: string[] = [];
  const quiet = await waitForQuiet(30_000);
  if (quiet !== null) {
    console.log(`  ${quiet}`);
    warnings.push(quiet);
  }
  console.log(
    `cluster: 3 raftlite nodes on this machine, INSERT per request via the leader and via a ` +
      `follower, wrk -t${THREADS}, ${SECONDS} s per row`,
  );
  const c = await Cluster.start({ voters: 3, proxied: false, prefix: "bench" });
  const rows: Row[] = [];
  try {
    const leader = await c.leader();
    const follower = c.followersOf(leader)[0]!;
    await rqlite(leader.url, "/db/execute", [
      "CREATE TABLE bench (id INTEGER PRIMARY KEY, v TEXT NOT NULL)",
    ]);
    await runWrk({
      url: leader.url,
      script: "insert.lua",
      connections: 16,
      threads: THREADS,
      durationSec: 2,
    });
    for (const [via, target] of [["leader", leader], ["follower", follower]] as const) {
      for (const conns of CONNS) {
        const row = await measure(c, leader, target, via, conns);
        rows.push(row);
        console.log(`  ${formatTable([row]).at(-1)}`);
      }
    }
    const now = await c.leader();
    if (now !== leader) {
      warnings.push(`WARNING: leadership moved from ${leader.name} to ${now.name}`);
    }
  } catch (err) {
    console.error(c.describe());
    throw err;
  } finally {
    await c.close();
  }
  const maxOther = Math.max(...rows.map((r) => r.otherCores));
  if (maxOther >= BUSY_THRESHOLD) {
    warnings.push(
      `WARNING: other processes used up to ${maxOther.toFixed(2)} cores during the rows ` +
        `(cpu column "other"); those figures are disturbed`,
    );
  }
  const lines = formatTable(rows);
  const notes = [
    `3 voters + wrk -t${THREADS} -c<conns> -d${SECONDS}s on one machine, loopback, no proxies; ` +
    `cpu = cores used (CPU seconds per second)`,
    ...warnings,
  ];
  for (const line of [...lines, ...warnings]) console.log(`  ${line}`);
  await recordResults("Cluster writes, 3 nodes (bench/cluster_bench.ts)", lines, notes);
}

if (import.meta.main) await run();
