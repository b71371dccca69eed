/**
 * Whether this build of raftlite can form a cluster (probe.ts), found out
 * once at module load: the cluster tests are registered with `ignore` and
 * print one SKIP line instead of failing while clustering is being built.
 * Override with RAFTLITE_CLUSTER_TESTS=1 (always run) or =0 (always skip).
 *
 * @module
 */

import { type Availability, probeClustering } from "./probe.ts";

/** Probed once per process (module cache). */
export const clustering: Availability = await probeClustering();

/** Prints a SKIP line for `what` when clustering is unavailable; returns `ignore` for Deno.test. */
export function skipUnlessClustering(what: string): boolean {
  if (!clustering.available) console.log(`SKIP ${what}: ${clustering.reason}`);
  return !clustering.available;
}
