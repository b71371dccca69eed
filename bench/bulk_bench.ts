/**
 * Bulk requests at growing sizes (issue #6, point 3): does a request of
 * 100,000 statements cost per statement what one of 1,000 does, and how
 * much memory does it take?
 *
 * One raftlite node; `POST /db/execute` with N single-row
 * `INSERT OR REPLACE INTO model(key, value) VALUES(?, ?)` statements (fresh
 * keys, 32-byte values), with and without `?transaction`, N = 1,000,
 * 10,000 and 100,000, one request at a time, about 200,000 rows per size.
 * Bodies are built before the clock starts. Per size: microseconds per
 * statement (wall time / statements, so parse + Raft + fsync + apply +
 * response), rows/s, the ratio of the per-statement cost to the 1,000-row
 * request's (a quadratic cost would show as a ratio growing about 10x per
 * row), and the node's peak RSS during that size (VmHWM, reset before it)
 * over its RSS before, per body byte.
 *
 * Run: `deno task bench bulk` (or `deno run -A bench/bulk_bench.ts`).
 * Environment: `BENCH_BULK_SIZES` (comma-separated, default
 * 1000,10000,100000), `BENCH_BULK_ROWS_PER_SIZE` (default 200,000).
 *
 * @module
 */

import { alignTable, recordResults } from "./lib/results.ts";
import { type ServerHandle, startRaftlite } from "./lib/server.ts";

const SIZES = (Deno.env.get("BENCH_BULK_SIZES") ?? "1000,10000,100000").split(",").map(Number);
const ROWS_PER_SIZE = Number(Deno.env.get("BENCH_BULK_ROWS_PER_SIZE") ?? "200000");
const VALUE = "0123456789abcdef0123456789abcdef";
const SCHEMA = "CREATE TABLE IF NOT EXISTS model (key TEXT, value TEXT, UNIQUE(key))";
const INSERT = "INSERT OR REPLACE INTO model(key, value) VALUES(?, ?)";

interface Row {
  statements: number;
  transaction: boolean;
  bodyBytes: number;
  requests: number;
  usPerStatement: number;
  rowsPerSec: number;
  rssBeforeKiB: number;
  peakRssKiB: number;
}

async function post(server: ServerHandle, path: string, body: string): Promise<string> {
  const res = await fetch(`${server.baseUrl}${path}`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body,
    signal: AbortSignal.timeout(120_000),
  });
  const text = await res.text();
  if (res.status !== 200 || text.includes('"error"')) {
    throw new Error(`${path}: status ${res.status}: ${text.slice(0, 300)}`);
  }
  return text;
}

async function createSchema(server: ServerHandle): Promise<void> {
  const deadline = performance.now() + 30_000;
  for (;;) {
    try {
      await post(server, "/db/execute", JSON.stringify([SCHEMA]));
      return;
    } catch (err) {
      // A node that has just started may not have elected itself yet.
      if (performance.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

function bodyOf(statements: number, firstKey: number): string {
  const parts: string[] = new Array(statements);
  for (let i = 0; i < statements; i++) {
    parts[i] = JSON.stringify([INSERT, `k${firstKey + i}`, VALUE]);
  }
  return `[${parts.join(",")}]`;
}

async function currentRssKiB(pid: number): Promise<number> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN);
}

async function measure(
  server: ServerHandle,
  statements: number,
  transaction: boolean,
  firstKey: number,
): Promise<Row> {
  const requests = Math.max(1, Math.round(ROWS_PER_SIZE / statements));
  const bodies = Array.from(
    { length: requests },
    (_, i) => bodyOf(statements, firstKey + i * statements),
  );
  const path = transaction ? "/db/execute?transaction" : "/db/execute";
  const rssBeforeKiB = await currentRssKiB(server.pid);
  await server.resetPeakRss();
  const t0 = performance.now();
  for (const body of bodies) await post(server, path, body);
  const seconds = (performance.now() - t0) / 1000;
  const total = statements * requests;
  return {
    statements,
    transaction,
    bodyBytes: bodies[0]!.length,
    requests,
    usPerStatement: seconds * 1e6 / total,
    rowsPerSec: total / seconds,
    rssBeforeKiB,
    peakRssKiB: await server.peakRssKiB(),
  };
}

function formatTable(rows: readonly Row[]): string[] {
  const int = (x: number) => Math.round(x).toLocaleString("en-US");
  const mib = (kib: number) => (kib / 1024).toFixed(0);
  const lines = [[
    "statements/request",
    "transaction",
    "body KiB",
    "requests",
    "us/statement",
    "vs 1,000",
    "rows/s",
    "RSS before MiB",
    "peak RSS MiB",
    "peak over before / body",
  ]];
  for (const r of rows) {
    const base = rows.find((b) => b.transaction === r.transaction && b.statements === SIZES[0]);
    lines.push([
      int(r.statements),
      r.transaction ? "yes" : "no",
      int(r.bodyBytes / 1024),
      int(r.requests),
      r.usPerStatement.toFixed(2),
      base === undefined ? "-" : `${(r.usPerStatement / base.usPerStatement).toFixed(2)}x`,
      int(r.rowsPerSec),
      mib(r.rssBeforeKiB),
      mib(r.peakRssKiB),
      `${((r.peakRssKiB - r.rssBeforeKiB) * 1024 / r.bodyBytes).toFixed(1)}x`,
    ]);
  }
  return alignTable(lines);
}

/** Runs the benchmark, prints the table and records it in bench/RESULTS.md. */
export async function run(): Promise<void> {
  const server = await startRaftlite();
  const rows: Row[] = [];
  try {
    await createSchema(server);
    let key = 0;
    for (const transaction of [true, false]) {
      for (const n of SIZES) {
        const row = await measure(server, n, transaction, key);
        key += n * row.requests;
        console.log(
          `  bulk ${n} statements${transaction ? " in a transaction" : ""}: ` +
            `${row.usPerStatement.toFixed(2)} us/statement, peak RSS ${
              (row.peakRssKiB / 1024).toFixed(0)
            } MiB`,
        );
        rows.push(row);
      }
    }
  } finally {
    await server.stop();
  }
  const table = formatTable(rows);
  for (const line of table) console.log(`  ${line}`);
  await recordResults("Bulk requests by size, one node (bench/bulk_bench.ts)", table, [
    `POST /db/execute[?transaction] with N single-row INSERT OR REPLACE statements, one request at a time, ` +
    `~${ROWS_PER_SIZE.toLocaleString("en-US")} rows per size, bodies built before the clock`,
    "us/statement = wall time / statements (parse, Raft append + fsync, apply, response); " +
    "vs 1,000 = that cost over the 1,000-statement request's (flat = linear)",
    "peak RSS = VmHWM of the node during the size, reset before it; the last column divides its " +
    "growth by the body size",
  ]);
}

if (import.meta.main) await run();
