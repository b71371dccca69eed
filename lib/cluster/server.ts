/**
 * The cluster service (mux service byte 2): persistent connections carrying
 * request frames, answered through {@link ClusterHandlers}.
 *
 * Requests on one connection may be pipelined; each is handled as soon as
 * it arrives and answered when it completes, tagged with its id (so a slow
 * query never holds up a fast write behind it). Bounds, all per server:
 * `maxConnections` open connections (beyond, a new one is closed at once);
 * `maxInFlightPerConnection` requests being handled per connection (beyond,
 * the server stops reading that connection until one completes: TCP
 * back-pressure, never an unbounded queue); every request has a deadline
 * (the client's `timeoutMs`, else `defaultTimeoutMs`) after which it is
 * answered with a `timeout` error and its handler's signal is aborted; a
 * connection with nothing in flight and no frame for `idleTimeoutMs` is
 * closed. A frame that cannot be decoded closes its connection only.
 *
 * @module
 */

import type { Command } from "../db/mod.ts";
import { DEFAULT_MAX_FRAME_BYTES, FrameReader } from "../transport/frame.ts";
import { type Mux, SERVICE_CLUSTER } from "../transport/mux.ts";
import { toRemoteError } from "./errors.ts";
import { FrameQueue } from "./frame_queue.ts";
import {
  type AnyRequest,
  type CommandResult,
  type Credentials,
  decodeRequest,
  encodeErrorResponse,
  encodeOkResponse,
  type ExecuteOptions,
  type JoinRequest,
  type NodeMeta,
  type NotifyRequest,
  type ReadOptions,
  type RequestType,
} from "./protocol.ts";

/** What a handler learns about the request besides its body. */
export interface ClusterRequestContext {
  readonly type: RequestType;
  /** Credentials the calling node forwarded (from the HTTP request, or `-join-as`). */
  readonly credentials?: Credentials;
  /** The request's time limit in ms, counted from its arrival. */
  readonly timeoutMs: number;
  /** Aborted at the deadline, when the connection is lost, or when the server closes. */
  readonly signal: AbortSignal;
  /** "host:port" of the calling node's connection. */
  readonly remoteAddr: string;
}

/**
 * The node's side of the cluster service, implemented above lib/cluster
 * (by the store / server wiring). Any thrown error or rejection becomes an
 * error response carrying the error's message unchanged (see
 * `toRemoteError` for the codes); throw `ClusterHandlerError` to pick the
 * code or pass the leader's Raft address explicitly.
 */
export interface ClusterHandlers {
  /** This node's API URL, commit index, version and id. */
  nodeMeta(ctx: ClusterRequestContext): NodeMeta | Promise<NodeMeta>;
  /** A forwarded write (rqlite EXECUTE): the leader runs it through the log. */
  execute(
    cmd: Command,
    opts: ExecuteOptions,
    ctx: ClusterRequestContext,
  ): CommandResult | Promise<CommandResult>;
  /** A forwarded read (rqlite QUERY) at `opts.level`. */
  query(
    cmd: Command,
    opts: ReadOptions,
    ctx: ClusterRequestContext,
  ): CommandResult | Promise<CommandResult>;
  /** A forwarded unified request (rqlite REQUEST). */
  request(
    cmd: Command,
    opts: ReadOptions,
    ctx: ClusterRequestContext,
  ): CommandResult | Promise<CommandResult>;
  /**
   * Add a node. On a non-leader throw an error whose message is `not leader`
   * and whose `leaderAddr` is the leader's Raft address (e.g.
   * `new ClusterHandlerError("not leader", {code: "not_leader", leaderAddr})`).
   */
  join(req: JoinRequest, ctx: ClusterRequestContext): void | Promise<void>;
  /** Bootstrap-expect announcement. */
  notify(req: NotifyRequest, ctx: ClusterRequestContext): void | Promise<void>;
  /** Remove node `id` from the configuration. */
  remove(id: string, ctx: ClusterRequestContext): void | Promise<void>;
  /** Transfer leadership to `id` (or any node); `wait` = until the transfer completed. */
  stepdown(id: string | undefined, wait: boolean, ctx: ClusterRequestContext): void | Promise<void>;
}

/** Options of {@link ClusterServer}. */
export interface ClusterServerOptions {
  /** Largest frame payload read or written (default 16 MiB, the transport's default). */
  readonly maxFrameBytes?: number;
  /** Close a connection with nothing in flight after this long without a frame (default 30 s). */
  readonly idleTimeoutMs?: number;
  /** Open cluster connections at most (default 512). */
  readonly maxConnections?: number;
  /** Requests handled at once per connection (default 256). */
  readonly maxInFlightPerConnection?: number;
  /** Deadline of a request that carries no timeout (default 30 s). */
  readonly defaultTimeoutMs?: number;
}

/** Counters for /status and /debug/vars (monotonic except `connections` and `inFlight`). */
export interface ClusterServerStats {
  readonly connections: number;
  readonly inFlight: number;
  readonly accepted: number;
  readonly rejectedLimit: number;
  readonly idleClosed: number;
  readonly protocolErrors: number;
  readonly requests: Readonly<Record<RequestType, number>>;
  readonly errors: number;
  readonly timeouts: number;
}

export const DEFAULT_IDLE_TIMEOUT_MS = 30_000;
export const DEFAULT_SERVER_MAX_CONNECTIONS = 512;
export const DEFAULT_MAX_IN_FLIGHT_PER_CONNECTION = 256;
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;
/** The longest delay `setTimeout` honours (2^31 - 1 ms, about 24.8 days). */
const TIMER_MAX_MS = 2_147_483_647;

interface Counters {
  accepted: number;
  rejectedLimit: number;
  idleClosed: number;
  protocolErrors: number;
  errors: number;
  timeouts: number;
  requests: Record<RequestType, number>;
}

/** The cluster service. Register it on a mux, or feed it connections with {@link serve}. */
export class ClusterServer {
  readonly #handlers: ClusterHandlers;
  readonly #maxFrameBytes: number;
  readonly #idleTimeoutMs: number;
  readonly #maxConnections: number;
  readonly #maxInFlight: number;
  readonly #defaultTimeoutMs: number;
  readonly #conns = new Set<ServerConn>();
  readonly #loops = new Set<Promise<void>>();
  #closed = false;
  readonly #counters: Counters = {
    accepted: 0,
    rejectedLimit: 0,
    idleClosed: 0,
    protocolErrors: 0,
    errors: 0,
    timeouts: 0,
    requests: {
      nodeMeta: 0,
      execute: 0,
      query: 0,
      request: 0,
      join: 0,
      notify: 0,
      remove: 0,
      stepdown: 0,
    },
  };

  constructor(handlers: ClusterHandlers, options: ClusterServerOptions = {}) {
    this.#handlers = handlers;
    this.#maxFrameBytes = options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
    this.#idleTimeoutMs = options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
    this.#maxConnections = options.maxConnections ?? DEFAULT_SERVER_MAX_CONNECTIONS;
    this.#maxInFlight = options.maxInFlightPerConnection ?? DEFAULT_MAX_IN_FLIGHT_PER_CONNECTION;
    this.#defaultTimeoutMs = options.defaultTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    positive(this.#maxFrameBytes, "maxFrameBytes");
    positive(this.#idleTimeoutMs, "idleTimeoutMs");
    positive(this.#maxConnections, "maxConnections");
    positive(this.#maxInFlight, "maxInFlightPerConnection");
    positive(this.#defaultTimeoutMs, "defaultTimeoutMs");
  }

  /** Registers the service on `mux` for {@link SERVICE_CLUSTER}. */
  register(mux: Mux): void {
    mux.handle(SERVICE_CLUSTER, (conn, firstBytes) => this.serve(conn, firstBytes));
  }

  /**
   * Serves one connection until it ends; the server owns and closes it.
   * Resolves (never rejects) when the connection is done.
   */
  serve(conn: Deno.Conn, firstBytes: Uint8Array = new Uint8Array(0)): Promise<void> {
    this.#counters.accepted++;
    if (this.#closed || this.#conns.size >= this.#maxConnections) {
      if (!this.#closed) this.#counters.rejectedLimit++;
      closeQuietly(conn);
      return Promise.resolve();
    }
    const sc = new ServerConn(conn, firstBytes, this.#handlers, {
      maxFrameBytes: this.#maxFrameBytes,
      idleTimeoutMs: this.#idleTimeoutMs,
      maxInFlight: this.#maxInFlight,
      defaultTimeoutMs: this.#defaultTimeoutMs,
      counters: this.#counters,
    });
    this.#conns.add(sc);
    const loop = sc.run().finally(() => {
      this.#conns.delete(sc);
      this.#loops.delete(loop);
    });
    this.#loops.add(loop);
    return loop;
  }

  stats(): ClusterServerStats {
    let inFlight = 0;
    for (const c of this.#conns) inFlight += c.inFlight;
    const c = this.#counters;
    return {
      connections: this.#conns.size,
      inFlight,
      accepted: c.accepted,
      rejectedLimit: c.rejectedLimit,
      idleClosed: c.idleClosed,
      protocolErrors: c.protocolErrors,
      requests: { ...c.requests },
      errors: c.errors,
      timeouts: c.timeouts,
    };
  }

  /**
   * Closes every connection (pending handlers are aborted through their
   * signals; their results are dropped) and waits for the connection loops.
   * Idempotent. Does not wait for handlers that ignore their signal.
   */
  async close(): Promise<void> {
    this.#closed = true;
    for (const c of this.#conns) c.close("server closed");
    while (this.#loops.size > 0) await Promise.allSettled([...this.#loops]);
  }
}

interface ConnConfig {
  maxFrameBytes: number;
  idleTimeoutMs: number;
  maxInFlight: number;
  defaultTimeoutMs: number;
  counters: Counters;
}

interface InFlight {
  readonly abort: AbortController;
  timer: ReturnType<typeof setTimeout> | undefined;
  done: boolean;
}

class ServerConn {
  readonly #conn: Deno.Conn;
  readonly #reader: FrameReader;
  readonly #writer: FrameQueue;
  readonly #handlers: ClusterHandlers;
  readonly #cfg: ConnConfig;
  readonly #remoteAddr: string;
  readonly #inFlight = new Set<InFlight>();
  #closed = false;
  #lastActiveMs = performance.now();
  #idleTimer: ReturnType<typeof setTimeout> | undefined;
  /** Resolves the read loop's wait for a free in-flight slot. */
  #slotFree: (() => void) | undefined;

  constructor(
    conn: Deno.Conn,
    firstBytes: Uint8Array,
    handlers: ClusterHandlers,
    cfg: ConnConfig,
  ) {
    this.#conn = conn;
    this.#handlers = handlers;
    this.#cfg = cfg;
    this.#reader = new FrameReader(conn, {
      maxFrameBytes: cfg.maxFrameBytes,
      prefix: firstBytes,
      closeOnError: false,
    });
    this.#writer = new FrameQueue(conn, cfg.maxFrameBytes, (err) => this.close(err.message));
    const addr = conn.remoteAddr as Partial<Deno.NetAddr>;
    this.#remoteAddr = addr.hostname === undefined ? "unknown" : `${addr.hostname}:${addr.port}`;
  }

  get inFlight(): number {
    return this.#inFlight.size;
  }

  async run(): Promise<void> {
    this.#armIdle();
    try {
      while (!this.#closed) {
        if (this.#inFlight.size >= this.#cfg.maxInFlight) {
          await new Promise<void>((resolve) => this.#slotFree = resolve);
          continue;
        }
        let frame: Uint8Array | null;
        try {
          frame = await this.#reader.read();
        } catch {
          // Oversize, truncated or I/O: the connection is unusable.
          if (!this.#closed) this.#cfg.counters.protocolErrors++;
          break;
        }
        if (frame === null) break;
        this.#lastActiveMs = performance.now();
        try {
          this.#accept(frame);
        } catch {
          // ProtocolError (or any decoding failure): close this connection only.
          this.#cfg.counters.protocolErrors++;
          break;
        }
      }
    } finally {
      this.close("connection ended");
      await this.#writer.flushed();
    }
  }

  /** Closes the connection and aborts everything in flight on it (idempotent). */
  close(reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#idleTimer);
    for (const f of this.#inFlight) this.#finish(f, reason);
    this.#inFlight.clear();
    this.#slotFree?.();
    this.#reader.close();
    closeQuietly(this.#conn);
  }

  /** Decodes and starts one request; throws ProtocolError for a malformed frame. */
  #accept(frame: Uint8Array): void {
    const decoded = decodeRequest(frame);
    const f: InFlight = { abort: new AbortController(), timer: undefined, done: false };
    // Every answer holds a slot until written, so a peer that never reads
    // its answers stops being read itself.
    this.#inFlight.add(f);
    if (!decoded.known) {
      this.#respond(
        f,
        encodeErrorResponse(decoded.id, {
          message: `unknown cluster request type ${decoded.typeCode}`,
          code: "bad_request",
        }),
      );
      return;
    }
    const req = decoded.request;
    this.#cfg.counters.requests[req.type]++;
    const timeoutMs = Math.min(
      TIMER_MAX_MS,
      req.timeoutMs > 0 ? req.timeoutMs : this.#cfg.defaultTimeoutMs,
    );
    f.timer = setTimeout(() => {
      if (f.done) return;
      this.#cfg.counters.timeouts++;
      this.#respond(
        f,
        encodeErrorResponse(req.id, {
          message: `timeout: ${req.type} request not completed within ${timeoutMs} ms`,
          code: "timeout",
        }),
        "request deadline passed",
      );
    }, timeoutMs);
    const ctx: ClusterRequestContext = {
      type: req.type,
      timeoutMs,
      signal: f.abort.signal,
      remoteAddr: this.#remoteAddr,
      ...(req.credentials === undefined ? {} : { credentials: req.credentials }),
    };
    invoke(this.#handlers, req, ctx).then(
      (body) => {
        if (f.done) return;
        let payload: Uint8Array;
        try {
          payload = encodeOkResponse(req.id, body, this.#cfg.maxFrameBytes);
        } catch (err) {
          this.#cfg.counters.errors++;
          payload = encodeErrorResponse(req.id, {
            message: `cluster response encoding failed: ${(err as Error)?.message ?? err}`,
            code: "error",
          });
        }
        this.#respond(f, payload);
      },
      (err: unknown) => {
        if (f.done) return;
        this.#cfg.counters.errors++;
        this.#respond(f, encodeErrorResponse(req.id, toRemoteError(err)));
      },
    );
  }

  /** Sends a request's one response; its slot is free once the response is written. */
  #respond(f: InFlight, payload: Uint8Array, abortReason?: string): void {
    f.done = true;
    clearTimeout(f.timer);
    if (abortReason !== undefined) f.abort.abort(new Error(abortReason));
    this.#writer.push(payload, () => this.#release(f));
  }

  #finish(f: InFlight, reason: string): void {
    if (!f.done) {
      f.done = true;
      clearTimeout(f.timer);
    }
    if (!f.abort.signal.aborted) f.abort.abort(new Error(reason));
  }

  #release(f: InFlight): void {
    if (!this.#inFlight.delete(f)) return;
    this.#lastActiveMs = performance.now();
    const wake = this.#slotFree;
    this.#slotFree = undefined;
    wake?.();
  }

  /** One timer per connection: re-armed for the remaining time until truly idle. */
  #armIdle(): void {
    if (this.#closed) return;
    const left = this.#lastActiveMs + this.#cfg.idleTimeoutMs - performance.now();
    this.#idleTimer = setTimeout(() => {
      if (this.#closed) return;
      const idle = this.#inFlight.size === 0 &&
        performance.now() - this.#lastActiveMs >= this.#cfg.idleTimeoutMs;
      if (idle) {
        this.#cfg.counters.idleClosed++;
        this.close("idle");
        return;
      }
      if (this.#inFlight.size > 0) this.#lastActiveMs = performance.now();
      this.#armIdle();
    }, Math.max(1, left));
  }
}

async function invoke(
  h: ClusterHandlers,
  req: AnyRequest,
  ctx: ClusterRequestContext,
): Promise<unknown> {
  switch (req.type) {
    case "nodeMeta":
      return await h.nodeMeta(ctx);
    case "execute":
      return await h.execute(req.body.command, req.body.options, ctx);
    case "query":
      return await h.query(req.body.command, req.body.options, ctx);
    case "request":
      return await h.request(req.body.command, req.body.options, ctx);
    case "join":
      await h.join(req.body, ctx);
      return null;
    case "notify":
      await h.notify(req.body, ctx);
      return null;
    case "remove":
      await h.remove(req.body.id, ctx);
      return null;
    case "stepdown":
      await h.stepdown(req.body.id, req.body.wait, ctx);
      return null;
  }
}

function positive(v: number, what: string): void {
  if (!(Number.isFinite(v) && v > 0)) throw new RangeError(`${what} must be positive, got ${v}`);
}

function closeQuietly(conn: { close(): void }): void {
  try {
    conn.close();
  } catch {
    // Already closed.
  }
}
