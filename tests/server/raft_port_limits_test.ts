/**
 * The Raft port's limit flags on a running node: -raft-max-conns (a
 * connection beyond it is closed at once), -raft-max-frame-bytes (a frame
 * declared larger closes its connection at once) and -raft-idle-timeout (a
 * connection that completes no frame is closed after it). /status shows
 * the counters (cluster.mux, cluster.transport).
 */

import assert from "node:assert/strict";
import { startTestNode, type TestNode } from "../util/node.ts";

const MiB = 1024 * 1024;

/** Connects to the node's Raft port and sends `bytes`. */
async function open(n: TestNode, bytes: Uint8Array): Promise<Deno.Conn> {
  const [hostname, port] = n.node.raftAddr.split(":");
  const conn = await Deno.connect({ hostname, port: Number(port) });
  if (bytes.byteLength > 0) await conn.write(bytes);
  return conn;
}

/** Milliseconds until the node closes `conn` (reads to EOF), or -1 after `boundMs`. */
async function closedAfter(conn: Deno.Conn, boundMs: number): Promise<number> {
  const t0 = performance.now();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const reading = (async () => {
    const buf = new Uint8Array(1024);
    try {
      while (await conn.read(buf) !== null) { /* drain */ }
    } catch {
      // reset: closed too
    }
    return performance.now() - t0;
  })();
  const bound = new Promise<number>((r) => (timer = setTimeout(() => r(-1), boundMs)));
  const ms = await Promise.race([reading, bound]);
  clearTimeout(timer);
  try {
    conn.close();
  } catch {
    // closed
  }
  await reading;
  return ms;
}

async function status(n: TestNode) {
  const res = await n.fetchSocket("/status");
  return JSON.parse(await res.text()).cluster;
}

Deno.test("Raft port: -raft-max-conns, -raft-max-frame-bytes and -raft-idle-timeout", async () => {
  const n = await startTestNode([
    "-raft-max-conns",
    "8",
    "-raft-idle-timeout",
    "1s",
    "-max-body-bytes",
    String(MiB),
    "-raft-max-frame-bytes",
    String(2 * MiB),
  ]);
  const conns: Deno.Conn[] = [];
  try {
    // Eight silent connections fill the port; the ninth is closed at once.
    for (let i = 0; i < 8; i++) conns.push(await open(n, new Uint8Array(0)));
    await new Promise((r) => setTimeout(r, 100));
    const ninth = await closedAfter(await open(n, new Uint8Array([1])), 500);
    assert.ok(ninth >= 0, "the connection beyond -raft-max-conns was not closed at once");
    // The silent ones are closed at the service-byte deadline (min(10 s, idle timeout)).
    const silent = await Promise.all(conns.splice(0).map((c) => closedAfter(c, 4_000)));
    for (const ms of silent) assert.ok(ms >= 700 && ms < 3_000, `silent closed after ${ms} ms`);

    // A frame declared beyond -raft-max-frame-bytes closes its connection at once.
    const header = new Uint8Array([1, 0, 0, 0, 0]);
    new DataView(header.buffer).setUint32(1, 2 * MiB + 1);
    const oversize = await closedAfter(await open(n, header), 500);
    assert.ok(oversize >= 0, "an oversized frame did not close the connection at once");
    // One within the limit but never finished is closed by the idle timeout instead.
    new DataView(header.buffer).setUint32(1, 2 * MiB);
    const unfinished = await closedAfter(await open(n, header), 4_000);
    assert.ok(unfinished >= 700 && unfinished < 3_000, `unfinished closed after ${unfinished} ms`);

    const cluster = await status(n);
    assert.equal(cluster.mux.rejectedLimit, 1, JSON.stringify(cluster.mux));
    assert.equal(cluster.mux.rejectedTimeout, 8, JSON.stringify(cluster.mux));
    assert.equal(cluster.transport.inboundErrors, 1, "the oversized frame");
    assert.equal(cluster.transport.inboundIdleClosed, 1, "the unfinished frame");
    assert.equal(cluster.mux.open, 0);
    // The port serves again once the connections are gone.
    const again = await closedAfter(await open(n, new Uint8Array([1])), 300);
    assert.equal(again, -1, "a new connection is accepted (and held until idle)");
  } finally {
    for (const c of conns) {
      try {
        c.close();
      } catch {
        // closed
      }
    }
    await n.close();
  }
});
