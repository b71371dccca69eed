/**
 * Exact binary codec of Raft {@link Message} batches.
 *
 * Layout (all integers unsigned LEB128 varints unless noted, strings are a
 * varint byte length + UTF-8):
 *
 * ```
 * batch    = version:u8(=1) count msg*count
 * msg      = kind:u8 from to term index logTerm commit rejectHint flags:u8 context
 *            entryCount entry*entryCount [snapshot]          (snapshot iff flags&2)
 * flags    = 1 reject | 2 snapshot present
 * entry    = kind:u8(0 normal, 1 config) term index dataLength data
 * snapshot = index term voterCount voter* learnerCount learner* hasContext:u8
 *            [contextCount (member value)*]                  (iff hasContext = 1)
 * ```
 *
 * Decoding trusts nothing: every length and count is checked against the
 * bytes left before anything is allocated, varints are limited to safe
 * integers, UTF-8 must be valid, unknown kinds/flags and trailing bytes are
 * refused. Any malformation throws {@link CodecError} and nothing else.
 * Decoded entry data are views into one copy of the batch (or, on request,
 * into the input itself): one allocation per batch, not one per entry.
 *
 * @module
 */

import { MESSAGE_KINDS } from "../raft/types.ts";
import type { ConfState, Entry, Message, MessageKind, SnapshotMeta } from "../raft/types.ts";

/** Version byte of the batch format. */
export const CODEC_VERSION = 1;

/** Bytes could not be decoded (or a message could not be encoded): garbage, truncation, bad version. */
export class CodecError extends Error {
  override readonly name = "CodecError";
}

const KINDS: readonly MessageKind[] = MESSAGE_KINDS;
const KIND_CODE: ReadonlyMap<MessageKind, number> = new Map(KINDS.map((k, i) => [k, i]));
const FLAG_REJECT = 1;
const FLAG_SNAPSHOT = 2;
const MAX_VARINT_BYTES = 8; // 8 * 7 = 56 bits > 2^53
const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder("utf-8", { fatal: true });

// ------------------------------------------------------------------ encoding

/** Encodes a batch of messages. Throws {@link CodecError} on a value the format cannot carry (a bug upstream). */
export function encodeMessages(msgs: readonly Message[]): Uint8Array {
  return encodeWithHeadroom(msgs, 0);
}

/**
 * Encodes a batch of messages leaving `headroom` zero bytes in front (for a
 * frame header written in place, saving a copy).
 */
export function encodeWithHeadroom(msgs: readonly Message[], headroom: number): Uint8Array {
  const w = new Writer(headroom + 1 + 10 + msgs.reduce((n, m) => n + messageBound(m), 0));
  w.at = headroom;
  w.u8(CODEC_VERSION);
  w.uvarint(msgs.length);
  for (const m of msgs) writeMessage(w, m);
  return w.buf.subarray(0, w.at);
}

/** An upper bound on the encoded size of `m` in a batch (cheap: for queue accounting and batch splitting). */
export function messageBound(m: Message): number {
  let n = 1 + 5 * 10 + 1 + stringBound(m.from) + stringBound(m.to) + stringBound(m.context) + 10;
  for (const e of m.entries) n += 1 + 30 + e.data.byteLength;
  const s = m.snapshot;
  if (s !== undefined) {
    n += 20 + 10 + 10 + 1 + 10;
    for (const v of s.conf.voters) n += stringBound(v);
    for (const l of s.conf.learners) n += stringBound(l);
    for (const [k, v] of Object.entries(s.conf.context ?? {})) n += stringBound(k) + stringBound(v);
  }
  return n;
}

function stringBound(s: string): number {
  return 10 + s.length * 3;
}

function writeMessage(w: Writer, m: Message): void {
  const code = KIND_CODE.get(m.kind);
  if (code === undefined) throw new CodecError(`cannot encode message kind ${String(m.kind)}`);
  w.u8(code);
  w.string(m.from);
  w.string(m.to);
  w.uvarint(m.term);
  w.uvarint(m.index);
  w.uvarint(m.logTerm);
  w.uvarint(m.commit);
  w.uvarint(m.rejectHint);
  w.u8((m.reject ? FLAG_REJECT : 0) | (m.snapshot !== undefined ? FLAG_SNAPSHOT : 0));
  w.string(m.context);
  w.uvarint(m.entries.length);
  for (const e of m.entries) {
    w.u8(e.kind === "normal" ? 0 : e.kind === "config" ? 1 : badEntryKind(e.kind));
    w.uvarint(e.term);
    w.uvarint(e.index);
    w.uvarint(e.data.byteLength);
    w.bytes(e.data);
  }
  if (m.snapshot !== undefined) writeSnapshot(w, m.snapshot);
}

function badEntryKind(kind: unknown): never {
  throw new CodecError(`cannot encode entry kind ${String(kind)}`);
}

function writeSnapshot(w: Writer, s: SnapshotMeta): void {
  w.uvarint(s.index);
  w.uvarint(s.term);
  w.uvarint(s.conf.voters.length);
  for (const v of s.conf.voters) w.string(v);
  w.uvarint(s.conf.learners.length);
  for (const l of s.conf.learners) w.string(l);
  const ctx = s.conf.context;
  if (ctx === undefined) {
    w.u8(0);
    return;
  }
  w.u8(1);
  const pairs = Object.entries(ctx);
  w.uvarint(pairs.length);
  for (const [k, v] of pairs) {
    w.string(k);
    w.string(v);
  }
}

/** Writes into a buffer sized by an upper bound computed beforehand. */
class Writer {
  readonly buf: Uint8Array;
  at = 0;
  readonly #recent: { text: string; bytes: Uint8Array }[] = [];

  constructor(bound: number) {
    this.buf = new Uint8Array(bound);
  }

  u8(v: number): void {
    this.buf[this.at++] = v;
  }

  uvarint(v: number): void {
    if (!(Number.isSafeInteger(v) && v >= 0)) {
      throw new CodecError(`cannot encode ${v}: not a non-negative safe integer`);
    }
    const buf = this.buf;
    let at = this.at;
    while (v > 0x7fff_ffff) {
      buf[at++] = (v % 128) | 0x80;
      v = Math.floor(v / 128);
    }
    while (v > 0x7f) {
      buf[at++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    buf[at++] = v;
    this.at = at;
  }

  string(s: string): void {
    if (typeof s !== "string") throw new CodecError(`cannot encode ${typeof s} as a string`);
    if (s.length === 0) {
      this.buf[this.at++] = 0;
      return;
    }
    if (s.length < 43) {
      // Short (ids, contexts): a one-byte length (<= 42*3 = 126 bytes), and
      // ids repeat in every message of a batch: copy a recent encoding.
      const buf = this.buf;
      for (const c of this.#recent) {
        if (c.text !== s) continue;
        buf[this.at] = c.bytes.byteLength;
        buf.set(c.bytes, this.at + 1);
        this.at += 1 + c.bytes.byteLength;
        return;
      }
      const { written } = utf8Encoder.encodeInto(s, buf.subarray(this.at + 1));
      buf[this.at] = written;
      if (this.#recent.length === RECENT_STRINGS) this.#recent.pop();
      this.#recent.unshift({ text: s, bytes: buf.slice(this.at + 1, this.at + 1 + written) });
      this.at += 1 + written;
      return;
    }
    const bytes = utf8Encoder.encode(s);
    this.uvarint(bytes.byteLength);
    this.bytes(bytes);
  }

  bytes(b: Uint8Array): void {
    this.buf.set(b, this.at);
    this.at += b.byteLength;
  }
}

// ------------------------------------------------------------------ decoding

/** Options of {@link decodeMessages}. */
export interface DecodeOptions {
  /**
   * Entry data become views into `bytes` instead of into one private copy of
   * it. Saves a copy when the caller never reuses `bytes` (a FrameReader
   * frame); default false.
   */
  readonly views?: boolean;
}

/**
 * Decodes a batch made by {@link encodeMessages}. Throws {@link CodecError}
 * on anything else. Entry data are views into one copy of `bytes` made per
 * call (or into `bytes` itself with `views: true`).
 */
export function decodeMessages(bytes: Uint8Array, options: DecodeOptions = {}): Message[] {
  const r = new Reader(options.views ? bytes : bytes.slice());
  const version = r.u8();
  if (version !== CODEC_VERSION) {
    throw new CodecError(
      `unsupported message batch version ${version} (expected ${CODEC_VERSION})`,
    );
  }
  const count = r.count(MIN_MESSAGE_BYTES);
  const out: Message[] = [];
  for (let i = 0; i < count; i++) out.push(readMessage(r));
  if (r.left() !== 0) throw new CodecError(`${r.left()} trailing bytes after ${count} messages`);
  return out;
}

/** kind + from + to + 5 numbers + flags + context + entry count. */
const MIN_MESSAGE_BYTES = 11;
/** kind + term + index + data length. */
const MIN_ENTRY_BYTES = 4;

function readMessage(r: Reader): Message {
  const code = r.u8();
  const kind = KINDS[code];
  if (kind === undefined) throw new CodecError(`unknown message kind code ${code}`);
  const from = r.string();
  const to = r.string();
  const term = r.uvarint();
  const index = r.uvarint();
  const logTerm = r.uvarint();
  const commit = r.uvarint();
  const rejectHint = r.uvarint();
  const flags = r.u8();
  if ((flags & ~(FLAG_REJECT | FLAG_SNAPSHOT)) !== 0) {
    throw new CodecError(`unknown message flags ${flags}`);
  }
  const context = r.string();
  const entryCount = r.count(MIN_ENTRY_BYTES);
  const entries: Entry[] = [];
  for (let i = 0; i < entryCount; i++) {
    const k = r.u8();
    if (k > 1) throw new CodecError(`unknown entry kind code ${k}`);
    const eTerm = r.uvarint();
    const eIndex = r.uvarint();
    const data = r.bytes(r.uvarint());
    entries.push({ term: eTerm, index: eIndex, kind: k === 0 ? "normal" : "config", data });
  }
  const base = {
    kind,
    from,
    to,
    term,
    index,
    logTerm,
    entries,
    commit,
    reject: (flags & FLAG_REJECT) !== 0,
    rejectHint,
    context,
  };
  if ((flags & FLAG_SNAPSHOT) === 0) return base;
  return { ...base, snapshot: readSnapshot(r) };
}

function readSnapshot(r: Reader): SnapshotMeta {
  const index = r.uvarint();
  const term = r.uvarint();
  const voters = r.strings();
  const learners = r.strings();
  const hasContext = r.u8();
  if (hasContext > 1) throw new CodecError(`bad context marker ${hasContext}`);
  if (hasContext === 0) return { index, term, conf: { voters, learners } };
  const n = r.count(2);
  const context: Record<string, string> = {};
  for (let i = 0; i < n; i++) {
    const k = r.string();
    const v = r.string();
    if (Object.hasOwn(context, k)) throw new CodecError(`duplicate context member ${k}`);
    // defineProperty: a member named "__proto__" stays an ordinary key.
    Object.defineProperty(context, k, {
      value: v,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  const conf: ConfState = { voters, learners, context };
  return { index, term, conf };
}

/** Strings remembered per batch, and the longest remembered. */
const RECENT_STRINGS = 4;
const RECENT_STRING_BYTES = 64;

function sameBytes(a: Uint8Array, buf: Uint8Array, at: number): boolean {
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== buf[at + i]) return false;
  return true;
}

/** Bounds-checked cursor over untrusted bytes. */
class Reader {
  readonly #buf: Uint8Array;
  #at = 0;
  readonly #recent: { bytes: Uint8Array; text: string }[] = [];

  constructor(buf: Uint8Array) {
    this.#buf = buf;
  }

  left(): number {
    return this.#buf.byteLength - this.#at;
  }

  u8(): number {
    if (this.#at >= this.#buf.byteLength) throw new CodecError("truncated: expected a byte");
    return this.#buf[this.#at++]!;
  }

  uvarint(): number {
    const buf = this.#buf;
    const first = buf[this.#at];
    if (first !== undefined && first < 0x80) {
      this.#at++;
      return first;
    }
    let result = 0;
    let scale = 1;
    for (let i = 0; i < MAX_VARINT_BYTES; i++) {
      if (this.#at >= buf.byteLength) throw new CodecError("truncated varint");
      const b = buf[this.#at++]!;
      result += (b & 0x7f) * scale;
      if (b < 0x80) {
        if (!Number.isSafeInteger(result)) throw new CodecError("varint beyond 2^53");
        if (b === 0 && i > 0) throw new CodecError("overlong varint");
        return result;
      }
      scale *= 128;
    }
    throw new CodecError(`varint longer than ${MAX_VARINT_BYTES} bytes`);
  }

  /** A count of items each at least `minBytes` long: bounded by the bytes left. */
  count(minBytes: number): number {
    const n = this.uvarint();
    if (n * minBytes > this.left()) {
      throw new CodecError(`count ${n} cannot fit in the ${this.left()} bytes left`);
    }
    return n;
  }

  bytes(n: number): Uint8Array {
    if (n > this.left()) throw new CodecError(`length ${n} exceeds the ${this.left()} bytes left`);
    const out = this.#buf.subarray(this.#at, this.#at + n);
    this.#at += n;
    return out;
  }

  string(): string {
    const n = this.uvarint();
    if (n === 0) return "";
    if (n > this.left()) {
      throw new CodecError(`string of ${n} bytes exceeds the ${this.left()} left`);
    }
    const at = this.#at;
    this.#at += n;
    // Ids repeat in every message of a batch: reuse a recent decoding.
    const cache = this.#recent;
    for (let i = 0; i < cache.length; i++) {
      const c = cache[i]!;
      if (c.bytes.byteLength === n && sameBytes(c.bytes, this.#buf, at)) return c.text;
    }
    const view = this.#buf.subarray(at, at + n);
    let text: string;
    try {
      text = utf8Decoder.decode(view);
    } catch {
      throw new CodecError("invalid UTF-8 in a string");
    }
    if (n <= RECENT_STRING_BYTES) {
      if (cache.length === RECENT_STRINGS) cache.pop();
      cache.unshift({ bytes: view, text });
    }
    return text;
  }

  strings(): string[] {
    const n = this.count(1);
    const out: string[] = [];
    for (let i = 0; i < n; i++) out.push(this.string());
    return out;
  }
}
