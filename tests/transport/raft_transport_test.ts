/**
 * TcpTransport between real sockets on 127.0.0.1: ordering, batching,
 * bounded queues, reconnects, snapshots, garbage on the Raft port.
 */

import assert from "node:assert/strict";
import type { Message, NodeId } from "../../lib/raft/types.ts";
import { crc32c } from "../../lib/storage/crc32c.ts";
import { encodeMessages } from "../../lib/transport/codec.ts";
import { encodeFrames, writeFrames } from "../../lib/transport/frame.ts";
import { dialService, Mux, SERVICE_RAFT } from "../../lib/transport/mux.ts";
import {
  FRAME_MESSAGES,
  FRAME_SNAPSHOT_BEGIN,
  FRAME_SNAPSHOT_CHUNK,
  FRAME_SNAPSHOT_END,
  TcpTransport,
  type TcpTransportOptions,
} from "../../lib/transport/raft_transport.ts";
import { delay, seeded, waitFor } from "./helpers.ts";

type Extra = Partial<Omit<TcpTransportOptions, "self" | "resolve" | "mux">>;

interface TestPeer {
  readonly id: NodeId;
  readonly mux: Mux;
  readonly transport: TcpTransport;
  readonly got: Message[];
  readonly snapshots: { msg: Message; data: Uint8Array }[];
  stop(): Promise<void>;
}

/** Address book shared by the peers of one test. */
type Book = Map<NodeId, string>;

function startPeer(book: Book, id: NodeId, extra: Extra = {}, port = 0): TestPeer {
  const mux = Mux.listen({ hostname: "127.0.0.1", port });
  book.set(id, mux.address);
  const transport = new TcpTransport({
    self: id,
    resolve: (x) => book.get(x),
    mux,
    backoff: { initialMs: 10, maxMs: 50 },
    ...extra,
  });
  const got: Message[] = [];
  const snapshots: { msg: Message; data: Uint8Array }[] = [];
  transport.listen({
    onMessage: (m) => void got.push(m),
    onSnapshot: (msg, data) => void snapshots.push({ msg, data: data as Uint8Array }),
  });
  return {
    id,
    mux,
    transport,
    got,
    snapshots,
    stop: async () => {
      await transport.shutdown();
      await mux.close();
    },
  };
}

function append(from: NodeId, to: NodeId, index: number, dataBytes = 100): Message {
  const data = new Uint8Array(dataBytes).fill(index & 0xff);
  return {
    kind: "append",
    from,
    to,
    term: 1,
    index: index - 1,
    logTerm: 1,
    entries: [{ term: 1, index, kind: "normal", data }],
    commit: 0,
    reject: false,
    rejectHint: 0,
    context: "",
  };
}

function snapshotMsg(from: NodeId, to: NodeId): Message {
  return {
    ...append(from, to, 1),
    kind: "snapshot",
    entries: [],
    snapshot: {
      index: 500,
      term: 3,
      conf: { voters: [from, to], learners: [], context: { [from]: "x:1", [to]: "y:2" } },
    },
  };
}

/** A port with nothing listening on it (bound then released). */
function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = l.addr.port;
  l.close();
  return port;
}

function sendSnapshot(t: TcpTransport, msg: Message, data: Uint8Array): Promise<boolean> {
  return new Promise((resolve) => t.sendSnapshot(msg, data, resolve));
}

Deno.test("messages arrive complete and in order across many ticks", async () => {
  const book: Book = new Map();
  const a = startPeer(book, "a");
  const b = startPeer(book, "b");
  try {
    const rnd = seeded(5);
    let index = 1;
    for (let tick = 0; tick < 50; tick++) {
      for (let k = rnd.nextInt(200); k > 0; k--) {
        a.transport.send(append("a", "b", index, rnd.nextInt(300)));
        index++;
      }
      await delay(rnd.nextInt(3));
    }
    const total = index - 1;
    await waitFor(() => b.got.length === total, 5000, `${total} messages`);
    b.got.forEach((m, i) => assert.equal(m.entries[0]!.index, i + 1));
    const stats = a.transport.stats();
    assert.equal(stats.sent, total);
    assert.equal(stats.dropped, 0);
    assert.equal(b.transport.stats().received, total);
    assert.deepEqual(b.got[0], append("a", "b", 1, b.got[0]!.entries[0]!.data.byteLength));
  } finally {
    await a.stop();
    await b.stop();
  }
});

Deno.test("1000 messages sent in one tick travel in a few frames", async () => {
  const book: Book = new Map();
  const a = startPeer(book, "a");
  const b = startPeer(book, "b");
  try {
    for (let i = 1; i <= 1000; i++) a.transport.send(append("a", "b", i));
    await waitFor(() => b.got.length === 1000, 5000, "1000 messages");
    const frames = b.transport.stats().framesReceived;
    assert.ok(frames <= 3, `${frames} frames for 1000 messages`);
    assert.equal(a.transport.stats().framesSent, frames);
  } finally {
    await a.stop();
    await b.stop();
  }
});

Deno.test("a down peer: sends beyond the queue bound drop; delivery resumes when it comes up", async () => {
  const book: Book = new Map();
  const a = startPeer(book, "a", { maxQueueMessages: 10 });
  const port = freePort();
  book.set("b", `127.0.0.1:${port}`);
  let b: TestPeer | undefined;
  try {
    for (let i = 1; i <= 100; i++) a.transport.send(append("a", "b", i));
    assert.equal(a.transport.stats().dropped, 90);
    await waitFor(() => a.transport.stats().dialFailures >= 2, 3000, "dial failures");
    assert.equal(a.transport.stats().peers["b"]!.connected, false);
    b = startPeer(book, "b", {}, port);
    await waitFor(() => b!.got.length === 10, 5000, "queued messages delivered");
    assert.deepEqual(b.got.map((m) => m.entries[0]!.index), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    a.transport.send(append("a", "b", 101));
    await waitFor(() => b!.got.length === 11, 5000, "a new message");
    assert.ok(a.transport.stats().reconnects >= 1);
  } finally {
    await a.stop();
    await b?.stop();
  }
});

Deno.test("the queue's byte bound is respected", async () => {
  const book: Book = new Map();
  const a = startPeer(book, "a", { maxQueueBytes: 10_000 });
  book.set("b", `127.0.0.1:${freePort()}`);
  try {
    for (let i = 1; i <= 20; i++) a.transport.send(append("a", "b", i, 1000));
    const stats = a.transport.stats();
    assert.ok(stats.peers["b"]!.queuedBytes <= 10_000);
    assert.ok(stats.dropped >= 10, `dropped ${stats.dropped}`);
    assert.equal(stats.peers["b"]!.queued + stats.dropped, 20);
  } finally {
    await a.stop();
  }
});

Deno.test("a receiver that restarts is reconnected to", async () => {
  const book: Book = new Map();
  const a = startPeer(book, "a");
  let b = startPeer(book, "b");
  try {
    a.transport.send(append("a", "b", 1));
    await waitFor(() => b.got.length === 1, 3000, "first message");
    const port = b.mux.addr.port;
    await b.stop();
    await waitFor(() => !a.transport.stats().peers["b"]!.connected, 3000, "disconnect noticed");
    b = startPeer(book, "b", {}, port);
    a.transport.send(append("a", "b", 2));
    await waitFor(() => b.got.length === 1, 3000, "message after restart");
    assert.equal(b.got[0]!.entries[0]!.index, 2);
  } finally {
    await a.stop();
    await b.stop();
  }
});

Deno.test("a snapshot of a few MB arrives intact; done(true)", async () => {
  const book: Book = new Map();
  const a = startPeer(book, "a", { snapshotChunkBytes: 256 * 1024 });
  const b = startPeer(book, "b");
  try {
    const data = new Uint8Array(5 * 1024 * 1024 + 123);
    const rnd = seeded(11);
    for (let i = 0; i < data.length; i += 97) data[i] = rnd.nextInt(256);
    // Messages keep flowing beside the snapshot (separate connection).
    a.transport.send(append("a", "b", 1));
    const ok = await sendSnapshot(a.transport, snapshotMsg("a", "b"), data);
    assert.equal(ok, true);
    assert.equal(b.snapshots.length, 1);
    assert.deepEqual(b.snapshots[0]!.msg, snapshotMsg("a", "b"));
    assert.equal(b.snapshots[0]!.data.byteLength, data.byteLength);
    assert.ok(b.snapshots[0]!.data.every((v, i) => v === data[i]));
    await waitFor(() => b.got.length === 1, 3000, "the message");
    assert.equal(a.transport.stats().snapshotsSent, 1);
    assert.equal(b.transport.stats().snapshotsReceived, 1);
    // An empty snapshot works too.
    assert.equal(await sendSnapshot(a.transport, snapshotMsg("a", "b"), new Uint8Array(0)), true);
    assert.equal(b.snapshots[1]!.data.byteLength, 0);
  } finally {
    await a.stop();
    await b.stop();
  }
});

Deno.test("snapshot failures: receiver gone, too large, transport closed -> done(false)", async () => {
  const book: Book = new Map();
  const a = startPeer(book, "a");
  const b = startPeer(book, "b", { maxSnapshotBytes: 1000 });
  try {
    book.set("gone", `127.0.0.1:${freePort()}`);
    assert.equal(
      await sendSnapshot(a.transport, snapshotMsg("a", "gone"), new Uint8Array(10)),
      false,
    );
    assert.equal(
      await sendSnapshot(a.transport, snapshotMsg("a", "unknown"), new Uint8Array(10)),
      false,
    );
    assert.equal(
      await sendSnapshot(a.transport, snapshotMsg("a", "b"), new Uint8Array(2000)),
      false,
    );
    assert.equal(b.snapshots.length, 0);
    assert.equal(b.transport.stats().inboundErrors, 1);
    // A receiver that dies mid-transfer.
    const c = startPeer(book, "c");
    const big = new Uint8Array(64 * 1024 * 1024);
    const pending = sendSnapshot(a.transport, snapshotMsg("a", "c"), big);
    await waitFor(() => c.transport.stats().bytesReceived > 0, 3000, "transfer started");
    await c.stop();
    assert.equal(await pending, false);
    assert.equal(c.snapshots.length, 0);
    a.transport.close();
    assert.equal(await sendSnapshot(a.transport, snapshotMsg("a", "b"), new Uint8Array(1)), false);
    assert.equal(a.transport.stats().snapshotsFailed, 5);
    assert.equal(a.transport.stats().snapshotsSent, 0);
  } finally {
    await a.stop();
    await b.stop();
  }
});

Deno.test("garbage on the Raft port closes that connection; other traffic continues", async () => {
  const book: Book = new Map();
  const a = startPeer(book, "a");
  const b = startPeer(book, "b");
  try {
    a.transport.send(append("a", "b", 1));
    await waitFor(() => b.got.length === 1, 3000, "first message");
    const rnd = seeded(3);
    const garbage: Uint8Array[] = [
      // Random bytes as a frame of type "messages".
      new Uint8Array([FRAME_MESSAGES, ...Array.from({ length: 50 }, () => rnd.nextInt(256))]),
      // A valid batch with one byte flipped into an unknown kind.
      (() => {
        const batch = encodeMessages([append("x", "b", 1)]);
        batch[2] = 250;
        return new Uint8Array([FRAME_MESSAGES, ...batch]);
      })(),
      new Uint8Array([99]), // unknown frame type
      new Uint8Array([3, 1, 2, 3]), // snapshot chunk outside a transfer
      new Uint8Array(0), // empty frame
    ];
    for (const [i, payload] of garbage.entries()) {
      const conn = await dialService(b.mux.address, SERVICE_RAFT);
      await writeFrames(conn, [payload]);
      assert.equal(await conn.read(new Uint8Array(1)), null, `garbage #${i} closes`);
      conn.close();
    }
    // A length prefix beyond the maximum frame size.
    const conn = await dialService(b.mux.address, SERVICE_RAFT);
    await conn.write(new Uint8Array([0xff, 0xff, 0xff, 0xff]));
    assert.equal(await conn.read(new Uint8Array(1)), null);
    conn.close();
    // Raw random bytes (no framing at all).
    const raw = await dialService(b.mux.address, SERVICE_RAFT);
    await raw.write(encodeFrames([new Uint8Array([FRAME_MESSAGES, 1, 5])]));
    assert.equal(await raw.read(new Uint8Array(1)), null);
    raw.close();
    await waitFor(() => b.transport.stats().inboundErrors === 7, 3000, "7 inbound errors");
    a.transport.send(append("a", "b", 2));
    await waitFor(() => b.got.length === 2, 3000, "traffic after garbage");
    assert.equal(b.got.length, 2);
  } finally {
    await a.stop();
    await b.stop();
  }
});

Deno.test("messages arriving before listen() are dropped and counted", async () => {
  const book: Book = new Map();
  const a = startPeer(book, "a");
  const mux = Mux.listen({ hostname: "127.0.0.1", port: 0 });
  book.set("b", mux.address);
  const b = new TcpTransport({ self: "b", resolve: (x) => book.get(x), mux });
  try {
    a.transport.send(append("a", "b", 1));
    await waitFor(() => b.stats().receivedDropped === 1, 3000, "dropped before listen");
    const got: Message[] = [];
    b.listen({ onMessage: (m) => void got.push(m), onSnapshot: () => {} });
    a.transport.send(append("a", "b", 2));
    await waitFor(() => got.length === 1, 3000, "delivered after listen");
  } finally {
    await a.stop();
    await b.shutdown();
    await mux.close();
  }
});

Deno.test("after close, sends are no-ops and nothing stays open", async () => {
  const book: Book = new Map();
  const a = startPeer(book, "a");
  const b = startPeer(book, "b");
  a.transport.send(append("a", "b", 1));
  await waitFor(() => b.got.length === 1, 3000, "first message");
  await a.stop();
  a.transport.send(append("a", "b", 2));
  assert.equal(a.transport.stats().peers["b"]!.queued, 0);
  await waitFor(() => b.transport.stats().inboundOpen === 0, 3000, "inbound closed");
  await b.stop();
  assert.equal(b.mux.stats().open, 0);
});

Deno.test("a receiver that never acknowledges fails the snapshot after the idle timeout", async () => {
  const book: Book = new Map();
  const a = startPeer(book, "a", { snapshotIdleTimeoutMs: 200 });
  const mux = Mux.listen({ hostname: "127.0.0.1", port: 0 });
  book.set("mute", mux.address);
  // Reads everything, never answers.
  mux.handle(SERVICE_RAFT, async (conn) => {
    const buf = new Uint8Array(64 * 1024);
    try {
      while ((await conn.read(buf)) !== null) {
        // discard
      }
    } catch {
      // closed
    }
  });
  try {
    const t0 = performance.now();
    const ok = await sendSnapshot(a.transport, snapshotMsg("a", "mute"), new Uint8Array(100_000));
    const took = performance.now() - t0;
    assert.equal(ok, false);
    assert.ok(took >= 150 && took < 3000, `failed after ${took} ms`);
  } finally {
    await a.stop();
    await mux.close();
  }
});

Deno.test("shutdown abandons a dial in progress at once", async () => {
  const book: Book = new Map([["b", "127.0.0.1:1"]]);
  const a = startPeer(book, "a", {
    connect: () => new Promise<Deno.Conn>(() => {}), // a peer that never answers
    dialTimeoutMs: 60_000,
  });
  a.transport.send(append("a", "b", 1));
  await delay(20);
  const t0 = performance.now();
  await a.stop();
  assert.ok(performance.now() - t0 < 1000, "shutdown waited for the dial");
});

Deno.test("snapshots arriving at once are bounded by maxIncomingSnapshots", async () => {
  const book: Book = new Map();
  const a = startPeer(book, "a");
  const b = startPeer(book, "b", { maxIncomingSnapshots: 1 });
  const raw = await dialService(b.mux.address, SERVICE_RAFT);
  try {
    // A transfer held open by hand: begin, declaring 10 bytes, then silence.
    const batch = encodeMessages([snapshotMsg("x", "b")]);
    const begin = new Uint8Array(9 + batch.byteLength);
    begin[0] = FRAME_SNAPSHOT_BEGIN;
    begin[8] = 10;
    begin.set(batch, 9);
    await writeFrames(raw, [begin]);
    await waitFor(() => b.transport.stats().framesReceived === 1, 3000, "begin received");
    assert.equal(await sendSnapshot(a.transport, snapshotMsg("a", "b"), new Uint8Array(5)), false);
    // The held transfer completes; then the slot is free again.
    await writeFrames(raw, [new Uint8Array([FRAME_SNAPSHOT_CHUNK, ...new Uint8Array(10)])]);
    const end = new Uint8Array(5);
    end[0] = FRAME_SNAPSHOT_END;
    new DataView(end.buffer).setUint32(1, crc32c(new Uint8Array(10)));
    await writeFrames(raw, [end]);
    const ack = new Uint8Array(1);
    assert.equal(await raw.read(ack), 1);
    assert.equal(ack[0], 1);
    assert.equal(await sendSnapshot(a.transport, snapshotMsg("a", "b"), new Uint8Array(5)), true);
    assert.equal(b.snapshots.length, 2);
    assert.equal(b.snapshots[0]!.msg.from, "x");
  } finally {
    raw.close();
    await a.stop();
    await b.stop();
  }
});
