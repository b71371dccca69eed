/**
 * Replay speed at restart: how fast a node applies the log after its newest
 * snapshot when it starts, against the requirement of at least 100,000
 * entries/s (ARCHITECTURE.md §4: a node rebuilds its database from the
 * newest snapshot plus the log after it at every start).
 *
 * 1. Baseline: a node with an (almost) empty log is stopped and started
 *    {@link BASELINE_RUNS} times; the median time from spawning the process
 *    to `GET /readyz` 200 and to the first successful query is the cost of
 *    starting at all (Deno, module loading, SQLite, an election).
 * 2. A node started with `-raft-snap 10000000 -raft-snap-int 24h` (no
 *    snapshot while it runs) takes N single-row INSERTs, one per request and
 *    so one Raft entry each, from {@link CONCURRENCY} keep-alive
 *    connections. It is killed with SIGKILL (a graceful stop may take a
 *    snapshot, after which nothing is left to replay) and started again on
 *    the same data directory; that node is stopped with SIGTERM and started
 *    once more (the usual restart). Measured from spawn: `/readyz` 200, and
 *    the last row visible (`level=none` point query polled every 10 ms).
 * 3. Replay rate = entries replayed / (time to the last row - baseline time
 *    to the first query). Entries replayed is the applied index minus the
 *    snapshot index reported by `/status` after the start.
 *
 * Also prints, per start, the process's CPU time (all threads, and the main
 * thread: the rest is the SQLite worker and GC, which tells where a slow
 * replay spends its time even on a busy machine) and peak RSS (VmHWM), and
 * records the table in bench/RESULTS.md. Takes 1-2 minutes, most of it
 * writing the log.
 *
 * Run: `deno task bench restart` (or `deno run -A bench/restart_bench.ts`).
 * Environment: `BENCH_RESTART_ENTRIES` (N, default 200000; other values are
 * not recorded); `BENCH_RESTART_PROFILE=<file.cpuprofile>`: the restarted
 * node runs under the V8 inspector and its main thread's CPU profile is
 * written there and summarised (see bench/lib/cpu_profile.ts; the inspector
 * slows it down, so those figures are not recorded either).
 *
 * @module
 */

import { dirBytes } from "./lib/fs.ts";
import { attachProfiler, summarizeProfile } from "./lib/cpu_profile.ts";
import { waitForQuiet } from "./lib/machine.ts";
import { OutputTail, waitOrKill } from "./lib/proc.ts";
import { alignTable, recordResults } from "./lib/results.ts";
import { freePorts } from "./lib/server.ts";
import { DENO_V8_FLAGS_ARG } from "../lib/server/v8_flags.ts";

const DEFAULT_ENTRIES = 200_000;
const ENTRIES = Number(Deno.env.get("BENCH_RESTART_ENTRIES") ?? DEFAULT_ENTRIES);
const PROFILE = Deno.env.get("BENCH_RESTART_PROFILE");
const TARGET_PER_SEC = 100_000;
const CONCURRENCY = 64;
const BASELINE_RUNS = 3;
/** Far above any N and any run's length: the node never snapshots, the whole log is replayed. */
const NO_SNAPSHOT = ["-raft-snap", "10000000", "-raft-snap-int", "24h"];
const WRITE_DEADLINE_MS = 300_000;
const START_DEADLINE_MS = 120_000;
const POLL_MS = 10;
const ROOT = decodeURIComponent(new URL("../", import.meta.url).pathname);
const MAIN = `${ROOT}main.ts`;

// ---------------------------------------------------------------------------
// One node process on a given data directory and ports.

interface Node {
  readonly pid: number;
  readonly url: string;
  readonly spawnedAt: number;
  output(): string;
  exited(): Deno.CommandStatus | null;
  /** SIGTERM, SIGKILL if still there after `graceMs`; resolves with the exit status. */
  stop(graceMs?: number): Promise<Deno.CommandStatus>;
  /** SIGKILL (a crash); resolves with the exit status. */
  crash(): Promise<Deno.CommandStatus>;
}

/** Spawns `main.ts`; with `inspectPort` it waits for a debugger (see cpu_profile.ts). */
function spawn(dataDir: string, ports: readonly [number, number], inspectPort?: number): Node {
  const [http, raft] = ports;
  const args = ["run", "-A", DENO_V8_FLAGS_ARG];
  if (inspectPort !== undefined) args.push(`--inspect-wait=127.0.0.1:${inspectPort}`);
  args.push(
    MAIN,
    "-http-addr",
    `127.0.0.1:${http}`,
    "-raft-addr",
    `127.0.0.1:${raft}`,
    ...NO_SNAPSHOT,
    dataDir,
  );
  const spawnedAt = performance.now();
  const child = new Deno.Command(Deno.execPath(), {
    args,
    env: { RUST_BACKTRACE: "0", NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const out = new OutputTail(child.stdout);
  const err = new OutputTail(child.stderr);
  let exited: Deno.CommandStatus | null = null;
  const status = child.status.then((s) => (exited = s));
  let stopping: Promise<Deno.CommandStatus> | undefined;
  const signal = (sig: Deno.Signal) => {
    try {
      child.kill(sig);
    } catch {
      // already gone
    }
  };
  return {
    pid: child.pid,
    url: `http://127.0.0.1:${http}`,
    spawnedAt,
    output: () => [out.text(), err.text()].filter((t) => t !== "").join("\n"),
    exited: () => exited,
    stop: (graceMs = 10_000) =>
      stopping ??= (async () => {
        if (exited === null) {
          signal("SIGTERM");
          await waitOrKill(child, graceMs);
        }
        const s = await status;
        await Promise.all([out.done, err.done]);
        return s;
      })(),
    crash: () =>
      stopping ??= (async () => {
        signal("SIGKILL");
        const s = await status;
        await Promise.all([out.done, err.done]);
        return s;
      })(),
  };
}

/** Polls `check` every POLL_MS until true; returns ms since the node was spawned. */
async function sinceSpawn(node: Node, what: string, check: () => Promise<boolean>) {
  const deadline = performance.now() + START_DEADLINE_MS;
  for (;;) {
    if (node.exited() !== null) {
      throw new Error(`node exited before ${what}:\n${node.output()}`);
    }
    try {
      if (await check()) return performance.now() - node.spawnedAt;
    } catch {
      // not up yet
    }
    if (performance.now() > deadline) {
      throw new Error(`no ${what} within ${START_DEADLINE_MS} ms:\n${node.output()}`);
    }
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

async function isReady(node: Node): Promise<boolean> {
  const res = await fetch(`${node.url}/readyz`, { signal: AbortSignal.timeout(2_000) });
  await res.body?.cancel();
  return res.status === 200;
}

interface QueryResult {
  values?: unknown[][];
  error?: string;
}

async function query(node: Node, sql: string, level = "none"): Promise<unknown[][]> {
  const q = encodeURIComponent(sql);
  const res = await fetch(`${node.url}/db/query?level=${level}&q=${q}`, {
    signal: AbortSignal.timeout(10_000),
  });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`query: status ${res.status}: ${text}`);
  const r = (JSON.parse(text) as { results?: QueryResult[] }).results?.[0];
  if (r === undefined || r.error !== undefined) throw new Error(`query: ${text}`);
  return r.values ?? [];
}

async function execute(node: Node, stmts: unknown[]): Promise<void> {
  const res = await fetch(`${node.url}/db/execute`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(stmts),
    signal: AbortSignal.timeout(20_000),
  });
  const text = await res.text();
  if (res.status !== 200 || text.includes('"error"')) {
    throw new Error(`execute: status ${res.status}: ${text.slice(0, 300)}`);
  }
}

async function raftStatus(node: Node): Promise<Record<string, number>> {
  const res = await fetch(`${node.url}/status`, { signal: AbortSignal.timeout(5_000) });
  const json = await res.json() as { store?: { raft?: Record<string, number> } };
  return json.store?.raft ?? {};
}

async function peakRssKiB(pid: number): Promise<number> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  return Number(/^VmHWM:\s+(\d+) kB/m.exec(status)?.[1] ?? NaN);
}

// ---------------------------------------------------------------------------
// Phases.

interface StartTimes {
  readyMs: number;
  /** Baseline: first query answered; loaded: the last row visible. */
  visibleMs: number;
}

/** Runs `body`, then stops `node` (always); after a successful body it must exit with 0. */
async function using<T>(node: Node, body: () => Promise<T>): Promise<T> {
  let result: T;
  try {
    result = await body();
  } catch (e) {
    await node.stop();
    throw e;
  }
  const s = await node.stop();
  if (s.code !== 0) {
    throw new Error(`SIGTERM exit status ${s.code} (${s.signal}):\n${node.output()}`);
  }
  return result;
}

interface Baseline extends StartTimes {
  peakRssKiB: number;
}

async function baseline(dir: string, ports: [number, number]): Promise<Baseline[]> {
  const first = spawn(dir, ports);
  await using(first, async () => {
    await sinceSpawn(first, "/readyz 200", () => isReady(first));
    await execute(first, ["CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)"]);
  });
  const runs: Baseline[] = [];
  for (let k = 0; k < BASELINE_RUNS; k++) {
    const node = spawn(dir, ports);
    runs.push(
      await using(node, async () => ({
        readyMs: await sinceSpawn(node, "/readyz 200", () => isReady(node)),
        visibleMs: await sinceSpawn(node, "a query", async () => {
          await query(node, "SELECT count(*) FROM t");
          return true;
        }),
        peakRssKiB: await peakRssKiB(node.pid),
      })),
    );
  }
  return runs;
}

async function load(node: Node): Promise<number> {
  await execute(node, ["CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)"]);
  let next = 0;
  let failure: Error | undefined;
  const t0 = performance.now();
  const deadline = t0 + WRITE_DEADLINE_MS;
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (next < ENTRIES && failure === undefined) {
      if (performance.now() > deadline) {
        failure ??= new Error(`writes overran ${WRITE_DEADLINE_MS} ms at ${next}`);
        return;
      }
      const id = ++next;
      try {
        await execute(node, [["INSERT INTO t(id, v) VALUES(?, ?)", id, `row ${id}`]]);
      } catch (e) {
        failure ??= e as Error;
      }
    }
  }));
  if (failure !== undefined) throw failure;
  return performance.now() - t0;
}

/** One start on a loaded data directory. */
interface Measured extends StartTimes {
  /** Applied index minus the snapshot index after the start: the log entries replayed. */
  replayed: number;
  snapshotIndex: number;
  peakRssKiB: number;
  /** CPU time of the whole process and of its main thread until the last row was visible. */
  cpuMs: number;
  mainCpuMs: number;
}

/** CPU milliseconds of a process (all threads), or of one of its threads. */
async function cpuMs(pid: number, tid?: number): Promise<number> {
  const path = tid === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${tid}/stat`;
  const stat = await Deno.readTextFile(path);
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) * 10; // utime + stime, at 100 ticks/s
}

/** Measures a start of `node` until row `ENTRIES` is visible (profiling it when asked). */
async function measureStart(node: Node, inspectPort?: number): Promise<Measured> {
  const profiler = inspectPort === undefined ? undefined : await attachProfiler(inspectPort);
  const readyMs = await sinceSpawn(node, "/readyz 200", () => isReady(node));
  const visibleMs = await sinceSpawn(
    node,
    "the last row",
    async () => (await query(node, `SELECT id FROM t WHERE id = ${ENTRIES}`)).length === 1,
  );
  const cpu = await cpuMs(node.pid);
  const mainCpu = await cpuMs(node.pid, node.pid);
  const profile = await profiler?.stop();
  if (profile !== undefined && PROFILE !== undefined) {
    await Deno.writeTextFile(PROFILE, JSON.stringify(profile));
    console.log(`  CPU profile of the restarted node's main thread: ${PROFILE}`);
    for (const line of summarizeProfile(profile, 25, `file://${ROOT}`)) console.log(`    ${line}`);
  }
  const [[n]] = await query(node, "SELECT count(*) FROM t") as [[number]];
  if (n !== ENTRIES) throw new Error(`after the restart count(*) is ${n}, not ${ENTRIES}`);
  const raft = await raftStatus(node);
  const snapshotIndex = Number(raft.last_snapshot_index ?? 0);
  return {
    readyMs,
    visibleMs,
    replayed: Number(raft.applied_index) - snapshotIndex,
    snapshotIndex,
    peakRssKiB: await peakRssKiB(node.pid),
    cpuMs: cpu,
    mainCpuMs: mainCpu,
  };
}

interface Loaded {
  writeMs: number;
  dataBytes: number;
  /** Start after SIGKILL: nothing was done at shutdown, so the log is replayed. */
  crash: Measured;
  /** Start after SIGTERM (a node may snapshot at a graceful shutdown). */
  graceful: Measured;
}

async function loadedRestarts(dir: string, ports: [number, number]): Promise<Loaded> {
  const first = spawn(dir, ports);
  let writeMs: number;
  try {
    await sinceSpawn(first, "/readyz 200", () => isReady(first));
    writeMs = await load(first);
    const [[n]] = await query(first, "SELECT count(*) FROM t", "strong") as [[number]];
    if (n !== ENTRIES) throw new Error(`${ENTRIES} inserts acknowledged but count(*) is ${n}`);
  } finally {
    // A crash: whatever the node would do at a graceful shutdown (e.g. a snapshot) is not done.
    await first.crash();
  }
  const dataBytes = await dirBytes(dir);
  const inspectPort = PROFILE === undefined ? undefined : freePorts(1)[0];
  const second = spawn(dir, ports, inspectPort);
  const crash = await using(second, () => measureStart(second, inspectPort));
  const third = spawn(dir, ports);
  const graceful = await using(third, () => measureStart(third));
  return { writeMs, dataBytes, crash, graceful };
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

const fmtMs = (ms: number) => `${Math.round(ms)} ms`;
const fmtInt = (n: number) => Math.round(n).toLocaleString("en-US");

/** Runs the benchmark and prints its figures. */
export async function run(): Promise<void> {
  if (!(Number.isInteger(ENTRIES) && ENTRIES > 0)) {
    throw new Error(`BENCH_RESTART_ENTRIES must be a positive integer, got ${ENTRIES}`);
  }
  const warnings: string[] = [];
  const quiet = await waitForQuiet(30_000);
  if (quiet !== null) {
    console.log(`  ${quiet}`);
    warnings.push(quiet);
  }
  console.log(
    `restart: replay of ${fmtInt(ENTRIES)} single-INSERT entries at start, ` +
      `target ${fmtInt(TARGET_PER_SEC)} entries/s`,
  );
  const dirs: string[] = [];
  try {
    const baseDir = await Deno.makeTempDir({ prefix: "raftlite-bench-restart-base-" });
    dirs.push(baseDir);
    const base = await baseline(baseDir, freePorts(2) as [number, number]);
    const baseReady = median(base.map((b) => b.readyMs));
    const baseVisible = median(base.map((b) => b.visibleMs));
    const baseRss = median(base.map((b) => b.peakRssKiB));
    const dir = await Deno.makeTempDir({ prefix: "raftlite-bench-restart-" });
    dirs.push(dir);
    const r = await loadedRestarts(dir, freePorts(2) as [number, number]);
    const rateOf = (m: Measured) => m.replayed / (Math.max(1, m.visibleMs - baseVisible) / 1000);
    const row = (what: string, m: Measured) => [
      what,
      fmtMs(m.readyMs),
      fmtMs(m.visibleMs),
      fmtInt(m.snapshotIndex),
      fmtInt(m.replayed),
      fmtInt(rateOf(m)),
      `${fmtInt(m.cpuMs)} / ${fmtInt(m.mainCpuMs)} ms`,
      `${(m.peakRssKiB / 1024).toFixed(0)} MiB`,
    ];
    const lines = alignTable([
      [
        "start",
        "to /readyz 200",
        "to last row",
        "snapshot at",
        "replayed",
        "replay entries/s",
        "cpu: all / main",
        "peak RSS",
      ],
      [
        `empty log (median of ${BASELINE_RUNS})`,
        fmtMs(baseReady),
        fmtMs(baseVisible),
        "-",
        "-",
        "-",
        "-",
        `${(baseRss / 1024).toFixed(0)} MiB`,
      ],
      row(`${fmtInt(ENTRIES)} entries, after SIGKILL`, r.crash),
      row(`${fmtInt(ENTRIES)} entries, after SIGTERM`, r.graceful),
    ]);
    const rate = rateOf(r.crash);
    lines.push(
      `replay after SIGKILL: ${fmtInt(r.crash.replayed)} entries in ` +
        `${fmtMs(r.crash.visibleMs - baseVisible)} (last row visible minus the empty start) = ` +
        `${fmtInt(rate)} entries/s, ${(rate / TARGET_PER_SEC).toFixed(2)}x the ` +
        `${fmtInt(TARGET_PER_SEC)}/s target${rate >= TARGET_PER_SEC ? "" : " (BELOW TARGET)"}; ` +
        `/readyz was 200 ${
          r.crash.readyMs < r.crash.visibleMs - 50 ? "before" : "with"
        } the last row`,
      `data dir before the restart ${(r.dataBytes / 2 ** 20).toFixed(1)} MiB; load: ` +
        `${fmtInt(ENTRIES)} inserts in ${(r.writeMs / 1000).toFixed(1)} s ` +
        `(${fmtInt(ENTRIES / (r.writeMs / 1000))}/s, ${CONCURRENCY} in flight)`,
    );
    if (r.crash.replayed < ENTRIES) {
      warnings.push(
        `NOTE: after SIGKILL the node found a snapshot at ${r.crash.snapshotIndex} and replayed ` +
          `only ${r.crash.replayed} entries; the replay rate is not that of ${ENTRIES} entries`,
      );
    }
    for (const line of [...lines, ...warnings]) console.log(`  ${line}`);
    if (PROFILE !== undefined || ENTRIES !== DEFAULT_ENTRIES) {
      console.log("  (profiled or non-default BENCH_RESTART_ENTRIES: not recorded)");
    } else {
      await recordResults("Restart replay, one node (bench/restart_bench.ts)", lines, [
        `${NO_SNAPSHOT.join(" ")} (no snapshot while running); times from spawning ` +
        `\`deno run -A main.ts\`; cpu: CPU time of the process / its main thread until the ` +
        `last row was visible (the rest is the SQLite worker and GC)`,
        ...warnings,
      ]);
    }
  } finally {
    for (const d of dirs) await Deno.remove(d, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) await run();
