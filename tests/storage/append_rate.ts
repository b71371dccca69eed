/**
 * Append throughput of SegmentLog (a measurement script, not a test):
 *
 *   deno run -A tests/storage/append_rate.ts [seconds-per-case]
 *
 * One append in flight at a time (as the driver does), 100-byte entries,
 * batches of 1, 16 and 256 entries; each append is one write + one
 * fdatasync. The ceiling printed first is a bare `await write` +
 * `await syncData` of the same bytes on one file.
 */

import { SegmentLog } from "../../lib/storage/segment_log.ts";
import type { Entry } from "../../lib/raft/types.ts";

const seconds = Number(Deno.args[0] ?? 2);
const ENTRY_BYTES = 100;

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? 0;
}

async function ceiling(dir: string, bytes: number): Promise<number> {
  const f = await Deno.open(`${dir}/raw`, { write: true, create: true, truncate: true });
  const buf = new Uint8Array(bytes);
  let n = 0;
  const end = performance.now() + seconds * 1000;
  while (performance.now() < end) {
    await f.write(buf);
    await f.syncData();
    n++;
  }
  f.close();
  return n / seconds;
}

async function run(dir: string, batch: number) {
  const log = await SegmentLog.open(`${dir}/b${batch}`);
  const data = new Uint8Array(ENTRY_BYTES).fill(7);
  let index = 1;
  const lat: number[] = [];
  const start = performance.now();
  const end = start + seconds * 1000;
  while (performance.now() < end) {
    const entries: Entry[] = [];
    for (let i = 0; i < batch; i++) entries.push({ index: index++, term: 1, kind: "normal", data });
    const t = performance.now();
    await new Promise<void>((resolve, reject) =>
      log.append(entries, (err) => (err ? reject(err) : resolve()))
    );
    lat.push(performance.now() - t);
  }
  const elapsed = (performance.now() - start) / 1000;
  const stats = { ...log.stats };
  await log.close();
  lat.sort((a, b) => a - b);
  return {
    batch,
    appendsPerSec: Math.round(lat.length / elapsed),
    entriesPerSec: Math.round((lat.length * batch) / elapsed),
    p50Ms: percentile(lat, 0.5).toFixed(3),
    p99Ms: percentile(lat, 0.99).toFixed(3),
    writesPerAppend: (stats.writeCalls / stats.appends).toFixed(2),
    syncsPerAppend: (stats.dataSyncs / stats.appends).toFixed(2),
  };
}

const dir = await Deno.makeTempDir({ prefix: "raftlite-append-rate-" });
try {
  console.log(
    `ceiling: await write(${133} B) + await syncData(): ${Math.round(await ceiling(dir, 133))} /s`,
  );
  const rows = [];
  for (const batch of [1, 16, 256]) rows.push(await run(dir, batch));
  console.table(rows);
} finally {
  await Deno.remove(dir, { recursive: true });
}
