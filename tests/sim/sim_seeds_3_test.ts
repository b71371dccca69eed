/** Simulator seeds 201..300: production driver and core under faults, zero violations. */

import { assertSeedsClean } from "./seeds.ts";

Deno.test("simulator: seeds 201..300 run clean", () => {
  assertSeedsClean(201, 300);
});
