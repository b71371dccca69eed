/**
 * Length-prefixed frames: round trips over streams split at every boundary
 * and over real TCP, views that stay valid, oversize and truncated frames.
 */

import assert from "node:assert/strict";
import {
  encodeFrames,
  FrameError,
  FrameReader,
  putFrameHeader,
  writeFrames,
} from "../../lib/transport/frame.ts";
import { seeded, tcpPair } from "./helpers.ts";

function streamOf(bytes: Uint8Array, cuts: number[]): ReadableStream<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let at = 0;
  for (const cut of [...cuts, bytes.byteLength]) {
    chunks.push(bytes.slice(at, cut));
    at = cut;
  }
  return ReadableStream.from(chunks);
}

function payload(n: number, seed: number): Uint8Array {
  const rnd = seeded(seed);
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = rnd.nextInt(256);
  return out;
}

async function readAll(reader: FrameReader): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for (let f = await reader.read(); f !== null; f = await reader.read()) out.push(f);
  return out;
}

Deno.test("frames survive a stream split at every possible boundary", async () => {
  const payloads = [payload(0, 1), payload(1, 2), payload(7, 3), payload(300, 4)];
  const wire = encodeFrames(payloads);
  for (let cut = 0; cut <= wire.byteLength; cut++) {
    const reader = new FrameReader(streamOf(wire, [cut]), { bufferBytes: 16 });
    assert.deepEqual(await readAll(reader), payloads, `cut at ${cut}`);
  }
});

Deno.test("frames survive random chunking with a tiny buffer; earlier views stay intact", async () => {
  const rnd = seeded(7);
  const payloads = Array.from({ length: 200 }, (_, i) => payload(rnd.nextInt(100), i));
  const wire = encodeFrames(payloads);
  const cuts: number[] = [];
  for (let at = rnd.nextInt(10); at < wire.byteLength; at += 1 + rnd.nextInt(40)) cuts.push(at);
  const reader = new FrameReader(streamOf(wire, cuts), { bufferBytes: 16 });
  const got = await readAll(reader);
  // Compared after all reads: a reused buffer would have overwritten early frames.
  assert.deepEqual(got, payloads);
  assert.equal(reader.frames, payloads.length);
});

Deno.test("prefix bytes come before the source", async () => {
  const wire = encodeFrames([payload(10, 1), payload(5, 2)]);
  const reader = new FrameReader(streamOf(wire.subarray(3), []), { prefix: wire.slice(0, 3) });
  assert.deepEqual(await readAll(reader), [payload(10, 1), payload(5, 2)]);
});

Deno.test("a declared length above the maximum is an oversize FrameError and closes the source", async () => {
  const header = new Uint8Array(4);
  putFrameHeader(header, 0, 1025);
  let cancelled = false;
  const stream = new ReadableStream<Uint8Array>({
    start(c) {
      c.enqueue(header);
    },
    cancel() {
      cancelled = true;
    },
  });
  const reader = new FrameReader(stream, { maxFrameBytes: 1024 });
  const err = await reader.read().catch((e) => e);
  assert.ok(err instanceof FrameError);
  assert.equal(err.kind, "oversize");
  assert.ok(cancelled, "source cancelled");
  // Later reads rethrow the same error.
  assert.equal(await reader.read().catch((e) => e), err);
});

Deno.test("a stream ending inside a header or a payload is a truncated FrameError", async () => {
  const wire = encodeFrames([payload(10, 1)]);
  for (const cut of [1, 3, 4, 9, 13]) {
    const reader = new FrameReader(streamOf(wire.slice(0, cut), []));
    const err = await reader.read().catch((e) => e);
    assert.ok(err instanceof FrameError, `cut ${cut}`);
    assert.equal(err.kind, "truncated");
  }
  // A clean end at a boundary is null, not an error.
  const reader = new FrameReader(streamOf(wire, []));
  assert.equal((await reader.read())?.byteLength, 10);
  assert.equal(await reader.read(), null);
});

Deno.test("writeFrames refuses an oversize payload before writing anything", async () => {
  const written: Uint8Array[] = [];
  const sink = {
    write: (p: Uint8Array) => {
      written.push(p.slice());
      return Promise.resolve(p.byteLength);
    },
  };
  const err = await writeFrames(sink, [payload(1, 1), payload(2000, 2)], 1000).catch((e) => e);
  assert.ok(err instanceof FrameError);
  assert.equal(err.kind, "oversize");
  assert.equal(written.length, 0);
});

Deno.test("writeFrames coalesces small frames into one write and handles short writes", async () => {
  const written: Uint8Array[] = [];
  const sink = {
    write: (p: Uint8Array) => {
      const n = Math.min(p.byteLength, 7); // short writes
      written.push(p.slice(0, n));
      return Promise.resolve(n);
    },
  };
  const payloads = [payload(3, 1), payload(4, 2), payload(0, 3)];
  await writeFrames(sink, payloads);
  const all = new Uint8Array(written.reduce((n, w) => n + w.byteLength, 0));
  let at = 0;
  for (const w of written) {
    all.set(w, at);
    at += w.byteLength;
  }
  assert.deepEqual(all, encodeFrames(payloads));
});

Deno.test("writeFrames writes small frames with one write, a large payload without copying it", async () => {
  const written: Uint8Array[] = [];
  const sink = {
    write: (p: Uint8Array) => {
      written.push(p);
      return Promise.resolve(p.byteLength);
    },
  };
  await writeFrames(sink, [payload(3, 1), payload(4, 2), payload(0, 3)]);
  assert.equal(written.length, 1);
  written.length = 0;
  const big = payload(300 * 1024, 4);
  await writeFrames(sink, [payload(3, 1), big, payload(5, 2)]);
  // Small frames + the big one's header, then the big payload itself, then the rest.
  assert.equal(written.length, 3);
  assert.equal(written[1], big);
});

Deno.test("frames over TCP: many small, one empty and one large (direct write) arrive intact", async () => {
  const { client, server, close } = await tcpPair();
  try {
    const big = payload(3 * 1024 * 1024 + 17, 9);
    const smalls = Array.from({ length: 500 }, (_, i) => payload(i % 50, i));
    const sent = [...smalls.slice(0, 250), new Uint8Array(0), big, ...smalls.slice(250)];
    const reading = readAll(new FrameReader(server));
    await writeFrames(client, sent);
    client.close();
    const got = await reading;
    assert.equal(got.length, sent.length);
    assert.deepEqual(got, sent);
  } finally {
    close();
  }
});

Deno.test("an oversize frame over TCP closes the receiving connection", async () => {
  const { client, server, close } = await tcpPair();
  try {
    const reader = new FrameReader(server, { maxFrameBytes: 100 });
    await writeFrames(client, [payload(101, 1)]);
    const err = await reader.read().catch((e) => e);
    assert.ok(err instanceof FrameError);
    assert.equal(err.kind, "oversize");
    // The server side closed: the client sees end of stream.
    assert.equal(await client.read(new Uint8Array(1)), null);
  } finally {
    close();
  }
});
