/**
 * Benchmark runner: `deno task bench [name-filter...]`.
 *
 * Imports every `bench/*_bench.ts` module in file-name order and awaits its
 * exported `run()`, one at a time, because benchmarks on a 2-core machine
 * disturb each other when run concurrently. Convention: see bench/README.md.
 *
 * @module
 */

/** The shape every `*_bench.ts` module must export. */
export interface BenchModule {
  /** Runs the benchmark to completion and prints its figures; may be sync or async. */
  run(): void | Promise<void>;
}

/** Suffix that marks a benchmark module. */
export const BENCH_SUFFIX = "_bench.ts";

/** Picks the benchmark files from `names`, sorted, keeping those matching any filter (all if none). */
export function selectBenchFiles(
  names: readonly string[],
  filters: readonly string[],
): string[] {
  return names
    .filter((name) => name.endsWith(BENCH_SUFFIX))
    .filter((name) => filters.length === 0 || filters.some((f) => name.includes(f)))
    .sort();
}

function isBenchModule(mod: unknown): mod is BenchModule {
  return typeof mod === "object" && mod !== null &&
    typeof (mod as { run?: unknown }).run === "function";
}

async function main(filters: readonly string[]): Promise<number> {
  const dir = new URL(".", import.meta.url);
  const names: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    if (entry.isFile) names.push(entry.name);
  }
  const files = selectBenchFiles(names, filters);
  if (files.length === 0) {
    const which = filters.length === 0 ? "" : ` matching ${filters.join(", ")}`;
    console.log(`bench: no benchmarks found (bench/*${BENCH_SUFFIX}${which}); nothing to run`);
    return 0;
  }
  let failed = 0;
  for (const file of files) {
    console.log(`bench: ${file}`);
    try {
      const mod: unknown = await import(new URL(file, import.meta.url).href);
      if (!isBenchModule(mod)) {
        throw new Error(`${file} does not export a function named run`);
      }
      await mod.run();
    } catch (err) {
      // Keep going: one broken benchmark should not hide the others' figures.
      failed++;
      console.error(`bench: ${file} failed:`, err);
    }
  }
  console.log(`bench: ${files.length - failed} ok, ${failed} failed`);
  return failed === 0 ? 0 : 1;
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
