/**
 * The message codec: exact round trips of every kind and field, and garbage
 * (random bytes, mutations of valid encodings) failing only with CodecError.
 */

import assert from "node:assert/strict";
import { MESSAGE_KINDS } from "../../lib/raft/types.ts";
import type { Entry, Message, MessageKind } from "../../lib/raft/types.ts";
import {
  CODEC_VERSION,
  CodecError,
  decodeMessages,
  encodeMessages,
} from "../../lib/transport/codec.ts";
import { seeded } from "./helpers.ts";

const KINDS: readonly MessageKind[] = MESSAGE_KINDS;

function bytes(...xs: number[]): Uint8Array {
  return new Uint8Array(xs);
}

function base(kind: MessageKind, over: Partial<Message> = {}): Message {
  return {
    kind,
    from: "10.0.0.1:4002",
    to: "node-2",
    term: 7,
    index: 0,
    logTerm: 0,
    entries: [],
    commit: 0,
    reject: false,
    rejectHint: 0,
    context: "",
    ...over,
  };
}

/** One message of every kind, with every field set to something non-default somewhere. */
function sampleMessages(): Message[] {
  const entries: Entry[] = [
    { term: 3, index: 41, kind: "normal", data: new Uint8Array(0) },
    { term: 3, index: 42, kind: "normal", data: bytes(0, 255, 128, 127, 0, 10, 13) },
    { term: 4, index: 43, kind: "config", data: new TextEncoder().encode('{"kind":"addVoter"}') },
    {
      term: 2 ** 40,
      index: Number.MAX_SAFE_INTEGER,
      kind: "normal",
      data: new Uint8Array(70_000).fill(0xab),
    },
  ];
  const msgs = KINDS.map((kind, i) => base(kind, { term: i + 1 }));
  msgs.push(
    base("append", { index: 40, logTerm: 3, commit: 39, entries }),
    base("appendResp", { reject: true, rejectHint: 12, logTerm: 2, index: 40 }),
    base("heartbeat", { commit: 5, context: "r17" }),
    base("heartbeatResp", { context: "ünïcødé ✓ 🚀".repeat(10) }),
    base("vote", { index: 99, logTerm: 9, from: "", to: "" }),
    base("snapshot", {
      snapshot: {
        index: 1000,
        term: 5,
        conf: {
          voters: ["a", "b", "c"],
          learners: ["d"],
          context: { a: "127.0.0.1:4002", b: "[::1]:4004", c: "", d: "host:1", ["__proto__"]: "x" },
        },
      },
    }),
    base("snapshot", { snapshot: { index: 1, term: 1, conf: { voters: [], learners: [] } } }),
    base("snapshot", {
      snapshot: { index: 2, term: 1, conf: { voters: ["x"], learners: [], context: {} } },
    }),
  );
  return msgs;
}

Deno.test("every message kind and field round-trips exactly", () => {
  const msgs = sampleMessages();
  const decoded = decodeMessages(encodeMessages(msgs));
  assert.deepStrictEqual(decoded, msgs);
  // Presence is exact: no snapshot key where there was none; context kept or absent.
  assert.equal("snapshot" in decoded[0]!, false);
  const last = decoded.at(-1)!.snapshot!.conf;
  assert.deepEqual(last.context, {});
  assert.equal("context" in decoded.at(-2)!.snapshot!.conf, false);
  const proto = decoded.at(-3)!.snapshot!.conf.context!;
  assert.equal(Object.getOwnPropertyDescriptor(proto, "__proto__")?.value, "x");
});

Deno.test("each message alone and an empty batch round-trip", () => {
  for (const m of sampleMessages()) {
    assert.deepStrictEqual(decodeMessages(encodeMessages([m])), [m]);
  }
  assert.deepStrictEqual(decodeMessages(encodeMessages([])), []);
});

Deno.test("decoded entry data are independent of the input unless views are requested", () => {
  const m = base("append", { entries: [{ term: 1, index: 1, kind: "normal", data: bytes(1, 2) }] });
  const wire = encodeMessages([m]);
  const [d] = decodeMessages(wire);
  wire.fill(0);
  assert.deepEqual(d!.entries[0]!.data, bytes(1, 2));
  // On request they are views into the input (no copy).
  const wire2 = encodeMessages([m]);
  const [v] = decodeMessages(wire2, { views: true });
  assert.equal(v!.entries[0]!.data.buffer, wire2.buffer);
});

Deno.test("a wrong version, trailing bytes, and unknown codes are CodecErrors", () => {
  const wire = encodeMessages([base("vote")]);
  const wrongVersion = wire.slice();
  wrongVersion[0] = CODEC_VERSION + 1;
  assert.throws(() => decodeMessages(wrongVersion), CodecError);
  const trailing = new Uint8Array(wire.byteLength + 1);
  trailing.set(wire);
  assert.throws(() => decodeMessages(trailing), CodecError);
  const badKind = wire.slice();
  badKind[2] = 200; // version, count, kind
  assert.throws(() => decodeMessages(badKind), /unknown message kind/);
  assert.throws(() => decodeMessages(new Uint8Array(0)), CodecError);
});

Deno.test("huge declared counts and lengths fail fast without allocating", () => {
  // version 1, count = 2^49 as a varint.
  const hugeCount = bytes(CODEC_VERSION, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01);
  assert.throws(() => decodeMessages(hugeCount), CodecError);
  // One message whose `from` string declares 2^40 bytes.
  const hugeString = bytes(CODEC_VERSION, 1, 0, 0x80, 0x80, 0x80, 0x80, 0x80, 0x20);
  assert.throws(() => decodeMessages(hugeString), CodecError);
  // Varints longer than 8 bytes or beyond 2^53.
  assert.throws(
    () => decodeMessages(bytes(CODEC_VERSION, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1)),
    CodecError,
  );
  assert.throws(
    () => decodeMessages(bytes(CODEC_VERSION, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f)),
    /beyond 2\^53/,
  );
});

Deno.test("encoding refuses values the format cannot carry", () => {
  assert.throws(() => encodeMessages([base("vote", { term: -1 })]), CodecError);
  assert.throws(() => encodeMessages([base("vote", { term: 1.5 })]), CodecError);
  assert.throws(() => encodeMessages([base("bogus" as MessageKind)]), CodecError);
});

/** Decodes `input`; anything thrown must be a CodecError. Returns whether it decoded. */
function decodesOrCodecError(input: Uint8Array, label: string): boolean {
  try {
    decodeMessages(input);
    return true;
  } catch (err) {
    if (!(err instanceof CodecError)) {
      throw new Error(`${label}: ${String(err)} is not a CodecError`, { cause: err });
    }
    return false;
  }
}

Deno.test("fuzz: seeded random bytes fail only with CodecError", () => {
  const rnd = seeded(2024);
  for (let i = 0; i < 20_000; i++) {
    const input = new Uint8Array(rnd.nextInt(64));
    for (let j = 0; j < input.length; j++) input[j] = rnd.nextInt(256);
    if (input.length > 0 && rnd.nextInt(2) === 0) input[0] = CODEC_VERSION;
    decodesOrCodecError(input, `random #${i}`);
  }
});

Deno.test("fuzz: mutated valid encodings fail only with CodecError (or decode)", () => {
  const rnd = seeded(99);
  const msgs = sampleMessages().map((m) => // Keep the fuzz fast: no 70 kB entry.
  ({ ...m, entries: m.entries.filter((e) => e.data.byteLength < 1000) }));
  const valid = msgs.map((m) => encodeMessages([m]));
  valid.push(encodeMessages(msgs));
  let decoded = 0;
  for (let i = 0; i < 20_000; i++) {
    const input = valid[rnd.nextInt(valid.length)]!.slice();
    const op = rnd.nextInt(4);
    if (op === 0) { // flip bytes
      for (let k = 1 + rnd.nextInt(3); k > 0; k--) {
        input[rnd.nextInt(input.length)] = rnd.nextInt(256);
      }
    } else if (op === 1) { // truncate
      if (decodesOrCodecError(input.subarray(0, rnd.nextInt(input.length)), `cut #${i}`)) decoded++;
      continue;
    } else if (op === 2) { // bit flip
      input[rnd.nextInt(input.length)]! ^= 1 << rnd.nextInt(8);
    } else { // set a byte to a varint continuation
      input[rnd.nextInt(input.length)] = 0x80 | rnd.nextInt(128);
    }
    if (decodesOrCodecError(input, `mutation #${i}`)) decoded++;
  }
  // Some mutations hit data bytes and still decode; most do not.
  assert.ok(decoded > 0 && decoded < 20_000, `decoded ${decoded}`);
});
