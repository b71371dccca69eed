/**
 * The cluster client: calls the cluster service of other nodes over pooled,
 * persistent, pipelined connections.
 *
 * Per target address the client keeps up to `connectionsPerTarget`
 * connections and sends each request on the least loaded one; it opens
 * another (one dial at a time) only when every open connection already has
 * `pipelineDepth` requests in flight. Responses are matched by request id,
 * so they may come back in any order.
 *
 * Bounds and failures, per request: a deadline (`timeoutMs`, default 30 s,
 * also sent to the server, which abandons the request then) rejects with
 * {@link ClusterTimeoutError}; at most `maxInFlightPerTarget` requests per
 * target (beyond: {@link ClusterBusyError}, nothing sent); a lost
 * connection rejects what was in flight on it with
 * {@link ClusterConnectionError} and the next request dials afresh; a
 * remote handler's failure rejects with {@link RemoteError}. Requests are
 * never retried here: a write whose connection broke may or may not have
 * applied, and only the caller knows whether retrying is safe.
 *
 * A connection that produced no frame at all between sending a request and
 * that request's deadline is considered stuck: it takes no new requests and
 * closes once what is in flight on it has settled. Connections idle for
 * `idleTimeoutMs` (default 20 s, below the server's 30 s so the client, not
 * the server, closes them and no request races a server-side idle close)
 * are closed.
 *
 * @module
 */

import type { Command } from "../db/mod.ts";
import { DEFAULT_MAX_FRAME_BYTES, FrameReader } from "../transport/frame.ts";
import { type ConnectFn, dialService, SERVICE_CLUSTER } from "../transport/mux.ts";
import {
  ClusterBusyError,
  ClusterClosedError,
  ClusterConnectionError,
  ClusterError,
  ClusterTimeoutError,
  RemoteError,
} from "./errors.ts";
import { FrameQueue } from "./frame_queue.ts";
import {
  type AnyRequest,
  checkResponseBody,
  type CommandResult,
  type Credentials,
  decodeResponse,
  encodeRequest,
  type ExecuteOptions,
  type JoinRequest,
  type NodeMeta,
  type NotifyRequest,
  type ReadOptions,
  type RequestBodies,
  type RequestType,
  type ResponseBodies,
  setRequestId,
  type StepdownRequest,
  U32_MAX,
} from "./protocol.ts";

/** Options of {@link ClusterClient}. */
export interface ClusterClientOptions {
  /** Default per-request time limit (default 30 s). */
  readonly timeoutMs?: number;
  /** Time allowed to open a connection (default 5 s; the request's own deadline still applies). */
  readonly dialTimeoutMs?: number;
  /** Connections kept per target at most (default 4). */
  readonly connectionsPerTarget?: number;
  /** Requests in flight per target at most (default 1024). */
  readonly maxInFlightPerTarget?: number;
  /** Requests in flight on one connection before another one is opened (default 32). */
  readonly pipelineDepth?: number;
  /** Close a connection after this long with nothing in flight (default 20 s). */
  readonly idleTimeoutMs?: number;
  /** Largest frame payload sent or accepted (default 16 MiB, as the server). */
  readonly maxFrameBytes?: number;
  /** Credentials sent with every request unless a call gives its own. */
  readonly credentials?: Credentials;
  /** Opens connections (the TLS seam; default plain TCP). */
  readonly connect?: ConnectFn;
}

/** Per-call options. */
export interface CallOptions {
  /** This request's time limit (default: the client's `timeoutMs`). */
  readonly timeoutMs?: number;
  /** Credentials for this request (default: the client's). */
  readonly credentials?: Credentials;
}

/** Counters for /status (`cluster` internode client stats). */
export interface ClusterClientStats {
  readonly targets: Readonly<
    Record<string, { readonly connections: number; readonly inFlight: number }>
  >;
  readonly requests: number;
  readonly timeouts: number;
  readonly connectionsOpened: number;
  readonly connectionsLost: number;
  readonly dialFailures: number;
}

export const DEFAULT_CLIENT_TIMEOUT_MS = 30_000;
export const DEFAULT_CLIENT_DIAL_TIMEOUT_MS = 5_000;
export const DEFAULT_CONNECTIONS_PER_TARGET = 4;
export const DEFAULT_MAX_IN_FLIGHT_PER_TARGET = 1024;
export const DEFAULT_PIPELINE_DEPTH = 32;
export const DEFAULT_CLIENT_IDLE_TIMEOUT_MS = 20_000;
/** The longest delay `setTimeout` honours (2^31 - 1 ms, about 24.8 days). */
const TIMER_MAX_MS = 2_147_483_647;

interface Config {
  readonly timeoutMs: number;
  readonly dialTimeoutMs: number;
  readonly connectionsPerTarget: number;
  readonly maxInFlightPerTarget: number;
  readonly pipelineDepth: number;
  readonly idleTimeoutMs: number;
  readonly maxFrameBytes: number;
  readonly credentials?: Credentials;
  readonly connect?: ConnectFn;
}

interface Counters {
  requests: number;
  timeouts: number;
  connectionsOpened: number;
  connectionsLost: number;
  dialFailures: number;
}

/** One request from the call until it settles. */
interface Pending {
  readonly type: RequestType;
  readonly payload: Uint8Array;
  readonly resolve: (body: unknown) => void;
  readonly reject: (err: Error) => void;
  timer: ReturnType<typeof setTimeout> | undefined;
  settled: boolean;
  conn: ClientConn | undefined;
  id: number;
  /** The connection's frame count when this request was queued on it. */
  framesAtSend: number;
}

/** A pooled client of the cluster service of many nodes. */
export class ClusterClient {
  readonly #cfg: Config;
  readonly #targets = new Map<string, Target>();
  readonly #counters: Counters = {
    requests: 0,
    timeouts: 0,
    connectionsOpened: 0,
    connectionsLost: 0,
    dialFailures: 0,
  };
  #closed = false;
  #closing: Promise<void> | undefined;

  constructor(options: ClusterClientOptions = {}) {
    this.#cfg = {
      timeoutMs: options.timeoutMs ?? DEFAULT_CLIENT_TIMEOUT_MS,
      dialTimeoutMs: options.dialTimeoutMs ?? DEFAULT_CLIENT_DIAL_TIMEOUT_MS,
      connectionsPerTarget: options.connectionsPerTarget ?? DEFAULT_CONNECTIONS_PER_TARGET,
      maxInFlightPerTarget: options.maxInFlightPerTarget ?? DEFAULT_MAX_IN_FLIGHT_PER_TARGET,
      pipelineDepth: options.pipelineDepth ?? DEFAULT_PIPELINE_DEPTH,
      idleTimeoutMs: options.idleTimeoutMs ?? DEFAULT_CLIENT_IDLE_TIMEOUT_MS,
      maxFrameBytes: options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES,
      ...(options.credentials === undefined ? {} : { credentials: options.credentials }),
      ...(options.connect === undefined ? {} : { connect: options.connect }),
    };
    for (
      const k of [
        "timeoutMs",
        "dialTimeoutMs",
        "connectionsPerTarget",
        "maxInFlightPerTarget",
        "pipelineDepth",
        "idleTimeoutMs",
        "maxFrameBytes",
      ] as const
    ) {
      const v = this.#cfg[k];
      if (!(Number.isFinite(v) && v > 0)) throw new RangeError(`${k} must be positive, got ${v}`);
    }
  }

  /** Asks the node at `addr` (its Raft/mux address) for its metadata. */
  nodeMeta(addr: string, opts?: CallOptions): Promise<NodeMeta> {
    return this.call(addr, "nodeMeta", {}, opts);
  }

  /** Forwards a write to the node at `addr` (the leader). */
  execute(
    addr: string,
    command: Command,
    options: ExecuteOptions = {},
    opts?: CallOptions,
  ): Promise<CommandResult> {
    return this.call(addr, "execute", { command, options }, opts);
  }

  /** Forwards a read. */
  query(
    addr: string,
    command: Command,
    options: ReadOptions,
    opts?: CallOptions,
  ): Promise<CommandResult> {
    return this.call(addr, "query", { command, options }, opts);
  }

  /** Forwards a unified request. */
  request(
    addr: string,
    command: Command,
    options: ReadOptions,
    opts?: CallOptions,
  ): Promise<CommandResult> {
    return this.call(addr, "request", { command, options }, opts);
  }

  /**
   * Asks the node at `addr` to add a node. A non-leader rejects with a
   * {@link RemoteError} `not leader` whose `leaderAddr` is the leader's
   * Raft address when known: the joiner retries there.
   */
  async join(addr: string, req: JoinRequest, opts?: CallOptions): Promise<void> {
    await this.call(addr, "join", req, opts);
  }

  /** Bootstrap-expect announcement. */
  async notify(addr: string, req: NotifyRequest, opts?: CallOptions): Promise<void> {
    await this.call(addr, "notify", req, opts);
  }

  /** Asks the node at `addr` (the leader) to remove node `id`. */
  async remove(addr: string, id: string, opts?: CallOptions): Promise<void> {
    await this.call(addr, "remove", { id }, opts);
  }

  /** Asks the node at `addr` (the leader) to hand leadership over. */
  async stepdown(addr: string, req: StepdownRequest, opts?: CallOptions): Promise<void> {
    await this.call(addr, "stepdown", req, opts);
  }

  /**
   * Sends one request and resolves with the checked response body. Rejects
   * with a {@link ClusterError} subclass, `PayloadTooLargeError` (nothing
   * sent), or lib/db's `CommandEncodeError`.
   */
  call<T extends RequestType>(
    addr: string,
    type: T,
    body: RequestBodies[T],
    opts: CallOptions = {},
  ): Promise<ResponseBodies[T]> {
    if (this.#closed) return Promise.reject(new ClusterClosedError());
    const timeoutMs = Math.min(
      TIMER_MAX_MS,
      Math.max(1, Math.ceil(opts.timeoutMs ?? this.#cfg.timeoutMs)),
    );
    const credentials = opts.credentials ?? this.#cfg.credentials;
    let payload: Uint8Array;
    try {
      const req = { id: 0, type, timeoutMs, body, ...(credentials ? { credentials } : {}) };
      payload = encodeRequest(req as AnyRequest, this.#cfg.maxFrameBytes);
    } catch (err) {
      return Promise.reject(err);
    }
    let target = this.#targets.get(addr);
    if (target === undefined) {
      target = new Target(addr, this.#cfg, this.#counters, () => this.#closed);
      this.#targets.set(addr, target);
    }
    if (target.inFlight >= this.#cfg.maxInFlightPerTarget) {
      return Promise.reject(new ClusterBusyError(addr, this.#cfg.maxInFlightPerTarget));
    }
    this.#counters.requests++;
    target.inFlight++;
    return new Promise<ResponseBodies[T]>((resolve, reject) => {
      const p: Pending = {
        type,
        payload,
        resolve: resolve as (body: unknown) => void,
        reject,
        timer: undefined,
        settled: false,
        conn: undefined,
        id: 0,
        framesAtSend: 0,
      };
      p.timer = setTimeout(() => {
        this.#counters.timeouts++;
        const conn = p.conn;
        target.settle(p, new ClusterTimeoutError(type, addr, timeoutMs));
        conn?.onTimeout(p);
      }, timeoutMs);
      target.dispatch(p);
    });
  }

  stats(): ClusterClientStats {
    const targets: Record<string, { connections: number; inFlight: number }> = {};
    for (const [addr, t] of this.#targets) {
      targets[addr] = { connections: t.conns.size, inFlight: t.inFlight };
    }
    return { targets, ...this.#counters };
  }

  /**
   * Rejects everything pending with {@link ClusterClosedError}, closes every
   * connection and waits for their loops and dials. Idempotent.
   */
  close(): Promise<void> {
    if (this.#closing !== undefined) return this.#closing;
    this.#closed = true;
    const targets = [...this.#targets.values()];
    this.#targets.clear();
    this.#closing = Promise.all(targets.map((t) => t.close())).then(() => {});
    return this.#closing;
  }
}

/** The pool for one address. */
class Target {
  readonly conns = new Set<ClientConn>();
  /** Requests waiting for the dial in progress. */
  #waiting: Pending[] = [];
  #dialing: Promise<void> | undefined;
  inFlight = 0;

  constructor(
    readonly addr: string,
    private readonly cfg: Config,
    private readonly counters: Counters,
    private readonly clientClosed: () => boolean,
  ) {}

  /** Sends `p` on the least loaded connection, dialing another when all are busy. */
  dispatch(p: Pending): void {
    if (p.settled) return;
    let best: ClientConn | undefined;
    let usable = 0;
    for (const c of this.conns) {
      if (!c.usable) continue;
      usable++;
      if (best === undefined || c.pending.size < best.pending.size) best = c;
    }
    // Draining connections do not count: they close as soon as they settle.
    const canDial = this.#dialing === undefined && usable < this.cfg.connectionsPerTarget &&
      !this.clientClosed();
    if (canDial && (best === undefined || best.pending.size >= this.cfg.pipelineDepth)) {
      this.#dialing = this.#dial();
    }
    if (best !== undefined) best.send(p);
    else this.#waiting.push(p);
  }

  /** Settles `p` once: `err` rejects, otherwise resolves with `body`. */
  settle(p: Pending, err: Error | undefined, body?: unknown): void {
    if (p.settled) return;
    p.settled = true;
    clearTimeout(p.timer);
    this.inFlight--;
    if (p.conn !== undefined) p.conn.pending.delete(p.id);
    if (err !== undefined) p.reject(err);
    else p.resolve(body);
  }

  async #dial(): Promise<void> {
    let conn: Deno.Conn;
    try {
      conn = await dialService(this.addr, SERVICE_CLUSTER, {
        timeoutMs: this.cfg.dialTimeoutMs,
        ...(this.cfg.connect === undefined ? {} : { connect: this.cfg.connect }),
      });
    } catch (err) {
      this.counters.dialFailures++;
      this.#dialing = undefined;
      const waiting = this.#waiting;
      this.#waiting = [];
      const message = `cannot connect to node ${this.addr}: ${(err as Error)?.message ?? err}`;
      for (const p of waiting) {
        this.settle(p, new ClusterConnectionError(message, this.addr, false, { cause: err }));
      }
      return;
    }
    this.#dialing = undefined;
    if (this.clientClosed()) {
      try {
        conn.close();
      } catch {
        // Already closed.
      }
      for (const p of this.#waiting.splice(0)) this.settle(p, new ClusterClosedError());
      return;
    }
    this.counters.connectionsOpened++;
    const c = new ClientConn(conn, this, this.cfg, this.counters);
    this.conns.add(c);
    for (const p of this.#waiting.splice(0)) this.dispatch(p);
  }

  /** Called by a connection once it has closed. */
  removed(c: ClientConn): void {
    this.conns.delete(c);
    if (this.#waiting.length > 0 && this.#dialing === undefined && !this.clientClosed()) {
      this.#dialing = this.#dial();
    }
  }

  async close(): Promise<void> {
    for (const p of this.#waiting.splice(0)) this.settle(p, new ClusterClosedError());
    const conns = [...this.conns];
    for (const c of conns) c.close(() => new ClusterClosedError());
    while (this.#dialing !== undefined) await this.#dialing;
    await Promise.allSettled(conns.map((c) => c.loop));
  }
}

/** One persistent connection to a target. */
class ClientConn {
  readonly pending = new Map<number, Pending>();
  readonly loop: Promise<void>;
  readonly #conn: Deno.Conn;
  readonly #reader: FrameReader;
  readonly #writer: FrameQueue;
  #nextId = 1;
  #frames = 0;
  #draining = false;
  #closed = false;
  #lastActiveMs = performance.now();
  #idleTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    conn: Deno.Conn,
    private readonly target: Target,
    private readonly cfg: Config,
    private readonly counters: Counters,
  ) {
    this.#conn = conn;
    this.#reader = new FrameReader(conn, { maxFrameBytes: cfg.maxFrameBytes, closeOnError: false });
    this.#writer = new FrameQueue(conn, cfg.maxFrameBytes, (err) => this.#lost(err.message));
    this.loop = this.#readLoop();
    this.#armIdle();
  }

  get usable(): boolean {
    return !this.#closed && !this.#draining;
  }

  send(p: Pending): void {
    const id = this.#allocId();
    p.conn = this;
    p.id = id;
    p.framesAtSend = this.#frames;
    setRequestId(p.payload, id);
    this.pending.set(id, p);
    this.#lastActiveMs = performance.now();
    this.#writer.push(p.payload);
  }

  /**
   * A request on this connection hit its deadline. If nothing at all arrived
   * since it was sent, the connection may be stuck: take no new requests,
   * close when the rest settle.
   */
  onTimeout(p: Pending): void {
    if (this.#closed || this.#frames !== p.framesAtSend) return;
    this.#draining = true;
    if (this.pending.size === 0) this.close(() => this.#lostError("connection unresponsive"));
  }

  /** Closes the socket and rejects everything in flight with `error()` (idempotent). */
  close(error: () => Error): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#idleTimer);
    this.target.removed(this);
    this.#reader.close();
    try {
      this.#conn.close();
    } catch {
      // Closed by the reader already.
    }
    for (const p of [...this.pending.values()]) this.target.settle(p, error());
    this.pending.clear();
  }

  #lost(reason: string): void {
    if (this.#closed) return;
    this.counters.connectionsLost++;
    this.close(() => this.#lostError(reason));
  }

  #lostError(reason: string): Error {
    return new ClusterConnectionError(
      `connection to node ${this.target.addr} lost: ${reason}`,
      this.target.addr,
      true,
    );
  }

  #allocId(): number {
    for (;;) {
      const id = this.#nextId;
      this.#nextId = id >= U32_MAX ? 1 : id + 1;
      if (!this.pending.has(id)) return id;
    }
  }

  async #readLoop(): Promise<void> {
    for (;;) {
      let frame: Uint8Array | null;
      try {
        frame = await this.#reader.read();
      } catch (err) {
        this.#lost((err as Error)?.message ?? String(err));
        return;
      }
      if (frame === null) {
        this.#lost("closed by the remote node");
        return;
      }
      this.#frames++;
      this.#lastActiveMs = performance.now();
      try {
        this.#deliver(frame);
      } catch (err) {
        // A malformed response: this connection can no longer be trusted.
        this.#lost((err as Error)?.message ?? String(err));
        return;
      }
      if (this.#draining && this.pending.size === 0) {
        this.close(() => this.#lostError("connection unresponsive"));
        return;
      }
    }
  }

  #deliver(frame: Uint8Array): void {
    const msg = decodeResponse(frame);
    const p = this.pending.get(msg.id);
    if (p === undefined) return; // Timed out already: the late answer is dropped.
    if (!msg.ok) {
      this.target.settle(p, new RemoteError(msg.error, this.target.addr));
      return;
    }
    let body: unknown;
    try {
      body = checkResponseBody(p.type, msg.body);
    } catch (err) {
      this.target.settle(p, err instanceof Error ? err : new ClusterError(String(err)));
      throw err;
    }
    this.target.settle(p, undefined, body);
  }

  /** One timer per connection, re-armed until the connection is really idle. */
  #armIdle(): void {
    if (this.#closed) return;
    const left = this.#lastActiveMs + this.cfg.idleTimeoutMs - performance.now();
    this.#idleTimer = setTimeout(() => {
      if (this.#closed) return;
      if (this.pending.size > 0) this.#lastActiveMs = performance.now();
      else if (performance.now() - this.#lastActiveMs >= this.cfg.idleTimeoutMs) {
        this.close(() => this.#lostError("idle"));
        return;
      }
      this.#armIdle();
    }, Math.max(1, left));
  }
}
