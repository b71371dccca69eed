/** Seeds that once failed, each kept as a regression test of the fix named beside it. */

import assert from "node:assert/strict";
import { runSeed } from "../../lib/sim/run.ts";

const REGRESSIONS: Record<number, string> = {
  5: "advance() after a snapshot was installed mid-Ready moved 'applied' back",
  20: "a lost append of a full replicate window stalled the follower forever",
  336: "a leader that appended its own removal and lost leadership deadlocked elections",
  778: "a hard state durable before its entries let a crash commit stale entries",
  6620: "a hard state durable before its entries let a crash commit stale entries",
  8565: "a stale snapshot message replaced the data of the one the core had accepted",
};

for (const [seed, why] of Object.entries(REGRESSIONS)) {
  Deno.test(`simulator regression seed ${seed}: ${why}`, () => {
    const result = runSeed(Number(seed));
    assert.ok(result.ok, `seed ${seed}: ${result.violation}`);
  });
}
