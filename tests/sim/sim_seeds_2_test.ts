/** Simulator seeds 101..200: production driver and core under faults, zero violations. */

import { assertSeedsClean } from "./seeds.ts";

Deno.test("simulator: seeds 101..200 run clean", () => {
  assertSeedsClean(101, 200);
});
