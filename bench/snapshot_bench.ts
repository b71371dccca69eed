/**
 * Large databases on one node: snapshot, `POST /boot`, `GET /db/backup` and
 * restart, in-memory (the default) and `-on-disk`, with each figure set
 * against a ceiling measured on the same machine in the same run.
 *
 * 1. A SQLite file of about `RAFTLITE_BENCH_DB_MIB` MiB is built directly
 *    with node:sqlite (table `t`: INTEGER PRIMARY KEY, a 64-bit integer and
 *    a 900-character TEXT payload; one transaction, journal_mode=OFF).
 * 2. Ceilings, all on the same disk: sequential write + fsync of a file of
 *    the same size, `Deno.copyFile` of the database file, reading it
 *    through, and a trivial `Deno.serve` handler (bench/lib/ceiling_server.ts)
 *    receiving the file from this process's fetch into a file + fsync (the
 *    ceiling of `/boot`) and serving it (the ceiling of `/db/backup`).
 * 3. In-memory node: empty start; `POST /boot` of the file by `curl -T`
 *    (by Deno's fetch when curl is not on PATH), checked by the row count;
 *    `POST /snapshot` after one write; `GET /db/backup`
 *    (binary, streamed and counted), `fmt=sql` (bounded to
 *    {@link SQL_BACKUP_MS}; reported as incomplete past it) and
 *    `compress`; then SIGTERM and a restart on the same data directory:
 *    time to `/readyz` 200 and to the full row count. The database's RAM
 *    (a file in /dev/shm, lib/db/files.ts) is reported beside the RSS.
 * 4. `-on-disk` node: empty start, `/boot` (curl, else fetch), then a
 *    restart after SIGTERM and one after SIGKILL, each after one more write.
 * 5. `/boot` by Deno's fetch streaming the file as a ReadableStream (never
 *    read into this process's memory), on a fresh in-memory node of its
 *    own: Deno.serve receiving from Deno's fetch while awaiting file writes
 *    can be far slower than from curl (measured: 256 MiB in ~45 s, RSS
 *    growing), and a slow upload would disturb the other figures.
 *
 * Peak RSS is VmHWM from /proc/<pid>/status of the node process, reported
 * with how far it is above the same node's empty start; a warning is printed
 * when that grows with the database (more than 0.25x its size and 64 MiB),
 * since neither mode keeps the database in the process's heap. Times of
 * starts are from spawning `deno run -A main.ts`; the empty node's start is
 * the baseline a restart is compared with. Every step is bounded in time
 * ({@link STEP_MS}); a failing step prints its error and the steps that
 * depend on it are skipped. Every process is killed by pid and every temp
 * dir removed at the end, also on failure. MB = 10^6 bytes, MiB = 2^20.
 *
 * Run: `deno task bench snapshot` (default size {@link DEFAULT_MIB} MiB,
 * about 3 minutes), or the full 1 GiB run:
 * `RAFTLITE_BENCH_DB_MIB=1024 deno run -A bench/snapshot_bench.ts`.
 * Needs about 5 times the size in free disk space under the temp dir, and
 * once the size in /dev/shm. `BENCH_RAFTLITE_MAIN=<path>`: the entry point
 * to run instead of main.ts (its figures are then not written to
 * bench/RESULTS.md).
 *
 * @module
 */

import { dirBytes } from "./lib/fs.ts";
import { DatabaseSync } from "node:sqlite";
import { waitForQuiet } from "./lib/machine.ts";
import { findOnPath, OutputTail, runCommand, waitOrKill } from "./lib/proc.ts";
import { alignTable, recordResults } from "./lib/results.ts";
import { freePorts, type ServerHandle, startCeiling } from "./lib/server.ts";
import { DENO_V8_FLAGS_ARG } from "../lib/server/v8_flags.ts";

/** Default database size in MiB (`RAFTLITE_BENCH_DB_MIB` overrides it). */
export const DEFAULT_MIB = 256;
const SIZE_MIB = Number(Deno.env.get("RAFTLITE_BENCH_DB_MIB") ?? String(DEFAULT_MIB));
/** Rows of ~925 bytes: four fit a 4 KiB page, so one row per KiB of file. */
const ROWS = Math.round(SIZE_MIB * 1024);
const PAYLOAD_CHARS = 900;
const PAYLOAD_POOL = 1024;
/** Bound of every step that moves the whole database: 60 s, or 0.2 s per MiB (5 MB/s). */
const STEP_MS = Math.max(60_000, SIZE_MIB * 200);
/** Bound of `GET /db/backup?fmt=sql`; a slower dump is reported as incomplete. */
const SQL_BACKUP_MS = 120_000;
/** Bound of a start (to `/readyz` 200 and to the full count). */
const START_MS = Math.max(60_000, SIZE_MIB * 200);
/** Chunk of file reads and writes. */
const CHUNK = 1 << 20;
/** Chunk of HTTP uploads: 64 KiB moved ~1.5x faster than 1 MiB through Deno's fetch. */
const UPLOAD_CHUNK = 1 << 16;
const POLL_MS = 10;
/** A restart closer than this to the empty start is not turned into a load rate (noise). */
const MIN_LOAD_MS = 100;
const MB = 1e6;
const MIB = 2 ** 20;
const MAIN_OVERRIDE = Deno.env.get("BENCH_RAFTLITE_MAIN");
const MAIN = MAIN_OVERRIDE ?? decodeURIComponent(new URL("../main.ts", import.meta.url).pathname);
const TITLE = "Snapshot, /boot, backup and restart, one node (bench/snapshot_bench.ts)";

// ---------------------------------------------------------------------------
// Figures and steps.

/** One row of the table: a figure (unit in its name), its value, and ratios to ceilings. */
interface Figure {
  name: string;
  value: string;
  vs: string;
}

/** Ceilings in MB/s, measured in this run (absent when their step failed). */
interface Ceilings {
  write?: number;
  copy?: number;
  read?: number;
  httpUp?: number;
  httpDown?: number;
}

const CEILING_NAMES: Record<keyof Ceilings, string> = {
  write: "write+fsync",
  copy: "copyFile",
  read: "read",
  httpUp: "HTTP upload",
  httpDown: "HTTP download",
};

class Report {
  readonly figures: Figure[] = [];
  readonly notes: string[] = [];
  ceilings: Ceilings = {};

  add(name: string, value: string, vs = ""): void {
    this.figures.push({ name, value, vs });
    console.log(`  ${name}: ${value}${vs === "" ? "" : `  (${vs})`}`);
  }

  /** A rate in MB/s, with its ratio to each of the named ceilings that was measured. */
  rate(name: string, mbPerSec: number, against: (keyof Ceilings)[] = []): void {
    const vs = against.flatMap((k) => {
      const c = this.ceilings[k];
      return c === undefined || !(c > 0) ? [] : [`${ratio(mbPerSec / c)} ${CEILING_NAMES[k]}`];
    });
    this.add(name, Number.isFinite(mbPerSec) ? fmtInt(mbPerSec) : "-", vs.join(", "));
  }

  note(line: string): void {
    this.notes.push(line);
    console.log(`  ${line}`);
  }
}

function ratio(x: number): string {
  return (x >= 0.095 ? x.toFixed(2) : x.toFixed(3)) + "x";
}

const fmtInt = (n: number) => Math.round(n).toLocaleString("en-US");
const fmtMiB = (bytes: number) => (bytes / MIB).toFixed(1);
const fmtKiB = (kib: number) => (kib / 1024).toFixed(1);
const mbps = (bytes: number, ms: number) => bytes / MB / (ms / 1000);

function errText(e: unknown): string {
  const s = e instanceof Error ? e.message : String(e);
  return s.length > 1500 ? s.slice(0, 1500) + " ..." : s;
}

/**
 * Runs `fn` with a deadline of `ms`: on an error or the deadline, records
 * "<name>: FAILED: ..." and returns undefined (the signal passed to `fn` is
 * aborted at the deadline, ending its requests).
 */
async function step<T>(
  report: Report,
  name: string,
  ms: number,
  fn: (signal: AbortSignal) => Promise<T>,
): Promise<T | undefined> {
  const ctl = new AbortController();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const err = new Error(`timed out after ${Math.round(ms / 1000)} s`);
      ctl.abort(err);
      reject(err);
    }, ms);
  });
  const work = fn(ctl.signal);
  work.catch(() => {}); // a late failure after the deadline is already reported
  try {
    return await Promise.race([work, deadline]);
  } catch (e) {
    report.note(`${name}: FAILED: ${errText(e)}`);
    return undefined;
  } finally {
    clearTimeout(timer);
  }
}

// ---------------------------------------------------------------------------
// Files.

/** A stream of the file at `path` in {@link UPLOAD_CHUNK}-byte chunks, each a new buffer. */
function fileStream(path: string): ReadableStream<Uint8Array> {
  let file: Deno.FsFile | undefined;
  return new ReadableStream<Uint8Array>({
    async pull(ctl) {
      file ??= await Deno.open(path);
      const buf = new Uint8Array(UPLOAD_CHUNK);
      const n = await file.read(buf);
      if (n === null) {
        file.close();
        file = undefined;
        ctl.close();
      } else {
        ctl.enqueue(n === UPLOAD_CHUNK ? buf : buf.subarray(0, n));
      }
    },
    cancel() {
      file?.close();
      file = undefined;
    },
  });
}

/** Builds the database at `path`; returns its size. */
function buildDatabase(path: string): number {
  const pool = Array.from({ length: PAYLOAD_POOL }, () => {
    const bytes = crypto.getRandomValues(new Uint8Array((PAYLOAD_CHARS / 4) * 3));
    let s = "";
    for (const b of bytes) s += String.fromCharCode(b);
    return btoa(s);
  });
  const db = new DatabaseSync(path);
  try {
    db.exec("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF");
    db.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER NOT NULL, payload TEXT NOT NULL)");
    const insert = db.prepare("INSERT INTO t (id, n, payload) VALUES (?, ?, ?)");
    db.exec("BEGIN");
    for (let i = 1; i <= ROWS; i++) {
      insert.run(i, BigInt.asIntN(64, BigInt(i) * 0x9e3779b97f4a7c15n), pool[i % PAYLOAD_POOL]!);
    }
    db.exec("COMMIT");
  } finally {
    db.close();
  }
  return Deno.statSync(path).size;
}

// ---------------------------------------------------------------------------
// Ceilings.

async function writeFsyncMs(path: string, bytes: number): Promise<number> {
  const buf = crypto.getRandomValues(new Uint8Array(65536));
  const block = new Uint8Array(CHUNK);
  for (let off = 0; off < CHUNK; off += buf.length) block.set(buf, off);
  const t0 = performance.now();
  const file = await Deno.open(path, { write: true, createNew: true });
  try {
    for (let done = 0; done < bytes;) {
      const part = block.subarray(0, Math.min(CHUNK, bytes - done));
      for (let off = 0; off < part.length;) off += await file.write(part.subarray(off));
      done += part.length;
    }
    await file.sync();
  } finally {
    file.close();
  }
  return performance.now() - t0;
}

async function readMs(path: string): Promise<number> {
  const t0 = performance.now();
  const file = await Deno.open(path);
  const buf = new Uint8Array(CHUNK);
  try {
    while ((await file.read(buf)) !== null) {
      // reading through
    }
  } finally {
    file.close();
  }
  return performance.now() - t0;
}

/** Reads `res`'s body to the end, counting bytes. */
async function countBody(res: Response): Promise<number> {
  let bytes = 0;
  if (res.body === null) return 0;
  for await (const chunk of res.body) bytes += chunk.byteLength;
  return bytes;
}

async function measureCeilings(report: Report, work: string, db: string, size: number) {
  const c: Ceilings = {};
  const scratch = `${work}/ceiling.tmp`;
  const clear = () => Deno.remove(scratch).catch(() => {});
  await step(report, "ceiling write+fsync", STEP_MS, async () => {
    c.write = mbps(size, await writeFsyncMs(scratch, size));
  });
  await clear();
  await step(report, "ceiling copyFile", STEP_MS, async () => {
    const t0 = performance.now();
    await Deno.copyFile(db, scratch);
    c.copy = mbps(size, performance.now() - t0);
  });
  await clear();
  await step(report, "ceiling read", STEP_MS, async () => {
    c.read = mbps(size, await readMs(db));
  });
  let server: ServerHandle | undefined;
  try {
    server = await startCeiling({ fileDir: work });
    const base = server.baseUrl;
    await step(report, "ceiling HTTP upload", STEP_MS, async (signal) => {
      const t0 = performance.now();
      const res = await fetch(`${base}/upload?path=${encodeURIComponent(scratch)}`, {
        method: "POST",
        body: fileStream(db),
        signal,
      });
      const text = await res.text();
      const ms = performance.now() - t0;
      if (res.status !== 200) throw new Error(`status ${res.status}: ${text}`);
      const got = (JSON.parse(text) as { bytes: number }).bytes;
      if (got !== size) throw new Error(`the ceiling received ${got} bytes, not ${size}`);
      c.httpUp = mbps(size, ms);
    });
    await clear();
    await step(report, "ceiling HTTP download", STEP_MS, async (signal) => {
      const t0 = performance.now();
      const res = await fetch(`${base}/download?path=${encodeURIComponent(db)}`, { signal });
      if (res.status !== 200) throw new Error(`status ${res.status}: ${await res.text()}`);
      const got = await countBody(res);
      if (got !== size) throw new Error(`downloaded ${got} bytes, not ${size}`);
      c.httpDown = mbps(size, performance.now() - t0);
    });
  } catch (e) {
    report.note(`ceiling server: FAILED: ${errText(e)}`);
  } finally {
    await server?.stop();
    await clear();
  }
  report.ceilings = c;
  report.rate("ceiling: write + fsync, MB/s", c.write ?? NaN);
  report.rate("ceiling: Deno.copyFile, MB/s", c.copy ?? NaN);
  report.rate("ceiling: read file through, MB/s", c.read ?? NaN);
  report.rate("ceiling: HTTP upload into file + fsync, MB/s", c.httpUp ?? NaN);
  report.rate("ceiling: HTTP download of file, MB/s", c.httpDown ?? NaN);
}

// ---------------------------------------------------------------------------
// A node process on a given data directory and ports.

const live = new Set<Node>();
let peakWarned = false;

class Node {
  readonly pid: number;
  readonly url: string;
  readonly spawnedAt: number;
  readonly #child: Deno.ChildProcess;
  readonly #client = Deno.createHttpClient({});
  readonly #out: OutputTail;
  readonly #err: OutputTail;
  readonly #status: Promise<Deno.CommandStatus>;
  #exited: Deno.CommandStatus | null = null;

  constructor(dataDir: string, ports: readonly [number, number], onDisk: boolean) {
    const [http, raft] = ports;
    const args = ["run", "-A", DENO_V8_FLAGS_ARG, MAIN, "-http-addr", `127.0.0.1:${http}`];
    args.push("-raft-addr", `127.0.0.1:${raft}`);
    if (onDisk) args.push("-on-disk");
    args.push(dataDir);
    this.spawnedAt = performance.now();
    this.#child = new Deno.Command(Deno.execPath(), {
      args,
      env: { RUST_BACKTRACE: "0", NO_COLOR: "1" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.pid = this.#child.pid;
    this.url = `http://127.0.0.1:${http}`;
    this.#out = new OutputTail(this.#child.stdout);
    this.#err = new OutputTail(this.#child.stderr);
    this.#status = this.#child.status.then((s) => (this.#exited = s));
    live.add(this);
  }

  output(): string {
    return [this.#out.text(), this.#err.text()].filter((t) => t !== "").join("\n").slice(-3000);
  }

  exited(): Deno.CommandStatus | null {
    return this.#exited;
  }

  fetch(path: string, init: RequestInit = {}): Promise<Response> {
    if (this.#exited !== null) {
      return Promise.reject(new Error(`the node has exited:\n${this.output()}`));
    }
    return fetch(`${this.url}${path}`, { ...init, client: this.#client });
  }

  /** VmHWM and VmRSS in KiB. */
  async memKiB(): Promise<{ peak: number; now: number }> {
    const status = await Deno.readTextFile(`/proc/${this.pid}/status`);
    const kib = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(status)?.[1]);
    return { peak: kib("VmHWM"), now: kib("VmRSS") };
  }

  /**
   * Resets the peak RSS (VmHWM) to the current RSS (Linux: `5` into
   * /proc/<pid>/clear_refs), so the next reading is the peak of what came
   * after; false when the kernel refused (peaks are then cumulative).
   */
  async resetPeak(): Promise<boolean> {
    try {
      await Deno.writeTextFile(`/proc/${this.pid}/clear_refs`, "5");
      this.rssAtResetKiB = (await this.memKiB()).now;
      return true;
    } catch {
      this.rssAtResetKiB = undefined;
      return false;
    }
  }

  /** The RSS when the peak was last reset (KiB), if it was. */
  rssAtResetKiB: number | undefined;

  /**
   * Sends `signal` and waits for the exit, sending SIGKILL after `graceMs`;
   * resolves with the exit status and the ms from the signal to the exit.
   */
  async stop(
    signal: Deno.Signal = "SIGTERM",
    graceMs = 10_000,
  ): Promise<{ status: Deno.CommandStatus; ms: number }> {
    const t0 = performance.now();
    if (this.#exited === null) {
      try {
        this.#child.kill(signal);
      } catch {
        // already gone
      }
      await waitOrKill(this.#child, graceMs);
    }
    const status = await this.#status;
    const ms = performance.now() - t0;
    await Promise.all([this.#out.done, this.#err.done]);
    await removeShm(this.pid); // what a killed in-memory node leaves behind
    this.#client.close();
    live.delete(this);
    return { status, ms };
  }
}

/** Polls `check` until true; returns the ms since `node` was spawned. */
async function sinceSpawn(
  node: Node,
  what: string,
  signal: AbortSignal,
  check: () => Promise<boolean>,
): Promise<number> {
  let last = "";
  for (;;) {
    if (node.exited() !== null) throw new Error(`node exited before ${what}:\n${node.output()}`);
    if (signal.aborted) throw new Error(`no ${what} (last: ${last}):\n${node.output()}`);
    try {
      if (await check()) return performance.now() - node.spawnedAt;
    } catch (e) {
      last = errText(e);
    }
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

async function isReady(node: Node): Promise<boolean> {
  const res = await node.fetch("/readyz", { signal: AbortSignal.timeout(2_000) });
  await res.body?.cancel();
  return res.status === 200;
}

async function count(node: Node, signal?: AbortSignal): Promise<number> {
  const q = encodeURIComponent("SELECT count(*) FROM t");
  const res = await node.fetch(`/db/query?level=none&q=${q}`, {
    signal: signal ?? AbortSignal.timeout(30_000),
  });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`count: status ${res.status}: ${text}`);
  const r = (JSON.parse(text) as { results?: { values?: unknown[][]; error?: string }[] })
    .results?.[0];
  const n = r?.values?.[0]?.[0];
  if (typeof n !== "number") throw new Error(`count: ${text.slice(0, 300)}`);
  return n;
}

async function insertRow(node: Node, id: number): Promise<void> {
  const res = await node.fetch("/db/execute", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify([["INSERT INTO t (id, n, payload) VALUES (?, ?, ?)", id, id, "extra"]]),
    signal: AbortSignal.timeout(30_000),
  });
  const text = await res.text();
  if (res.status !== 200 || text.includes('"error"')) {
    throw new Error(`insert: status ${res.status}: ${text.slice(0, 300)}`);
  }
}

async function storeStatus(node: Node): Promise<Record<string, unknown>> {
  const res = await node.fetch("/status", { signal: AbortSignal.timeout(10_000) });
  const json = await res.json() as { store?: Record<string, unknown> };
  return json.store ?? {};
}

// ---------------------------------------------------------------------------
// The scenarios.

/** Everything about the database file the node scenarios need. */
interface Source {
  path: string;
  bytes: number;
  rows: number;
}

/** What both node scenarios share. */
interface Start {
  node: Node;
  readyMs: number;
  peakKiB: number;
}

async function startNode(
  report: Report,
  label: string,
  dir: string,
  ports: [number, number],
  onDisk: boolean,
  expected?: number,
): Promise<(Start & { countMs?: number }) | undefined> {
  const node = new Node(dir, ports, onDisk);
  const r = await step(report, label, START_MS, async (signal) => {
    const readyMs = await sinceSpawn(node, "/readyz 200", signal, () => isReady(node));
    let countMs: number | undefined;
    if (expected !== undefined) {
      let last = -1;
      try {
        countMs = await sinceSpawn(node, `count(*) = ${expected}`, signal, async () => {
          last = await count(node, AbortSignal.timeout(10_000));
          return last === expected;
        });
      } catch (e) {
        throw new Error(`ready, but count(*) is ${last}, not ${expected}: ${errText(e)}`);
      }
    }
    const peakKiB = (await node.memKiB()).peak;
    await node.resetPeak();
    return { node, readyMs, countMs, peakKiB };
  });
  if (r === undefined) await node.stop("SIGKILL");
  return r;
}

/** `POST /boot` by Deno's fetch (the file streamed as a ReadableStream); the ms it took. */
async function bootByFetch(node: Node, src: Source, signal: AbortSignal): Promise<number> {
  const t0 = performance.now();
  const res = await node.fetch("/boot", {
    method: "POST",
    headers: { "Content-Type": "application/octet-stream" },
    body: fileStream(src.path),
    signal,
  });
  const text = await res.text();
  const ms = performance.now() - t0;
  if (res.status !== 200) throw new Error(`status ${res.status}: ${text.trim().slice(0, 500)}`);
  return ms;
}

/** `POST /boot` by `curl -T` (streamed from the file, Content-Length set); the ms it took. */
async function bootByCurl(curl: string, node: Node, src: Source): Promise<number> {
  const t0 = performance.now();
  const out = await runCommand(curl, [
    "-sS",
    "-X",
    "POST",
    "-T",
    src.path,
    "-H",
    "Content-Type: application/octet-stream",
    "-H",
    "Expect:",
    "-w",
    "\n%{http_code}",
    `${node.url}/boot`,
  ], { timeoutMs: STEP_MS });
  const ms = performance.now() - t0;
  const status = out.stdout.trim().split("\n").at(-1);
  if (out.timedOut) throw new Error(`curl overran ${STEP_MS / 1000} s and was killed`);
  if (out.code !== 0 || status !== "200") {
    throw new Error(`curl exit ${out.code}, ${out.stdout.trim().slice(-500)} ${out.stderr.trim()}`);
  }
  return ms;
}

/**
 * `POST /boot` of the source file by `client`, then a check of the row
 * count; returns false when it failed.
 */
async function boot(
  report: Report,
  label: string,
  node: Node,
  src: Source,
  client: "fetch" | string,
): Promise<boolean> {
  const how = client === "fetch" ? "fetch, ReadableStream" : "curl -T";
  const name = `${label}: POST /boot (${how})`;
  const r = await step(report, name, STEP_MS + 5_000, async (signal) => {
    const ms = client === "fetch"
      ? await bootByFetch(node, src, signal)
      : await bootByCurl(client, node, src);
    const n = await count(node, signal);
    if (n !== src.rows) throw new Error(`/boot answered 200 but count(*) is ${n}, not ${src.rows}`);
    return ms;
  });
  if (r === undefined) return false;
  report.add(`${name}, ms`, fmtInt(r));
  report.rate(`${name}, MB/s`, mbps(src.bytes, r), ["httpUp", "write"]);
  return true;
}

/**
 * Boots `node` with the file by curl when it is on PATH (the figure of the
 * server alone), else by Deno's fetch; records the peak RSS during it.
 * False when the boot failed.
 */
async function bootNode(
  report: Report,
  label: string,
  node: Node,
  src: Source,
  emptyKiB: number,
): Promise<boolean> {
  const curl = await findOnPath("curl");
  if (curl === null) report.note(`${label}: curl is not on PATH: /boot by Deno's fetch instead`);
  const client = curl ?? "fetch";
  if (!(await boot(report, label, node, src, client))) return false;
  const how = client === "fetch" ? "fetch" : "curl";
  await rss(report, `${label}: peak RSS during /boot (${how})`, node, src, emptyKiB);
  return true;
}

/**
 * `/boot` by Deno's fetch streaming the file as a ReadableStream, on a
 * fresh in-memory node of its own (so that a slow or failed upload cannot
 * disturb the other figures); skipped when the main boots used fetch.
 */
async function fetchBoot(report: Report, work: string, src: Source): Promise<void> {
  if ((await findOnPath("curl")) === null) return;
  const label = "in-memory, fresh node";
  const dir = `${work}/node-fetch`;
  await Deno.mkdir(dir);
  const empty = await startNode(
    report,
    `${label}: empty start`,
    dir,
    freePorts(2) as [number, number],
    false,
  );
  try {
    if (empty === undefined) return;
    if (await boot(report, label, empty.node, src, "fetch")) {
      await rss(report, `${label}: peak RSS during /boot (fetch)`, empty.node, src, empty.peakKiB);
    } else {
      await rss(
        report,
        `${label}: peak RSS during failed /boot (fetch)`,
        empty.node,
        src,
        empty.peakKiB,
      );
    }
  } finally {
    await empty?.node.stop("SIGKILL");
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

function shmName(pid: number): RegExp {
  return new RegExp(`^raftlite-(?:ns\\d+-)?${pid}-[0-9a-f]+\\.sqlite`);
}

/** Bytes of the node's RAM-backed database files in /dev/shm (lib/db/files.ts names them). */
async function shmBytes(pid: number): Promise<number> {
  const re = shmName(pid);
  let total = 0;
  for await (const e of Deno.readDir("/dev/shm")) {
    if (re.test(e.name)) total += (await Deno.lstat(`/dev/shm/${e.name}`)).size;
  }
  return total;
}

/** Deletes the RAM-backed database files a killed node `pid` left in /dev/shm. */
async function removeShm(pid: number): Promise<void> {
  try {
    for await (const e of Deno.readDir("/dev/shm")) {
      if (shmName(pid).test(e.name)) await Deno.remove(`/dev/shm/${e.name}`).catch(() => {});
    }
  } catch {
    // No /dev/shm: nothing was left there.
  }
}

async function shm(report: Report, name: string, node: Node, src: Source): Promise<void> {
  try {
    const bytes = await shmBytes(node.pid);
    report.add(`${name}, MiB`, fmtMiB(bytes), `${ratio(bytes / src.bytes)} DB size`);
  } catch (e) {
    report.note(`${name}: FAILED: ${errText(e)}`);
  }
}

/** Adds a peak RSS figure (KiB), set against the empty node's and the database's size. */
function addRss(
  report: Report,
  name: string,
  src: Source,
  peakKiB: number,
  nowKiB?: number,
  emptyKiB?: number,
  stepBaseKiB?: number,
): void {
  const parts: string[] = [];
  if (stepBaseKiB !== undefined) {
    const grew = (peakKiB - stepBaseKiB) * 1024;
    parts.push(`+${fmtMiB(grew)} MiB in the step = ${ratio(grew / src.bytes)} DB`);
  }
  if (emptyKiB !== undefined) {
    const above = (peakKiB - emptyKiB) * 1024;
    parts.push(
      `+${fmtMiB(above)} MiB over the empty node` +
        (stepBaseKiB === undefined ? ` = ${ratio(above / src.bytes)} DB` : ""),
    );
  }
  if (nowKiB !== undefined) parts.push(`now ${fmtKiB(nowKiB)}`);
  report.add(`${name}, MiB`, fmtKiB(peakKiB), parts.join("; "));
}

/**
 * Records the node's peak RSS since the last reading (see
 * {@link Node.resetPeak}) and resets it for the next one.
 */
async function rss(report: Report, name: string, node: Node, src: Source, emptyKiB?: number) {
  try {
    const m = await node.memKiB();
    const base = node.rssAtResetKiB;
    if (!(await node.resetPeak()) && !peakWarned) {
      peakWarned = true;
      report.note("NOTE: VmHWM could not be reset: each peak RSS includes the earlier steps'");
    }
    addRss(report, name, src, m.peak, m.now, emptyKiB, base);
  } catch (e) {
    report.note(`${name}: FAILED: ${errText(e)}`);
  }
}

async function snapshot(report: Report, label: string, node: Node, src: Source, id: number) {
  const r = await step(report, `${label}: POST /snapshot`, STEP_MS, async (signal) => {
    await insertRow(node, id);
    const t0 = performance.now();
    const res = await node.fetch("/snapshot", { method: "POST", signal });
    const text = await res.text();
    const ms = performance.now() - t0;
    if (res.status !== 200) throw new Error(`status ${res.status}: ${text.trim().slice(0, 500)}`);
    const store = await storeStatus(node);
    return { ms, serverMs: store.last_snapshot_duration_ms };
  });
  if (r === undefined) return false;
  report.add(
    `${label}: POST /snapshot after 1 write, ms`,
    fmtInt(r.ms),
    `DB size / time ${fmtInt(mbps(src.bytes, r.ms))} MB/s = ${
      report.ceilings.write === undefined
        ? "?"
        : ratio(mbps(src.bytes, r.ms) / report.ceilings.write)
    } write+fsync`,
  );
  if (typeof r.serverMs === "number") {
    report.add(`${label}: /status last_snapshot_duration_ms`, fmtInt(r.serverMs));
  }
  return true;
}

async function backups(
  report: Report,
  label: string,
  node: Node,
  src: Source,
  emptyKiB: number,
) {
  const binary = await step(report, `${label}: GET /db/backup`, STEP_MS, async (signal) => {
    const t0 = performance.now();
    const res = await node.fetch("/db/backup", { signal });
    if (res.status !== 200) throw new Error(`status ${res.status}: ${await res.text()}`);
    const bytes = await countBody(res);
    return { bytes, ms: performance.now() - t0 };
  });
  if (binary !== undefined) {
    report.rate(`${label}: GET /db/backup, MB/s`, mbps(binary.bytes, binary.ms), [
      "httpDown",
      "read",
    ]);
    report.add(
      `${label}: GET /db/backup size, MiB`,
      fmtMiB(binary.bytes),
      `${ratio(binary.bytes / src.bytes)} DB size`,
    );
    if (Math.abs(binary.bytes - src.bytes) > src.bytes * 0.05 + MIB) {
      report.note(
        `WARNING: ${label}: the backup is ${binary.bytes} bytes, the booted file ${src.bytes}`,
      );
    }
    await rss(report, `${label}: peak RSS during GET /db/backup`, node, src, emptyKiB);
  }
  // fmt=sql: counted until SQL_BACKUP_MS, then reported as incomplete.
  await step(report, `${label}: GET /db/backup?fmt=sql`, SQL_BACKUP_MS + 10_000, async () => {
    const t0 = performance.now();
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), SQL_BACKUP_MS);
    let bytes = 0;
    let complete = false;
    try {
      const res = await node.fetch("/db/backup?fmt=sql", { signal: ctl.signal });
      if (res.status !== 200) throw new Error(`status ${res.status}: ${await res.text()}`);
      if (res.body !== null) { for await (const chunk of res.body) bytes += chunk.byteLength; }
      complete = true;
    } catch (e) {
      if (!ctl.signal.aborted) throw e;
    } finally {
      clearTimeout(timer);
    }
    const ms = performance.now() - t0;
    if (complete) {
      report.add(
        `${label}: GET /db/backup?fmt=sql, DB MB/s`,
        fmtInt(mbps(src.bytes, ms)),
        `${fmtMiB(bytes)} MiB of SQL in ${fmtInt(ms)} ms, ${fmtInt(mbps(bytes, ms))} MB/s of SQL`,
      );
    } else {
      report.add(
        `${label}: GET /db/backup?fmt=sql, SQL MB/s`,
        fmtInt(mbps(bytes, ms)),
        `INCOMPLETE: ${fmtMiB(bytes)} MiB in the ${SQL_BACKUP_MS / 1000} s bound`,
      );
    }
    await rss(report, `${label}: peak RSS during fmt=sql`, node, src, emptyKiB);
  });
  const gz = await step(report, `${label}: GET /db/backup?compress`, STEP_MS, async (signal) => {
    const t0 = performance.now();
    const res = await node.fetch("/db/backup?compress", { signal });
    if (res.status !== 200) throw new Error(`status ${res.status}: ${await res.text()}`);
    const bytes = await countBody(res);
    return { bytes, ms: performance.now() - t0 };
  });
  if (gz !== undefined) {
    report.add(
      `${label}: GET /db/backup?compress, DB MB/s`,
      fmtInt(mbps(src.bytes, gz.ms)),
      `${fmtMiB(gz.bytes)} MiB gzip in ${fmtInt(gz.ms)} ms`,
    );
    await rss(report, `${label}: peak RSS during compress`, node, src, emptyKiB);
  }
}

/** Stops `node` with `signal`, recording the shutdown time after SIGTERM. */
async function stopFor(
  report: Report,
  label: string,
  node: Node,
  signal: "SIGTERM" | "SIGKILL",
): Promise<void> {
  const r = await node.stop(signal, STEP_MS);
  if (signal === "SIGTERM") {
    report.add(`${label}: shutdown after SIGTERM, ms`, fmtInt(r.ms));
    if (r.status.code !== 0) {
      report.note(
        `WARNING: ${label}: exit status ${r.status.code} (${r.status.signal}) after SIGTERM:\n` +
          node.output(),
      );
    }
  }
}

async function restart(
  report: Report,
  label: string,
  dir: string,
  ports: [number, number],
  onDisk: boolean,
  src: Source,
  expected: number,
  empty: Start,
  emptyKiB: number,
): Promise<Node | undefined> {
  const r = await startNode(report, `${label}: start`, dir, ports, onDisk, expected);
  if (r === undefined) return undefined;
  report.add(
    `${label}: to /readyz 200, ms`,
    fmtInt(r.readyMs),
    `${ratio(r.readyMs / empty.readyMs)} empty start`,
  );
  const countMs = r.countMs ?? r.readyMs;
  // What the database costs the start: the time beyond the empty node's start.
  const loadMs = countMs - empty.readyMs;
  const rate = mbps(src.bytes, loadMs);
  const { read, copy } = report.ceilings;
  report.add(
    `${label}: to count(*) = ${fmtInt(expected)}, ms`,
    fmtInt(countMs),
    loadMs < MIN_LOAD_MS
      ? `within ${MIN_LOAD_MS} ms of the empty start (${fmtInt(loadMs)} ms)`
      : `minus empty start: ${fmtInt(loadMs)} ms = ${fmtInt(rate)} DB MB/s` +
        (read === undefined ? "" : ` = ${ratio(rate / read)} read`) +
        (copy === undefined ? "" : `, ${ratio(rate / copy)} copyFile`),
  );
  try {
    const store = await storeStatus(r.node);
    if (typeof store.restores === "number") {
      report.add(`${label}: /status restores (snapshot rebuilds)`, String(store.restores));
    }
  } catch (e) {
    report.note(`${label}: /status: ${errText(e)}`);
  }
  addRss(report, `${label}: peak RSS`, src, r.peakKiB, undefined, emptyKiB);
  return r.node;
}

async function inMemory(report: Report, work: string, src: Source): Promise<void> {
  const label = "in-memory";
  const dir = `${work}/node-mem`;
  await Deno.mkdir(dir);
  const ports = freePorts(2) as [number, number];
  const empty = await startNode(report, `${label}: empty start`, dir, ports, false);
  if (empty === undefined) return;
  let node: Node | undefined = empty.node;
  try {
    report.add(`${label}: empty node start to /readyz 200, ms`, fmtInt(empty.readyMs));
    report.add(`${label}: empty node peak RSS, MiB`, fmtKiB(empty.peakKiB));
    if (!(await bootNode(report, label, node, src, empty.peakKiB))) return;
    report.add(`${label}: data dir after /boot, MiB`, fmtMiB(await dirBytes(dir)));
    await shm(report, `${label}: database in /dev/shm after /boot`, node, src);
    let expected = src.rows;
    if (await snapshot(report, label, node, src, src.rows + 1)) expected++;
    await rss(report, `${label}: peak RSS during write + /snapshot`, node, src, empty.peakKiB);
    await backups(report, label, node, src, empty.peakKiB);
    expected = await count(node);
    await stopFor(report, label, node, "SIGTERM");
    node = await restart(
      report,
      `${label} restart`,
      dir,
      ports,
      false,
      src,
      expected,
      empty,
      empty.peakKiB,
    );
    if (node !== undefined) {
      await shm(report, `${label} restart: database in /dev/shm`, node, src);
    }
  } finally {
    await node?.stop("SIGTERM", STEP_MS);
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

async function onDisk(report: Report, work: string, src: Source): Promise<void> {
  const label = "on-disk";
  const dir = `${work}/node-disk`;
  await Deno.mkdir(dir);
  const ports = freePorts(2) as [number, number];
  const empty = await startNode(report, `${label}: empty start`, dir, ports, true);
  if (empty === undefined) return;
  let node: Node | undefined = empty.node;
  try {
    report.add(`${label}: empty node start to /readyz 200, ms`, fmtInt(empty.readyMs));
    report.add(`${label}: empty node peak RSS, MiB`, fmtKiB(empty.peakKiB));
    if (!(await bootNode(report, label, node, src, empty.peakKiB))) return;
    report.add(`${label}: data dir after /boot, MiB`, fmtMiB(await dirBytes(dir)));
    let expected = src.rows;
    for (const signal of ["SIGTERM", "SIGKILL"] as const) {
      const id = src.rows + 1000 + expected;
      const wrote = await step(report, `${label}: write before ${signal}`, 30_000, async () => {
        await insertRow(node!, id);
        return true;
      });
      if (wrote) expected++;
      await stopFor(report, label, node, signal);
      node = await restart(
        report,
        `${label} restart after ${signal}`,
        dir,
        ports,
        true,
        src,
        expected,
        empty,
        empty.peakKiB,
      );
      if (node === undefined) return;
    }
  } finally {
    await node?.stop("SIGTERM", STEP_MS);
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

function rssWarnings(report: Report, bytes: number): void {
  // Neither mode keeps the database in the process's memory (in-memory: a
  // file in /dev/shm; -on-disk: db.sqlite), so the peak RSS above the empty
  // node should not grow with the database: flag more than a quarter of it
  // (and more than 64 MiB, below which fixed costs dominate).
  for (const f of report.figures) {
    // Within a process: what the step added; a restarted process: all of it.
    const m = /\+([-\d.]+) MiB (in the step)/.exec(f.vs) ??
      /\+([-\d.]+) MiB (over the empty node)/.exec(f.vs);
    if (m === null || !/peak RSS/.test(f.name)) continue;
    const grew = Number(m[1]) * MIB;
    if (grew > 0.25 * bytes && grew > 64 * MIB) {
      report.note(
        `WARNING: RSS grows with the database: "${f.name}" ${f.value} MiB, ${fmtMiB(grew)} MiB ` +
          `${m[2]} for a ${fmtMiB(bytes)} MiB database (${ratio(grew / bytes)})`,
      );
    }
  }
}

/** Runs the benchmark and prints its figures. */
export async function run(): Promise<void> {
  if (!(SIZE_MIB >= 1)) {
    throw new Error(`RAFTLITE_BENCH_DB_MIB must be a number >= 1, got ${SIZE_MIB}`);
  }
  const report = new Report();
  const quiet = await waitForQuiet(30_000);
  if (quiet !== null) report.note(quiet);
  console.log(
    `snapshot: a ~${SIZE_MIB} MiB database (RAFTLITE_BENCH_DB_MIB) through /boot, /snapshot, ` +
      `/db/backup and restarts, one node, in-memory and -on-disk`,
  );
  const work = await Deno.makeTempDir({ prefix: "raftlite-bench-snapshot-" });
  let ok = false;
  try {
    const path = `${work}/source.db`;
    const built = await step(report, "build", STEP_MS, () => {
      const t0 = performance.now();
      const bytes = buildDatabase(path);
      return Promise.resolve({ bytes, ms: performance.now() - t0 });
    });
    if (built === undefined) return;
    const src: Source = { path, bytes: built.bytes, rows: ROWS };
    report.add("database: rows", fmtInt(ROWS));
    report.add("database: file size, MiB", fmtMiB(built.bytes));
    report.add(
      "database: build with node:sqlite, ms",
      fmtInt(built.ms),
      `${fmtInt(mbps(built.bytes, built.ms))} MB/s`,
    );
    await measureCeilings(report, work, path, built.bytes);
    const before = report.figures.length;
    await inMemory(report, work, src);
    await onDisk(report, work, src);
    await fetchBoot(report, work, src);
    ok = report.figures.slice(before).some((f) => /POST \/boot .*MB\/s$/.test(f.name));
    rssWarnings(report, built.bytes);
  } finally {
    for (const node of [...live]) await node.stop("SIGKILL").catch(() => {});
    await Deno.remove(work, { recursive: true }).catch(() => {});
  }
  const lines = alignTable([
    ["figure", "value", "vs ceilings (same run) and notes"],
    ...report.figures.map((f) => [f.name, f.value, f.vs]),
  ]);
  console.log("");
  for (const line of [...lines, ...report.notes]) console.log(`  ${line}`);
  if (MAIN_OVERRIDE !== undefined) {
    console.log(`  (BENCH_RAFTLITE_MAIN=${MAIN_OVERRIDE}: not recorded in bench/RESULTS.md)`);
  } else if (ok) {
    await recordResults(TITLE, [...lines, ...report.notes], [
      `${SIZE_MIB} MiB database (RAFTLITE_BENCH_DB_MIB), ${fmtInt(ROWS)} rows of ~925 bytes; ` +
      `times of starts from spawning \`deno run -A main.ts\`; MB = 10^6 bytes`,
      `peak RSS = VmHWM of the node process, reset (/proc/<pid>/clear_refs) after each ` +
      `reading: "in the step" = over the RSS at the reset; "over the empty node" = over the ` +
      `peak RSS of the same mode's node before /boot`,
    ]);
  } else {
    console.log("  (no /boot succeeded: not recorded in bench/RESULTS.md)");
  }
  if (!ok) throw new Error("no POST /boot succeeded, so nothing about the node was measured");
}

if (import.meta.main) await run();
