/**
 * Queued writes (`POST /db/execute?queue`) on one raftlite node, measured
 * with wrk against the HTTP ceiling (a trivial `Deno.serve` handler) and
 * against plain `POST /db/execute` in the same run:
 *
 * - ceiling: one JSON body per request, answered at once;
 * - /db/execute: one single-row INSERT per request, each its own Raft entry;
 * - ?queue: 1 and 10 single-row INSERTs per request, answered at once and
 *   written by the node's drainer in batches (default flags: 128 requests
 *   per batch, 50 ms).
 *
 * Statements/s counts rows actually added, over the wrk run plus a final
 * `?queue&wait` flush (so every acknowledged statement is included); "raft
 * entries" is the growth of the Raft log during the row. 64 clients (wrk
 * connections), one thread: wrk shares the 2 cores with the server.
 *
 * Run: `deno task bench queue` (or `deno run -A bench/queue_bench.ts`).
 * Environment: `BENCH_QUEUE_SECONDS` (length of each row, default 5).
 *
 * @module
 */

import { BUSY_THRESHOLD, cpuSnapshot, cpuUse, waitForQuiet } from "./lib/machine.ts";
import { alignTable, recordResults } from "./lib/results.ts";
import { type ServerHandle, startCeiling, startRaftlite } from "./lib/server.ts";
import { ensureWrk, runWrk, type WrkResult } from "./lib/wrk.ts";

const SECONDS = Number(Deno.env.get("BENCH_QUEUE_SECONDS") ?? "5");
const CONNS = 64;
const THREADS = 1;

interface Row {
  scenario: string;
  result: WrkResult;
  /** Rows added per second (wrk run plus the final flush); undefined for the ceiling. */
  statementsPerSec?: number;
  raftEntries?: number;
  cores: number;
  otherCores: number;
}

async function call(server: ServerHandle, path: string, body?: unknown): Promise<string> {
  const res = await fetch(`${server.baseUrl}${path}`, {
    method: body === undefined ? "GET" : "POST",
    headers: body === undefined ? undefined : { "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(60_000),
  });
  const text = await res.text();
  if (res.status !== 200 || text.includes('"error"')) {
    throw new Error(`${path}: status ${res.status}: ${text.slice(0, 300)}`);
  }
  return text;
}

async function countRows(server: ServerHandle): Promise<number> {
  const text = await call(
    server,
    `/db/query?q=${encodeURIComponent("SELECT COUNT(*) FROM bench")}`,
  );
  const n = JSON.parse(text).results?.[0]?.values?.[0]?.[0];
  if (typeof n !== "number") throw new Error(`COUNT(*) returned ${text}`);
  return n;
}

async function lastLogIndex(server: ServerHandle): Promise<number> {
  return JSON.parse(await call(server, "/status")).store.raft.last_log_index;
}

async function measure(
  server: ServerHandle,
  scenario: string,
  script: string,
  scriptArgs: string[] = [],
  rows?: { flush: boolean },
): Promise<Row> {
  const rows0 = rows === undefined ? 0 : await countRows(server);
  const index0 = rows === undefined ? 0 : await lastLogIndex(server);
  const server0 = await server.cpuSeconds();
  const cpu0 = await cpuSnapshot();
  const t0 = performance.now();
  const result = await runWrk({
    url: server.baseUrl,
    script,
    scriptArgs,
    connections: CONNS,
    threads: THREADS,
    durationSec: SECONDS,
  });
  if (rows?.flush) await call(server, "/db/execute?queue&wait&timeout=60s", []);
  const seconds = (performance.now() - t0) / 1000;
  const cpu1 = await cpuSnapshot();
  const use = cpuUse(cpu0, cpu1);
  const cores = (await server.cpuSeconds() - server0) / (cpu1.at - cpu0.at);
  const row: Row = {
    scenario,
    result,
    cores,
    otherCores: Math.max(0, use.machine - cores - use.children - use.self),
  };
  if (rows !== undefined) {
    const added = await countRows(server) - rows0;
    const perRequest = Number(scriptArgs[0] ?? "1");
    if (added < result.requests * perRequest) {
      throw new Error(
        `${result.requests * perRequest} statements were acknowledged but ${added} rows added`,
      );
    }
    row.statementsPerSec = added / seconds;
    row.raftEntries = await lastLogIndex(server) - index0;
  }
  return row;
}

async function withServer<T>(
  start: () => Promise<ServerHandle>,
  body: (s: ServerHandle) => Promise<T>,
): Promise<T> {
  const server = await start();
  try {
    return await body(server);
  } finally {
    await server.stop();
  }
}

function formatTable(rows: readonly Row[]): string[] {
  const ceiling = rows[0]!.result.rps;
  const header = [
    "scenario",
    "req/s",
    "statements/s",
    "raft entries",
    "p50 ms",
    "p99 ms",
    "req/s vs ceiling",
    "cpu: server",
    "other",
  ];
  const int = (x: number | undefined) =>
    x === undefined ? "-" : Math.round(x).toLocaleString("en-US");
  return alignTable([
    header,
    ...rows.map((r) => [
      r.scenario,
      int(r.result.rps),
      int(r.statementsPerSec),
      int(r.raftEntries),
      r.result.latencyMs.p50.toFixed(2),
      r.result.latencyMs.p99.toFixed(2),
      r === rows[0] ? "-" : `${(r.result.rps / ceiling).toFixed(2)}x`,
      r.cores.toFixed(2),
      r.otherCores.toFixed(2),
    ]),
  ]);
}

/** Runs the benchmark and prints its table. */
export async function run(): Promise<void> {
  if (!(SECONDS > 0)) throw new Error(`BENCH_QUEUE_SECONDS must be > 0, got ${SECONDS}`);
  await ensureWrk();
  const warnings: string[] = [];
  const before = await waitForQuiet(30_000);
  if (before !== null) warnings.push(before);
  console.log(
    `queue: queued writes on one raftlite node, wrk -t${THREADS} -c${CONNS}, ${SECONDS} s per row`,
  );
  const rows: Row[] = [];
  rows.push(
    await withServer(
      startCeiling,
      (s) => measure(s, "ceiling POST (trivial handler)", "insert.lua"),
    ),
  );
  await withServer(() => startRaftlite(), async (s) => {
    await call(s, "/db/execute", ["CREATE TABLE bench (id INTEGER PRIMARY KEY, v TEXT NOT NULL)"]);
    rows.push(
      await measure(s, "POST /db/execute, 1 INSERT/request", "insert.lua", [], { flush: false }),
    );
    rows.push(
      await measure(s, "?queue, 1 INSERT/request", "queue_insert.lua", ["1"], { flush: true }),
    );
    rows.push(
      await measure(s, "?queue, 10 INSERTs/request", "queue_insert.lua", ["10"], { flush: true }),
    );
  });
  const maxOther = Math.max(...rows.map((r) => r.otherCores));
  if (maxOther >= BUSY_THRESHOLD) {
    warnings.push(
      `WARNING: other processes used up to ${maxOther.toFixed(2)} cores during the rows ` +
        `(cpu column "other"); those figures are disturbed`,
    );
  }
  const lines = formatTable(rows);
  for (const line of [...lines, ...warnings]) console.log(`  ${line}`);
  await recordResults("Queued writes, one node (bench/queue_bench.ts)", lines, [
    `wrk -t${THREADS} -c${CONNS} -d${SECONDS}s, client and server on the same machine; ` +
    `statements/s = rows added over the run plus a final ?queue&wait flush`,
    ...warnings,
  ]);
}

if (import.meta.main) await run();
