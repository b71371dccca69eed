/** Simulator seeds 1..100: production driver and core under faults, zero violations. */

import { assertSeedsClean } from "./seeds.ts";

Deno.test("simulator: seeds 1..100 run clean", () => {
  assertSeedsClean(1, 100);
});
