/**
 * Servers under benchmark, each a subprocess on free loopback ports:
 * a raftlite node (`main.ts` with a temp data dir) and the HTTP ceiling
 * (bench/lib/ceiling_server.ts). Both are ready when `GET /readyz` answers
 * 200. Each handle reports the process's CPU time and peak RSS from /proc
 * and stops it by pid (SIGTERM, then SIGKILL), removing its data dir.
 *
 * @module
 */

import { processCpuSeconds } from "./machine.ts";
import { OutputTail, waitOrKill } from "./proc.ts";
import { DENO_V8_FLAGS_ARG } from "../../lib/server/v8_flags.ts";

const ROOT = new URL("../../", import.meta.url);
const CEILING = new URL("./ceiling_server.ts", import.meta.url);

function path(url: URL): string {
  return decodeURIComponent(url.pathname);
}

/** Thrown when a server exits (or never answers) before it is ready. */
export class ServerStartError extends Error {
  constructor(message: string, readonly output: string) {
    super(message);
    this.name = "ServerStartError";
  }
}

/** A running server subprocess. */
export interface ServerHandle {
  /** Human-readable name, for messages. */
  readonly name: string;
  /** Process id. */
  readonly pid: number;
  /** `http://127.0.0.1:<port>`. */
  readonly baseUrl: string;
  /** The last lines it printed (stdout and stderr interleaved). */
  output(): string;
  /** User + system CPU seconds used so far (from /proc/<pid>/stat). */
  cpuSeconds(): Promise<number>;
  /** Peak resident set size so far in KiB (VmHWM from /proc/<pid>/status). */
  peakRssKiB(): Promise<number>;
  /** Resets the peak RSS to the current RSS (see {@link resetPeakRss}); false if refused. */
  resetPeakRss(): Promise<boolean>;
  /** Stops the process (SIGTERM, SIGKILL 3 s later) and removes its data dir. Idempotent. */
  stop(): Promise<void>;
}

/**
 * Returns `count` distinct free TCP ports on 127.0.0.1 (bound, then released).
 * They are picked at random below Linux's ephemeral range (32768-60999): a
 * port the kernel hands out by itself may be taken by any outgoing
 * connection (wrk opens dozens) between our release and the server's bind.
 */
export function freePorts(count: number): number[] {
  const ports = new Set<number>();
  for (let attempt = 0; ports.size < count; attempt++) {
    if (attempt > 1000) throw new Error(`no ${count} free ports in 20000..31999`);
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    if (ports.has(port)) continue;
    try {
      Deno.listen({ hostname: "127.0.0.1", port }).close();
      ports.add(port);
    } catch {
      // Taken: try another.
    }
  }
  return [...ports];
}

async function readStatusKiB(pid: number, key: string): Promise<number> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  const m = new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(status);
  if (m === null) throw new Error(`no ${key} in /proc/${pid}/status`);
  return Number(m[1]);
}

/** Peak resident set size of process `pid` so far, in KiB (VmHWM from /proc/<pid>/status). */
export function peakRssKiB(pid: number): Promise<number> {
  return readStatusKiB(pid, "VmHWM");
}

/**
 * Resets the peak RSS (VmHWM) of process `pid` to its current RSS (Linux:
 * `5` into /proc/<pid>/clear_refs), so the next reading is the peak of what
 * came after; false when the kernel refused (peaks are then cumulative).
 */
export async function resetPeakRss(pid: number): Promise<boolean> {
  try {
    await Deno.writeTextFile(`/proc/${pid}/clear_refs`, "5");
    return true;
  } catch {
    return false;
  }
}

/** What {@link spawnServer} starts. */
export interface SpawnSpec {
  /** Human-readable name, for messages. */
  name: string;
  /** Program to run (default: this Deno binary). */
  cmd?: string;
  args: string[];
  /** Its HTTP port on 127.0.0.1. */
  port: number;
  /** Removed with everything in it when the server stops. */
  dataDir?: string;
  /** Path polled until it answers 200 (default `/readyz`). */
  readyPath?: string;
  readyTimeoutMs: number;
}

/**
 * Starts a server subprocess and waits until `GET <readyPath>` answers 200;
 * if it exits or never does, stops it and throws {@link ServerStartError}.
 */
export async function spawnServer(spec: SpawnSpec): Promise<ServerHandle> {
  const child = new Deno.Command(spec.cmd ?? Deno.execPath(), {
    args: spec.args,
    cwd: path(ROOT),
    env: { RUST_BACKTRACE: "0", NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const out = new OutputTail(child.stdout);
  const err = new OutputTail(child.stderr);
  let exited: Deno.CommandStatus | null = null;
  const status = child.status.then((s) => (exited = s));
  let stopped: Promise<void> | null = null;
  const baseUrl = `http://127.0.0.1:${spec.port}`;

  const handle: ServerHandle = {
    name: spec.name,
    pid: child.pid,
    baseUrl,
    output: () => [out.text(), err.text()].filter((t) => t !== "").join("\n"),
    cpuSeconds: () => processCpuSeconds(child.pid),
    peakRssKiB: () => peakRssKiB(child.pid),
    resetPeakRss: () => resetPeakRss(child.pid),
    stop() {
      stopped ??= (async () => {
        if (exited === null) await waitOrKill(child, 0).catch(() => {});
        await status;
        await Promise.all([out.done, err.done]);
        if (spec.dataDir !== undefined) {
          await Deno.remove(spec.dataDir, { recursive: true }).catch(() => {});
        }
      })();
      return stopped;
    },
  };

  try {
    await waitReady(handle, spec.readyPath ?? "/readyz", () => exited, spec.readyTimeoutMs);
  } catch (e) {
    await handle.stop();
    throw e;
  }
  return handle;
}

async function waitReady(
  server: ServerHandle,
  readyPath: string,
  exited: () => Deno.CommandStatus | null,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = "no answer yet";
  while (Date.now() < deadline) {
    const s = exited();
    if (s !== null) {
      // Let the output drain so the message shows why it exited.
      await new Promise((r) => setTimeout(r, 100));
      throw new ServerStartError(
        `${server.name} exited with code ${s.code} before it was ready:\n${server.output()}`,
        server.output(),
      );
    }
    try {
      const res = await fetch(`${server.baseUrl}${readyPath}`, {
        signal: AbortSignal.timeout(1000),
      });
      const text = await res.text();
      if (res.status === 200) return;
      last = `status ${res.status}: ${text.trim()}`;
    } catch (e) {
      last = String(e);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new ServerStartError(
    `${server.name} was not ready within ${timeoutMs} ms (last ${readyPath}: ${last}):\n${server.output()}`,
    server.output(),
  );
}

/** Options for {@link startRaftlite}. */
export interface RaftliteOptions {
  /** Entry point to run instead of the project's main.ts (e.g. a stand-in server). */
  main?: string;
  /** How long to wait for /readyz (default 30 s). */
  readyTimeoutMs?: number;
}

/**
 * Starts a single raftlite node: `deno run -A main.ts -http-addr 127.0.0.1:<p1>
 * -raft-addr 127.0.0.1:<p2> <temp dir>`, and waits until it is ready.
 */
export async function startRaftlite(opts: RaftliteOptions = {}): Promise<ServerHandle> {
  const [httpPort, raftPort] = freePorts(2) as [number, number];
  const dataDir = await Deno.makeTempDir({ prefix: "raftlite-bench-" });
  const main = opts.main ?? path(new URL("main.ts", ROOT));
  return await spawnServer({
    name: `raftlite node (${main})`,
    args: [
      "run",
      "-A",
      DENO_V8_FLAGS_ARG,
      main,
      "-http-addr",
      `127.0.0.1:${httpPort}`,
      "-raft-addr",
      `127.0.0.1:${raftPort}`,
      dataDir,
    ],
    port: httpPort,
    dataDir,
    readyTimeoutMs: opts.readyTimeoutMs ?? 30_000,
  });
}

/** Options for {@link startCeiling}. */
export interface CeilingOptions {
  /** A directory its `/upload` and `/download` endpoints may write and read (default: none). */
  fileDir?: string;
}

/** Starts the trivial Deno.serve ceiling server and waits until it is ready. */
export async function startCeiling(opts: CeilingOptions = {}): Promise<ServerHandle> {
  const [port] = freePorts(1) as [number];
  const files = opts.fileDir === undefined
    ? []
    : [`--allow-read=${opts.fileDir}`, `--allow-write=${opts.fileDir}`];
  return await spawnServer({
    name: "ceiling server",
    args: ["run", "--allow-net=127.0.0.1", ...files, path(CEILING), String(port)],
    port,
    readyTimeoutMs: 30_000,
  });
}
