/**
 * Throughput side by side with dqlite (issue #6, point 4): one table with
 *
 * - durable single-row writes/s, p50, p99 and peak RSS of raftlite and of
 *   dqlite-demo (Debian `go-dqlite`, installed with apt when missing), each
 *   as a 1-node and a 3-node cluster on 127.0.0.1, at 1, 16 and 64
 *   concurrent clients, and the ratio raftlite/dqlite. Both do the same
 *   work: `INSERT OR REPLACE INTO model(key, value) VALUES(?, ?)` with a
 *   random key out of 100,000 and a 32-byte value, driven by the same load
 *   generator (wrk, one Lua script per system: bench/lua/model_write.lua
 *   and dqlite_put.lua). On 3 nodes both get the writes on their leader;
 * - raftlite point reads/s by key at `level=weak` and `level=none` (64
 *   clients), bulk rows/s (1,000,000 rows in 1,000-row `transaction`
 *   requests from a keep-alive Deno client whose bodies are built before
 *   the clock starts) and queued statements/s (`?queue`, counted until
 *   applied; "not implemented yet" while the server answers 501);
 * - the ceilings measured in the same run: a bare `Deno.serve` handler that
 *   parses the same JSON POSTs (bench/lib/ceiling_server.ts) and raw
 *   node:sqlite inserts (1,000-row transactions; one row per durable
 *   commit);
 * - the target next to each figure, and the ratio to it.
 *
 * Peak RSS is the VmHWM of each server process, reset before every row
 * (/proc/<pid>/clear_refs), and the largest of the nodes (the target is per
 * node). Everything shares the 2 cores: servers, wrk (one thread) and this
 * process; the "other" column is the CPU used meanwhile by everything else.
 * Every answer is checked (status and body); dqlite-demo's
 * `Error: database is locked` answers and raftlite's 503s count as busy,
 * not as writes. Takes 3 to 4 minutes with the defaults.
 *
 * Run: `deno task bench throughput` (or `deno run -A bench/throughput_bench.ts`).
 * Environment: `BENCH_SECONDS` (length of each measured row, default 8),
 * `BENCH_BULK_ROWS` (default 1,000,000).
 *
 * @module
 */

import { DatabaseSync } from "node:sqlite";
import { Cluster } from "../tests/e2e/cluster/harness.ts";
import { probeClustering } from "../tests/e2e/cluster/probe.ts";
import { DQLITE_PACKAGE, type DqliteCluster, ensureDqlite, startDqlite } from "./lib/dqlite.ts";
import {
  BUSY_THRESHOLD,
  cpuSnapshot,
  cpuUse,
  processCpuSeconds,
  waitForQuiet,
} from "./lib/machine.ts";
import { alignTable, recordResults } from "./lib/results.ts";
import {
  peakRssKiB,
  resetPeakRss,
  type ServerHandle,
  startCeiling,
  startRaftlite,
} from "./lib/server.ts";
import { ensureWrk, runWrk, type WrkResult } from "./lib/wrk.ts";

function envNumber(name: string, fallback: number): number {
  const raw = Deno.env.get(name);
  const n = raw === undefined ? fallback : Number(raw);
  if (!(n > 0)) throw new Error(`${name} must be a number > 0, got ${raw}`);
  return n;
}

const SECONDS = envNumber("BENCH_SECONDS", 8);
const WARMUP_SECONDS = 2;
/** Writes pick a random key k1..k<KEYS>. */
const KEYS = 100_000;
/** The value of every write (32 bytes). */
const VALUE = "0123456789abcdef0123456789abcdef";
const CONNS = [1, 16, 64] as const;
const READ_CONNS = 64;
const QUEUE_CONNS = 64;
const BULK_ROWS = envNumber("BENCH_BULK_ROWS", 1_000_000);
const BULK_BATCH = 1_000;
/** Bulk requests in flight at once. */
const BULK_CONNS = 4;
const SQLITE_DURABLE_MS = 2_000;
const UPSERT = "INSERT OR REPLACE INTO model(key, value) VALUES(?, ?)";
/** dqlite-demo's schema, used for raftlite too. */
const MODEL_SCHEMA = "CREATE TABLE IF NOT EXISTS model (key TEXT, value TEXT, UNIQUE(key))";
const QUEUED_SCHEMA = "CREATE TABLE IF NOT EXISTS queued (key TEXT, value TEXT, UNIQUE(key))";

// ---------------------------------------------------------------------------
// Figures.

/** One measured figure. */
interface Figure {
  /** Done per second: writes, reads, requests, rows or statements. */
  rate: number;
  /** Latency percentiles in ms (per request). */
  p50?: number;
  p99?: number;
  /** "Busy, try again" answers per second (not counted in `rate`). */
  busyRate?: number;
  /** Peak RSS during the row, the largest over the system's nodes, in KiB. */
  rssKiB?: number;
  /** Cores used by other processes meanwhile (not the servers, wrk or this process). */
  otherCores?: number;
}

/** A table cell: a figure, or why there is none. */
type Cell = Figure | { note: string };

const cells = new Map<string, Cell>();
/** Measurements that failed (the bench fails, and records nothing, if any did). */
const failures: string[] = [];
const notes: string[] = [];

function isFigure(c: Cell | undefined): c is Figure {
  return c !== undefined && "rate" in c;
}

function fmtInt(x: number): string {
  return Math.round(x).toLocaleString("en-US");
}

function fmtMB(kib: number): string {
  return (kib * 1024 / 1e6).toFixed(0);
}

function fmtRatio(x: number): string {
  return (x >= 0.095 ? x.toFixed(2) : x.toFixed(3)) + "x";
}

/** The rate, with the busy answers per second when there were any. */
function rateText(c: Figure): string {
  const busy = c.busyRate ?? 0;
  return busy > 0 ? `${fmtInt(c.rate)} (+${fmtInt(busy)} busy)` : fmtInt(c.rate);
}

function describe(c: Cell): string {
  if (!isFigure(c)) return c.note;
  const parts = [`${rateText(c)} per s`];
  if (c.p50 !== undefined) parts.push(`p50 ${c.p50.toFixed(2)} ms`);
  if (c.p99 !== undefined) parts.push(`p99 ${c.p99.toFixed(2)} ms`);
  if (c.rssKiB !== undefined) parts.push(`peak RSS ${fmtMB(c.rssKiB)} MB`);
  return parts.join(", ");
}

/** Runs `fn` and stores its cell under `key`; a failure becomes a "failed" cell. */
async function attempt(key: string, fn: () => Promise<Cell>): Promise<Cell> {
  let cell: Cell;
  try {
    cell = await fn();
  } catch (e) {
    failures.push(`${key}: ${e instanceof Error ? e.message : String(e)}`);
    cell = { note: "failed" };
  }
  cells.set(key, cell);
  console.log(`  ${key}: ${describe(cell)}`);
  return cell;
}

/** Marks every key as `note` (a system that did not start or is not available). */
function markAll(keys: readonly string[], note: string): void {
  for (const key of keys) {
    cells.set(key, { note });
    console.log(`  ${key}: ${note}`);
  }
}

// ---------------------------------------------------------------------------
// Measuring.

/** A system under load: where requests go and which processes are its nodes. */
interface Endpoint {
  url: string;
  pids: number[];
}

async function resetPeaks(pids: readonly number[]): Promise<void> {
  await Promise.all(pids.map((pid) => resetPeakRss(pid)));
}

async function maxPeakKiB(pids: readonly number[]): Promise<number> {
  return Math.max(...await Promise.all(pids.map((pid) => peakRssKiB(pid))));
}

async function cpuOf(pids: readonly number[]): Promise<number> {
  let total = 0;
  for (const pid of pids) total += await processCpuSeconds(pid);
  return total;
}

interface WrkFigure extends Figure {
  result: WrkResult;
  /** performance.now() when wrk exited. */
  endedAt: number;
}

/** Runs wrk against `ep` for `seconds` and returns what it did, with RSS and CPU. */
async function measureWrk(
  ep: Endpoint,
  script: string,
  connections: number,
  scriptArgs: string[],
  seconds = SECONDS,
): Promise<WrkFigure> {
  await resetPeaks(ep.pids);
  const servers0 = await cpuOf(ep.pids);
  const cpu0 = await cpuSnapshot();
  const result = await runWrk({
    url: ep.url,
    script,
    connections,
    threads: 1,
    durationSec: seconds,
    scriptArgs,
  });
  const endedAt = performance.now();
  const cpu1 = await cpuSnapshot();
  const servers = (await cpuOf(ep.pids) - servers0) / (cpu1.at - cpu0.at);
  const use = cpuUse(cpu0, cpu1);
  const done = result.requests - result.busy;
  return {
    rate: done / result.durationSec,
    p50: result.latencyMs.p50,
    p99: result.latencyMs.p99,
    busyRate: result.busy / result.durationSec,
    rssKiB: await maxPeakKiB(ep.pids),
    // wrk is the only child reaped during the run, so the children's time is its own.
    otherCores: Math.max(0, use.machine - servers - use.children - use.self),
    result,
    endedAt,
  };
}

async function warmUp(ep: Endpoint, script: string, scriptArgs: string[]): Promise<void> {
  await runWrk({
    url: ep.url,
    script,
    connections: 16,
    threads: 1,
    durationSec: WARMUP_SECONDS,
    scriptArgs,
  });
}

/** Writes (raftlite or dqlite) at 1/16/64 clients into `<prefix>/<conns>`. */
async function measureWrites(
  prefix: string,
  ep: Endpoint,
  script: string,
): Promise<void> {
  const args = [String(KEYS), VALUE];
  await warmUp(ep, script, args);
  for (const c of CONNS) {
    await attempt(`${prefix}/${c}`, () => measureWrk(ep, script, c, args));
  }
}

// A minimal rqlite client for setup and checks.

async function rqlite(url: string, path: string, body: unknown): Promise<unknown[][]> {
  const res = await fetch(`${url}${path}`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(30_000),
  });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`${path}: status ${res.status}: ${text.slice(0, 300)}`);
  const json = JSON.parse(text) as {
    results?: { error?: string; values?: unknown[][] }[];
    error?: string;
  };
  const failed = json.error ?? json.results?.find((r) => r.error !== undefined)?.error;
  if (failed !== undefined) throw new Error(`${path}: ${failed}`);
  return json.results?.[0]?.values ?? [];
}

async function countRows(url: string, table: string): Promise<number> {
  const values = await rqlite(url, "/db/query?level=strong", [`SELECT COUNT(*) FROM ${table}`]);
  const n = values[0]?.[0];
  if (typeof n !== "number") throw new Error(`COUNT(*) returned ${JSON.stringify(values)}`);
  return n;
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

/** Request bodies for the bulk load: keys k1..k<BULK_ROWS>, BULK_BATCH statements each. */
function bulkBodies(): Uint8Array<ArrayBuffer>[] {
  const enc = new TextEncoder();
  const bodies: Uint8Array<ArrayBuffer>[] = [];
  for (let first = 1; first <= BULK_ROWS; first += BULK_BATCH) {
    const stmts: [string, string, string][] = [];
    for (let k = first; k < first + BULK_BATCH && k <= BULK_ROWS; k++) {
      stmts.push([UPSERT, `k${k}`, VALUE]);
    }
    bodies.push(enc.encode(JSON.stringify(stmts)));
  }
  return bodies;
}

/**
 * Loads BULK_ROWS rows in BULK_BATCH-row `?transaction` requests, BULK_CONNS
 * at a time over keep-alive connections; a 503 is retried after 10 ms.
 */
async function bulkLoad(ep: Endpoint): Promise<Figure> {
  const bodies = bulkBodies();
  const client = Deno.createHttpClient({});
  const latencies: number[] = [];
  let next = 0;
  let busy = 0;
  const expectRows = (n: number) => (text: string) =>
    text.split('"rows_affected":1').length - 1 === n;
  const worker = async () => {
    while (next < bodies.length) {
      const i = next++;
      const body = bodies[i]!;
      const rows = Math.min(BULK_BATCH, BULK_ROWS - i * BULK_BATCH);
      for (;;) {
        const t0 = performance.now();
        const res = await fetch(`${ep.url}/db/execute?transaction`, {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body,
          client,
          signal: AbortSignal.timeout(60_000),
        });
        const text = await res.text();
        if (res.status === 503) {
          busy++;
          await new Promise((r) => setTimeout(r, 10));
          continue;
        }
        latencies.push(performance.now() - t0);
        if (res.status !== 200 || text.includes('"error"') || !expectRows(rows)(text)) {
          throw new Error(`bulk request ${i}: status ${res.status}: ${text.slice(0, 300)}`);
        }
        break;
      }
    }
  };
  try {
    await resetPeaks(ep.pids);
    const servers0 = await cpuOf(ep.pids);
    const cpu0 = await cpuSnapshot();
    await Promise.all(Array.from({ length: BULK_CONNS }, worker));
    const cpu1 = await cpuSnapshot();
    const wall = cpu1.at - cpu0.at;
    const servers = (await cpuOf(ep.pids) - servers0) / wall;
    const use = cpuUse(cpu0, cpu1);
    const rows = await countRows(ep.url, "model");
    if (rows < BULK_ROWS) throw new Error(`bulk load acknowledged but COUNT(*) is ${rows}`);
    latencies.sort((a, b) => a - b);
    notes.push(
      `bulk: ${fmtInt(BULK_ROWS)} rows in ${bodies.length} requests of ${BULK_BATCH} ` +
        `(~${
          Math.round((bodies[0]?.byteLength ?? 0) / 1024)
        } KiB each), ${BULK_CONNS} in flight, ` +
        `${wall.toFixed(1)} s; the client (this process) used ${use.self.toFixed(2)} cores, ` +
        `the server ${servers.toFixed(2)}` + (busy > 0 ? `; ${busy} 503s retried` : ""),
    );
    return {
      rate: BULK_ROWS / wall,
      p50: percentile(latencies, 50),
      p99: percentile(latencies, 99),
      rssKiB: await maxPeakKiB(ep.pids),
      otherCores: Math.max(0, use.machine - servers - use.self),
    };
  } finally {
    client.close();
  }
}

/**
 * Queued writes: wrk sends single-statement `?queue` requests for SECONDS;
 * the figure is the statements applied (new rows) per second from wrk's
 * start until the last accepted one is in the table.
 */
async function queuedWrites(ep: Endpoint): Promise<Cell> {
  const probe = await fetch(`${ep.url}/db/execute?queue`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify([[UPSERT.replace("model", "queued"), "probe", VALUE]]),
    signal: AbortSignal.timeout(10_000),
  });
  const text = await probe.text();
  if (probe.status === 501) return { note: "not implemented yet" };
  if (probe.status !== 200 || !text.includes('"sequence_number"')) {
    throw new Error(`POST /db/execute?queue: status ${probe.status}: ${text.slice(0, 300)}`);
  }
  const drained = async (want: number, since: number) => {
    for (;;) {
      const n = await countRows(ep.url, "queued");
      if (n >= want) return n;
      if (performance.now() - since > 60_000) {
        throw new Error(`queued writes: ${n} of ${want} rows applied 60 s after the load`);
      }
      await new Promise((r) => setTimeout(r, 10));
    }
  };
  const before = await drained(1, performance.now());
  const m = await measureWrk(ep, "queue.lua", QUEUE_CONNS, [VALUE]);
  const accepted = m.result.requests - m.result.busy;
  const after = await drained(before + accepted, m.endedAt);
  const elapsed = m.result.durationSec + (performance.now() - m.endedAt) / 1000;
  const rss = await maxPeakKiB(ep.pids);
  notes.push(
    `queued: ${fmtInt(accepted)} requests accepted in ${m.result.durationSec.toFixed(1)} s ` +
      `(${fmtInt(accepted / m.result.durationSec)}/s, p50/p99 = the acknowledgement), all ` +
      `applied ${((performance.now() - m.endedAt) / 1000).toFixed(2)} s after the load ended`,
  );
  return { ...m, rate: (after - before) / elapsed, rssKiB: Math.max(rss, m.rssKiB ?? 0) };
}

// ---------------------------------------------------------------------------
// The systems.

async function measureCeilings(): Promise<void> {
  console.log("throughput: ceilings");
  const server = await startCeiling();
  try {
    const ep = { url: server.baseUrl, pids: [server.pid] };
    const writeArgs = [String(KEYS), VALUE];
    await warmUp(ep, "model_write.lua", writeArgs);
    for (const c of CONNS) {
      await attempt(
        `ceiling/execute/${c}`,
        () => measureWrk(ep, "model_write.lua", c, writeArgs),
      );
    }
    await warmUp(ep, "model_query.lua", [String(KEYS), "weak"]);
    await attempt(
      `ceiling/query/${READ_CONNS}`,
      () => measureWrk(ep, "model_query.lua", READ_CONNS, [String(KEYS), "weak"]),
    );
  } finally {
    await server.stop();
  }
  const dir = await Deno.makeTempDir({ prefix: "raftlite-bench-sqlite-" });
  try {
    await attempt("ceiling/sqlite-bulk", () => Promise.resolve(sqliteBulk(`${dir}/bulk.db`)));
    await attempt("ceiling/sqlite-durable", () => Promise.resolve(sqliteDurable(`${dir}/d.db`)));
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** node:sqlite, WAL + synchronous=OFF (as raftlite's state machine): BULK_ROWS upserts in BULK_BATCH-row transactions. */
function sqliteBulk(path: string): Figure {
  const db = new DatabaseSync(path);
  try {
    db.exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=OFF");
    db.exec(MODEL_SCHEMA);
    const stmt = db.prepare(UPSERT);
    const t0 = performance.now();
    for (let first = 1; first <= BULK_ROWS; first += BULK_BATCH) {
      db.exec("BEGIN");
      for (let k = first; k < first + BULK_BATCH && k <= BULK_ROWS; k++) stmt.run(`k${k}`, VALUE);
      db.exec("COMMIT");
    }
    return { rate: BULK_ROWS / ((performance.now() - t0) / 1000) };
  } finally {
    db.close();
  }
}

/** node:sqlite, WAL + synchronous=FULL: one upsert of a random key per commit (one fsync each). */
function sqliteDurable(path: string): Figure {
  const db = new DatabaseSync(path);
  try {
    db.exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL");
    db.exec(MODEL_SCHEMA);
    const stmt = db.prepare(UPSERT);
    const t0 = performance.now();
    let n = 0;
    while (performance.now() - t0 < SQLITE_DURABLE_MS) {
      stmt.run(`k${1 + Math.floor(Math.random() * KEYS)}`, VALUE);
      n++;
    }
    return { rate: n / ((performance.now() - t0) / 1000) };
  } finally {
    db.close();
  }
}

const RAFTLITE_1_KEYS = [
  ...CONNS.map((c) => `raftlite-1/write/${c}`),
  "raftlite-1/bulk",
  "raftlite-1/read-weak",
  "raftlite-1/read-none",
  "raftlite-1/queued",
];

async function measureRaftlite1(): Promise<void> {
  console.log("throughput: raftlite, 1 node");
  let server: ServerHandle;
  try {
    server = await startRaftlite();
  } catch (e) {
    failures.push(`raftlite 1 node did not start: ${e instanceof Error ? e.message : e}`);
    markAll(RAFTLITE_1_KEYS, "failed: did not start");
    return;
  }
  try {
    const ep = { url: server.baseUrl, pids: [server.pid] };
    await rqlite(ep.url, "/db/execute", [MODEL_SCHEMA, QUEUED_SCHEMA]);
    await measureWrites("raftlite-1/write", ep, "model_write.lua");
    const bulk = await attempt("raftlite-1/bulk", () => bulkLoad(ep));
    // Reads pick keys the bulk load wrote, so every one is found.
    if (isFigure(bulk)) {
      const args = (level: string) => [String(BULK_ROWS), level];
      await warmUp(ep, "model_query.lua", args("weak"));
      for (const level of ["weak", "none"]) {
        await attempt(
          `raftlite-1/read-${level}`,
          () => measureWrk(ep, "model_query.lua", READ_CONNS, args(level)),
        );
      }
    } else {
      markAll(["raftlite-1/read-weak", "raftlite-1/read-none"], "skipped: the bulk load failed");
    }
    await attempt("raftlite-1/queued", () => queuedWrites(ep));
  } catch (e) {
    failures.push(`raftlite 1 node: ${e instanceof Error ? e.message : e}\n${server.output()}`);
    for (const key of RAFTLITE_1_KEYS) if (!cells.has(key)) cells.set(key, { note: "failed" });
  } finally {
    await server.stop();
  }
}

async function measureRaftlite3(): Promise<void> {
  console.log("throughput: raftlite, 3 nodes");
  const keys = CONNS.map((c) => `raftlite-3/write/${c}`);
  const availability = await probeClustering();
  if (!availability.available) {
    markAll(keys, `not available: ${availability.reason}`);
    return;
  }
  let cluster: Cluster;
  try {
    cluster = await Cluster.start({ voters: 3, proxied: false, prefix: "throughput" });
  } catch (e) {
    failures.push(`raftlite 3 nodes did not start: ${e instanceof Error ? e.message : e}`);
    markAll(keys, "failed: did not start");
    return;
  }
  try {
    const leader = await cluster.leader();
    const ep = { url: leader.url, pids: cluster.nodes.map((n) => n.proc!.pid) };
    await rqlite(ep.url, "/db/execute", [MODEL_SCHEMA]);
    await measureWrites("raftlite-3/write", ep, "model_write.lua");
    const now = await cluster.leader();
    if (now !== leader) {
      notes.push(`WARNING: raftlite's leadership moved from ${leader.name} to ${now.name}`);
    }
  } catch (e) {
    failures.push(`raftlite 3 nodes: ${e instanceof Error ? e.message : e}`);
    console.error(cluster.describe());
    for (const key of keys) if (!cells.has(key)) cells.set(key, { note: "failed" });
  } finally {
    await cluster.close();
  }
}

async function measureDqlite(nodes: 1 | 3): Promise<void> {
  console.log(`throughput: dqlite-demo, ${nodes} node${nodes === 1 ? "" : "s"}`);
  const keys = CONNS.map((c) => `dqlite-${nodes}/write/${c}`);
  const dqlite = await ensureDqlite();
  if ("unavailable" in dqlite) {
    if (nodes === 1) notes.push(`dqlite: not available: ${dqlite.unavailable}`);
    markAll(keys, "not available");
    return;
  }
  let cluster: DqliteCluster;
  try {
    cluster = await startDqlite({ program: dqlite.path, nodes });
  } catch (e) {
    failures.push(`dqlite ${nodes} nodes did not start: ${e instanceof Error ? e.message : e}`);
    markAll(keys, "failed: did not start");
    return;
  }
  try {
    const ep = {
      url: cluster.leader.server.baseUrl,
      pids: cluster.nodes.map((n) => n.server.pid),
    };
    if (nodes > 1) notes.push(`dqlite ${nodes} nodes: leader found by ${cluster.leaderFoundBy}`);
    await measureWrites(`dqlite-${nodes}/write`, ep, "dqlite_put.lua");
    const now = await cluster.currentLeaderAddr().catch(() => null);
    if (nodes > 1 && now !== null && now !== cluster.leader.dbAddr) {
      notes.push(`WARNING: dqlite's leadership moved from ${cluster.leader.dbAddr} to ${now}`);
    }
  } catch (e) {
    failures.push(`dqlite ${nodes} nodes: ${e instanceof Error ? e.message : e}`);
    for (const key of keys) if (!cells.has(key)) cells.set(key, { note: "failed" });
  } finally {
    await cluster.stop();
  }
}

// ---------------------------------------------------------------------------
// The table.

/** A target from issue #6: at least `min`, or at most `max`. */
type Goal = { min: number } | { max: number };

interface RowSpec {
  figure: string;
  conns: string;
  raftlite: string;
  dqlite?: string;
  ceiling?: string;
  goal?: Goal;
}

const ROWS: RowSpec[] = [
  ...CONNS.map((c): RowSpec => ({
    figure: "writes/s, 1 node",
    conns: String(c),
    raftlite: `raftlite-1/write/${c}`,
    dqlite: `dqlite-1/write/${c}`,
    ceiling: `ceiling/execute/${c}`,
    goal: c === 1 ? { min: 2_500 } : c === 64 ? { min: 20_000 } : undefined,
  })),
  ...CONNS.map((c): RowSpec => ({
    figure: "writes/s, 3 nodes (to the leader)",
    conns: String(c),
    raftlite: `raftlite-3/write/${c}`,
    dqlite: `dqlite-3/write/${c}`,
    ceiling: `ceiling/execute/${c}`,
    goal: c === 1 ? { min: 1_200 } : c === 64 ? { min: 10_000 } : undefined,
  })),
  {
    figure: "reads/s level=weak, 1 node",
    conns: String(READ_CONNS),
    raftlite: "raftlite-1/read-weak",
    ceiling: `ceiling/query/${READ_CONNS}`,
    goal: { min: 30_000 },
  },
  {
    figure: "reads/s level=none, 1 node",
    conns: String(READ_CONNS),
    raftlite: "raftlite-1/read-none",
    ceiling: `ceiling/query/${READ_CONNS}`,
  },
  {
    figure: `bulk rows/s, ${BULK_BATCH.toLocaleString("en-US")}-row tx requests`,
    conns: String(BULK_CONNS),
    raftlite: "raftlite-1/bulk",
    ceiling: "ceiling/sqlite-bulk",
    goal: { min: 200_000 },
  },
  {
    figure: "queued statements/s (?queue)",
    conns: String(QUEUE_CONNS),
    raftlite: "raftlite-1/queued",
    ceiling: `ceiling/execute/${QUEUE_CONNS}`,
    goal: { min: 50_000 },
  },
  ...CONNS.map((c): RowSpec => ({
    figure: "ceiling: Deno.serve POST /db/execute req/s",
    conns: String(c),
    raftlite: `ceiling/execute/${c}`,
  })),
  {
    figure: "ceiling: Deno.serve POST /db/query req/s",
    conns: String(READ_CONNS),
    raftlite: `ceiling/query/${READ_CONNS}`,
  },
  {
    figure: `ceiling: node:sqlite rows/s, ${BULK_BATCH.toLocaleString("en-US")}-row tx`,
    conns: "-",
    raftlite: "ceiling/sqlite-bulk",
  },
  {
    figure: "ceiling: node:sqlite durable commits/s",
    conns: "-",
    raftlite: "ceiling/sqlite-durable",
  },
];

function goalText(g: Goal | undefined, unit = ""): string {
  if (g === undefined) return "-";
  return "min" in g ? `>= ${fmtInt(g.min)}${unit}` : `<= ${fmtInt(g.max)}${unit}`;
}

function valueCells(c: Cell | undefined, busyColumn = false): string[] {
  const dash = busyColumn ? ["-", "-", "-", "-", "-"] : ["-", "-", "-", "-"];
  if (c === undefined) return dash;
  if (!isFigure(c)) return [c.note, ...dash.slice(1).map(() => "")];
  return [
    busyColumn ? fmtInt(c.rate) : rateText(c),
    ...(busyColumn ? [fmtInt(c.busyRate ?? 0)] : []),
    c.p50 === undefined ? "-" : c.p50.toFixed(2),
    c.p99 === undefined ? "-" : c.p99.toFixed(2),
    c.rssKiB === undefined ? "-" : fmtMB(c.rssKiB),
  ];
}

/** The largest per-node peak RSS over the cells whose key starts with `prefix`. */
function maxRss(prefix: string): number | undefined {
  const peaks = [...cells.entries()]
    .filter(([k, c]) => k.startsWith(prefix) && isFigure(c) && c.rssKiB !== undefined)
    .map(([, c]) => (c as Figure).rssKiB!);
  return peaks.length === 0 ? undefined : Math.max(...peaks);
}

function formatTable(): string[] {
  const header = [
    "figure",
    "conns",
    "raftlite",
    "p50 ms",
    "p99 ms",
    "RSS MB",
    "dqlite",
    "locked/s",
    "p50 ms",
    "p99 ms",
    "RSS MB",
    "raftlite/dqlite",
    "target",
    "vs target",
    "vs ceiling",
    "other",
  ];
  const rows = ROWS.map((spec) => {
    const r = cells.get(spec.raftlite);
    const d = spec.dqlite === undefined ? undefined : cells.get(spec.dqlite);
    const ceiling = spec.ceiling === undefined ? undefined : cells.get(spec.ceiling);
    const others = [r, d].filter(isFigure).flatMap((c) =>
      c.otherCores === undefined ? [] : [c.otherCores]
    );
    return [
      spec.figure,
      spec.conns,
      ...valueCells(r),
      ...valueCells(d, true),
      isFigure(r) && isFigure(d) && d.rate > 0 ? fmtRatio(r.rate / d.rate) : "-",
      goalText(spec.goal),
      isFigure(r) && spec.goal !== undefined && "min" in spec.goal
        ? fmtRatio(r.rate / spec.goal.min)
        : "-",
      isFigure(r) && isFigure(ceiling) ? fmtRatio(r.rate / ceiling.rate) : "-",
      others.length === 0 ? "-" : Math.max(...others).toFixed(2),
    ];
  });
  const rssGoal: Goal = { max: 150 };
  const rRss = maxRss("raftlite-");
  const dRss = maxRss("dqlite-");
  const rssRow = [
    "peak RSS per node, MB (max of the rows above)",
    "-",
    rRss === undefined ? "-" : fmtMB(rRss),
    "",
    "",
    "",
    dRss === undefined ? "-" : fmtMB(dRss),
    "",
    "",
    "",
    "",
    rRss !== undefined && dRss !== undefined ? fmtRatio(rRss / dRss) : "-",
    goalText(rssGoal, " MB"),
    rRss === undefined ? "-" : fmtRatio((rRss * 1024 / 1e6) / 150),
    "",
    "",
  ];
  const table = [header, ...rows];
  table.splice(ROWS.findIndex((r) => r.figure.startsWith("ceiling:")) + 1, 0, rssRow);
  return alignTable(table);
}

function loadAverage(): string {
  try {
    return Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");
  } catch {
    return "unknown";
  }
}

/** Runs the benchmark, prints the table and records it in bench/RESULTS.md. */
export async function run(): Promise<void> {
  cells.clear();
  failures.length = 0;
  notes.length = 0;
  const started = performance.now();
  await ensureWrk();
  // Install dqlite before the clock matters (the answer is cached).
  const dqlite = await ensureDqlite();
  if ("unavailable" in dqlite) console.log(`  dqlite: not available: ${dqlite.unavailable}`);
  const quiet = await waitForQuiet(30_000);
  if (quiet !== null) {
    console.log(`  ${quiet}`);
    notes.push(quiet);
  }
  const loadBefore = loadAverage();
  console.log(
    `throughput: raftlite vs dqlite-demo (${DQLITE_PACKAGE}), wrk -t1, ${SECONDS} s per row ` +
      `after a ${WARMUP_SECONDS} s warm-up; load average ${loadBefore}`,
  );
  await measureCeilings();
  await measureRaftlite1();
  await measureDqlite(1);
  await measureRaftlite3();
  await measureDqlite(3);

  const maxOther = Math.max(
    0,
    ...[...cells.values()].filter(isFigure).map((c) => c.otherCores ?? 0),
  );
  if (maxOther >= BUSY_THRESHOLD) {
    notes.push(
      `WARNING: other processes used up to ${maxOther.toFixed(2)} cores during the rows ` +
        `(column "other"); those figures are disturbed`,
    );
  }
  const minutes = (performance.now() - started) / 60_000;
  const header = [
    `load average ${loadBefore} at the start, ${loadAverage()} at the end; ` +
    `${minutes.toFixed(1)} min`,
    `writes: INSERT OR REPLACE INTO model(key, value), random key of ${fmtInt(KEYS)}, ` +
    `${VALUE.length}-byte value; raftlite POST /db/execute (bench/lua/model_write.lua), ` +
    `dqlite-demo PUT /<key> (dqlite_put.lua); wrk -t1 -c<conns> -d${SECONDS}s after a ` +
    `${WARMUP_SECONDS} s warm-up; 3 nodes: all on this machine, writes sent to the leader`,
    `locked/s = dqlite-demo's "Error: database is locked" answers per second (status 200; it ` +
    `does not retry a write that meets another of its connections' write transaction): not ` +
    `counted as writes, but their (short) latency is in its p50/p99; a raftlite 503 would show ` +
    `as "(+N busy)"`,
    `reads: POST /db/query [["SELECT value FROM model WHERE key=?", k]] over the ` +
    `${fmtInt(BULK_ROWS)} bulk-loaded keys (model_query.lua)`,
    `RSS MB = peak RSS (VmHWM, reset before each row) of the largest node, MB = 10^6 bytes; ` +
    `other = cores used meanwhile by processes other than the servers, wrk and this one`,
    `vs ceiling: writes and queued vs Deno.serve POST /db/execute at the same conns, reads vs ` +
    `POST /db/query, bulk vs node:sqlite 1,000-row transactions (WAL, synchronous=OFF); ` +
    `durable commits: WAL, synchronous=FULL, one row each`,
    `issue #6 measured dqlite-demo at ~1,100 / 5,200 writes/s (1 node, 1 / 64 clients) and ` +
    `470 / 4,700 (3 nodes): compare with dqlite + locked/s here (all ` +
    `answers)`,
    ...notes,
  ];
  const lines = formatTable();
  console.log("");
  for (const line of [...header, "", ...lines]) console.log(`  ${line}`);
  if (failures.length > 0) {
    console.log("");
    for (const f of failures) console.log(`  FAILED ${f}`);
    throw new Error(
      `${failures.length} measurement(s) failed (see above); not recorded in bench/RESULTS.md`,
    );
  }
  await recordResults("Throughput vs dqlite (bench/throughput_bench.ts)", lines, header);
}

if (import.meta.main) await run();
