/**
 * Installs a program the benchmarks need from Debian's archive when it is
 * missing: `apt-get update && apt-get install -y <package>`, only as root
 * and only where apt-get exists, each step bounded in time. Idempotent: a
 * program already on PATH is used as is, and each package is attempted at
 * most once per process.
 *
 * @module
 */

import { findOnPath, runCommand } from "./proc.ts";

/** Bound on `apt-get update`. */
const UPDATE_TIMEOUT_MS = 180_000;
/** Bound on `apt-get install`. */
const INSTALL_TIMEOUT_MS = 300_000;

/** Where a program is, or why it is not available. */
export type Availability = { path: string } | { unavailable: string };

const attempts = new Map<string, Promise<Availability>>();

/**
 * Returns the path of `program`, installing Debian package `pkg` with
 * apt-get when the program is not on PATH. Never throws: when it cannot be
 * had (not root, no apt-get, apt failed or timed out) it says why.
 */
export function ensureProgram(program: string, pkg: string): Promise<Availability> {
  let attempt = attempts.get(program);
  if (attempt === undefined) {
    attempt = findOrInstall(program, pkg).catch((e) => ({
      unavailable: `installing ${pkg} failed: ${e instanceof Error ? e.message : String(e)}`,
    }));
    attempts.set(program, attempt);
  }
  return attempt;
}

async function findOrInstall(program: string, pkg: string): Promise<Availability> {
  const found = await findOnPath(program);
  if (found !== null) return { path: found };
  const how = `\`apt-get update && apt-get install -y ${pkg}\``;
  if (Deno.build.os !== "linux" || await findOnPath("apt-get") === null) {
    return { unavailable: `${program} is not on PATH and apt-get is not available here (${how})` };
  }
  if (Deno.uid() !== 0) {
    return { unavailable: `${program} is not on PATH and this is not root: run sudo ${how}` };
  }
  console.log(`bench: ${program} not found; installing it with apt-get (Debian package ${pkg})`);
  const env = { DEBIAN_FRONTEND: "noninteractive" };
  const steps: [string[], number][] = [
    [["update"], UPDATE_TIMEOUT_MS],
    [["install", "-y", "--no-install-recommends", pkg], INSTALL_TIMEOUT_MS],
  ];
  for (const [args, timeoutMs] of steps) {
    const out = await runCommand("apt-get", args, { timeoutMs, env });
    if (out.code !== 0 || out.timedOut) {
      const why = out.timedOut ? `timed out after ${timeoutMs / 1000} s` : `exit code ${out.code}`;
      const tail = out.stderr.trim().split("\n").slice(-3).join(" | ");
      return { unavailable: `apt-get ${args.join(" ")} failed (${why}): ${tail}` };
    }
  }
  const installed = await findOnPath(program);
  if (installed === null) {
    return { unavailable: `apt-get installed ${pkg} but ${program} is still not on PATH` };
  }
  return { path: installed };
}
