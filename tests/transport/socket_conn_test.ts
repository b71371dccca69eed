/**
 * SocketConn: a node:net socket as a Deno.Conn (reads into the caller's
 * buffer, end of stream as null, writes that resolve once taken, errors
 * after close, the `endBeforeData` error, a bounded receive queue, and the
 * web streams).
 */

import assert from "node:assert/strict";
import net from "node:net";
import { SocketConn } from "../../lib/transport/socket_conn.ts";
import { delay } from "./helpers.ts";

/** A connected pair of node sockets on 127.0.0.1, wrapped with `options` on the client side. */
async function pair(options: ConstructorParameters<typeof SocketConn>[1] = {}) {
  const server = net.createServer();
  const accepted = new Promise<net.Socket>((resolve) => server.once("connection", resolve));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as net.AddressInfo).port;
  const socket = net.connect(port, "127.0.0.1");
  await new Promise<void>((resolve) => socket.once("connect", () => resolve()));
  const peer = new SocketConn(await accepted);
  const conn = new SocketConn(socket, options);
  return {
    conn,
    peer,
    close: async () => {
      conn.close();
      peer.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

async function readExactly(conn: Deno.Conn, n: number): Promise<Uint8Array> {
  const out = new Uint8Array(n);
  for (let off = 0; off < n;) {
    const got = await conn.read(out.subarray(off));
    if (got === null) throw new Error(`end of stream after ${off} of ${n} bytes`);
    off += got;
  }
  return out;
}

Deno.test("SocketConn: bytes both ways, end of stream, errors after close", async () => {
  const p = await pair();
  try {
    assert.equal(p.conn.remoteAddr.hostname, "127.0.0.1");
    assert.equal(p.conn.remoteAddr.port, p.peer.localAddr.port);
    const data = new Uint8Array(100_000).map((_, i) => i % 251);
    assert.equal(await p.conn.write(data), data.byteLength);
    assert.deepEqual(await readExactly(p.peer, data.byteLength), data);
    await p.peer.write(new Uint8Array([7, 8, 9]));
    const small = new Uint8Array(2);
    assert.equal(await p.conn.read(small), 2);
    assert.deepEqual(small, new Uint8Array([7, 8]));
    assert.equal(await p.conn.read(small), 1);
    await p.peer.closeWrite();
    assert.equal(await p.conn.read(small), null);
    p.conn.close();
    p.conn.close(); // idempotent
    await assert.rejects(() => p.conn.read(small), Deno.errors.BadResource);
    await assert.rejects(() => p.conn.write(small), Deno.errors.BadResource);
  } finally {
    await p.close();
  }
});

Deno.test("SocketConn: endBeforeData turns a silent close into the given error", async () => {
  const p = await pair({ endBeforeData: () => new Error("refused, probably") });
  try {
    p.peer.close();
    await assert.rejects(() => p.conn.read(new Uint8Array(4)), /refused, probably/);
  } finally {
    await p.close();
  }
});

Deno.test("SocketConn: a slow reader pauses the socket at the high-water mark", async () => {
  const p = await pair({ highWaterBytes: 64 * 1024 });
  try {
    const total = 64 * 1024 * 1024;
    let written = 0;
    const writer = (async () => {
      const chunk = new Uint8Array(64 * 1024);
      while (written < total) written += await p.peer.write(chunk);
    })();
    await delay(500);
    // The reader took nothing: the writer is held back by TCP, not buffered without bound.
    assert.ok(written < total, `all ${written} bytes went out without a reader`);
    let read = 0;
    const buf = new Uint8Array(256 * 1024);
    while (read < total) {
      const n = await p.conn.read(buf);
      if (n === null) break;
      read += n;
    }
    await writer;
    assert.equal(read, total);
  } finally {
    await p.close();
  }
});

Deno.test("SocketConn: readable and writable streams", async () => {
  const p = await pair();
  try {
    const w = p.conn.writable.getWriter();
    await w.write(new TextEncoder().encode("hello "));
    await w.write(new TextEncoder().encode("streams"));
    await w.close();
    const text = await new Response(p.peer.readable).text();
    assert.equal(text, "hello streams");
  } finally {
    await p.close();
  }
});
