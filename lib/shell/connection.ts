/**
 * The shell's HTTP connection to a cluster: one current host, failover to
 * the `-a` alternatives, redirects followed, credentials, TLS, timeouts and
 * cancellation.
 *
 * - Failover: when a host cannot be reached (connection refused, DNS,
 *   unreachable) the same request goes to the next host in the list, round
 *   the list once; the first that answers becomes the current host (the
 *   prompt follows it). A connection that breaks *during* a request is only
 *   retried elsewhere when the request is idempotent (GETs): a write might
 *   have been applied, so the shell says so instead of sending it twice.
 * - Redirects (301/302/307/308, e.g. a node answering `?redirect`) are
 *   followed up to {@link MAX_REDIRECTS} hops, as rqlite's CLI does; the
 *   request body is rebuilt for each hop (a file stream can be read once).
 * - `-t` bounds the wait for a response's headers; a body that streams
 *   (backups) is not cut by it. The caller's AbortSignal (Ctrl-C) aborts
 *   the request at any point, body included.
 *
 * @module
 */

import { baseUrl, type HostAddr, hostPort, type ShellOptions } from "./args.ts";
import { parseJsonExact } from "./json.ts";

/** rqlite's CLI stops after this many redirects (Go's http.Client default). */
export const MAX_REDIRECTS = 21;

/** One request. */
export interface RequestOptions {
  method?: "GET" | "POST" | "DELETE";
  /** Builds the body for each attempt; a stream can only be sent once. */
  body?: () => BodyInit | null | Promise<BodyInit | null>;
  headers?: Record<string, string>;
  /** Aborts the request (Ctrl-C). */
  signal?: AbortSignal;
  /** Safe to send again after a connection broke mid-request (default: GET only). */
  idempotent?: boolean;
  /** No `-t` bound on the headers (big uploads and downloads); Ctrl-C still cancels. */
  noTimeout?: boolean;
}

/** The user cancelled the request (Ctrl-C). */
export class CancelledError extends Error {
  override name = "CancelledError";
  constructor() {
    super("request cancelled");
  }
}

/** A response read as text, and its JSON when it parses. */
export interface TextResponse {
  status: number;
  statusText: string;
  headers: Headers;
  text: string;
  /** Parsed body (integers beyond 2^53 as bigint), or undefined when not JSON. */
  json: unknown;
}

/** Called when a request moved to another host. */
export type FailoverListener = (from: HostAddr, to: HostAddr, reason: string) => void;

/** HTTP to the current host with failover; see the module note. */
export class Connection {
  #index = 0;

  constructor(
    readonly options: ShellOptions,
    readonly client?: Deno.HttpClient,
    readonly onFailover: FailoverListener = () => {},
  ) {}

  /** The host requests go to first. */
  get host(): HostAddr {
    return this.options.hosts[this.#index]!;
  }

  /** Full URL of an API path (`/status?x`) on `host`. */
  url(path: string, host: HostAddr = this.host): string {
    return `${baseUrl(host)}${this.options.prefix}${path}`;
  }

  /** Sends a request, failing over and following redirects; returns the final response. */
  async request(path: string, opts: RequestOptions = {}): Promise<Response> {
    const hosts = this.options.hosts;
    const idempotent = opts.idempotent ?? (opts.method ?? "GET") === "GET";
    const failures: string[] = [];
    let firstReason = ""; // why the current host failed, for the failover notice
    for (let i = 0; i < hosts.length; i++) {
      const index = (this.#index + i) % hosts.length;
      const host = hosts[index]!;
      try {
        const res = await this.#follow(this.url(path, host), opts);
        if (index !== this.#index) {
          const from = this.host;
          this.#index = index;
          this.onFailover(from, host, firstReason);
        }
        return res;
      } catch (err) {
        if (opts.signal?.aborted) throw new CancelledError();
        if (!(err instanceof TypeError)) throw err; // not a network failure
        const reason = networkReason(err);
        if (!isConnectFailure(reason) && !idempotent) {
          throw new Error(
            `the connection to ${hostPort(host)} broke during the request (${reason}); ` +
              "it may or may not have been applied: check before sending it again",
          );
        }
        failures.push(`${hostPort(host)}: ${reason}`);
        if (i === 0) firstReason = reason;
      }
    }
    throw new Error(
      `could not reach ${hosts.length === 1 ? "the node" : "any node"}: ${failures.join("; ")}` +
        (hosts.length === 1 ? " (is it running? -a host:port,... adds hosts to fail over to)" : ""),
    );
  }

  /** {@link request}, then the body as text (and JSON when it parses). */
  async fetchText(path: string, opts: RequestOptions = {}): Promise<TextResponse> {
    return await readText(await this.request(path, opts), opts);
  }

  /**
   * GET of an absolute URL (another node's `api_addr` + path) with this
   * connection's credentials and TLS, no failover.
   */
  async fetchTextAt(url: string, opts: RequestOptions = {}): Promise<TextResponse> {
    return await readText(await this.#follow(url, opts), opts);
  }

  /** Releases the TLS client, if any. */
  close(): void {
    this.client?.close();
  }

  async #follow(first: string, opts: RequestOptions): Promise<Response> {
    let url = first;
    for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
      const res = await this.#once(url, opts);
      const location = res.headers.get("location");
      if (![301, 302, 307, 308].includes(res.status) || location === null) return res;
      await res.body?.cancel();
      url = new URL(location, url).toString();
    }
    throw new Error(`stopped after ${MAX_REDIRECTS} redirects (last to ${url})`);
  }

  async #once(url: string, opts: RequestOptions): Promise<Response> {
    const timeout = new AbortController();
    const timer = opts.noTimeout
      ? undefined
      : setTimeout(() => timeout.abort(), this.options.httpTimeoutMs);
    const signal = opts.signal === undefined
      ? timeout.signal
      : AbortSignal.any([opts.signal, timeout.signal]);
    const headers: Record<string, string> = { ...opts.headers };
    const user = this.options.user;
    if (user !== undefined) {
      headers["Authorization"] = `Basic ${btoa(`${user.username}:${user.password}`)}`;
    }
    try {
      const init: RequestInit & { client?: Deno.HttpClient } = {
        method: opts.method ?? "GET",
        headers,
        body: opts.body === undefined ? null : await opts.body(),
        redirect: "manual",
        signal,
      };
      if (this.client !== undefined) init.client = this.client;
      return await fetch(url, init);
    } catch (err) {
      if (timeout.signal.aborted && !opts.signal?.aborted) {
        throw new Error(
          `no response from ${new URL(url).host} within ${this.options.httpTimeoutMs / 1000}s ` +
            "(-t/--http-timeout sets the limit)",
        );
      }
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }
}

/** The body of `res` as text, and its JSON when it parses. */
async function readText(res: Response, opts: RequestOptions): Promise<TextResponse> {
  let text: string;
  try {
    text = await res.text();
  } catch (err) {
    if (opts.signal?.aborted) throw new CancelledError();
    throw err;
  }
  let json: unknown;
  try {
    json = parseJsonExact(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, statusText: res.statusText, headers: res.headers, text, json };
}

/** The useful part of a fetch network error ("error sending request ...: Connection refused"). */
function networkReason(err: TypeError): string {
  const cause = (err as { cause?: unknown }).cause;
  const text = cause instanceof Error ? cause.message : err.message;
  return text.replace(/^error sending request for url \([^)]*\): /, "");
}

function isConnectFailure(reason: string): boolean {
  return /\(Connect\)|connect error|Connection refused|dns error|failed to lookup|unreachable/i
    .test(reason);
}

/** Builds the TLS client for `-c`/`-d`/`-k`, or undefined when none is needed. */
export async function createTlsClient(options: ShellOptions): Promise<Deno.HttpClient | undefined> {
  if (options.caCert === undefined && options.clientCert === undefined) return undefined;
  const read = async (path: string, what: string) => {
    try {
      return await Deno.readTextFile(path);
    } catch (err) {
      throw new Error(`cannot read ${what} ${path}: ${(err as Error).message}`);
    }
  };
  const init: Deno.CreateHttpClientOptions & { cert?: string; key?: string } = {};
  if (options.caCert !== undefined) init.caCerts = [await read(options.caCert, "CA certificate")];
  if (options.clientCert !== undefined && options.clientKey !== undefined) {
    init.cert = await read(options.clientCert, "client certificate");
    init.key = await read(options.clientKey, "client key");
  }
  return Deno.createHttpClient(init);
}

/**
 * The message for a non-2xx answer: status, the server's text, and what to
 * do for the common cases.
 */
export function httpErrorMessage(r: { status: number; statusText: string; text: string }): string {
  const body = r.text.trim();
  if (r.status === 401) {
    return "unauthorized: this node requires credentials with the right permission (-u user:password)";
  }
  return `server responded with ${r.status} ${r.statusText}${body === "" ? "" : `: ${body}`}`;
}
