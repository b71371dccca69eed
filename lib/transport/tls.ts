/**
 * Internode TLS: the listen and connect functions the mux, the Raft
 * transport and the cluster client take (their TLS seams), built from
 * rqlited's `-node-*` flags (rqlite-api.md §8, §10).
 *
 * - Listening: a `node:tls` server (`Deno.listenTls` cannot require client
 *   certificates; deno-facts.md §7) adapted to a `Deno.Listener` whose
 *   connections are {@link SocketConn}s. With `verifyClient` it requires a
 *   client certificate that chains to `caCert`: the TLS layer refuses others
 *   (`rejectUnauthorized`), and each connection is checked again before the
 *   mux sees it (authorized, and the common name when `commonName` is set).
 * - Dialing: `node:tls.connect`, presenting this node's certificate (the
 *   same one it serves; peers that verify clients need it), verifying the
 *   peer against `caCert` (system roots when absent) and the dialled host,
 *   or the fixed `serverName`, or nothing with `noVerify`.
 *
 * Failures: a handshake that fails or takes longer than `handshakeTimeoutMs`
 * closes that one connection; it is logged once per peer address (see
 * {@link FailureLog}), never once per retry. A dial that fails returns an
 * error that names the peer and the reason. TLS 1.3 clients finish their
 * handshake before the server has checked their certificate, so a refused
 * client only sees the connection end: the first read on an outbound
 * connection that ends before any byte arrived throws an error saying so.
 *
 * Why not `Deno.connectTls`: it cannot skip verification or verify a fixed
 * name, and one implementation for every dial keeps one set of error
 * messages. Measured on this machine (2 vCPU, shared with other work):
 * - raw sockets in one process, 64 KiB writes / 64-byte ping-pong:
 *   `Deno.listenTls` + `Deno.connectTls` 686 MiB/s and 37k round trips/s;
 *   `node:tls` server + `node:tls` client through {@link SocketConn} 668
 *   MiB/s and 21k round trips/s;
 * - Raft appends (tests/transport/throughput.ts, 1 M messages of 100 bytes,
 *   four runs): between two processes 0.9-1.9 M msgs/s over mutual TLS
 *   against 1.2-2.2 M msgs/s over TCP, ~3,100-4,000 messages per frame
 *   either way. Raft traffic is pipelined and batched, so the slower round
 *   trip barely shows: throughput drops by 10-50 %, it does not collapse.
 *
 * @module
 */

import tls from "node:tls";
import { FailureLog } from "./failure_log.ts";
import { type ConnectFn, formatHostPort, type ListenFn } from "./mux.ts";
import { listenNodeServer, SocketConn } from "./socket_conn.ts";

/** Default time a TLS handshake may take (both directions). */
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;
/** Connections that finished their handshake but wait for `accept()`, at most. */
const MAX_PENDING_ACCEPTS = 128;
/**
 * Connections the TLS server holds at most, in their handshake or open
 * (beyond, new ones are closed at once): a flood of silent connections costs
 * at most this many sockets for a handshake timeout each. The mux's own
 * bound (512 by default) applies to the open ones.
 */
const MAX_TLS_CONNECTIONS = 1024;

/** Internode TLS settings (PEM texts, not paths). */
export interface NodeTlsConfig {
  /** Certificate (chain) this node presents, as server and as client. */
  readonly cert: string;
  /** Its private key. */
  readonly key: string;
  /** Roots that peers' certificates must chain to; the system roots when absent. */
  readonly caCert?: string;
  /** Require and verify client certificates on the listener (mutual TLS). */
  readonly verifyClient: boolean;
  /** Dial without verifying the peer's certificate at all. */
  readonly noVerify: boolean;
  /** Verify dialled peers' certificates against this name instead of the dialled host. */
  readonly serverName?: string;
  /** With `verifyClient`: the client certificate's common name must be exactly this. */
  readonly commonName?: string;
  /** Bound on a handshake (default 10 s). */
  readonly handshakeTimeoutMs?: number;
}

/** Where TLS failures go and what to do when the listener breaks after start-up. */
export interface TlsHooks {
  log(line: string): void;
  /** The listener failed (e.g. its port was taken between reserving and binding). */
  onListenError?(err: Error): void;
}

/** The mux's listen function for internode TLS. */
export function tlsListen(config: NodeTlsConfig, hooks: TlsHooks): ListenFn {
  return ({ hostname, port }) => new TlsListener(config, hostname, port, hooks);
}

/** The connect function for every outbound internode connection under TLS. */
export function tlsConnect(config: NodeTlsConfig, hooks: TlsHooks): ConnectFn {
  const failures = new FailureLog(hooks.log);
  const timeoutMs = config.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS;
  return ({ hostname, port, signal }) => {
    const target = formatHostPort(hostname, port);
    return new Promise<Deno.Conn>((resolve, reject) => {
      const socket = tls.connect({
        host: hostname,
        port,
        cert: config.cert,
        key: config.key,
        ...(config.caCert === undefined ? {} : { ca: [config.caCert] }),
        rejectUnauthorized: !config.noVerify,
        ...(config.serverName ? { servername: config.serverName } : {}),
      });
      const timer = setTimeout(
        () => fail(new Error(`no TLS handshake within ${timeoutMs} ms`)),
        timeoutMs,
      );
      const onAbort = () =>
        finish(() => {
          socket.destroy();
          reject(new Error("cancelled"));
        });
      signal.addEventListener("abort", onAbort, { once: true });
      function finish(then: () => void): void {
        clearTimeout(timer);
        signal.removeEventListener("abort", onAbort);
        socket.removeListener("error", fail);
        socket.removeListener("secureConnect", connected);
        // A destroyed socket may still report an error; nobody waits for it any more.
        socket.on("error", () => {});
        then();
      }
      function fail(err: Error): void {
        // Before the TCP connection exists this is no TLS matter (a peer that is
        // down or restarting): the caller reports it, nothing is logged here.
        const message = tcpConnected
          ? `TLS handshake with ${target} failed: ${explainDialError(err, config)}`
          : err.message;
        if (tcpConnected) failures.note(target, `[tls] ${message}`);
        finish(() => {
          socket.destroy();
          reject(new Error(message, { cause: err }));
        });
      }
      function connected(): void {
        finish(() =>
          resolve(
            new SocketConn(socket, {
              endBeforeData: () =>
                new Error(
                  `the TLS connection to ${target} ended before any answer: the peer may ` +
                    `refuse this node's certificate (is -node-cert signed by the CA the peer ` +
                    `trusts with -node-ca-cert?)`,
                ),
            }),
          )
        );
      }
      let tcpConnected = false;
      socket.once("connect", () => (tcpConnected = true));
      socket.once("secureConnect", connected);
      socket.once("error", fail);
      if (signal.aborted) onAbort();
    });
  };
}

/** A `node:tls` server seen as a `Deno.Listener` of {@link SocketConn}s. */
class TlsListener implements Deno.Listener<SocketConn, Deno.NetAddr> {
  readonly addr: Deno.NetAddr;
  readonly #server: tls.Server;
  readonly #config: NodeTlsConfig;
  readonly #hooks: TlsHooks;
  readonly #failures: FailureLog;
  readonly #queue: SocketConn[] = [];
  readonly #waiters: { resolve(c: SocketConn): void; reject(e: Error): void }[] = [];
  #failure: Error | undefined;
  #closed = false;

  constructor(config: NodeTlsConfig, hostname: string, port: number, hooks: TlsHooks) {
    this.#config = config;
    this.#hooks = hooks;
    this.#failures = new FailureLog(hooks.log);
    this.#server = tls.createServer({
      cert: config.cert,
      key: config.key,
      ...(config.caCert === undefined ? {} : { ca: [config.caCert] }),
      requestCert: config.verifyClient,
      rejectUnauthorized: config.verifyClient,
      handshakeTimeout: config.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS,
    });
    this.#server.maxConnections = MAX_TLS_CONNECTIONS;
    this.#server.on("secureConnection", (socket: tls.TLSSocket) => this.#admit(socket));
    this.#server.on("tlsClientError", (err: Error, socket: tls.TLSSocket) => {
      const from = peerAddress(socket);
      this.#failures.note(
        `${from} ${err.message}`,
        `[tls] TLS handshake from ${from} failed: ${explainAcceptError(err)}`,
      );
      // Deno's node:tls reports a handshake timeout without ending the connection.
      socket.destroy();
    });
    this.#server.on("error", (err: Error) => {
      // Before listening: the address could not be bound (fatal). After: a
      // transient accept error (e.g. out of file descriptors) is only logged.
      if (this.#server.listening) hooks.log(`[tls] internode TLS server error: ${err.message}`);
      else this.#fail(err);
    });
    this.addr = listenNodeServer(this.#server, hostname, port);
  }

  accept(): Promise<SocketConn> {
    const next = this.#queue.shift();
    if (next !== undefined) return Promise.resolve(next);
    if (this.#closed) return Promise.reject(new Deno.errors.BadResource("listener closed"));
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
  }

  /**
   * Stops listening and closes connections not yet accepted. Connections
   * still in their handshake end by the handshake timeout at the latest.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#server.close();
    for (const conn of this.#queue.splice(0)) conn.close();
    for (const w of this.#waiters.splice(0)) {
      w.reject(new Deno.errors.BadResource("listener closed"));
    }
  }

  ref(): void {
    this.#server.ref();
  }

  unref(): void {
    this.#server.unref();
  }

  async *[Symbol.asyncIterator](): AsyncIterableIterator<SocketConn> {
    for (;;) {
      try {
        yield await this.accept();
      } catch (err) {
        if (err instanceof Deno.errors.BadResource) return;
        throw err;
      }
    }
  }

  [Symbol.dispose](): void {
    this.close();
  }

  /** Hands a connection whose handshake succeeded to `accept()`, unless it is refused. */
  #admit(socket: tls.TLSSocket): void {
    const from = socket.remoteAddress ?? "unknown";
    const refusal = this.#refusal(socket);
    if (refusal !== undefined) {
      this.#failures.note(
        `${from} ${refusal}`,
        `[tls] refused a connection from ${from}: ${refusal}`,
      );
      socket.destroy();
      return;
    }
    if (this.#closed || this.#queue.length >= MAX_PENDING_ACCEPTS) {
      socket.destroy();
      return;
    }
    const conn = new SocketConn(socket);
    const waiter = this.#waiters.shift();
    if (waiter !== undefined) waiter.resolve(conn);
    else this.#queue.push(conn);
  }

  /** Why `socket` must not be served, or undefined when it may. */
  #refusal(socket: tls.TLSSocket): string | undefined {
    if (!this.#config.verifyClient) return undefined;
    const cert = socket.getPeerCertificate();
    if (cert === null || cert === undefined || Object.keys(cert).length === 0) {
      return "it presented no client certificate (-node-verify-client requires one)";
    }
    if (socket.authorized !== true) {
      return `its client certificate is not trusted (${socket.authorizationError ?? "unknown"})`;
    }
    const want = this.#config.commonName;
    const cn = cert.subject?.CN;
    if (want && cn !== want) {
      return `its client certificate's common name is ${JSON.stringify(cn ?? "")}, ` +
        `not ${JSON.stringify(want)} (-node-verify-common-name)`;
    }
    return undefined;
  }

  #fail(err: Error): void {
    if (this.#closed || this.#failure !== undefined) return;
    this.#failure = new Error(
      `internode TLS listener on ${formatHostPort(this.addr.hostname, this.addr.port)} failed: ` +
        err.message,
      { cause: err },
    );
    for (const w of this.#waiters.splice(0)) w.reject(this.#failure);
    this.#hooks.onListenError?.(this.#failure);
  }
}

/**
 * The remote address of a server-side TLS socket. After a failed handshake
 * Deno's node:tls (2.9) leaves `remoteAddress` undefined on the TLS socket
 * while the TCP socket under it (`_parent`) still has it.
 */
export function peerAddress(socket: tls.TLSSocket): string {
  const parent = (socket as { _parent?: { remoteAddress?: string } })._parent;
  return socket.remoteAddress ?? parent?.remoteAddress ?? "unknown address";
}

/** A dial's handshake error with what it usually means. */
function explainDialError(err: Error, config: NodeTlsConfig): string {
  const code = (err as { code?: string }).code ?? "";
  const text = err.message;
  if (code === "ERR_TLS_CERT_ALTNAME_INVALID") {
    return `${text} (the peer's certificate is not for the dialled name; ` +
      `${config.serverName ? "check -node-verify-server-name" : "use -node-verify-server-name"})`;
  }
  if (/self[- ]signed|UNABLE_TO_VERIFY|unknown ?ca|UnknownIssuer/i.test(`${code} ${text}`)) {
    return `${text} (the peer's certificate is not signed by ` +
      `${config.caCert === undefined ? "a system root; pass -node-ca-cert" : "-node-ca-cert"})`;
  }
  if (/wrong version|InvalidContentType|corrupt message/i.test(text)) {
    return `${text} (the peer does not speak TLS: is it running without -node-cert?)`;
  }
  return text;
}

/** An accepted handshake's error with what it usually means. */
function explainAcceptError(err: Error): string {
  const text = err.message;
  if (/wrong version|InvalidContentType|corrupt message/i.test(text)) {
    return `${text} (the peer does not speak TLS: is it running without -node-cert?)`;
  }
  if (/no certificates|did not return a certificate/i.test(text)) {
    return `${text} (-node-verify-client requires a client certificate)`;
  }
  if (/hang up|reset|closed/i.test(text)) {
    return `${text} (the peer ended the handshake: its client certificate may not be ` +
      `signed by -node-ca-cert, or it does not trust this node's certificate)`;
  }
  return text;
}
