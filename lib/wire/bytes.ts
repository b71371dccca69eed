/**
 * Growable byte writer and bounds-checked byte reader shared by the binary
 * codecs (the command codec in lib/db, the value codec of the cluster
 * service). Lengths and counts are unsigned LEB128 varints limited to safe
 * integers; strings are UTF-8 with a length prefix.
 *
 * The reader never reads past its buffer and never allocates more than the
 * input could describe: every failure is an error built by the codec's own
 * `fail` function, so each codec keeps its typed error.
 *
 * @module
 */

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** Builds the codec's typed error from a message. */
export type FailFn = (message: string) => Error;

/** Bytes needed for `v` as a varint. */
export function varintSize(v: number): number {
  let n = 1;
  while (v >= 0x80) {
    v = Math.floor(v / 0x80);
    n++;
  }
  return n;
}

/** Appends to a buffer that doubles as needed. */
export class ByteWriter {
  buf: Uint8Array;
  view: DataView;
  pos = 0;

  constructor(capacity: number, private readonly fail: FailFn) {
    this.buf = new Uint8Array(Math.max(16, capacity));
    this.view = new DataView(this.buf.buffer);
  }

  /** Makes room for `extra` more bytes. */
  ensure(extra: number): void {
    const need = this.pos + extra;
    if (need <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < need) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  u8(v: number): void {
    this.ensure(1);
    this.buf[this.pos++] = v;
  }

  /** A non-negative safe integer as a varint. */
  uv(v: number): void {
    if (!Number.isSafeInteger(v) || v < 0) throw this.fail(`not a non-negative safe integer: ${v}`);
    this.ensure(8);
    this.putUv(v);
  }

  /** Writes a varint into space already reserved. */
  putUv(v: number): void {
    while (v >= 0x80) {
      this.buf[this.pos++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    this.buf[this.pos++] = v;
  }

  /** A length-prefixed UTF-8 string. */
  string(s: string): void {
    // Short ASCII strings (names, types, most keys) skip the encoder call.
    if (s.length < 64 && isAscii(s)) {
      this.ensure(1 + s.length);
      this.buf[this.pos++] = s.length;
      for (let i = 0; i < s.length; i++) this.buf[this.pos++] = s.charCodeAt(i);
      return;
    }
    // Reserve the worst case (3 bytes per UTF-16 unit), encode, then move the
    // bytes if the real length needs a shorter varint than reserved.
    const max = s.length * 3;
    const lenBytes = varintSize(max);
    this.ensure(lenBytes + max);
    const start = this.pos + lenBytes;
    const { written } = encoder.encodeInto(s, this.buf.subarray(start));
    const actual = varintSize(written);
    if (actual !== lenBytes) this.buf.copyWithin(this.pos + actual, start, start + written);
    this.putUv(written);
    this.pos += written;
  }

  /** Length-prefixed raw bytes. */
  bytes(b: Uint8Array): void {
    this.uv(b.length);
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }

  /** A copy of what was written. */
  result(): Uint8Array {
    return this.buf.slice(0, this.pos);
  }
}

function isAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7f) return false;
  return true;
}

/** Reads from a buffer, checking every length against the bytes left. */
export class ByteReader {
  readonly view: DataView;
  pos = 0;

  constructor(readonly buf: Uint8Array, readonly fail: FailFn) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  get left(): number {
    return this.buf.length - this.pos;
  }

  need(n: number, what: string): void {
    if (n > this.left) throw this.fail(`truncated ${what}: need ${n} bytes, ${this.left} left`);
  }

  u8(what: string): number {
    this.need(1, what);
    return this.buf[this.pos++]!;
  }

  /** A varint; overlong, oversized and unterminated encodings are refused. */
  uv(what: string): number {
    let v = 0;
    let scale = 1;
    for (let i = 0; i < 8; i++) {
      const b = this.u8(what);
      v += (b & 0x7f) * scale;
      if ((b & 0x80) === 0) {
        if (i > 0 && b === 0) throw this.fail(`overlong varint in ${what}`);
        if (!Number.isSafeInteger(v)) throw this.fail(`varint too large in ${what}`);
        return v;
      }
      scale *= 0x80;
    }
    throw this.fail(`varint too long in ${what}`);
  }

  /** Length-prefixed bytes, as a view into the input (no copy). */
  bytes(what: string): Uint8Array {
    const n = this.uv(what);
    this.need(n, what);
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }

  /** A length-prefixed UTF-8 string; invalid UTF-8 is refused. */
  string(what: string): string {
    const n = this.uv(what);
    this.need(n, what);
    const start = this.pos;
    this.pos += n;
    // Short ASCII: build the string directly (cheaper than a decoder call).
    if (n < 32) {
      let s = "";
      let i = start;
      for (; i < start + n; i++) {
        const c = this.buf[i]!;
        if (c > 0x7f) break;
        s += String.fromCharCode(c);
      }
      if (i === start + n) return s;
    }
    try {
      return decoder.decode(this.buf.subarray(start, start + n));
    } catch {
      throw this.fail(`invalid UTF-8 in ${what}`);
    }
  }
}
