/**
 * Test helpers: a raftlite node in this process (port 0, temp data dir) and
 * a raftlite node as a child process (free ports, killed by pid at the end).
 */

import { parseFlags } from "../../lib/config/flags.ts";
import { configFromFlags } from "../../lib/server/config.ts";
import { type RunningNode, startNode } from "../../lib/server/start.ts";
import { DENO_V8_FLAGS_ARG } from "../../lib/server/v8_flags.ts";

export interface TestNode {
  readonly node: RunningNode;
  readonly url: string;
  readonly dataDir: string;
  /** Calls the node's HTTP handler directly with `new Request(...)` (no socket). */
  fetch(path: string, init?: RequestInit): Promise<Response>;
  /** The same request over a real socket. */
  fetchSocket(path: string, init?: RequestInit): Promise<Response>;
  close(): Promise<void>;
}

/** Starts a node in this process and waits until it serves. */
export async function startTestNode(
  flags: string[] = [],
  dataDir?: string,
  options: { authorization?: string } = {},
): Promise<TestNode> {
  const dir = dataDir ?? await Deno.makeTempDir({ prefix: "raftlite-test-" });
  const config = configFromFlags(
    parseFlags(["-http-addr", "127.0.0.1:0", "-raft-addr", "127.0.0.1:0", ...flags, dir]),
  );
  const node = startNode(config, () => {});
  await node.ready;
  await waitFor(async () => {
    const headers = options.authorization === undefined
      ? undefined
      : { Authorization: options.authorization };
    const res = await fetch(`http://${node.httpAddr}/readyz`, { headers });
    await res.body?.cancel();
    return res.status === 200;
  }, 10_000);
  const url = `http://${node.httpAddr}`;
  return {
    node,
    url,
    dataDir: dir,
    fetch: (path, init) => node.handler(new Request(url + path, init)),
    fetchSocket: (path, init) => fetch(url + path, init),
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

/**
 * A free TCP port on 127.0.0.1 (bound and released). Chosen at random below
 * Linux's ephemeral range (32768-60999): a port the kernel hands out by
 * itself may be taken by any outgoing connection between our release and the
 * node's bind, and tests run in parallel ("Address already in use").
 */
export function freePort(): number {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    try {
      const l = Deno.listen({ hostname: "127.0.0.1", port });
      l.close();
      return port;
    } catch {
      // taken: try another
    }
  }
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

export interface NodeProcess {
  readonly child: Deno.ChildProcess;
  readonly pid: number;
  readonly url: string;
  readonly httpAddr: string;
  readonly raftAddr: string;
  readonly dataDir: string;
  /** Waits until /readyz answers 200. */
  ready(timeoutMs?: number): Promise<void>;
  /** SIGKILL (default) or SIGTERM, then waits for exit. Safe to call again (a no-op once exited). */
  kill(signal?: Deno.Signal): Promise<Deno.CommandStatus>;
  /** Everything the process wrote to stderr so far (the first 1 MiB). */
  stderr(): string;
}

/** Options of {@link spawnNode}. */
export interface SpawnOptions {
  /** HTTP bind address; a free port on 127.0.0.1 when absent. */
  httpAddr?: string;
  /**
   * Raft bind address; a free port on 127.0.0.1 when absent. The node id
   * defaults to it, so a restart on the same data directory must reuse it
   * (see {@link respawnNode}) or pass `-node-id`.
   */
  raftAddr?: string;
  /**
   * The node serves HTTPS (its flags include -http-cert): `url` is https and
   * `ready()` trusts `caCert` (PEM path), presenting `cert`/`key` if given.
   */
  https?: { caCert: string; cert?: string; key?: string };
  /** Extra environment variables of the process (e.g. RQLITE_DISCO_DNS_HOSTS). */
  env?: Record<string, string>;
}

const MAIN = new URL("../../main.ts", import.meta.url).pathname;
const STDERR_LIMIT = 1 << 20;

/** Starts `main.ts` as a child process on free ports. The caller must kill it. */
export function spawnNode(
  dataDir: string,
  flags: string[] = [],
  options: SpawnOptions = {},
): NodeProcess {
  const httpAddr = options.httpAddr ?? `127.0.0.1:${freePort()}`;
  const raftAddr = options.raftAddr ?? `127.0.0.1:${freePort()}`;
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      DENO_V8_FLAGS_ARG,
      MAIN,
      "-http-addr",
      httpAddr,
      "-raft-addr",
      raftAddr,
      ...flags,
      dataDir,
    ],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
    env: { RUST_BACKTRACE: "0", NO_COLOR: "1", ...options.env },
  }).spawn();
  // Collect stderr (bounded) so the child never blocks on a full pipe and tests can read it.
  let errText = "";
  const decoder = new TextDecoder();
  const stderr = child.stderr.pipeTo(
    new WritableStream({
      write(chunk) {
        if (errText.length < STDERR_LIMIT) errText += decoder.decode(chunk, { stream: true });
      },
    }),
  ).catch(() => {});
  const url = `${options.https === undefined ? "http" : "https"}://${httpAddr}`;
  let exited = false;
  const status = child.status.then(async (s) => {
    exited = true;
    await stderr;
    return s;
  });
  return {
    child,
    pid: child.pid,
    url,
    httpAddr,
    raftAddr,
    dataDir,
    ready: async (timeoutMs = 20_000) => {
      const client = options.https === undefined ? undefined : httpsClient(options.https);
      try {
        await waitFor(async () => {
          const res = await fetch(`${url}/readyz`, client === undefined ? {} : { client });
          await res.body?.cancel();
          return res.status === 200;
        }, timeoutMs);
      } finally {
        client?.close();
      }
    },
    kill: (signal = "SIGKILL") => {
      // A later SIGKILL still reaches a process that ignored an earlier SIGTERM.
      if (!exited) {
        try {
          child.kill(signal);
        } catch {
          // already gone
        }
      }
      return status;
    },
    stderr: () => errText,
  };
}

/** A fetch client trusting `caCert` and presenting `cert`/`key` when given (paths). Close it. */
export function httpsClient(tls: { caCert: string; cert?: string; key?: string }): Deno.HttpClient {
  const read = (path: string) => Deno.readTextFileSync(path);
  return Deno.createHttpClient({
    caCerts: [read(tls.caCert)],
    ...(tls.cert && tls.key ? { cert: read(tls.cert), key: read(tls.key) } : {}),
  });
}

/** Starts a new process on `prev`'s data directory and addresses (so the node id is the same). */
export function respawnNode(prev: NodeProcess, flags: string[] = []): NodeProcess {
  return spawnNode(prev.dataDir, flags, { httpAddr: prev.httpAddr, raftAddr: prev.raftAddr });
}
