/**
 * Child process of file_snapshot_test.ts: builds a ~200 MB database,
 * snapshots it to a file and restores that into a second database, sampling
 * its own memory throughout. It runs alone in its process because RSS is
 * process-wide: `deno test --parallel` runs other test files in the same
 * process, whose allocations would otherwise be counted here.
 *
 * Usage: deno run -A big_snapshot_child.ts <dir>; prints one JSON line.
 *
 * @module
 */

import { DbClient } from "../../lib/db/client.ts";
import type { QueryResult } from "../../lib/db/result.ts";
import { cmd } from "./helpers.ts";

const ROWS = 200_000;
const SAMPLE_MS = 5;

async function main(dir: string): Promise<void> {
  const a = await DbClient.open();
  const b = await DbClient.open();
  try {
    await a.execute(cmd([
      "CREATE TABLE t (id INTEGER PRIMARY KEY, b BLOB)",
      "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < " + ROWS + ") " +
      "INSERT INTO t SELECT x, randomblob(1000) FROM c",
    ]));
    const mem = () => {
      const m = Deno.memoryUsage();
      return { heap: m.heapUsed + m.external, rss: m.rss };
    };
    const before = mem();
    let peak = before;
    const timer = setInterval(() => {
      const m = mem();
      peak = { heap: Math.max(peak.heap, m.heap), rss: Math.max(peak.rss, m.rss) };
    }, SAMPLE_MS);
    const t0 = performance.now();
    const { sizeBytes } = await a.snapshotToFile(`${dir}/big.sqlite`);
    const t1 = performance.now();
    await b.restoreFromFile(`${dir}/big.sqlite`);
    const t2 = performance.now();
    clearInterval(timer);
    const rows = await b.query(cmd(["SELECT count(*), sum(length(b)) FROM t"]));
    console.log(JSON.stringify({
      sizeBytes,
      snapshotMs: t1 - t0,
      restoreMs: t2 - t1,
      heapGrowthBytes: peak.heap - before.heap,
      rssGrowthBytes: peak.rss - before.rss,
      restored: (rows[0] as QueryResult).values,
    }));
  } finally {
    await a.close();
    await b.close();
  }
}

if (import.meta.main) await main(Deno.args[0]!);
