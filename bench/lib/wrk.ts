/**
 * Runs the wrk HTTP load generator (installing it from Debian when missing
 * and running as root) with one of the Lua scripts in bench/lua/, and parses
 * the `WRK_JSON {...}` line their shared done() prints (bench/lua/report.lua).
 *
 * A run with any failed request fails loudly: socket errors, timeouts, a
 * status outside 2xx, or a 2xx body that reports an error or lacks the
 * script's expected substring. A benchmark of failing requests would
 * otherwise look fast.
 *
 * @module
 */

import { ensureProgram } from "./apt.ts";
import { runCommand } from "./proc.ts";

/** Options for one wrk run. */
export interface WrkOptions {
  /** Base URL, e.g. `http://127.0.0.1:4001` (the scripts set the path). */
  url: string;
  /** Script file name in bench/lua/ (e.g. `insert.lua`), or an absolute path. */
  script: string;
  /** Open connections (= concurrent clients; wrk keeps one request in flight on each). */
  connections: number;
  /** wrk threads; defaults to 1 (client and server share the machine's cores). */
  threads?: number;
  /** Test length in seconds. */
  durationSec: number;
  /** Arguments passed to the script's init(args). */
  scriptArgs?: readonly string[];
  /** wrk's per-request timeout in seconds (requests slower than this are errors); default 10. */
  requestTimeoutSec?: number;
}

/** Latency figures in milliseconds. */
export interface Latency {
  min: number;
  mean: number;
  stdev: number;
  max: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
}

/** Parsed result of one wrk run. */
export interface WrkResult {
  /** Completed requests (busy answers included). */
  requests: number;
  /** Measured duration in seconds. */
  durationSec: number;
  /** Completed requests per second. */
  rps: number;
  /** Latency distribution (ms). */
  latencyMs: Latency;
  /** wrk's own error counters (status = responses >= 400). */
  errors: { connect: number; read: number; write: number; status: number; timeout: number };
  /** Responses with a status outside 200..299 (counted by the Lua script). */
  badStatus: number;
  /** 2xx responses whose body had an error or lacked the expected text. */
  badBody: number;
  /**
   * "Busy, try again" answers (the script's `busy_status` / `busy_body`, see
   * bench/lua/report.lua): neither done nor failed.
   */
  busy: number;
  /** First bad response seen: `<status> <start of body>`. */
  firstBad: string | null;
}

/** Thrown when wrk ran but some requests failed. */
export class WrkRequestErrors extends Error {
  constructor(message: string, readonly result: WrkResult) {
    super(message);
    this.name = "WrkRequestErrors";
  }
}

const LUA_DIR = new URL("../lua/", import.meta.url);

/**
 * Returns the path of wrk, installing it with apt-get (Debian package wrk)
 * when it is missing and this process runs as root; otherwise throws saying
 * how to install it.
 */
export async function ensureWrk(): Promise<string> {
  const wrk = await ensureProgram("wrk", "wrk");
  if ("unavailable" in wrk) throw new Error(`wrk is needed: ${wrk.unavailable}`);
  return wrk.path;
}

/** Finds and parses the `WRK_JSON` line in wrk's stdout. */
export function parseWrkOutput(stdout: string): WrkResult {
  const line = stdout.split("\n").find((l) => l.startsWith("WRK_JSON "));
  if (line === undefined) {
    throw new Error(`wrk printed no WRK_JSON line (did the script's done() run?):\n${stdout}`);
  }
  const j = JSON.parse(line.slice("WRK_JSON ".length));
  const us = j.latency_us;
  const ms = (x: number) => x / 1000;
  const durationSec = j.duration_us / 1e6;
  return {
    requests: j.requests,
    durationSec,
    rps: durationSec > 0 ? j.requests / durationSec : 0,
    latencyMs: {
      min: ms(us.min),
      mean: ms(us.mean),
      stdev: ms(us.stdev),
      max: ms(us.max),
      p50: ms(us.p50),
      p90: ms(us.p90),
      p99: ms(us.p99),
      p999: ms(us.p999),
    },
    errors: j.errors,
    badStatus: j.bad_status,
    badBody: j.bad_body,
    busy: j.busy ?? 0,
    firstBad: j.first_bad,
  };
}

/** Describes every failed request in `r`, or returns null if there were none. */
export function describeFailures(r: WrkResult): string | null {
  const e = r.errors;
  const parts: string[] = [];
  if (e.connect + e.read + e.write > 0) {
    parts.push(`socket errors: connect ${e.connect}, read ${e.read}, write ${e.write}`);
  }
  if (e.timeout > 0) parts.push(`${e.timeout} timeouts`);
  if (r.badStatus > 0) parts.push(`${r.badStatus} non-2xx responses`);
  if (r.badBody > 0) parts.push(`${r.badBody} 2xx responses with an error or unexpected body`);
  if (r.requests === 0) parts.push("no request completed");
  if (parts.length === 0) return null;
  return parts.join("; ") + (r.firstBad === null ? "" : `; first bad response: ${r.firstBad}`);
}

/** Builds wrk's argument list for `opts`. */
export function wrkArgs(opts: WrkOptions): string[] {
  const script = opts.script.startsWith("/")
    ? opts.script
    : decodeURIComponent(new URL(opts.script, LUA_DIR).pathname);
  const args = [
    `-t${opts.threads ?? 1}`,
    `-c${opts.connections}`,
    `-d${opts.durationSec}s`,
    `--timeout`,
    `${opts.requestTimeoutSec ?? 10}s`,
    "-s",
    script,
    opts.url,
  ];
  if (opts.scriptArgs !== undefined && opts.scriptArgs.length > 0) {
    args.push("--", ...opts.scriptArgs);
  }
  return args;
}

/**
 * Runs wrk once and returns its figures; throws {@link WrkRequestErrors} if
 * any request failed, and a plain Error if wrk itself failed or overran its
 * deadline (duration + 20 s), after which it is killed.
 */
export async function runWrk(opts: WrkOptions): Promise<WrkResult> {
  const wrk = await ensureWrk();
  const threads = opts.threads ?? 1;
  if (threads > opts.connections) {
    throw new Error(`wrk needs connections >= threads (got -c${opts.connections} -t${threads})`);
  }
  const args = wrkArgs(opts);
  const out = await runCommand(wrk, args, { timeoutMs: (opts.durationSec + 20) * 1000 });
  if (out.timedOut || out.code !== 0) {
    throw new Error(
      `wrk ${args.join(" ")} ${
        out.timedOut ? "overran its deadline and was killed" : `exited with code ${out.code}`
      }\nstdout:\n${out.stdout}\nstderr:\n${out.stderr}`,
    );
  }
  const result = parseWrkOutput(out.stdout);
  const failures = describeFailures(result);
  if (failures !== null) {
    throw new WrkRequestErrors(
      `wrk ${args.join(" ")}: ${result.requests} requests, ${failures}`,
      result,
    );
  }
  return result;
}
