/**
 * Test helpers for lib/transport: a seeded generator, a TCP connection pair
 * on 127.0.0.1, polling with a deadline.
 */

import { closeQuietly } from "../../lib/transport/mux.ts";

/** Seeded xorshift32: uniform integers in [0, n). */
export function seeded(seed: number): { nextInt(n: number): number } {
  let x = (seed * 2654435761) >>> 0 || 1;
  return {
    nextInt(n: number): number {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      return (x >>> 0) % n;
    },
  };
}

/** A connected client/server pair on 127.0.0.1; `close()` closes both and the listener. */
export async function tcpPair(): Promise<
  { client: Deno.TcpConn; server: Deno.TcpConn; close: () => void }
> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const accepting = listener.accept();
  const client = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
  const server = await accepting;
  listener.close();
  return {
    client,
    server,
    close: () => {
      closeQuietly(client);
      closeQuietly(server);
    },
  };
}

/** Polls `cond` every few ms until it holds; throws after `timeoutMs`. */
export async function waitFor(
  cond: () => boolean,
  timeoutMs = 5_000,
  what = "condition",
): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!cond()) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms: ${what}`);
    await delay(5);
  }
}

/** Resolves after `ms`. */
export function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
