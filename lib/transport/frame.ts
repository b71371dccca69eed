/**
 * Length-prefixed frames on a byte stream.
 *
 * Wire format: a u32 big-endian payload length, then the payload. A reader
 * has a hard maximum payload size; a declared length above it, a stream that
 * ends inside a frame, or an I/O error closes the connection and surfaces as
 * a {@link FrameError}. A clean end of stream at a frame boundary is `null`.
 *
 * Reading is buffered (one `read` call fetches as many bytes as the kernel
 * has, up to the buffer's free space) and frames are returned as views into
 * that buffer, without copying. The reader never writes into a region it has
 * handed out: when the buffer is full it moves the unread tail into a fresh
 * buffer, so a returned frame stays valid for as long as the caller keeps it
 * (and keeps its buffer alive: copy small payloads you store for long).
 *
 * Buffers for frames up to about 1 MiB are allocated at once; beyond that
 * they grow with the bytes that actually arrived (doubling, capped at the
 * declared frame size), so a peer that merely declares a huge frame costs
 * little memory until it sends the bytes.
 *
 * @module
 */

/** Default hard maximum payload size of one frame: 16 MiB. */
export const DEFAULT_MAX_FRAME_BYTES = 16 * 1024 * 1024;
/** Default read buffer size: 64 KiB. */
export const DEFAULT_READ_BUFFER_BYTES = 64 * 1024;
/** Size of the length prefix. */
export const FRAME_HEADER_BYTES = 4;
/** Largest length a u32 prefix can declare. */
const U32_MAX = 0xffff_ffff;
/**
 * Frames up to this size get their whole buffer at once (one read, no regrowth);
 * larger ones grow with the bytes that arrive.
 */
const EAGER_ALLOC_BYTES = 1024 * 1024 + 1024;
/** Payloads at least this large are written on their own instead of being copied into a batch. */
const WRITE_DIRECT_BYTES = 256 * 1024;

/** Why a frame could not be read or written. */
export type FrameErrorKind = "oversize" | "truncated" | "io";

/**
 * A frame could not be read or written: `oversize` (declared or given length
 * above the maximum), `truncated` (the stream ended inside a frame), `io` (the
 * underlying read or write failed; `cause` holds the original error). The
 * connection has been closed when a reader throws it.
 */
export class FrameError extends Error {
  override readonly name = "FrameError";
  constructor(readonly kind: FrameErrorKind, message: string, options?: ErrorOptions) {
    super(message, options);
  }
}

/** Anything with `read(p)` like `Deno.Conn`: resolves to the bytes read, or null at end of stream. */
export interface ByteReader {
  read(p: Uint8Array): Promise<number | null>;
}

/** Anything with `write(p)` like `Deno.Conn`: resolves to the bytes written (maybe fewer than `p`). */
export interface ByteWriter {
  write(p: Uint8Array): Promise<number>;
}

/** Where frames come from: a `Deno.Conn` (fast path) or a web byte stream. */
export type FrameSource = ByteReader | ReadableStream<Uint8Array>;

/** Options of {@link FrameReader}. */
export interface FrameReaderOptions {
  /** Largest accepted payload in bytes (default {@link DEFAULT_MAX_FRAME_BYTES}). */
  readonly maxFrameBytes?: number;
  /** Initial and minimum buffer size (default {@link DEFAULT_READ_BUFFER_BYTES}). */
  readonly bufferBytes?: number;
  /** Bytes already read from the source that come before anything `read` returns (e.g. a mux's `firstBytes`). */
  readonly prefix?: Uint8Array;
  /**
   * Closes the source on a frame error (default true): `Deno.Conn.close()`,
   * or `cancel()` on a stream. Set false when someone else owns the close.
   */
  readonly closeOnError?: boolean;
}

/**
 * Reads whole frames from a connection or stream. One reader per source; at
 * most one `read()` in flight (reads are sequential by nature).
 *
 * ```ts
 * const frames = new FrameReader(conn, { maxFrameBytes: 1 << 20 });
 * for (let f = await frames.read(); f !== null; f = await frames.read()) handle(f);
 * ```
 */
export class FrameReader {
  readonly #maxFrameBytes: number;
  readonly #bufferBytes: number;
  readonly #closeOnError: boolean;
  readonly #readInto: (dst: Uint8Array) => Promise<number | null>;
  readonly #closeSource: () => void;
  #buf: Uint8Array;
  /** First unconsumed byte of `#buf`. */
  #start = 0;
  /** End of the valid bytes of `#buf`. */
  #end = 0;
  #failed: FrameError | undefined;
  #closed = false;
  #reading = false;
  /** Frames returned so far. */
  frames = 0;
  /** Payload bytes returned so far. */
  bytes = 0;

  constructor(source: FrameSource, options: FrameReaderOptions = {}) {
    this.#maxFrameBytes = options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
    this.#bufferBytes = options.bufferBytes ?? DEFAULT_READ_BUFFER_BYTES;
    this.#closeOnError = options.closeOnError ?? true;
    if (!(this.#maxFrameBytes >= 0 && this.#maxFrameBytes <= U32_MAX)) {
      throw new RangeError(`maxFrameBytes must be in [0, 2^32-1], got ${this.#maxFrameBytes}`);
    }
    if (!(this.#bufferBytes >= 16)) {
      throw new RangeError(`bufferBytes must be at least 16, got ${this.#bufferBytes}`);
    }
    const prefix = options.prefix ?? new Uint8Array(0);
    this.#buf = new Uint8Array(Math.max(this.#bufferBytes, prefix.byteLength));
    this.#buf.set(prefix);
    this.#end = prefix.byteLength;
    if (source instanceof ReadableStream) {
      const stream = streamReader(source);
      this.#readInto = stream.readInto;
      this.#closeSource = stream.cancel;
    } else {
      this.#readInto = (dst) => source.read(dst);
      const closable = source as Partial<{ close(): void }>;
      this.#closeSource = () => {
        try {
          closable.close?.();
        } catch {
          // Already closed by its owner: nothing to do.
        }
      };
    }
  }

  /** Bytes buffered and not yet returned as frames. */
  get buffered(): number {
    return this.#end - this.#start;
  }

  /**
   * The next frame's payload (a view, valid as long as you keep it), or null
   * when the stream ended cleanly at a frame boundary. Throws
   * {@link FrameError} (and closes the source) on an oversize declared length,
   * a stream that ends inside a frame, or an I/O error; later calls rethrow it.
   */
  async read(): Promise<Uint8Array | null> {
    if (this.#failed) throw this.#failed;
    if (this.#reading) throw new Error("FrameReader.read() called while another read is pending");
    this.#reading = true;
    try {
      if (!await this.#fill(FRAME_HEADER_BYTES)) {
        if (this.#end === this.#start) return null;
        throw this.#fail("truncated", `stream ended inside a frame header`);
      }
      const buf = this.#buf;
      const at = this.#start;
      const length =
        ((buf[at]! << 24) | (buf[at + 1]! << 16) | (buf[at + 2]! << 8) | buf[at + 3]!) >>>
        0;
      if (length > this.#maxFrameBytes) {
        throw this.#fail(
          "oversize",
          `frame of ${length} bytes exceeds the maximum of ${this.#maxFrameBytes}`,
        );
      }
      if (!await this.#fill(FRAME_HEADER_BYTES + length)) {
        throw this.#fail(
          "truncated",
          `stream ended inside a frame: ${
            this.#end - this.#start - FRAME_HEADER_BYTES
          } of ${length} bytes`,
        );
      }
      const from = this.#start + FRAME_HEADER_BYTES;
      const frame = this.#buf.subarray(from, from + length);
      this.#start = from + length;
      this.frames++;
      this.bytes += length;
      return frame;
    } finally {
      this.#reading = false;
    }
  }

  /** Closes the source (idempotent). A pending `read` then fails with an `io` FrameError. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#closeSource();
  }

  /** Ensures `n` unread bytes are buffered; false at end of stream. */
  async #fill(n: number): Promise<boolean> {
    if (this.#end - this.#start >= n) return true;
    for (;;) {
      // Too little room from `start`: move the tail to a fresh buffer when
      // this one is full or has consumed frames before the tail.
      const short = this.#buf.byteLength - this.#start < n;
      if (short && (this.#start > 0 || this.#end === this.#buf.byteLength)) this.#grow(n);
      let got: number | null;
      try {
        got = await this.#readInto(this.#buf.subarray(this.#end));
      } catch (err) {
        throw this.#fail("io", `read failed: ${errorText(err)}`, err);
      }
      if (got === null) return false;
      this.#end += got;
      if (this.#end - this.#start >= n) return true;
    }
  }

  /**
   * Moves the unread tail into a fresh buffer (never reusing memory handed
   * out as frames), sized by what arrived so far, capped at the need `n`.
   */
  #grow(n: number): void {
    const avail = this.#end - this.#start;
    const capacity = Math.min(
      Math.max(n, this.#bufferBytes),
      Math.max(this.#bufferBytes, EAGER_ALLOC_BYTES, avail * 2),
    );
    const next = new Uint8Array(capacity);
    next.set(this.#buf.subarray(this.#start, this.#end));
    this.#buf = next;
    this.#start = 0;
    this.#end = avail;
  }

  #fail(kind: FrameErrorKind, message: string, cause?: unknown): FrameError {
    const err = new FrameError(kind, message, cause === undefined ? undefined : { cause });
    this.#failed = err;
    if (this.#closeOnError) this.close();
    return err;
  }
}

/** Adapts a web stream to `readInto(dst)` (copying: streams hand us their own chunks). */
function streamReader(stream: ReadableStream<Uint8Array>): {
  readInto: (dst: Uint8Array) => Promise<number | null>;
  cancel: () => void;
} {
  const reader = stream.getReader();
  let chunk: Uint8Array = new Uint8Array(0);
  return {
    readInto: async (dst) => {
      while (chunk.byteLength === 0) {
        const { value, done } = await reader.read();
        if (done) return null;
        chunk = value;
      }
      const n = Math.min(dst.byteLength, chunk.byteLength);
      dst.set(chunk.subarray(0, n));
      chunk = chunk.subarray(n);
      return n;
    },
    cancel: () => {
      reader.cancel().catch(() => {});
    },
  };
}

/** Writes all of `bytes` (looping over short writes). Errors are the writer's own. */
export async function writeAll(w: ByteWriter, bytes: Uint8Array): Promise<void> {
  let off = 0;
  while (off < bytes.byteLength) {
    off += await w.write(off === 0 ? bytes : bytes.subarray(off));
  }
}

/** Writes the u32 big-endian `length` at `out[at..at+4)`. */
export function putFrameHeader(out: Uint8Array, at: number, length: number): void {
  out[at] = length >>> 24;
  out[at + 1] = (length >>> 16) & 0xff;
  out[at + 2] = (length >>> 8) & 0xff;
  out[at + 3] = length & 0xff;
}

/**
 * Encodes `payloads` as consecutive frames in one new buffer. Throws
 * {@link FrameError} `oversize` when a payload exceeds `maxFrameBytes`.
 */
export function encodeFrames(
  payloads: readonly Uint8Array[],
  maxFrameBytes = DEFAULT_MAX_FRAME_BYTES,
): Uint8Array {
  let total = 0;
  for (const p of payloads) {
    checkPayload(p, maxFrameBytes);
    total += FRAME_HEADER_BYTES + p.byteLength;
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of payloads) {
    putFrameHeader(out, at, p.byteLength);
    out.set(p, at + FRAME_HEADER_BYTES);
    at += FRAME_HEADER_BYTES + p.byteLength;
  }
  return out;
}

/**
 * Writes `payloads` as frames, coalesced into as few writes as possible:
 * small frames are copied into one buffer and written at once; a payload of
 * 256 KiB or more is written as its own header plus the payload itself (no
 * copy). Checks every size before writing anything: an oversize payload
 * throws {@link FrameError} `oversize` and writes nothing. I/O errors are
 * rethrown as {@link FrameError} `io` (the caller owns closing the
 * connection). Callers must not run two `writeFrames` on one connection at
 * once (frames would interleave).
 */
export async function writeFrames(
  w: ByteWriter,
  payloads: readonly Uint8Array[],
  maxFrameBytes = DEFAULT_MAX_FRAME_BYTES,
): Promise<void> {
  for (const p of payloads) checkPayload(p, maxFrameBytes);
  try {
    let small: Uint8Array[] = [];
    for (const p of payloads) {
      if (p.byteLength < WRITE_DIRECT_BYTES) {
        small.push(p);
        continue;
      }
      const header = new Uint8Array(FRAME_HEADER_BYTES);
      putFrameHeader(header, 0, p.byteLength);
      await writeAll(w, small.length === 0 ? header : concat(encodeFrames(small), header));
      small = [];
      await writeAll(w, p);
    }
    if (small.length > 0) await writeAll(w, encodeFrames(small));
  } catch (err) {
    throw new FrameError("io", `write failed: ${errorText(err)}`, { cause: err });
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.byteLength + b.byteLength);
  out.set(a);
  out.set(b, a.byteLength);
  return out;
}

function checkPayload(p: Uint8Array, maxFrameBytes: number): void {
  if (p.byteLength > maxFrameBytes || p.byteLength > U32_MAX) {
    throw new FrameError(
      "oversize",
      `frame payload of ${p.byteLength} bytes exceeds the maximum of ${maxFrameBytes}`,
    );
  }
}

/** The message of an unknown thrown value. */
export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
