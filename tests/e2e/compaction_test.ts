/**
 * Log compaction keeps the data directory bounded (rqlite-api.md §12,
 * ARCHITECTURE.md §4), seen from outside only: HTTP and the total size of
 * every file under the data directory, so it holds for any snapshot layout.
 *
 * A real node (`main.ts` as a child process) with `-raft-snap 1000` takes
 * 300,000 single-row INSERTs, one per `POST /db/execute` and so one Raft
 * entry each, from {@link CONCURRENCY} keep-alive connections. About once a
 * second the data directory's size and the SQLite database's size (page_count
 * x page_size, through the API) are sampled. Every sample must stay under
 * {@link bound}, and the part of the size that does not scale with the
 * database must not grow between the first 100,000 writes and the rest.
 * Then all 300,000 rows must be there, also after a crash (SIGKILL) and
 * restart, which restores the newest snapshot and replays the log tail.
 */

import assert from "node:assert/strict";
import { respawnNode, spawnNode } from "../util/node.ts";
import { mustExecute, queryRows, sleep, startTracked, withNodes } from "./helpers.ts";

const ROWS = 300_000;
/** Where the "does not grow with the number of writes" comparison splits the run. */
const EARLY = 100_000;
const SNAP = 1_000;
/** Requests in flight at once, one per keep-alive connection. */
const CONCURRENCY = 64;
/**
 * The write phase must finish within this, else the test fails with the
 * rate it reached. Alone on the 2-core machine it takes ~60 s (~5,000
 * writes/s); the margin is for a busy machine (`deno test --parallel` runs
 * another test file beside it: ~2,200 writes/s were seen, ~140 s).
 */
const WRITE_DEADLINE_MS = 300_000;
const SAMPLE_MS = 1_000;
/**
 * Each entry carries PAD_BYTES that are not stored (`substr(?, 1, 0)` is
 * ''), so the log grows ~5x faster than the database: a log that is not
 * compacted cannot hide under the allowance for snapshots (which scales
 * with the database), and the growth check below sees it.
 */
const PAD_BYTES = 128;
const PAD = "p".repeat(PAD_BYTES);
const INSERT = "INSERT INTO t(id, v) VALUES(?, ? || substr(?, 1, 0))";
const MIB = 1 << 20;

// ------------------------------------------------------------------ the bound
//
// Log: after a snapshot at applied index A the log keeps the trailing
// 1.25 x SNAP entries before A (rqlite's trailing logs); entries keep being
// appended until the next snapshot is due (SNAP more), plus those applied
// while that snapshot is checked for (`-raft-snap-int` 1s: at most 2 s of
// writes at a generous 10,000 entries/s, the node does ~5,000) and taken,
// plus the CONCURRENCY entries in flight. Each entry here is one INSERT of
// ~75 bytes of SQL and parameters plus PAD_BYTES (128); 512 bytes per entry
// covers that, its command encoding and any record framing (raftlite's
// segment log: ~33 bytes). So the live log is at most
//   (1.25 + 1) x 1,000 + 20,000 + 64 = 22,314 entries x 512 B = 10.9 MiB.
// A log store that can only drop whole files may hold part of one more
// file: that granularity is part of the design and must stay small next to
// the above, so it gets no separate allowance (a store that keeps e.g.
// 64 MiB files would hold the whole run's log, ~65 MB, and fail here).
const LOG_ENTRY_BYTES = 512;
const LOG_ENTRIES = Math.ceil(2.25 * SNAP) + 2 * 10_000 + CONCURRENCY;
const LOG_BOUND = LOG_ENTRIES * LOG_ENTRY_BYTES;
// Snapshots: the newest one and the previous one (kept until the new one is
// durable), one being written (temp file), and for an incremental design the
// WAL frames staged for the next one, none larger than the database itself:
// at most 4 x the database size.
const SNAPSHOT_COPIES = 4;
// Everything else (hard state, log meta, fingerprints, the node's stderr is
// piped, not in the dir) is a few KiB; 2 MiB of slack also absorbs the
// database growing between its sample and the directory walk.
const SLACK = 2 * MIB;

/** The largest data directory size allowed while the database has `dbBytes`. */
function bound(dbBytes: number): number {
  return LOG_BOUND + SNAPSHOT_COPIES * dbBytes + SLACK;
}

// ------------------------------------------------------------------ measuring

const mib = (n: number) => `${(n / MIB).toFixed(1)} MiB`;

/** Total bytes of every file under `dir` (recursive); files vanishing meanwhile count 0. */
async function dirBytes(dir: string): Promise<number> {
  let total = 0;
  let entries: Deno.DirEntry[] = [];
  try {
    entries = await Array.fromAsync(Deno.readDir(dir));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return 0;
    throw e;
  }
  for (const e of entries) {
    const path = `${dir}/${e.name}`;
    if (e.isDirectory) {
      total += await dirBytes(path);
      continue;
    }
    try {
      total += (await Deno.lstat(path)).size;
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
  }
  return total;
}

/** The `n` largest files under `dir`, for failure messages. */
async function largestFiles(dir: string, n = 8): Promise<string> {
  const files: [string, number][] = [];
  const walk = async (d: string): Promise<void> => {
    for await (const e of Deno.readDir(d)) {
      const path = `${d}/${e.name}`;
      if (e.isDirectory) await walk(path);
      else files.push([path.slice(dir.length + 1), (await Deno.lstat(path)).size]);
    }
  };
  await walk(dir).catch(() => {});
  files.sort((a, b) => b[1] - a[1]);
  return `${files.length} files; largest: ` +
    files.slice(0, n).map(([f, size]) => `${f} ${mib(size)}`).join(", ");
}

async function dbBytes(url: string): Promise<number> {
  const rows = await queryRows(
    url,
    "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()",
    "none",
  );
  return Number(rows[0]?.[0]);
}

interface Sample {
  /** Acknowledged writes when the sample was taken. */
  written: number;
  dirBytes: number;
  dbBytes: number;
  atMs: number;
}

/** One INSERT per request from CONCURRENCY workers; samples sizes meanwhile. */
async function writeAll(url: string, dataDir: string): Promise<{ samples: Sample[]; ms: number }> {
  const samples: Sample[] = [];
  let next = 0;
  let written = 0;
  let failure: Error | undefined;
  const t0 = performance.now();
  const deadline = t0 + WRITE_DEADLINE_MS;
  const worker = async () => {
    while (next < ROWS && failure === undefined && performance.now() < deadline) {
      const id = ++next;
      const res = await fetch(`${url}/db/execute`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify([[INSERT, id, `row ${id}`, PAD]]),
        signal: AbortSignal.timeout(20_000),
      });
      const text = await res.text();
      if (res.status !== 200 || !text.includes('"rows_affected":1')) {
        failure ??= new Error(`insert ${id}: status ${res.status}: ${text.slice(0, 300)}`);
        return;
      }
      written++;
    }
  };
  let writing = true;
  const sampler = (async () => {
    while (writing) {
      const db = await dbBytes(url);
      const bytes = await dirBytes(dataDir);
      samples.push({ written, dirBytes: bytes, dbBytes: db, atMs: performance.now() - t0 });
      for (let waited = 0; writing && waited < SAMPLE_MS; waited += 50) await sleep(50);
    }
  })();
  try {
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  } finally {
    writing = false;
    await sampler;
  }
  const ms = performance.now() - t0;
  if (failure !== undefined) throw failure;
  if (written < ROWS) {
    throw new Error(
      `only ${written} of ${ROWS} writes within ${WRITE_DEADLINE_MS / 1000} s ` +
        `(${Math.round(written / (ms / 1000))} writes/s with ${CONCURRENCY} in flight)`,
    );
  }
  samples.push({
    written,
    dirBytes: await dirBytes(dataDir),
    dbBytes: await dbBytes(url),
    atMs: ms,
  });
  return { samples, ms };
}

Deno.test("compaction: 300,000 single-entry writes keep the data directory bounded", () =>
  withNodes("compaction", async (dir, track) => {
    const flags = ["-raft-snap", String(SNAP), "-raft-snap-int", "1s"];
    const first = await startTracked(track, () => spawnNode(dir, flags));
    await mustExecute(first.url, ["CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)"]);
    const { samples, ms } = await writeAll(first.url, dir);

    const worst = samples.reduce((a, s) =>
      s.dirBytes - bound(s.dbBytes) > a.dirBytes - bound(a.dbBytes) ? s : a
    );
    const peak = samples.reduce((a, s) => (s.dirBytes > a.dirBytes ? s : a));
    const last = samples.at(-1)!;
    // The part of the size not explained by the database: it must not grow with the writes.
    const rest = (s: Sample) => s.dirBytes - SNAPSHOT_COPIES * s.dbBytes;
    const early = samples.filter((s) => s.written <= EARLY);
    const late = samples.filter((s) => s.written > EARLY);
    const earlyRest = Math.max(...early.map(rest));
    const lateRest = Math.max(...late.map(rest));
    // Write rate in the first 100,000 and in the last 100,000 writes (snapshots get bigger).
    const at = (n: number) => samples.find((s) => s.written >= n) ?? last;
    const rate = (a: Sample, b: Sample) =>
      Math.round((b.written - a.written) / ((b.atMs - a.atMs) / 1000));
    console.log(
      `compaction: ${ROWS} writes in ${(ms / 1000).toFixed(1)} s ` +
        `(${Math.round(ROWS / (ms / 1000))}/s, ${CONCURRENCY} in flight; ${
          rate(samples[0]!, at(EARLY))
        }/s up to ${EARLY}, ${
          rate(at(ROWS - EARLY), last)
        }/s in the last ${EARLY}), ${samples.length} ` +
        `samples; peak dir ${mib(peak.dirBytes)} at ${peak.written} writes (db ${
          mib(peak.dbBytes)
        }); final dir ${mib(last.dirBytes)}, db ${mib(last.dbBytes)}; log bound ${
          mib(LOG_BOUND)
        }; size minus ${SNAPSHOT_COPIES} x db: max ${mib(earlyRest)} up to ${EARLY} writes, ` +
        `${mib(lateRest)} after`,
    );
    const files = await largestFiles(dir);
    assert.ok(
      worst.dirBytes <= bound(worst.dbBytes),
      `data directory ${mib(worst.dirBytes)} after ${worst.written} writes exceeds the bound ` +
        `${mib(bound(worst.dbBytes))} (log ${mib(LOG_BOUND)} + ${SNAPSHOT_COPIES} x db ${
          mib(worst.dbBytes)
        } + ${mib(SLACK)}); now ${files}`,
    );
    assert.ok(early.length > 0 && late.length > 0, "samples on both sides of the split");
    assert.ok(
      lateRest <= earlyRest + SLACK,
      `the size not explained by the database grew with the writes: ${mib(earlyRest)} up to ` +
        `${EARLY} writes, ${mib(lateRest)} after (slack ${mib(SLACK)}); now ${files}`,
    );

    const count = async (url: string) =>
      Number((await queryRows(url, "SELECT count(*) FROM t"))[0]?.[0]);
    assert.equal(await count(first.url), ROWS);
    await first.kill("SIGKILL");
    const second = await startTracked(track, () => respawnNode(first, flags), 30_000);
    assert.equal(await count(second.url), ROWS, "rows after a crash and restart");
    await second.kill("SIGKILL");
  }));
