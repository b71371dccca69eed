/**
 * Seeds that failed on this version of the simulated world, kept as
 * regression tests of the fix named beside each. A change to the world
 * reshuffles what every seed does, so when lib/sim changes, replace these
 * with seeds that fail without the fix on the new version (the core fixes
 * also have focused tests in tests/raft).
 */

import assert from "node:assert/strict";
import { runSeed } from "../../lib/sim/run.ts";

const REGRESSIONS: Record<number, string> = {
  778: "a hard state durable before its entries let a crash commit stale entries",
  6620: "a hard state durable before its entries let a crash commit stale entries",
  922: "a hard state durable before its entries let a crash commit stale entries",
};

for (const [seed, why] of Object.entries(REGRESSIONS)) {
  Deno.test(`simulator regression seed ${seed}: ${why}`, () => {
    const result = runSeed(Number(seed));
    assert.ok(result.ok, `seed ${seed}: ${result.violation}`);
  });
}
