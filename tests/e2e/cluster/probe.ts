/**
 * Finds out whether this build of raftlite can form a cluster by starting
 * `main.ts -join 127.0.0.1:1 <tmp>`: while clustering is being built it
 * exits at once with `fatal: flag -join is not supported yet`; a build with
 * clustering keeps running (trying to join) and is killed after 2 s.
 * RAFTLITE_CLUSTER_TESTS=1 (always available) or =0 (never) override it.
 * Nothing runs at import (the bench imports this too).
 *
 * @module
 */

import { freePort } from "../../util/node.ts";

const MAIN = new URL("../../../main.ts", import.meta.url).pathname;
/** A node that accepts -join keeps running (trying to join) at least this long. */
const PROBE_MS = 2_000;

/** Outcome of the probe. */
export interface Availability {
  available: boolean;
  /** Why (shown in the SKIP line). */
  reason: string;
}

/** Probes main.ts (about 0.2 s without clustering, 2 s with). */
export async function probeClustering(): Promise<Availability> {
  const forced = Deno.env.get("RAFTLITE_CLUSTER_TESTS");
  if (forced === "1") return { available: true, reason: "RAFTLITE_CLUSTER_TESTS=1" };
  if (forced === "0") return { available: false, reason: "RAFTLITE_CLUSTER_TESTS=0" };
  const dir = await Deno.makeTempDir({ prefix: "raftlite-join-probe-" });
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      MAIN,
      "-http-addr",
      `127.0.0.1:${freePort()}`,
      "-raft-addr",
      `127.0.0.1:${freePort()}`,
      "-join",
      "127.0.0.1:1",
      dir,
    ],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const stillRunning = new Promise<"running">((
    r,
  ) => (timer = setTimeout(() => r("running"), PROBE_MS)));
  const stderrText = new Response(child.stderr).text();
  try {
    const first = await Promise.race([child.status, stillRunning]);
    if (first === "running") {
      return { available: true, reason: "main.ts accepts -join" };
    }
    const err = await stderrText;
    if (/join.*not supported yet/.test(err)) {
      return {
        available: false,
        reason: `clustering not available yet (main.ts -join says: ${err.trim().split("\n")[0]})`,
      };
    }
    return {
      available: true,
      reason: `main.ts accepts -join (it exited: ${err.trim().slice(0, 200)})`,
    };
  } finally {
    clearTimeout(timer);
    try {
      child.kill("SIGKILL");
    } catch {
      // already exited
    }
    await child.status;
    await stderrText.catch(() => "");
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}
