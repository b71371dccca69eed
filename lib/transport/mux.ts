/**
 * One TCP port, several services: the first byte of every accepted
 * connection selects the service (as rqlite's tcp/mux.go): {@link SERVICE_RAFT}
 * = 1, {@link SERVICE_CLUSTER} = 2.
 *
 * Ownership: the mux owns the listener and every accepted connection until it
 * is handed to a service handler; the handler owns it afterwards and closes it
 * when done. The mux still tracks it (to bound the count and to close it in
 * {@link Mux.close}): `conn.close()` of a handed-over connection is idempotent
 * and frees its slot. A handler may return a promise; when it settles the mux
 * closes the connection if the handler has not.
 *
 * Bounds: at most `maxConnections` connections open at once (beyond, a new one
 * is closed at once and counted); a connection that sends no service byte
 * within `headerTimeoutMs` is closed; an unknown service byte closes it.
 *
 * TLS seam: `listen` (here) and `connect` ({@link dialService}) are options;
 * they default to plain TCP (`Deno.listen` / `Deno.connect`).
 *
 * @module
 */

import { errorText, writeAll } from "./frame.ts";

/** Service byte of the Raft transport. */
export const SERVICE_RAFT = 1;
/** Service byte of the cluster service (forwarding, join, notify, remove, ...). */
export const SERVICE_CLUSTER = 2;

/** Default time a new connection has to send its service byte. */
export const DEFAULT_HEADER_TIMEOUT_MS = 10_000;
/** Default bound on concurrently open connections. */
export const DEFAULT_MAX_CONNECTIONS = 512;
/** Default time {@link dialService} waits for the TCP connection. */
export const DEFAULT_DIAL_TIMEOUT_MS = 5_000;

/**
 * Receives a connection whose service byte selected it. `firstBytes` holds
 * bytes the mux read beyond the service byte; they come before anything read
 * from `conn` (pass them as `FrameReader`'s `prefix`). Today the mux reads the
 * service byte alone, so it is empty, but handlers must not assume so.
 *
 * Release the connection with `conn.close()` (idempotent here): that frees
 * its slot under `maxConnections`. Cancelling `conn.readable` / `conn.writable`
 * closes the socket without the mux noticing, so the slot stays taken until
 * {@link Mux.close}; read and write with `conn.read` / `conn.write` (as
 * `FrameReader` / `writeFrames` do) or call `conn.close()` afterwards.
 */
export type ServiceHandler = (
  conn: Deno.Conn,
  firstBytes: Uint8Array,
) => void | Promise<void>;

/** Opens the listening socket (the TLS seam); default `Deno.listen` (TCP). */
export type ListenFn = (options: { hostname: string; port: number }) => Deno.Listener;

/** Opens an outbound connection (the TLS seam); default `Deno.connect` (TCP) with `setNoDelay`. */
export type ConnectFn = (
  options: { hostname: string; port: number; signal: AbortSignal },
) => Promise<Deno.Conn>;

/** Options of {@link Mux.listen}. */
export interface MuxOptions {
  /** Interface to bind (default "0.0.0.0"). */
  readonly hostname?: string;
  /** Port to bind; 0 picks a free one (see {@link Mux.addr}). */
  readonly port: number;
  /** Time a connection has to send its service byte (default 10 s). */
  readonly headerTimeoutMs?: number;
  /** Open connections at most; beyond, new ones are closed at once (default 512). */
  readonly maxConnections?: number;
  /** Opens the listener (default `Deno.listen` with TCP). */
  readonly listen?: ListenFn;
}

/** Counters of a {@link Mux} (monotonic except `open`). */
export interface MuxStats {
  /** Connections accepted by the listener (including those rejected afterwards). */
  readonly accepted: number;
  /** Connections closed at once because `maxConnections` were open. */
  readonly rejectedLimit: number;
  /** Connections closed because their service byte had no handler. */
  readonly rejectedUnknown: number;
  /** Connections closed because no service byte came within the deadline. */
  readonly rejectedTimeout: number;
  /** Connections that closed or failed before sending a service byte. */
  readonly rejectedEof: number;
  /** Connections handed to a handler, by service byte. */
  readonly dispatched: Readonly<Record<number, number>>;
  /** Handlers that threw or whose promise rejected. */
  readonly handlerErrors: number;
  /** Connections open now (waiting for their service byte or owned by a handler). */
  readonly open: number;
}

interface Tracked {
  readonly conn: Deno.Conn;
  closed: boolean;
}

/** A TCP listener that dispatches connections to services by their first byte. */
export class Mux {
  readonly #listener: Deno.Listener;
  readonly #headerTimeoutMs: number;
  readonly #maxConnections: number;
  readonly #handlers = new Map<number, ServiceHandler>();
  readonly #open = new Set<Tracked>();
  /** Work the mux itself awaits on close (accept loop, header reads, handler promises). */
  readonly #tasks = new Set<Promise<void>>();
  #closing: Promise<void> | undefined;
  #accepted = 0;
  #rejectedLimit = 0;
  #rejectedUnknown = 0;
  #rejectedTimeout = 0;
  #rejectedEof = 0;
  #handlerErrors = 0;
  readonly #dispatched: Record<number, number> = {};

  private constructor(listener: Deno.Listener, options: MuxOptions) {
    this.#listener = listener;
    this.#headerTimeoutMs = options.headerTimeoutMs ?? DEFAULT_HEADER_TIMEOUT_MS;
    this.#maxConnections = options.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
    this.#track(this.#acceptLoop());
  }

  /**
   * Binds `hostname:port` and starts accepting. Throws what the listen
   * function throws (e.g. `Deno.errors.AddrInUse`).
   */
  static listen(options: MuxOptions): Mux {
    const headerTimeoutMs = options.headerTimeoutMs ?? DEFAULT_HEADER_TIMEOUT_MS;
    const maxConnections = options.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
    if (!(headerTimeoutMs > 0)) {
      throw new RangeError(`headerTimeoutMs must be positive, got ${headerTimeoutMs}`);
    }
    if (!(Number.isInteger(maxConnections) && maxConnections > 0)) {
      throw new RangeError(`maxConnections must be a positive integer, got ${maxConnections}`);
    }
    const listen: ListenFn = options.listen ??
      ((o) => Deno.listen({ hostname: o.hostname, port: o.port, transport: "tcp" }));
    const listener = listen({ hostname: options.hostname ?? "0.0.0.0", port: options.port });
    return new Mux(listener, options);
  }

  /** The bound address (the real port when listening on port 0). */
  get addr(): Deno.NetAddr {
    return this.#listener.addr as Deno.NetAddr;
  }

  /** The bound address as "host:port" ("[v6]:port" for IPv6), suitable for {@link dialService}. */
  get address(): string {
    return formatHostPort(this.addr.hostname, this.addr.port);
  }

  /** True once {@link close} was called. */
  get closed(): boolean {
    return this.#closing !== undefined;
  }

  /**
   * Routes connections whose first byte is `service` (1..255) to `handler`.
   * Registering a byte twice throws. Connections arriving before a handler is
   * registered for their byte are closed as unknown.
   */
  handle(service: number, handler: ServiceHandler): void {
    if (!(Number.isInteger(service) && service >= 1 && service <= 255)) {
      throw new RangeError(`service byte must be an integer in [1, 255], got ${service}`);
    }
    if (this.#handlers.has(service)) {
      throw new Error(`service ${service} already has a handler`);
    }
    this.#handlers.set(service, handler);
  }

  /** Counters for /status. */
  stats(): MuxStats {
    return {
      accepted: this.#accepted,
      rejectedLimit: this.#rejectedLimit,
      rejectedUnknown: this.#rejectedUnknown,
      rejectedTimeout: this.#rejectedTimeout,
      rejectedEof: this.#rejectedEof,
      dispatched: { ...this.#dispatched },
      handlerErrors: this.#handlerErrors,
      open: this.#open.size,
    };
  }

  /**
   * Closes the listener and every connection it accepted (including those
   * owned by handlers), then waits for the mux's own pending work. Idempotent;
   * later calls return the same promise. Handlers' own loops end when their
   * reads fail on the closed connection; their owners await them.
   */
  close(): Promise<void> {
    if (this.#closing) return this.#closing;
    try {
      this.#listener.close();
    } catch {
      // Already closed (e.g. by a failed accept): nothing to do.
    }
    for (const t of [...this.#open]) t.conn.close();
    this.#closing = (async () => {
      while (this.#tasks.size > 0) await Promise.allSettled([...this.#tasks]);
    })();
    return this.#closing;
  }

  #track(task: Promise<void>): void {
    this.#tasks.add(task);
    task.finally(() => this.#tasks.delete(task));
  }

  async #acceptLoop(): Promise<void> {
    while (!this.closed) {
      let conn: Deno.Conn;
      try {
        conn = await this.#listener.accept();
      } catch (err) {
        if (this.closed) return;
        // Transient (e.g. too many open files): pause briefly instead of spinning.
        if (err instanceof Deno.errors.BadResource) return;
        await new Promise((r) => setTimeout(r, 20));
        continue;
      }
      this.#accepted++;
      if (this.closed) {
        closeQuietly(conn);
        return;
      }
      if (this.#open.size >= this.#maxConnections) {
        this.#rejectedLimit++;
        closeQuietly(conn);
        continue;
      }
      this.#track(this.#serve(this.#adopt(conn)));
    }
  }

  /** Tracks `conn` and makes its `close()` idempotent and slot-freeing. */
  #adopt(conn: Deno.Conn): Tracked {
    const t: Tracked = { conn, closed: false };
    const close = conn.close.bind(conn);
    conn.close = () => {
      if (t.closed) return;
      t.closed = true;
      this.#open.delete(t);
      try {
        close();
      } catch {
        // Closed underneath us (resource gone): the slot is free either way.
      }
    };
    this.#open.add(t);
    try {
      (conn as Partial<Deno.TcpConn>).setNoDelay?.(true);
    } catch {
      // Not TCP or already reset: harmless.
    }
    return t;
  }

  /** Reads the service byte (bounded by the deadline) and dispatches. */
  async #serve(t: Tracked): Promise<void> {
    const { conn } = t;
    const header = new Uint8Array(1);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      conn.close();
    }, this.#headerTimeoutMs);
    let n: number | null = null;
    try {
      n = await conn.read(header);
    } catch {
      n = null;
    } finally {
      clearTimeout(timer);
    }
    if (n === null || n === 0) {
      if (timedOut) this.#rejectedTimeout++;
      else this.#rejectedEof++;
      conn.close();
      return;
    }
    const service = header[0]!;
    const handler = this.#handlers.get(service);
    if (handler === undefined || this.closed) {
      this.#rejectedUnknown++;
      conn.close();
      return;
    }
    this.#dispatched[service] = (this.#dispatched[service] ?? 0) + 1;
    let result: void | Promise<void>;
    try {
      result = handler(conn, new Uint8Array(0));
    } catch {
      this.#handlerErrors++;
      conn.close();
      return;
    }
    if (result instanceof Promise) {
      try {
        await result;
      } catch {
        this.#handlerErrors++;
      } finally {
        conn.close();
      }
    }
  }
}

/** Options of {@link dialService}. */
export interface DialOptions {
  /** Time allowed for the connection and the service byte (default 5 s). */
  readonly timeoutMs?: number;
  /** Opens the connection (default `Deno.connect`, TCP). */
  readonly connect?: ConnectFn;
  /** Aborting it abandons the dial at once (DialError "cancelled"). */
  readonly signal?: AbortSignal;
}

/** A connection could not be opened (refused, unreachable, timed out, bad address). */
export class DialError extends Error {
  override readonly name = "DialError";
  constructor(readonly addr: string, message: string, options?: ErrorOptions) {
    super(`dial ${addr}: ${message}`, options);
  }
}

/**
 * Connects to the mux at `addr` ("host:port") and selects `service` by
 * writing its byte. Resolves to the connection (TCP_NODELAY set), ready for
 * frames. Rejects with {@link DialError} on failure or after `timeoutMs`.
 */
export async function dialService(
  addr: string,
  service: number,
  options: DialOptions = {},
): Promise<Deno.Conn> {
  if (!(Number.isInteger(service) && service >= 1 && service <= 255)) {
    throw new RangeError(`service byte must be an integer in [1, 255], got ${service}`);
  }
  let target: { hostname: string; port: number };
  try {
    target = parseHostPort(addr, "127.0.0.1");
  } catch (err) {
    throw new DialError(addr, errorText(err), { cause: err });
  }
  const timeoutMs = options.timeoutMs ?? DEFAULT_DIAL_TIMEOUT_MS;
  const connect: ConnectFn = options.connect ?? defaultConnect;
  const abort = new AbortController();
  let why = "";
  let conn: Deno.Conn | undefined;
  let giveUp: (err: Error) => void = () => {};
  const gaveUp = new Promise<never>((_, reject) => (giveUp = reject));
  gaveUp.catch(() => {});
  const stop = (reason: string) => {
    if (why !== "") return;
    why = reason;
    abort.abort();
    if (conn !== undefined) closeQuietly(conn);
    giveUp(new Error(reason));
  };
  const timer = setTimeout(() => stop(`timed out after ${timeoutMs} ms`), timeoutMs);
  const onAbort = () => stop("cancelled");
  options.signal?.addEventListener("abort", onAbort, { once: true });
  if (options.signal?.aborted) onAbort();
  try {
    const connecting = connect({ ...target, signal: abort.signal });
    // A connection that arrives after we gave up (a connect ignoring the signal) is closed.
    connecting.then((c) => why !== "" && closeQuietly(c), () => {});
    conn = await Promise.race([connecting, gaveUp]);
    await Promise.race([writeAll(conn, new Uint8Array([service])), gaveUp]);
    return conn;
  } catch (err) {
    if (conn !== undefined) closeQuietly(conn);
    throw new DialError(addr, why !== "" ? why : errorText(err), { cause: err });
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener("abort", onAbort);
  }
}

const defaultConnect: ConnectFn = async ({ hostname, port, signal }) => {
  const conn = await Deno.connect({ hostname, port, transport: "tcp", signal });
  conn.setNoDelay(true);
  return refuseTlsAnswer(conn, formatHostPort(hostname, port));
};

/**
 * A plain connection to a node that requires TLS gets a TLS alert record
 * back (0x15, version 3.x, length 2) where a frame header was expected;
 * without this check the caller would report a nonsensical frame size.
 * Only the first read is inspected (a real frame header cannot start with
 * these bytes: as a length they exceed any frame limit).
 */
function refuseTlsAnswer(conn: Deno.TcpConn, addr: string): Deno.TcpConn {
  const read = conn.read.bind(conn);
  conn.read = async (p: Uint8Array) => {
    conn.read = read;
    const n = await read(p);
    if (n !== null && n >= 5 && p[0] === 0x15 && p[1] === 0x03 && p[3] === 0x00 && p[4] === 0x02) {
      throw new Error(
        `${addr} answered with a TLS alert: it requires internode TLS; start this node ` +
          `with -node-cert, -node-key and -node-ca-cert`,
      );
    }
    return n;
  };
  return conn;
}

/** Closes `conn`, ignoring "already closed". */
export function closeQuietly(conn: { close(): void }): void {
  try {
    conn.close();
  } catch {
    // Already closed.
  }
}

/**
 * Splits "host:port" / "[v6]:port" / ":port". An empty host becomes
 * `defaultHost`. Throws TypeError when the port is missing or invalid.
 */
export function parseHostPort(
  addr: string,
  defaultHost = "0.0.0.0",
): { hostname: string; port: number } {
  const i = addr.lastIndexOf(":");
  if (i < 0) throw new TypeError(`address "${addr}" has no port; use host:port`);
  const portText = addr.slice(i + 1);
  const port = Number(portText);
  if (portText === "" || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new TypeError(`address "${addr}" has an invalid port`);
  }
  let hostname = addr.slice(0, i);
  if (hostname.startsWith("[") && hostname.endsWith("]")) hostname = hostname.slice(1, -1);
  return { hostname: hostname === "" ? defaultHost : hostname, port };
}

/** Joins host and port, bracketing IPv6 literals. */
export function formatHostPort(hostname: string, port: number): string {
  return hostname.includes(":") ? `[${hostname}]:${port}` : `${hostname}:${port}`;
}
