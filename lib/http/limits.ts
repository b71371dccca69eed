/**
 * Admission control for the HTTP API: how many requests the node works on
 * at once, how many request-body bytes it holds at once, and how long a
 * client may take to send a body. Beyond a bound the node answers at once
 * (503 with Retry-After, or 408) instead of queueing without bound.
 *
 * - Concurrency: a request holds a slot from the moment its handler starts
 *   until its response has been delivered (`Deno.serve`'s `info.completed`;
 *   without it, until the handler returns). Requests beyond
 *   `maxConcurrent` get 503 `too many concurrent requests ...` with
 *   `Retry-After: 1`. Probes (`/status`, `/readyz`, `/metrics`,
 *   `/debug/vars`) may use a reserve of {@link PROBE_RESERVE} slots above
 *   the limit, so a saturated node still tells its monitor what it is
 *   doing; they are not exempt, so a flood of probes is bounded too.
 * - Body bytes: every admitted request gets a {@link Ticket}; body.ts
 *   reserves the bytes it buffers against one node-wide budget (a declared
 *   Content-Length at once, a chunked body as it arrives) and the ticket
 *   gives them back when the request is done. Without it, the worst case
 *   would be `maxConcurrent` x `-max-body-bytes` of buffered bodies.
 * - Read deadline: body.ts refuses a body not received within `bodyTimeoutMs`
 *   of the handler's start (408).
 *
 * The ticket travels with the `Request` (a WeakMap), so every endpoint that
 * reads a body through body.ts is bounded without passing limits along;
 * a Request built in a handler test has no ticket and no bounds but the size.
 *
 * What this cannot do: `Deno.serve` (Deno 2.9.6) has no header-read,
 * keep-alive or idle timeout and no connection limit, and a handler cannot
 * close its connection (measured: a connection that sends nothing, half a
 * header, or nothing after a response stays open until the client closes
 * it; after a 408 for a slow body Deno answers `connection: close` but the
 * socket stays open while the client keeps it). Such connections hold no
 * slot here (a handler only runs once the headers are complete) and cost a
 * file descriptor and about 18 KiB in Deno (measured); see README "Limits".
 *
 * @module
 */

/** Slots above `maxConcurrent` that only probes may use. */
export const PROBE_RESERVE = 32;
/** Seconds a refused client is told to wait (Retry-After). */
export const RETRY_AFTER_S = 1;

/** Paths served from the probe reserve (prefix match, as the router's). */
const PROBE_PREFIXES = ["/status", "/readyz", "/metrics", "/debug/vars"];

/** Options of {@link RequestLimiter}. */
export interface RequestLimiterOptions {
  /** Requests in flight at most (probes: plus {@link PROBE_RESERVE}). */
  readonly maxConcurrent: number;
  /** Request-body bytes buffered at once, over all requests. */
  readonly maxBodyBytesInFlight: number;
  /** Time a request has to deliver its body, from its handler's start. */
  readonly bodyTimeoutMs: number;
}

/** An admitted request: what it holds, released once when it is done. */
export interface Ticket {
  /** `performance.now()` when the request was admitted. */
  readonly startMs: number;
  /** The body must have arrived by then (`performance.now()` time). */
  readonly bodyDeadlineMs: number;
  readonly bodyTimeoutMs: number;
  /** Body bytes reserved so far. */
  bodyBytes: number;
  released: boolean;
  /** Reserves `n` more body bytes; false when the node-wide budget has no room. */
  reserveBody(n: number): boolean;
}

/** Counters for /debug/vars and tests. */
export interface LimiterStats {
  readonly inFlight: number;
  readonly bodyBytesInFlight: number;
  /** Requests refused for want of a slot. */
  readonly rejectedConcurrency: number;
  /** Bodies refused for want of body-byte budget. */
  readonly rejectedBodyBytes: number;
}

const tickets = new WeakMap<Request, Ticket>();

/** The ticket of an admitted request (undefined for a request built without a limiter). */
export function ticketOf(req: Request): Ticket | undefined {
  return tickets.get(req);
}

/** Bounds the node's HTTP work; one per node. */
export class RequestLimiter {
  readonly #o: RequestLimiterOptions;
  #inFlight = 0;
  #bodyBytes = 0;
  #rejectedConcurrency = 0;
  #rejectedBodyBytes = 0;

  constructor(options: RequestLimiterOptions) {
    for (const [name, v] of Object.entries(options)) {
      if (!(Number.isFinite(v) && v > 0)) throw new RangeError(`${name} must be > 0, got ${v}`);
    }
    this.#o = options;
  }

  get maxConcurrent(): number {
    return this.#o.maxConcurrent;
  }

  /** A ticket for `req`, or undefined when the node already works on too many requests. */
  admit(req: Request): Ticket | undefined {
    // Only a request over the base limit needs its path: probes keep a small reserve.
    const over = this.#inFlight >= this.#o.maxConcurrent &&
      (this.#inFlight >= this.#o.maxConcurrent + PROBE_RESERVE || !isProbe(pathOf(req.url)));
    if (over) {
      this.#rejectedConcurrency++;
      return undefined;
    }
    this.#inFlight++;
    const startMs = performance.now();
    const ticket: Ticket = {
      startMs,
      bodyDeadlineMs: startMs + this.#o.bodyTimeoutMs,
      bodyTimeoutMs: this.#o.bodyTimeoutMs,
      bodyBytes: 0,
      released: false,
      reserveBody: (n) => this.#reserveBody(ticket, n),
    };
    tickets.set(req, ticket);
    return ticket;
  }

  #reserveBody(ticket: Ticket, n: number): boolean {
    if (ticket.released) return false;
    if (this.#bodyBytes + n > this.#o.maxBodyBytesInFlight) {
      this.#rejectedBodyBytes++;
      return false;
    }
    this.#bodyBytes += n;
    ticket.bodyBytes += n;
    return true;
  }

  /** Gives back the ticket's slot and body bytes (idempotent). */
  release(ticket: Ticket): void {
    if (ticket.released) return;
    ticket.released = true;
    this.#inFlight--;
    this.#bodyBytes -= ticket.bodyBytes;
    ticket.bodyBytes = 0;
    if (this.#inFlight < 0 || this.#bodyBytes < 0) {
      throw new Error(`limiter accounting broke: ${this.#inFlight} / ${this.#bodyBytes}`);
    }
  }

  /** A snapshot of the counters. */
  stats(): LimiterStats {
    return {
      inFlight: this.#inFlight,
      bodyBytesInFlight: this.#bodyBytes,
      rejectedConcurrency: this.#rejectedConcurrency,
      rejectedBodyBytes: this.#rejectedBodyBytes,
    };
  }
}

function isProbe(path: string): boolean {
  for (const p of PROBE_PREFIXES) if (path.startsWith(p)) return true;
  return false;
}

/** The path of an absolute URL without parsing all of it ("" when it has none). */
export function pathOf(url: string): string {
  const scheme = url.indexOf("://");
  const slash = url.indexOf("/", scheme < 0 ? 0 : scheme + 3);
  if (slash < 0) return "";
  let end = url.length;
  for (const c of ["?", "#"]) {
    const i = url.indexOf(c, slash);
    if (i >= 0 && i < end) end = i;
  }
  return url.slice(slash, end);
}
