/**
 * An exact, self-describing binary encoding of the plain values the cluster
 * service carries: `undefined`, `null`, booleans, numbers (float64 bit for
 * bit, including -0 and NaN; small integers in 4 bytes), `bigint` (int64 in
 * 8 bytes, any size beyond), strings (UTF-8), `Uint8Array` (raw), arrays
 * and plain objects (own enumerable string keys, in order).
 *
 * ```
 * value = tag:u8 payload
 *   0 undefined | 1 null | 2 false | 3 true
 *   4 float64 (8 bytes LE) | 5 int32 (4 bytes LE)
 *   6 int64 (8 bytes LE) | 7 big integer: sign u8 (0 +, 1 -) | uv n | n bytes magnitude LE
 *   8 string: uv n | n bytes UTF-8 | 9 bytes: uv n | n bytes
 *   10 array: uv count | value* | 11 object: uv count | (uv n | key UTF-8 | value)*
 * ```
 *
 * `uv` is an unsigned LEB128 varint of at most 2^53 - 1. Decoding trusts
 * nothing: every length and count is checked against the bytes left before
 * anything is allocated, nesting is limited, UTF-8 must be valid, varints and
 * big integers must be minimal, unknown tags and trailing bytes are refused
 * with a {@link ValueDecodeError}. Decoded byte arrays are copies, so they
 * never pin or alias the frame buffer they came in. Encoding refuses what it
 * cannot carry exactly (functions, symbols, class instances, Maps, Dates,
 * typed arrays other than Uint8Array) with a {@link ValueEncodeError}.
 *
 * Why not `node:v8` serialize: it is as exact, but in Deno it is a
 * JavaScript walk over per-value ops and cost about a fifth of a forwarded
 * request's CPU time; this codec is several times faster and its format is
 * ours to keep stable.
 *
 * @module
 */

import { ByteReader, ByteWriter } from "../wire/mod.ts";

/** Thrown by {@link decodeValue} for any input that is not a valid encoding. */
export class ValueDecodeError extends Error {
  override readonly name = "ValueDecodeError";
}

/** Thrown by {@link encodeValue} for a value it cannot carry exactly. */
export class ValueEncodeError extends Error {
  override readonly name = "ValueEncodeError";
}

/** Deepest nesting of arrays and objects accepted (and written). */
export const VALUE_MAX_DEPTH = 64;

const T_UNDEFINED = 0;
const T_NULL = 1;
const T_FALSE = 2;
const T_TRUE = 3;
const T_F64 = 4;
const T_I32 = 5;
const T_I64 = 6;
const T_BIGINT = 7;
const T_STRING = 8;
const T_BYTES = 9;
const T_ARRAY = 10;
const T_OBJECT = 11;

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

class Writer extends ByteWriter {
  constructor(capacity: number) {
    super(capacity, (message) => new ValueEncodeError(message));
  }
}

function writeBigint(w: Writer, v: bigint): void {
  if (v >= INT64_MIN && v <= INT64_MAX) {
    w.ensure(9);
    w.buf[w.pos++] = T_I64;
    w.view.setBigInt64(w.pos, v, true);
    w.pos += 8;
    return;
  }
  const negative = v < 0n;
  let mag = negative ? -v : v;
  const bytes: number[] = [];
  while (mag > 0n) {
    bytes.push(Number(mag & 0xffn));
    mag >>= 8n;
  }
  w.ensure(2);
  w.buf[w.pos++] = T_BIGINT;
  w.buf[w.pos++] = negative ? 1 : 0;
  w.uv(bytes.length);
  w.ensure(bytes.length);
  for (const b of bytes) w.buf[w.pos++] = b;
}

function writeValue(w: Writer, v: unknown, depth: number): void {
  switch (typeof v) {
    case "undefined":
      w.ensure(1);
      w.buf[w.pos++] = T_UNDEFINED;
      return;
    case "boolean":
      w.ensure(1);
      w.buf[w.pos++] = v ? T_TRUE : T_FALSE;
      return;
    case "number":
      if ((v | 0) === v && !Object.is(v, -0)) {
        w.ensure(5);
        w.buf[w.pos++] = T_I32;
        w.view.setInt32(w.pos, v, true);
        w.pos += 4;
      } else {
        w.ensure(9);
        w.buf[w.pos++] = T_F64;
        w.view.setFloat64(w.pos, v, true);
        w.pos += 8;
      }
      return;
    case "bigint":
      writeBigint(w, v);
      return;
    case "string":
      w.ensure(1);
      w.buf[w.pos++] = T_STRING;
      w.string(v);
      return;
    case "object":
      if (v === null) {
        w.ensure(1);
        w.buf[w.pos++] = T_NULL;
        return;
      }
      if (v instanceof Uint8Array) {
        w.ensure(1);
        w.buf[w.pos++] = T_BYTES;
        w.uv(v.byteLength);
        w.ensure(v.byteLength);
        w.buf.set(v, w.pos);
        w.pos += v.byteLength;
        return;
      }
      if (depth >= VALUE_MAX_DEPTH) {
        throw new ValueEncodeError(`nesting deeper than ${VALUE_MAX_DEPTH}`);
      }
      if (Array.isArray(v)) {
        w.ensure(1);
        w.buf[w.pos++] = T_ARRAY;
        w.uv(v.length);
        for (let i = 0; i < v.length; i++) writeValue(w, v[i], depth + 1);
        return;
      }
      writeObject(w, v, depth);
      return;
    default:
      throw new ValueEncodeError(`cannot encode a ${typeof v}`);
  }
}

function writeObject(w: Writer, v: object, depth: number): void {
  const proto = Object.getPrototypeOf(v);
  if (proto !== Object.prototype && proto !== null) {
    const name = (proto as { constructor?: { name?: string } })?.constructor?.name ?? "object";
    throw new ValueEncodeError(`cannot encode an instance of ${name}`);
  }
  const keys = Object.keys(v);
  w.ensure(1);
  w.buf[w.pos++] = T_OBJECT;
  w.uv(keys.length);
  for (const k of keys) {
    w.string(k);
    writeValue(w, (v as Record<string, unknown>)[k], depth + 1);
  }
}

/** Reused between encodings (allocating typed arrays is what costs most here). */
let scratch: Writer | undefined;
const SCRATCH_BYTES = 64 * 1024;

/**
 * Encodes `value` into a fresh exact-length byte array, after `prefixBytes`
 * zero bytes that the caller fills in (a message header), so a whole
 * message costs one allocation.
 */
export function encodeValue(value: unknown, prefixBytes = 0): Uint8Array {
  const w = scratch ?? new Writer(SCRATCH_BYTES);
  scratch = undefined; // Not shared with a nested call (e.g. from a getter).
  try {
    w.pos = 0;
    w.ensure(prefixBytes);
    w.buf.fill(0, 0, prefixBytes);
    w.pos = prefixBytes;
    writeValue(w, value, 0);
    return w.buf.slice(0, w.pos);
  } finally {
    // Keep the scratch buffer unless a huge value grew it.
    if (w.buf.length <= 16 * SCRATCH_BYTES) scratch = w;
  }
}

class Reader extends ByteReader {
  constructor(buf: Uint8Array) {
    super(buf, (message) => new ValueDecodeError(message));
  }
}

function readValue(r: Reader, depth: number): unknown {
  const tag = r.u8("value tag");
  switch (tag) {
    case T_UNDEFINED:
      return undefined;
    case T_NULL:
      return null;
    case T_FALSE:
      return false;
    case T_TRUE:
      return true;
    case T_F64: {
      r.need(8, "float64");
      const v = r.view.getFloat64(r.pos, true);
      r.pos += 8;
      return v;
    }
    case T_I32: {
      r.need(4, "int32");
      const v = r.view.getInt32(r.pos, true);
      r.pos += 4;
      return v;
    }
    case T_I64: {
      r.need(8, "int64");
      const v = r.view.getBigInt64(r.pos, true);
      r.pos += 8;
      return v;
    }
    case T_BIGINT:
      return readBigint(r);
    case T_STRING:
      return r.string("string");
    case T_BYTES: {
      const n = r.uv("bytes length");
      r.need(n, "bytes");
      const v = r.buf.slice(r.pos, r.pos + n);
      r.pos += n;
      return v;
    }
    case T_ARRAY: {
      if (depth >= VALUE_MAX_DEPTH) throw new ValueDecodeError("nesting too deep");
      const n = r.uv("array length");
      // Every element takes at least one byte: never allocate beyond the input.
      if (n > r.left) throw new ValueDecodeError(`array length ${n} exceeds input`);
      const out = new Array(n);
      for (let i = 0; i < n; i++) out[i] = readValue(r, depth + 1);
      return out;
    }
    case T_OBJECT: {
      if (depth >= VALUE_MAX_DEPTH) throw new ValueDecodeError("nesting too deep");
      const n = r.uv("object size");
      if (n * 2 > r.left) throw new ValueDecodeError(`object size ${n} exceeds input`);
      const out: Record<string, unknown> = {};
      for (let i = 0; i < n; i++) {
        const key = r.string("object key");
        const value = readValue(r, depth + 1);
        if (key === "__proto__") {
          // A plain assignment would replace the prototype instead.
          Object.defineProperty(out, key, {
            value,
            enumerable: true,
            writable: true,
            configurable: true,
          });
        } else {
          out[key] = value;
        }
      }
      return out;
    }
    default:
      throw new ValueDecodeError(`unknown value tag ${tag}`);
  }
}

function readBigint(r: Reader): bigint {
  const sign = r.u8("big integer sign");
  if (sign > 1) throw new ValueDecodeError(`bad big integer sign ${sign}`);
  const n = r.uv("big integer length");
  r.need(n, "big integer");
  if (n === 0 || r.buf[r.pos + n - 1] === 0) {
    throw new ValueDecodeError("big integer not minimal");
  }
  let mag = 0n;
  for (let i = n - 1; i >= 0; i--) mag = (mag << 8n) | BigInt(r.buf[r.pos + i]!);
  r.pos += n;
  const v = sign === 1 ? -mag : mag;
  if (v >= INT64_MIN && v <= INT64_MAX) {
    throw new ValueDecodeError("big integer within int64 must use the int64 tag");
  }
  return v;
}

/**
 * Decodes bytes produced by {@link encodeValue}. Throws
 * {@link ValueDecodeError} for anything else, and no other error type.
 */
export function decodeValue(bytes: Uint8Array): unknown {
  const r = new Reader(bytes);
  const v = readValue(r, 0);
  if (r.left !== 0) throw new ValueDecodeError(`${r.left} trailing bytes`);
  return v;
}
