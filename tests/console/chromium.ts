/**
 * Headless Chromium for the console's browser tests: Debian's `chromium`
 * package driven by npm `playwright-core` (which brings no browser of its
 * own). When /usr/bin/chromium is missing the package is installed with
 * apt-get, bounded in time and waiting for a busy dpkg lock; when that is
 * impossible (not root, no apt, no network) the caller skips with the
 * reason this module returns.
 *
 * Playwright 1.65 works under Deno 2.9.6 as it is: chromium.launch spawns
 * the browser through node:child_process and talks CDP over its pipes.
 *
 * @module
 */

import { type Browser, chromium } from "playwright-core";
import { runBounded } from "../util/run_bounded.ts";

/** Where Debian's package puts the browser. */
export const CHROMIUM_PATH = "/usr/bin/chromium";

const APT_UPDATE_TIMEOUT_MS = 300_000;
const APT_INSTALL_TIMEOUT_MS = 600_000;

/**
 * Makes sure Chromium is installed. Resolves undefined when it is, or the
 * reason it cannot be (the tests then skip and print it).
 */
export async function ensureChromium(): Promise<string | undefined> {
  if (await isFile(CHROMIUM_PATH)) return undefined;
  if (Deno.build.os !== "linux") return `${CHROMIUM_PATH} missing and this is not Linux`;
  if (Deno.uid() !== 0) {
    return `${CHROMIUM_PATH} missing and not root: run \`apt-get install chromium\` as root`;
  }
  if (!(await isFile("/usr/bin/apt-get"))) return `${CHROMIUM_PATH} missing and no apt-get`;
  console.log(`installing Debian chromium (apt-get, at most ${APT_INSTALL_TIMEOUT_MS / 1000} s)…`);
  const env = { DEBIAN_FRONTEND: "noninteractive" };
  const lock = ["-o", "DPkg::Lock::Timeout=120"];
  const update = await runBounded("apt-get", [...lock, "update", "-qq"], {
    timeoutMs: APT_UPDATE_TIMEOUT_MS,
    env,
  });
  const install = await runBounded("apt-get", [...lock, "install", "-y", "-qq", "chromium"], {
    timeoutMs: APT_INSTALL_TIMEOUT_MS,
    env,
  });
  if (await isFile(CHROMIUM_PATH)) return undefined;
  const why = install.timedOut ? "timed out" : `exit ${install.code}`;
  const tail = (install.stderr || update.stderr).trim().split("\n").slice(-3).join(" | ");
  return `apt-get install chromium failed (${why}): ${tail}`;
}

/** Launches headless Chromium with the flags a root container needs. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    args: ["--headless", "--no-sandbox", "--disable-gpu"],
    timeout: 60_000,
  });
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isFile;
  } catch {
    return false;
  }
}
