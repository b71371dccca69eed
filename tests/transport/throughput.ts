/**
 * Throughput of TcpTransport: 100-byte append messages from one transport to
 * another, in one process and between two processes, over plain TCP and
 * over mutual TLS (lib/transport/tls.ts, certificates made with openssl).
 * Prints figures, asserts nothing (not a test file; shaped like a bench
 * module: exports `run()`).
 *
 *   deno run -A tests/transport/throughput.ts [messages]
 *
 * @module
 */

import type { Message } from "../../lib/raft/types.ts";
import { type ConnectFn, type ListenFn, Mux } from "../../lib/transport/mux.ts";
import { TcpTransport } from "../../lib/transport/raft_transport.ts";
import { type NodeTlsConfig, tlsConnect, tlsListen } from "../../lib/transport/tls.ts";
import { TestPki } from "../util/certs.ts";

const DEFAULT_MESSAGES = 1_000_000;
const DATA = new Uint8Array(100).fill(7);

function append(index: number): Message {
  return {
    kind: "append",
    from: "a",
    to: "b",
    term: 3,
    index: index - 1,
    logTerm: 3,
    entries: [{ term: 3, index, kind: "normal", data: DATA }],
    commit: index - 1,
    reject: false,
    rejectHint: 0,
    context: "",
  };
}

/** Mutual TLS between the two transports, or plain TCP. */
interface Wire {
  readonly name: string;
  readonly listen?: ListenFn;
  readonly connect?: ConnectFn;
}

const PLAIN: Wire = { name: "TCP" };

/** Mutual TLS with `dir`'s node.pem, node.key and ca.pem (a {@link TestPki} directory). */
function tlsWire(dir: string): Wire {
  const read = (f: string) => Deno.readTextFileSync(`${dir}/${f}`);
  const config: NodeTlsConfig = {
    cert: read("node.pem"),
    key: read("node.key"),
    caCert: read("ca.pem"),
    verifyClient: true,
    noVerify: false,
  };
  const hooks = { log: (line: string) => console.error(line) };
  return { name: "mTLS", listen: tlsListen(config, hooks), connect: tlsConnect(config, hooks) };
}

/** A receiving transport that resolves `done` once `n` messages arrived. */
function receiver(
  n: number,
  wire: Wire,
): { mux: Mux; transport: TcpTransport; done: Promise<void> } {
  const mux = Mux.listen({
    hostname: "127.0.0.1",
    port: 0,
    ...(wire.listen ? { listen: wire.listen } : {}),
  });
  const transport = new TcpTransport({ self: "b", resolve: () => undefined, mux });
  let got = 0;
  let resolve = () => {};
  const done = new Promise<void>((r) => (resolve = r));
  transport.listen({
    onMessage: () => {
      if (++got === n) resolve();
    },
    onSnapshot: () => {},
  });
  return { mux, transport, done };
}

/** Sends `n` messages to `addr`, keeping the queue below its bound (no drops). */
async function sendAll(
  addr: string,
  n: number,
  wire: Wire,
): Promise<{ mux: Mux; transport: TcpTransport }> {
  const mux = Mux.listen({ hostname: "127.0.0.1", port: 0 });
  const transport = new TcpTransport({
    self: "a",
    resolve: () => addr,
    mux,
    ...(wire.connect ? { connect: wire.connect } : {}),
  });
  const burst = 1024;
  for (let i = 1; i <= n;) {
    const queued = transport.stats().peers["b"]?.queued ?? 0;
    if (queued > 4096 - burst) {
      await new Promise((r) => setTimeout(r, 0));
      continue;
    }
    for (const end = Math.min(n, i + burst - 1); i <= end; i++) transport.send(append(i));
    await Promise.resolve();
  }
  return { mux, transport };
}

async function inProcess(n: number, wire: Wire): Promise<string> {
  const rx = receiver(n, wire);
  const t0 = performance.now();
  const tx = await sendAll(rx.mux.address, n, wire);
  await rx.done;
  const ms = performance.now() - t0;
  const stats = tx.transport.stats();
  await tx.transport.shutdown();
  await tx.mux.close();
  await rx.transport.shutdown();
  await rx.mux.close();
  return line(`one process, ${wire.name}`, n, ms, stats.framesSent, stats.dropped);
}

async function crossProcess(n: number, wire: Wire, certDir?: string): Promise<string> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      new URL(import.meta.url).pathname,
      "--receive",
      String(n),
      ...(certDir === undefined ? [] : [certDir]),
    ],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = "";
  const nextLine = async (): Promise<string> => {
    for (;;) {
      const i = buffered.indexOf("\n");
      if (i >= 0) {
        const out = buffered.slice(0, i);
        buffered = buffered.slice(i + 1);
        return out;
      }
      const { value, done } = await lines.read();
      if (done) throw new Error("receiver exited early");
      buffered += value;
    }
  };
  try {
    const addr = await nextLine();
    const t0 = performance.now();
    const tx = await sendAll(addr, n, wire);
    await nextLine(); // "done"
    const ms = performance.now() - t0;
    const stats = tx.transport.stats();
    await tx.transport.shutdown();
    await tx.mux.close();
    return line(`two processes, ${wire.name}`, n, ms, stats.framesSent, stats.dropped);
  } finally {
    await lines.cancel().catch(() => {});
    await child.status;
  }
}

function line(what: string, n: number, ms: number, frames: number, dropped: number): string {
  const rate = Math.round(n / (ms / 1000));
  return `${what.padEnd(21)} ${n.toLocaleString("en-US")} msgs of 100 B in ${ms.toFixed(0)} ms: ` +
    `${rate.toLocaleString("en-US")} msgs/s, ${
      (n / frames).toFixed(0)
    } msgs/frame, dropped ${dropped}`;
}

/** Prints the figures over TCP and over mutual TLS. */
export async function run(n = DEFAULT_MESSAGES): Promise<void> {
  console.log(`TcpTransport throughput (append messages, one 100-byte entry each)`);
  console.log(await inProcess(n, PLAIN));
  console.log(await crossProcess(n, PLAIN));
  const pki = await TestPki.create();
  try {
    await pki.issue("node"); // node.pem and node.key beside the CA's ca.pem
    const wire = tlsWire(pki.dir);
    console.log(await inProcess(n, wire));
    console.log(await crossProcess(n, wire, pki.dir));
  } finally {
    await pki.close();
  }
}

if (import.meta.main) {
  if (Deno.args[0] === "--receive") {
    const n = Number(Deno.args[1]);
    const certDir = Deno.args[2];
    const rx = receiver(n, certDir === undefined ? PLAIN : tlsWire(certDir));
    console.log(rx.mux.address);
    await rx.done;
    console.log("done");
    await rx.transport.shutdown();
    await rx.mux.close();
  } else {
    await run(Deno.args[0] ? Number(Deno.args[0]) : DEFAULT_MESSAGES);
  }
}
