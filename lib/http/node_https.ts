/**
 * HTTPS that requires client certificates (`-http-verify-client`), serving
 * the same `Request -> Response` handler as `Deno.serve`. `Deno.serve`
 * cannot ask for client certificates (deno-facts.md §7), so this runs a
 * `node:https` server with `requestCert` and `rejectUnauthorized` (a client
 * without a certificate signed by `caCert` fails the TLS handshake) and
 * adapts node's request and response to web ones.
 *
 * Adapter rules (so handlers cannot tell the servers apart): the URL is
 * `https://<Host header><path>`; headers are passed as received; GET and
 * HEAD have no body, other methods get the body as a stream with
 * backpressure (the node request is paused while the stream's 1 MiB queue is
 * full), so handlers' own size limits apply as they read; the response's
 * status, headers and body are written as they are, the body streamed with
 * backpressure (`drain`). A client that goes away aborts `request.signal` and
 * cancels the response body. Framing headers may differ (node writes
 * `Transfer-Encoding: chunked` where `Deno.serve` may know the length).
 *
 * `commonName` (`-http-verify-common-name`): a request whose client
 * certificate has another common name gets 401 with a plain-text reason
 * (the TLS connection itself was valid, so an HTTP answer is clearer than a
 * dropped connection).
 *
 * @module
 */

import https from "node:https";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { TLSSocket } from "node:tls";
import { listenNodeServer } from "../transport/socket_conn.ts";
import { FailureLog } from "../transport/failure_log.ts";
import { peerAddress } from "../transport/tls.ts";
import { textError } from "./response.ts";

/** Request body bytes queued between node and the handler before node is paused. */
const BODY_QUEUE_BYTES = 1 << 20;
/** Time a client has to complete its TLS handshake. */
const HANDSHAKE_TIMEOUT_MS = 10_000;
/** How long {@link MutualTlsServer.shutdown} waits for open responses before cutting them. */
const SHUTDOWN_GRACE_MS = 2_000;

/** Options of {@link serveMutualTls}. */
export interface MutualTlsOptions {
  readonly hostname: string;
  readonly port: number;
  /** PEM server certificate (chain) and key. */
  readonly cert: string;
  readonly key: string;
  /** PEM roots client certificates must chain to. */
  readonly caCert: string;
  /** Required client certificate common name, if any. */
  readonly commonName?: string;
  readonly handler: (req: Request) => Promise<Response>;
  /** Handshake failures (once per client address) and adapter errors. */
  readonly log: (line: string) => void;
  /** The server failed after start-up (e.g. its port was taken between reserving and binding). */
  readonly onListenError?: (err: Error) => void;
}

/** A running mTLS HTTPS server. */
export interface MutualTlsServer {
  readonly addr: Deno.NetAddr;
  /** Stops accepting, lets open responses finish (bounded), then closes every connection. */
  shutdown(): Promise<void>;
}

/** Starts the server; the address is bound when this returns (see {@link listenNodeServer}). */
export function serveMutualTls(options: MutualTlsOptions): MutualTlsServer {
  const failures = new FailureLog(options.log);
  const server = https.createServer({
    cert: options.cert,
    key: options.key,
    ca: [options.caCert],
    requestCert: true,
    rejectUnauthorized: true,
    handshakeTimeout: HANDSHAKE_TIMEOUT_MS,
  }, (req, res) =>
    respond(req, res, options).catch((err) => {
      options.log(`[http] ${req.method} ${req.url} failed: ${errorText(err)}`);
      res.destroy();
    }));
  server.on("tlsClientError", (err: Error, socket: TLSSocket) => {
    const from = peerAddress(socket);
    failures.note(
      `${from} ${err.message}`,
      `[http] TLS handshake from ${from} failed: ${err.message}`,
    );
    // Deno's node:tls reports a handshake timeout without ending the connection.
    socket.destroy();
  });
  server.on("error", (err: Error) => {
    // Before listening: the address could not be bound (fatal). After: a
    // transient accept error (e.g. out of file descriptors) is only logged.
    if (server.listening) options.log(`[http] HTTPS server error: ${err.message}`);
    else options.onListenError?.(err);
  });
  const addr = listenNodeServer(server, options.hostname, options.port);
  let closing: Promise<void> | undefined;
  return {
    addr,
    shutdown: () =>
      closing ??= new Promise<void>((resolve) => {
        const timer = setTimeout(() => server.closeAllConnections(), SHUTDOWN_GRACE_MS);
        server.close(() => {
          clearTimeout(timer);
          resolve();
        });
        server.closeIdleConnections();
      }),
  };
}

async function respond(
  req: IncomingMessage,
  res: ServerResponse,
  options: MutualTlsOptions,
): Promise<void> {
  const refusal = clientRefusal(req.socket as TLSSocket, options.commonName);
  if (refusal !== undefined) {
    req.resume();
    await writeResponse(textError(401, refusal), res, new AbortController().signal);
    return;
  }
  const gone = new AbortController();
  res.on("close", () => {
    if (!res.writableFinished) gone.abort();
  });
  const body = hasBody(req) ? bodyStream(req) : undefined;
  if (body === undefined) req.resume();
  let response: Response;
  try {
    response = await options.handler(toRequest(req, body?.stream, gone.signal));
  } catch (err) {
    response = textError(400, err instanceof Error ? err.message : String(err));
  }
  // A body the handler did not read (e.g. refused as too large): the
  // connection cannot carry another request, so it closes after this
  // response; the rest is read and dropped so the client sees the answer.
  const unread = body !== undefined && !req.complete;
  if (unread) res.setHeader("Connection", "close");
  try {
    await writeResponse(response, res, gone.signal);
  } catch (err) {
    options.log(`[http] response to ${req.method} ${req.url} failed: ${errorText(err)}`);
    res.destroy();
  } finally {
    if (unread && !req.complete) body.discard();
  }
}

function hasBody(req: IncomingMessage): boolean {
  return req.method !== "GET" && req.method !== "HEAD";
}

/** Why a request on `socket` must be refused with 401, or undefined. */
function clientRefusal(socket: TLSSocket, commonName: string | undefined): string | undefined {
  // rejectUnauthorized already ended untrusted handshakes; this is the second lock.
  if (socket.authorized !== true) {
    return `client certificate not accepted (${socket.authorizationError ?? "none given"})`;
  }
  if (!commonName) return undefined;
  const cn = socket.getPeerCertificate()?.subject?.CN;
  if (cn === commonName) return undefined;
  return `client certificate common name ${JSON.stringify(cn ?? "")} is not accepted ` +
    `(-http-verify-common-name)`;
}

/** node's request as a web Request (see the module note). */
function toRequest(
  req: IncomingMessage,
  body: ReadableStream<Uint8Array> | undefined,
  signal: AbortSignal,
): Request {
  const path = req.url ?? "/";
  const url = path.startsWith("/") ? `https://${req.headers.host ?? "localhost"}${path}` : path;
  const headers = new Headers();
  const raw = req.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) headers.append(raw[i]!, raw[i + 1]!);
  return new Request(url, {
    method: req.method ?? "GET",
    headers,
    signal,
    ...(body === undefined ? {} : { body, duplex: "half" }),
  } as RequestInit);
}

/**
 * The request body as a byte stream that pauses node while its queue is
 * full; `discard()` drops whatever has not been read yet.
 */
function bodyStream(req: IncomingMessage): {
  stream: ReadableStream<Uint8Array>;
  discard(): void;
} {
  let done = false;
  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      req.on("data", (chunk: Uint8Array) => {
        if (done) return;
        controller.enqueue(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
        if ((controller.desiredSize ?? 0) <= 0) req.pause();
      });
      req.on("end", () => {
        if (done) return;
        done = true;
        controller.close();
      });
      req.on("error", (err: Error) => {
        if (done) return;
        done = true;
        controller.error(err);
      });
      req.on("aborted", () => {
        if (done) return;
        done = true;
        controller.error(new Error("the client aborted the request"));
      });
    },
    pull() {
      req.resume();
    },
    cancel() {
      done = true;
      req.resume(); // discard the rest so the connection can be reused
    },
  }, new ByteLengthQueuingStrategy({ highWaterMark: BODY_QUEUE_BYTES }));
  return {
    stream,
    discard: () => {
      done = true;
      req.resume();
    },
  };
}

/** Writes a web Response to node's response, streaming the body with backpressure. */
async function writeResponse(
  response: Response,
  res: ServerResponse,
  gone: AbortSignal,
): Promise<void> {
  res.statusCode = response.status;
  if (response.statusText !== "") res.statusMessage = response.statusText;
  for (const [name, value] of response.headers) {
    if (name === "set-cookie") res.setHeader(name, response.headers.getSetCookie());
    else res.setHeader(name, value);
  }
  if (response.body === null) {
    res.end();
    return;
  }
  const reader = response.body.getReader();
  try {
    for (;;) {
      if (gone.aborted) {
        await reader.cancel();
        return;
      }
      const { done, value } = await reader.read();
      if (done) break;
      if (!res.write(value)) await drained(res);
    }
    res.end();
  } finally {
    reader.releaseLock();
  }
}

/** Resolves when `res` can take more data, or it closed. */
function drained(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off("drain", done);
      res.off("close", done);
      resolve();
    };
    res.on("drain", done);
    res.on("close", done);
  });
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
