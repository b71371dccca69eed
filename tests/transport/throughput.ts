/**
 * Throughput of TcpTransport: 100-byte append messages from one transport to
 * another, in one process and between two processes. Prints figures, asserts
 * nothing (not a test file; shaped like a bench module: exports `run()`).
 *
 *   deno run -A tests/transport/throughput.ts [messages]
 *
 * @module
 */

import type { Message } from "../../lib/raft/types.ts";
import { Mux } from "../../lib/transport/mux.ts";
import { TcpTransport } from "../../lib/transport/raft_transport.ts";

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

/** A receiving transport that resolves `done` once `n` messages arrived. */
function receiver(n: number): { mux: Mux; transport: TcpTransport; done: Promise<void> } {
  const mux = Mux.listen({ hostname: "127.0.0.1", port: 0 });
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
): Promise<{ mux: Mux; transport: TcpTransport }> {
  const mux = Mux.listen({ hostname: "127.0.0.1", port: 0 });
  const transport = new TcpTransport({ self: "a", resolve: () => addr, mux });
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

async function inProcess(n: number): Promise<string> {
  const rx = receiver(n);
  const t0 = performance.now();
  const tx = await sendAll(rx.mux.address, n);
  await rx.done;
  const ms = performance.now() - t0;
  const stats = tx.transport.stats();
  await tx.transport.shutdown();
  await tx.mux.close();
  await rx.transport.shutdown();
  await rx.mux.close();
  return line("one process", n, ms, stats.framesSent, stats.dropped);
}

async function crossProcess(n: number): Promise<string> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL(import.meta.url).pathname, "--receive", String(n)],
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
    const tx = await sendAll(addr, n);
    await nextLine(); // "done"
    const ms = performance.now() - t0;
    const stats = tx.transport.stats();
    await tx.transport.shutdown();
    await tx.mux.close();
    return line("two processes", n, ms, stats.framesSent, stats.dropped);
  } finally {
    await lines.cancel().catch(() => {});
    await child.status;
  }
}

function line(what: string, n: number, ms: number, frames: number, dropped: number): string {
  const rate = Math.round(n / (ms / 1000));
  return `${what.padEnd(14)} ${n.toLocaleString("en-US")} msgs of 100 B in ${ms.toFixed(0)} ms: ` +
    `${rate.toLocaleString("en-US")} msgs/s, ${
      (n / frames).toFixed(0)
    } msgs/frame, dropped ${dropped}`;
}

/** Prints both figures. */
export async function run(n = DEFAULT_MESSAGES): Promise<void> {
  console.log(`TcpTransport throughput (append messages, one 100-byte entry each)`);
  console.log(await inProcess(n));
  console.log(await crossProcess(n));
}

if (import.meta.main) {
  if (Deno.args[0] === "--receive") {
    const n = Number(Deno.args[1]);
    const rx = receiver(n);
    console.log(rx.mux.address);
    await rx.done;
    console.log("done");
    await rx.transport.shutdown();
    await rx.mux.close();
  } else {
    await run(Deno.args[0] ? Number(Deno.args[0]) : DEFAULT_MESSAGES);
  }
}
