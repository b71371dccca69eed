/**
 * The V8 flags raftlite runs with, and a check that they are in effect.
 *
 * V8 sizes its heaps for a machine, not for a database server that should
 * fit a small VM: on a 24 GiB machine each isolate (raftlite has three: the
 * main thread, the SQLite write worker and the read worker) may grow a
 * 16 MiB x 2 young generation and lets the old generation grow to several
 * times its live size before collecting. Under a write load that put a
 * node at 200-250 MB RSS with about 60 MB of live objects. Two flags bring
 * it to about 150 MB for a few percent of throughput (bench/RESULTS.md):
 *
 * - `--max-semi-space-size=2`: a 2 MiB semi-space; request garbage dies
 *   young anyway, so scavenges stay cheap.
 * - `--max-old-space-size=1024`: besides capping the old generation per
 *   isolate, a smaller maximum makes V8 choose its conservative heap growth
 *   factor. 1 GiB leaves room for the largest request the limits admit
 *   (`-max-body-bytes`, 64 MiB by default, decoded and encoded a few times).
 *
 * V8 flags are process-wide and fixed at start, so they are passed on the
 * command line: `deno task start` / `deno task node`, `compile.sh` (baked
 * into the binary), the test harness and the benchmarks all use
 * {@link DENO_V8_FLAGS_ARG}; tests/v8_flags_test.ts keeps those in step.
 * A node started without them prints {@link v8FlagsNote}.
 *
 * @module
 */

import { getHeapStatistics } from "node:v8";

/** The V8 flags, comma-separated as `--v8-flags=` takes them. */
export const V8_FLAGS = "--max-semi-space-size=2,--max-old-space-size=1024";

/** The `deno run` / `deno compile` argument that applies {@link V8_FLAGS}. */
export const DENO_V8_FLAGS_ARG = `--v8-flags=${V8_FLAGS}`;

/** Heap limit (MiB) above which the flags are taken to be missing (1024 + young generation). */
const FLAGGED_HEAP_LIMIT_MIB = 1536;

/** This isolate's heap limit in MiB (V8's `heap_size_limit`). */
export function heapLimitMiB(): number {
  return getHeapStatistics().heap_size_limit / (1024 * 1024);
}

/**
 * A one-line note when this process runs without {@link V8_FLAGS} (its heap
 * limit is V8's default for the machine), else undefined.
 */
export function v8FlagsNote(limitMiB = heapLimitMiB()): string | undefined {
  if (limitMiB <= FLAGGED_HEAP_LIMIT_MIB) return undefined;
  return `note: started without raftlite's V8 flags (heap limit ${Math.round(limitMiB)} MiB), ` +
    `so it will use more memory; run it as \`deno task node ...\` or with ` +
    `\`deno run -A ${DENO_V8_FLAGS_ARG} main.ts ...\``;
}
