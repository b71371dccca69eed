/**
 * The mux: dispatch by first byte, unknown bytes and silent connections
 * closed, the connection bound, close() leaving nothing open.
 */

import assert from "node:assert/strict";
import { FrameReader, writeFrames } from "../../lib/transport/frame.ts";
import {
  closeQuietly,
  DialError,
  dialService,
  Mux,
  parseHostPort,
  SERVICE_CLUSTER,
  SERVICE_RAFT,
} from "../../lib/transport/mux.ts";
import { waitFor } from "./helpers.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** A raw TCP connection to the mux (no service byte written). */
function rawConnect(mux: Mux): Promise<Deno.TcpConn> {
  return Deno.connect({ hostname: "127.0.0.1", port: mux.addr.port });
}

/** Echo service: replies to each frame with `tag:` + the frame. */
function echo(tag: string, loops: Promise<void>[]) {
  return (conn: Deno.Conn, firstBytes: Uint8Array) => {
    loops.push((async () => {
      const frames = new FrameReader(conn, { prefix: firstBytes });
      try {
        for (let f = await frames.read(); f !== null; f = await frames.read()) {
          await writeFrames(conn, [enc.encode(`${tag}:${dec.decode(f)}`)]);
        }
      } catch {
        // Closed by the mux.
      } finally {
        conn.close();
      }
    })());
  };
}

Deno.test("the first byte selects the service", async () => {
  const mux = Mux.listen({ hostname: "127.0.0.1", port: 0 });
  const loops: Promise<void>[] = [];
  mux.handle(SERVICE_RAFT, echo("raft", loops));
  mux.handle(SERVICE_CLUSTER, echo("cluster", loops));
  try {
    for (const [service, tag] of [[SERVICE_RAFT, "raft"], [SERVICE_CLUSTER, "cluster"]] as const) {
      const conn = await dialService(mux.address, service, { timeoutMs: 2000 });
      const frames = new FrameReader(conn);
      await writeFrames(conn, [enc.encode("a"), enc.encode("b")]);
      assert.equal(dec.decode((await frames.read())!), `${tag}:a`);
      assert.equal(dec.decode((await frames.read())!), `${tag}:b`);
      conn.close();
    }
    await Promise.all(loops);
    await waitFor(() => mux.stats().open === 0, 2000, "handler connections closed");
    const stats = mux.stats();
    assert.equal(stats.accepted, 2);
    assert.deepEqual(stats.dispatched, { 1: 1, 2: 1 });
  } finally {
    await mux.close();
    await Promise.all(loops);
  }
});

Deno.test("an unknown service byte closes the connection", async () => {
  const mux = Mux.listen({ hostname: "127.0.0.1", port: 0 });
  mux.handle(SERVICE_RAFT, (conn) => conn.close());
  try {
    const conn = await dialService(mux.address, 7, { timeoutMs: 2000 });
    assert.equal(await conn.read(new Uint8Array(1)), null);
    conn.close();
    assert.equal(mux.stats().rejectedUnknown, 1);
  } finally {
    await mux.close();
  }
});

Deno.test("no service byte within the deadline closes the connection", async () => {
  const mux = Mux.listen({ hostname: "127.0.0.1", port: 0, headerTimeoutMs: 100 });
  try {
    const conn = await rawConnect(mux);
    const t0 = performance.now();
    assert.equal(await conn.read(new Uint8Array(1)), null);
    const waited = performance.now() - t0;
    conn.close();
    assert.ok(waited >= 80 && waited < 2000, `closed after ${waited} ms`);
    assert.equal(mux.stats().rejectedTimeout, 1);
  } finally {
    await mux.close();
  }
});

Deno.test("connections beyond maxConnections are closed at once; closing one frees a slot", async () => {
  const mux = Mux.listen({ hostname: "127.0.0.1", port: 0, maxConnections: 2 });
  const held: Deno.Conn[] = [];
  mux.handle(SERVICE_CLUSTER, (conn) => void held.push(conn));
  const clients: Deno.Conn[] = [];
  try {
    clients.push(await dialService(mux.address, SERVICE_CLUSTER));
    clients.push(await dialService(mux.address, SERVICE_CLUSTER));
    await waitFor(() => held.length === 2, 2000, "two connections dispatched");
    const third = await rawConnect(mux);
    clients.push(third);
    assert.equal(await third.read(new Uint8Array(1)), null);
    assert.equal(mux.stats().rejectedLimit, 1);
    assert.equal(mux.stats().open, 2);
    held[0]!.close(); // the service is done with one: its slot frees
    held[0]!.close(); // idempotent
    assert.equal(mux.stats().open, 1);
    clients.push(await dialService(mux.address, SERVICE_CLUSTER));
    await waitFor(() => held.length === 3, 2000, "a new connection accepted");
  } finally {
    await mux.close();
    for (const c of clients) closeQuietly(c);
  }
  // close() closed the handler-owned connections too.
  assert.equal(mux.stats().open, 0);
});

Deno.test("a handler's promise settling closes its connection; errors are counted", async () => {
  const mux = Mux.listen({ hostname: "127.0.0.1", port: 0 });
  mux.handle(SERVICE_RAFT, () => Promise.reject(new Error("boom")));
  mux.handle(SERVICE_CLUSTER, () => {
    throw new Error("sync boom");
  });
  try {
    for (const service of [SERVICE_RAFT, SERVICE_CLUSTER]) {
      const conn = await dialService(mux.address, service);
      assert.equal(await conn.read(new Uint8Array(1)), null);
      conn.close();
    }
    await waitFor(() => mux.stats().handlerErrors === 2, 2000, "handler errors counted");
  } finally {
    await mux.close();
  }
});

Deno.test("close() closes the listener and connections still waiting for their byte", async () => {
  const mux = Mux.listen({ hostname: "127.0.0.1", port: 0 });
  const conn = await rawConnect(mux);
  await waitFor(() => mux.stats().open === 1, 2000, "accepted");
  await mux.close();
  assert.equal(await conn.read(new Uint8Array(1)), null);
  conn.close();
  const err = await dialService(mux.address, SERVICE_RAFT, { timeoutMs: 1000 }).catch((e) => e);
  assert.ok(err instanceof DialError);
});

Deno.test("parseHostPort handles IPv4, IPv6 and an empty host", () => {
  assert.deepEqual(parseHostPort("127.0.0.1:4002"), { hostname: "127.0.0.1", port: 4002 });
  assert.deepEqual(parseHostPort("[::1]:4002"), { hostname: "::1", port: 4002 });
  assert.deepEqual(parseHostPort(":4002", "localhost"), { hostname: "localhost", port: 4002 });
  assert.throws(() => parseHostPort("nohost"), TypeError);
  assert.throws(() => parseHostPort("h:99999"), TypeError);
  assert.throws(() => parseHostPort("h:"), TypeError);
});

Deno.test("TLS seam: custom listen and connect functions are used", async () => {
  let listens = 0;
  let connects = 0;
  const mux = Mux.listen({
    hostname: "127.0.0.1",
    port: 0,
    listen: (o) => {
      listens++;
      return Deno.listen({ ...o, transport: "tcp" });
    },
  });
  const served: number[] = [];
  mux.handle(SERVICE_CLUSTER, (conn) => {
    served.push(1);
    conn.close();
  });
  try {
    const conn = await dialService(mux.address, SERVICE_CLUSTER, {
      connect: async ({ hostname, port, signal }) => {
        connects++;
        return await Deno.connect({ hostname, port, signal });
      },
    });
    assert.equal(await conn.read(new Uint8Array(1)), null);
    conn.close();
    assert.deepEqual([listens, connects, served.length], [1, 1, 1]);
  } finally {
    await mux.close();
  }
});

Deno.test("dialService gives up after its timeout or when its signal aborts", async () => {
  const hang = () => new Promise<Deno.Conn>(() => {});
  const t0 = performance.now();
  const err = await dialService("127.0.0.1:1", SERVICE_RAFT, { timeoutMs: 50, connect: hang })
    .catch((e) => e);
  assert.ok(err instanceof DialError);
  assert.match(err.message, /timed out after 50 ms/);
  assert.ok(performance.now() - t0 < 1000);
  const abort = new AbortController();
  const pending = dialService("127.0.0.1:1", SERVICE_RAFT, { connect: hang, signal: abort.signal })
    .catch((e) => e);
  abort.abort();
  const err2 = await pending;
  assert.ok(err2 instanceof DialError);
  assert.match(err2.message, /cancelled/);
  const err3 = await dialService("no-port", SERVICE_RAFT).catch((e) => e);
  assert.ok(err3 instanceof DialError);
});
