/**
 * The HTTP listener of a node: plain HTTP or HTTPS with `Deno.serve` (the
 * fast path), or HTTPS requiring client certificates with `node:https`
 * (node_https.ts), which `Deno.serve` cannot do. All three serve the same
 * `Request -> Response` handler and bind before returning, so the caller
 * knows the address (and a bind error throws) at once.
 *
 * @module
 */

import { serveMutualTls } from "./node_https.ts";

/** HTTPS settings (`-http-cert`, `-http-key`, `-http-ca-cert`, `-http-verify-*`); PEM texts. */
export interface HttpTlsConfig {
  readonly cert: string;
  readonly key: string;
  /** Roots that client certificates must chain to (required with `verifyClient`). */
  readonly caCert?: string;
  /** Require a client certificate signed by `caCert`. */
  readonly verifyClient: boolean;
  /** With `verifyClient`: the client certificate's common name must be exactly this. */
  readonly commonName?: string;
}

/** Options of {@link serveHttp}. */
export interface ServeHttpOptions {
  readonly hostname: string;
  readonly port: number;
  /** Absent: plain HTTP. */
  readonly tls?: HttpTlsConfig;
  /** `info.completed` (Deno.serve only) settles once the response was delivered. */
  readonly handler: (req: Request, info?: { completed: Promise<void> }) => Promise<Response>;
  readonly log: (line: string) => void;
  /** The listener failed after start-up (node:https only; see node_https.ts). */
  readonly onListenError?: (err: Error) => void;
}

/** A running HTTP listener. */
export interface HttpListener {
  readonly addr: Deno.NetAddr;
  /** "http" or "https": the scheme of this node's API URL. */
  readonly scheme: "http" | "https";
  shutdown(): Promise<void>;
}

/** Starts the node's HTTP listener (see the module note). */
export function serveHttp(options: ServeHttpOptions): HttpListener {
  const { hostname, port, tls, handler } = options;
  if (tls?.verifyClient) {
    if (tls.caCert === undefined) {
      throw new Error("client certificate verification needs a CA certificate (-http-ca-cert)");
    }
    const server = serveMutualTls({
      hostname,
      port,
      cert: tls.cert,
      key: tls.key,
      caCert: tls.caCert,
      ...(tls.commonName ? { commonName: tls.commonName } : {}),
      handler,
      log: options.log,
      ...(options.onListenError ? { onListenError: options.onListenError } : {}),
    });
    return { addr: server.addr, scheme: "https", shutdown: () => server.shutdown() };
  }
  const server = Deno.serve({
    hostname,
    port,
    ...(tls === undefined ? {} : { cert: tls.cert, key: tls.key }),
    onListen: () => {},
    handler: (req, info) => handler(req, info),
  });
  return {
    addr: server.addr,
    scheme: tls === undefined ? "http" : "https",
    shutdown: () => server.shutdown(),
  };
}
