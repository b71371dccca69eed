/**
 * A `Deno.Conn` over a node:net / node:tls socket, so that connections made
 * with `node:tls` (the only way in Deno to require client certificates, to
 * skip server verification or to verify a fixed server name; deno-facts.md
 * §7) plug into the mux, the Raft transport and the cluster client, which
 * all speak `Deno.Conn`.
 *
 * Semantics kept from `Deno.Conn`: `read` resolves to the bytes copied into
 * the caller's buffer or `null` at the end of the stream; `write` resolves
 * once the socket has taken the bytes (its callback ran), so the caller may
 * reuse its buffer afterwards, and a peer that stops reading blocks the
 * writer as a full kernel buffer would. One reader at a time.
 *
 * Bounds: received bytes wait in a queue of at most `highWaterBytes` (plus
 * one chunk): above it the socket is paused (TCP backpressure reaches the
 * peer) and resumed once the reader has drained half of it.
 *
 * Errors: a socket error is kept and thrown by the next `read` / `write`
 * (after the bytes received before it were read), mapped through
 * `describeError` so callers can say what a TLS failure means.
 *
 * @module
 */

import type { Server, Socket } from "node:net";

/** Default bound on received bytes waiting for `read`. */
export const DEFAULT_HIGH_WATER_BYTES = 4 << 20;

/** Options of {@link SocketConn}. */
export interface SocketConnOptions {
  /** Received bytes held at most before the socket is paused (default 4 MiB). */
  readonly highWaterBytes?: number;
  /**
   * Turns a socket error into the error `read` / `write` throw;
   * `receivedAny` tells whether any byte arrived before it.
   */
  readonly describeError?: (err: Error, receivedAny: boolean) => Error;
  /**
   * When set, a stream that ends before any byte arrived makes `read` (and
   * writes cut short by that end) throw this error instead of returning
   * `null` (an outbound TLS connection closed by a peer that refused this
   * node's certificate looks like that).
   */
  readonly endBeforeData?: () => Error;
}

/** A node socket seen as a `Deno.Conn` (see the module note). */
export class SocketConn implements Deno.Conn<Deno.NetAddr> {
  readonly #socket: Socket;
  readonly #highWaterBytes: number;
  readonly #describe: (err: Error, receivedAny: boolean) => Error;
  readonly #endBeforeData: (() => Error) | undefined;
  readonly #chunks: Uint8Array[] = [];
  /** Bytes of `#chunks[0]` already read. */
  #head = 0;
  #buffered = 0;
  #receivedAny = false;
  #ended = false;
  #closed = false;
  #error: Error | undefined;
  #wakeReader: (() => void) | undefined;
  readonly #pendingWrites = new Set<(err: Error) => void>();
  #readable: ReadableStream<Uint8Array<ArrayBuffer>> | undefined;
  #writable: WritableStream<Uint8Array> | undefined;

  constructor(socket: Socket, options: SocketConnOptions = {}) {
    this.#socket = socket;
    this.#highWaterBytes = options.highWaterBytes ?? DEFAULT_HIGH_WATER_BYTES;
    if (!(this.#highWaterBytes > 0)) {
      throw new RangeError(`highWaterBytes must be positive, got ${this.#highWaterBytes}`);
    }
    this.#describe = options.describeError ?? ((err) => err);
    this.#endBeforeData = options.endBeforeData;
    socket.on("data", (chunk: Uint8Array) => this.#onData(chunk));
    socket.on("end", () => this.#onEnd());
    socket.on("error", (err: Error) => this.#onError(err));
    socket.on("close", () => this.#onEnd());
    try {
      socket.setNoDelay(true);
    } catch {
      // Not connected any more: harmless.
    }
  }

  /** The node socket underneath (for peer certificate checks). */
  get socket(): Socket {
    return this.#socket;
  }

  get localAddr(): Deno.NetAddr {
    return netAddr(this.#socket.localAddress, this.#socket.localPort);
  }

  get remoteAddr(): Deno.NetAddr {
    return netAddr(this.#socket.remoteAddress, this.#socket.remotePort);
  }

  /** Copies received bytes into `p`; `null` at the end of the stream. */
  async read(p: Uint8Array): Promise<number | null> {
    if (this.#wakeReader !== undefined) throw new Error("SocketConn: concurrent reads");
    for (;;) {
      if (this.#closed) throw new Deno.errors.BadResource("connection closed");
      if (this.#buffered > 0) return this.#take(p);
      if (this.#error !== undefined) throw this.#describe(this.#error, this.#receivedAny);
      if (this.#ended) {
        if (!this.#receivedAny && this.#endBeforeData !== undefined) throw this.#endBeforeData();
        return null;
      }
      if (p.byteLength === 0) return 0;
      await new Promise<void>((resolve) => (this.#wakeReader = resolve));
      this.#wakeReader = undefined;
    }
  }

  /** Resolves with `p.byteLength` once the socket has taken all of `p`. */
  write(p: Uint8Array): Promise<number> {
    if (this.#closed) return Promise.reject(new Deno.errors.BadResource("connection closed"));
    if (this.#error !== undefined) {
      return Promise.reject(this.#describe(this.#error, this.#receivedAny));
    }
    return new Promise<number>((resolve, reject) => {
      const fail = (err: Error) => {
        this.#pendingWrites.delete(fail);
        reject(err);
      };
      this.#pendingWrites.add(fail);
      this.#socket.write(p, (err?: Error | null) => {
        if (!this.#pendingWrites.delete(fail)) return;
        if (err) reject(this.#describe(err, this.#receivedAny));
        else resolve(p.byteLength);
      });
    });
  }

  /** Destroys the socket. Idempotent (unlike Deno's). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#socket.destroy();
    this.#failWrites(new Deno.errors.BadResource("connection closed"));
    this.#wake();
  }

  /** Ends the sending side once everything written has been flushed. */
  closeWrite(): Promise<void> {
    return new Promise((resolve) => this.#socket.end(() => resolve()));
  }

  ref(): void {
    this.#socket.ref();
  }

  unref(): void {
    this.#socket.unref();
  }

  /** Sets TCP_NODELAY (the mux calls this on every accepted connection). */
  setNoDelay(noDelay = true): void {
    this.#socket.setNoDelay(noDelay);
  }

  get readable(): ReadableStream<Uint8Array<ArrayBuffer>> {
    this.#readable ??= new ReadableStream<Uint8Array<ArrayBuffer>>({
      pull: async (controller) => {
        const buf = new Uint8Array(64 * 1024);
        const n = await this.read(buf);
        if (n === null) controller.close();
        else controller.enqueue(buf.subarray(0, n));
      },
      cancel: () => this.close(),
    });
    return this.#readable;
  }

  get writable(): WritableStream<Uint8Array> {
    this.#writable ??= new WritableStream<Uint8Array>({
      write: async (chunk) => {
        for (let off = 0; off < chunk.byteLength;) off += await this.write(chunk.subarray(off));
      },
      close: () => this.closeWrite(),
      abort: () => this.close(),
    });
    return this.#writable;
  }

  [Symbol.dispose](): void {
    this.close();
  }

  #onData(chunk: Uint8Array): void {
    if (this.#closed || chunk.byteLength === 0) return;
    this.#receivedAny = true;
    this.#chunks.push(chunk);
    this.#buffered += chunk.byteLength;
    if (this.#buffered >= this.#highWaterBytes) this.#socket.pause();
    this.#wake();
  }

  #onEnd(): void {
    this.#ended = true;
    const refused = !this.#receivedAny && this.#endBeforeData !== undefined;
    this.#failWrites(
      this.#error ??
        (refused
          ? this.#endBeforeData!()
          : new Deno.errors.BrokenPipe("connection closed by the peer")),
    );
    this.#wake();
  }

  #onError(err: Error): void {
    this.#error ??= err;
    this.#failWrites(this.#describe(err, this.#receivedAny));
    this.#wake();
  }

  #take(p: Uint8Array): number {
    let n = 0;
    while (n < p.byteLength && this.#chunks.length > 0) {
      const chunk = this.#chunks[0]!;
      const take = Math.min(p.byteLength - n, chunk.byteLength - this.#head);
      p.set(chunk.subarray(this.#head, this.#head + take), n);
      n += take;
      this.#head += take;
      if (this.#head === chunk.byteLength) {
        this.#chunks.shift();
        this.#head = 0;
      }
    }
    this.#buffered -= n;
    if (this.#socket.isPaused() && this.#buffered <= this.#highWaterBytes / 2) {
      this.#socket.resume();
    }
    return n;
  }

  #failWrites(err: Error): void {
    for (const fail of [...this.#pendingWrites]) fail(err);
  }

  #wake(): void {
    this.#wakeReader?.();
  }
}

function netAddr(hostname: string | undefined, port: number | undefined): Deno.NetAddr {
  return { transport: "tcp", hostname: hostname ?? "", port: port ?? 0 };
}

/**
 * Starts `server` listening on `hostname:port` and returns the bound
 * address at once. node's `listen` binds asynchronously (its `address()` is
 * null until then), while the node's start-up needs the address and any
 * bind error synchronously, as `Deno.listen` gives them: so the address is
 * first bound with `Deno.listen` (which throws `AddrInUse` and friends, and
 * picks the port for port 0) and released, and the server listens on
 * exactly that address. Should another socket take the port in between, the
 * server emits "error" (the caller must handle it).
 */
export function listenNodeServer(server: Server, hostname: string, port: number): Deno.NetAddr {
  const probe = Deno.listen({ hostname, port, transport: "tcp" });
  const addr = probe.addr;
  probe.close();
  server.listen(addr.port, addr.hostname);
  return addr;
}
