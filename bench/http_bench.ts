/**
 * HTTP data API of one raftlite node, measured with wrk against the HTTP
 * ceiling (a trivial `Deno.serve` handler, bench/lib/ceiling_server.ts) in
 * the same run:
 *
 * - writes: one single-row INSERT per `POST /db/execute`, with 1, 16 and 64
 *   concurrent clients (wrk connections, one request in flight on each);
 * - reads: one point SELECT by primary key per `GET /db/query`, 64 clients,
 *   at `level=weak` and `level=none`, over a table preloaded with 10,000 rows.
 *
 * Prints one table (req/s, p50/p99 latency, the server's CPU use in cores,
 * and the ratio to the ceiling at the same concurrency) and the node's peak
 * RSS, and records it in bench/RESULTS.md. Every request's status and body
 * are checked, and the row count must grow by at least the number of
 * acknowledged inserts. wrk runs with one thread: it shares the 2 cores with
 * the server, so these are lower bounds for a dedicated server machine.
 * Takes about 90 s.
 *
 * Run: `deno task bench http` (or `deno run -A bench/http_bench.ts`).
 * Environment: `BENCH_HTTP_SECONDS` (length of each measured row, default 6);
 * `BENCH_RAFTLITE_MAIN` (entry point to benchmark instead of main.ts, e.g. a
 * stand-in server; its figures are then not written to RESULTS.md).
 *
 * @module
 */

import { BUSY_THRESHOLD, cpuSnapshot, cpuUse, waitForQuiet } from "./lib/machine.ts";
import { alignTable, recordResults } from "./lib/results.ts";
import { type ServerHandle, ServerStartError, startCeiling, startRaftlite } from "./lib/server.ts";
import { ensureWrk, runWrk, type WrkOptions, type WrkResult } from "./lib/wrk.ts";

const SECONDS = Number(Deno.env.get("BENCH_HTTP_SECONDS") ?? "6");
const MAIN_OVERRIDE = Deno.env.get("BENCH_RAFTLITE_MAIN");
const PRELOAD_ROWS = 10_000;
const PRELOAD_BATCH = 1_000;
const INSERT_CONNS = [1, 16, 64] as const;
const READ_CONNS = 64;
const THREADS = 1;

/** One measured row of the table. */
interface Row {
  scenario: string;
  conns: number;
  result: WrkResult;
  /** Server CPU seconds per wall second during the run. */
  cores: number;
  /** wrk's CPU seconds per wall second. */
  wrkCores: number;
  /** Cores used by every other process on the machine meanwhile. */
  otherCores: number;
  /** Key of the ceiling row this one is compared with. */
  ceiling?: string;
}

// ---------------------------------------------------------------------------
// A minimal rqlite client for setup and checks.

interface RqliteResult {
  columns?: string[];
  values?: unknown[][];
  error?: string;
  rows_affected?: number;
}

async function rqlite(
  server: ServerHandle,
  path: string,
  body?: unknown,
): Promise<RqliteResult[]> {
  const res = await fetch(`${server.baseUrl}${path}`, {
    method: body === undefined ? "GET" : "POST",
    headers: body === undefined ? undefined : { "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(30_000),
  });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`${path}: status ${res.status}: ${text}`);
  const json = JSON.parse(text) as { results?: RqliteResult[]; error?: string };
  const failed = json.error ?? json.results?.find((r) => r.error !== undefined)?.error;
  if (failed !== undefined) throw new Error(`${path}: ${failed}`);
  if (!Array.isArray(json.results)) throw new Error(`${path}: no results in ${text}`);
  return json.results;
}

async function countRows(server: ServerHandle): Promise<number> {
  const q = encodeURIComponent("SELECT COUNT(*) FROM bench");
  const [r] = await rqlite(server, `/db/query?q=${q}&level=weak`);
  const n = r?.values?.[0]?.[0];
  if (typeof n !== "number") throw new Error(`COUNT(*) returned ${JSON.stringify(r)}`);
  return n;
}

async function preload(server: ServerHandle): Promise<void> {
  await rqlite(server, "/db/execute", [
    "CREATE TABLE bench (id INTEGER PRIMARY KEY, v TEXT NOT NULL)",
  ]);
  for (let done = 0; done < PRELOAD_ROWS; done += PRELOAD_BATCH) {
    const stmts = Array.from(
      { length: PRELOAD_BATCH },
      (_, i) => ["INSERT INTO bench(v) VALUES(?)", `preload-${String(done + i).padStart(23, "0")}`],
    );
    await rqlite(server, "/db/execute?transaction", stmts);
  }
  const n = await countRows(server);
  if (n !== PRELOAD_ROWS) throw new Error(`preloaded ${PRELOAD_ROWS} rows but COUNT(*) is ${n}`);
}

// ---------------------------------------------------------------------------
// Measuring.

async function measure(
  server: ServerHandle,
  scenario: string,
  wrk: Omit<WrkOptions, "url" | "durationSec" | "threads">,
  ceiling?: string,
): Promise<Row> {
  const server0 = await server.cpuSeconds();
  const cpu0 = await cpuSnapshot();
  const result = await runWrk({
    ...wrk,
    url: server.baseUrl,
    durationSec: SECONDS,
    threads: THREADS,
  });
  const cpu1 = await cpuSnapshot();
  const use = cpuUse(cpu0, cpu1);
  const cores = (await server.cpuSeconds() - server0) / (cpu1.at - cpu0.at);
  // wrk is the only child reaped during the run, so the children's time is its own.
  const otherCores = Math.max(0, use.machine - cores - use.children - use.self);
  return {
    scenario,
    conns: wrk.connections,
    result,
    cores,
    wrkCores: use.children,
    otherCores,
    ceiling,
  };
}

async function warmUp(server: ServerHandle, script: string, scriptArgs?: string[]): Promise<void> {
  await runWrk({
    url: server.baseUrl,
    script,
    scriptArgs,
    connections: 16,
    threads: THREADS,
    durationSec: 2,
  });
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

function ceilingKey(method: string, conns: number): string {
  return `${method} ${conns}`;
}

async function measureCeiling(): Promise<Map<string, Row>> {
  return await withServer(startCeiling, async (server) => {
    const rows = new Map<string, Row>();
    await warmUp(server, "insert.lua");
    await warmUp(server, "select.lua");
    for (const c of INSERT_CONNS) {
      const row = await measure(server, "ceiling POST /db/execute", {
        script: "insert.lua",
        connections: c,
      });
      rows.set(ceilingKey("POST", c), row);
    }
    const row = await measure(server, "ceiling GET /db/query", {
      script: "select.lua",
      connections: READ_CONNS,
    });
    rows.set(ceilingKey("GET", READ_CONNS), row);
    return rows;
  });
}

interface NodeFigures {
  rows: Row[];
  peakRssKiB: number;
}

async function measureNode(): Promise<NodeFigures> {
  return await withServer(() => startRaftlite({ main: MAIN_OVERRIDE }), async (server) => {
    const rows: Row[] = [];
    await preload(server);
    await warmUp(server, "insert.lua");
    for (const c of INSERT_CONNS) {
      const before = await countRows(server);
      const row = await measure(server, "raftlite INSERT, 1 row/request", {
        script: "insert.lua",
        connections: c,
      }, ceilingKey("POST", c));
      const added = (await countRows(server)) - before;
      if (added < row.result.requests) {
        throw new Error(
          `${row.result.requests} inserts were acknowledged but only ${added} rows were added`,
        );
      }
      rows.push(row);
    }
    const args = (level: string) => [String(PRELOAD_ROWS), level];
    await warmUp(server, "select.lua", args("weak"));
    for (const level of ["weak", "none"]) {
      rows.push(
        await measure(server, `raftlite SELECT by id, level=${level}`, {
          script: "select.lua",
          scriptArgs: args(level),
          connections: READ_CONNS,
        }, ceilingKey("GET", READ_CONNS)),
      );
    }
    return { rows, peakRssKiB: await server.peakRssKiB() };
  });
}

// ---------------------------------------------------------------------------
// Reporting.

function formatRatio(x: number): string {
  return (x >= 0.095 ? x.toFixed(2) : x.toFixed(3)) + "x";
}

function formatTable(rows: readonly Row[], ceilings: Map<string, Row>): string[] {
  const header = [
    "scenario",
    "conns",
    "req/s",
    "p50 ms",
    "p99 ms",
    "vs ceiling",
    "cpu: server",
    "wrk",
    "other",
  ];
  const body = rows.map((r) => {
    const ceiling = r.ceiling === undefined ? undefined : ceilings.get(r.ceiling);
    return [
      r.scenario,
      String(r.conns),
      Math.round(r.result.rps).toLocaleString("en-US"),
      r.result.latencyMs.p50.toFixed(2),
      r.result.latencyMs.p99.toFixed(2),
      ceiling === undefined ? "-" : formatRatio(r.result.rps / ceiling.result.rps),
      r.cores.toFixed(2),
      r.wrkCores.toFixed(2),
      r.otherCores.toFixed(2),
    ];
  });
  return alignTable([header, ...body]);
}

/** Runs the benchmark and prints its table. */
export async function run(): Promise<void> {
  if (!(SECONDS > 0)) throw new Error(`BENCH_HTTP_SECONDS must be > 0, got ${SECONDS}`);
  await ensureWrk();
  const warnings: string[] = [];
  const before = await waitForQuiet(30_000);
  if (before !== null) {
    console.log(`  ${before}`);
    warnings.push(before);
  }
  console.log(
    `http: one raftlite node vs a trivial Deno.serve handler (the HTTP ceiling), ` +
      `wrk -t${THREADS}, ${SECONDS} s per row; run alone with \`deno task bench http\``,
  );
  const ceilings = await measureCeiling();
  let node: NodeFigures | null = null;
  let skipped: string | null = null;
  try {
    node = await measureNode();
  } catch (e) {
    // Until the server lands main.ts refuses to start; report the ceiling anyway.
    if (!(e instanceof ServerStartError && /not implemented/i.test(e.output))) throw e;
    skipped = e.output.trim().split("\n").at(-1) ?? "not implemented";
  }
  const rows = [...ceilings.values(), ...(node?.rows ?? [])];
  const maxOther = Math.max(...rows.map((r) => r.otherCores));
  if (maxOther >= BUSY_THRESHOLD) {
    warnings.push(
      `WARNING: other processes used up to ${maxOther.toFixed(2)} cores during the rows ` +
        `(cpu column "other"); those figures are disturbed`,
    );
  }
  const lines = formatTable(rows, ceilings);
  const notes = [
    `wrk -t${THREADS} -c<conns> -d${SECONDS}s, client and server on the same machine; ` +
    `cpu = cores used (CPU seconds per second)`,
    `reads: ${PRELOAD_ROWS.toLocaleString("en-US")}-row table, random id per request`,
    ...warnings,
  ];
  if (node !== null) {
    lines.push(`raftlite node peak RSS: ${(node.peakRssKiB / 1024).toFixed(1)} MiB`);
  } else {
    lines.push(`raftlite node: skipped, the server did not start: ${skipped}`);
  }
  for (const line of [...lines, ...warnings]) console.log(`  ${line}`);
  if (MAIN_OVERRIDE !== undefined) {
    console.log(`  (BENCH_RAFTLITE_MAIN=${MAIN_OVERRIDE}: not recorded in bench/RESULTS.md)`);
  } else if (node !== null) {
    await recordResults("HTTP API, one node (bench/http_bench.ts)", lines, notes);
  }
}

if (import.meta.main) await run();
