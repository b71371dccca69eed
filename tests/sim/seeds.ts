/**
 * Shared helper of the simulator seed tests: runs a range of seeds and
 * fails with every violation and its replay command.
 */

import assert from "node:assert/strict";
import { runSeed } from "../../lib/sim/run.ts";

/** Runs seeds `from..to` (inclusive); asserts none fails and every cluster size was drawn. */
export function assertSeedsClean(from: number, to: number): void {
  const failures: string[] = [];
  const sizes = new Set<string>();
  let committed = 0;
  for (let seed = from; seed <= to; seed++) {
    const result = runSeed(seed);
    sizes.add(/nodes=(\d+)/.exec(result.config)?.[1] ?? "?");
    committed += result.committed;
    if (!result.ok) {
      failures.push(
        `seed ${seed}: ${result.violation}\n  config: ${result.config}\n` +
          `  replay: deno task sim --seed ${seed} --trace`,
      );
    }
  }
  assert.deepEqual(failures, [], `${failures.length} seeds failed:\n${failures.join("\n")}`);
  assert.deepEqual([...sizes].sort(), ["1", "3", "5"], "the swarm drew every cluster size");
  assert.ok(committed > (to - from + 1) * 20, `only ${committed} entries committed in all`);
}
