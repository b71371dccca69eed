/**
 * Test helpers: a raftlite node in this process (port 0, temp data dir) and
 * a raftlite node as a child process (free ports, killed by pid at the end).
 */

import { parseFlags } from "../../lib/config/flags.ts";
import { configFromFlags } from "../../lib/server/config.ts";
import { type RunningNode, startNode } from "../../lib/server/start.ts";

export interface TestNode {
  readonly node: RunningNode;
  readonly url: string;
  readonly dataDir: string;
  /** Calls the node's HTTP handler over a real socket. */
  fetch(path: string, init?: RequestInit): Promise<Response>;
  close(): Promise<void>;
}

/** Starts a node in this process and waits until it serves. */
export async function startTestNode(
  flags: string[] = [],
  dataDir?: string,
): Promise<TestNode> {
  const dir = dataDir ?? await Deno.makeTempDir({ prefix: "raftlite-test-" });
  const config = configFromFlags(
    parseFlags(["-http-addr", "127.0.0.1:0", "-raft-addr", "127.0.0.1:0", ...flags, dir]),
  );
  const node = startNode(config, () => {});
  await node.ready;
  await waitFor(async () => {
    const res = await fetch(`http://${node.httpAddr}/readyz`);
    await res.body?.cancel();
    return res.status === 200;
  }, 10_000);
  const url = `http://${node.httpAddr}`;
  return {
    node,
    url,
    dataDir: dir,
    fetch: (path, init) => fetch(url + path, init),
    close: async () => {
      await node.close();
      if (dataDir === undefined) await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}

/** Polls `check` every 20 ms until it is true or `timeoutMs` passes (then throws). */
export async function waitFor(check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    try {
      if (await check()) return;
    } catch {
      // not up yet
    }
    if (performance.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A free TCP port on 127.0.0.1 (bound and released). */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

export interface NodeProcess {
  readonly child: Deno.ChildProcess;
  readonly url: string;
  readonly httpAddr: string;
  readonly raftAddr: string;
  readonly dataDir: string;
  /** Waits until /readyz answers 200. */
  ready(timeoutMs?: number): Promise<void>;
  /** SIGKILL (default) or SIGTERM, then waits for exit. */
  kill(signal?: Deno.Signal): Promise<Deno.CommandStatus>;
}

const MAIN = new URL("../../main.ts", import.meta.url).pathname;

/** Starts `main.ts` as a child process on free ports. The caller must kill it. */
export function spawnNode(dataDir: string, flags: string[] = []): NodeProcess {
  const httpAddr = `127.0.0.1:${freePort()}`;
  const raftAddr = `127.0.0.1:${freePort()}`;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, "-http-addr", httpAddr, "-raft-addr", raftAddr, ...flags, dataDir],
    stdout: "null",
    stderr: "piped",
    env: { RUST_BACKTRACE: "0", NO_COLOR: "1" },
  }).spawn();
  // Drain stderr so the child never blocks on a full pipe.
  const stderr = child.stderr.pipeTo(new WritableStream()).catch(() => {});
  const url = `http://${httpAddr}`;
  let status: Promise<Deno.CommandStatus> | undefined;
  return {
    child,
    url,
    httpAddr,
    raftAddr,
    dataDir,
    ready: (timeoutMs = 20_000) =>
      waitFor(async () => {
        const res = await fetch(`${url}/readyz`);
        await res.body?.cancel();
        return res.status === 200;
      }, timeoutMs),
    kill: (signal = "SIGKILL") => {
      if (status === undefined) {
        try {
          child.kill(signal);
        } catch {
          // already gone
        }
        status = child.status.then(async (s) => {
          await stderr;
          return s;
        });
      }
      return status;
    },
  };
}
