/**
 * Reading request bodies with hard bounds: a body over the size limit is
 * refused with 413 before it is buffered whole; with the request's
 * admission ticket (limits.ts) its bytes also count against the node-wide
 * body budget (503 with Retry-After when full) and it must arrive before the
 * read deadline (408). Every endpoint that buffers a body reads it here.
 *
 * @module
 */

import { RETRY_AFTER_S, type Ticket, ticketOf } from "./limits.ts";
import { textError } from "./response.ts";

/** A body that could not be read within the node's limits; `status` is the answer. */
export class BodyReadError extends Error {
  override readonly name: string = "BodyReadError";
  constructor(readonly status: 400 | 408 | 413 | 503, message: string) {
    super(message);
  }
}

/** The body exceeded the limit. */
export class BodyTooLargeError extends BodyReadError {
  override readonly name = "BodyTooLargeError";
  constructor(readonly limitBytes: number) {
    super(
      413,
      `request body too large: the limit is ${limitBytes} bytes (raise it with -max-body-bytes)`,
    );
  }
}

/** The body did not arrive before the read deadline. */
export class BodyTimeoutError extends BodyReadError {
  override readonly name = "BodyTimeoutError";
  constructor(readonly timeoutMs: number) {
    super(
      408,
      `request body not received within ${timeoutMs} ms (raise it with -http-read-timeout)`,
    );
  }
}

/** The node holds too many body bytes of other requests right now. */
export class BodyBudgetError extends BodyReadError {
  override readonly name = "BodyBudgetError";
  constructor(bytes: number) {
    super(
      503,
      `node busy: no room for a request body of ${bytes} bytes while other requests' bodies ` +
        `are being read; retry in ${RETRY_AFTER_S} s`,
    );
  }
}

/** The client ended or broke the connection before the whole body arrived (rqlite: 400). */
export class BodyIncompleteError extends BodyReadError {
  override readonly name = "BodyIncompleteError";
  constructor(cause: unknown) {
    super(
      400,
      `could not read the request body: ${cause instanceof Error ? cause.message : String(cause)}`,
    );
  }
}

/** The response for a {@link BodyReadError} (503s carry Retry-After). */
export function bodyErrorResponse(err: BodyReadError): Response {
  const res = textError(err.status, err.message);
  if (err.status === 503) res.headers.set("Retry-After", String(RETRY_AFTER_S));
  return res;
}

/** Reads the whole body, failing fast when it grows beyond `limitBytes`. */
export async function readBody(req: Request, limitBytes: number): Promise<Uint8Array> {
  const declared = Number(req.headers.get("content-length") ?? "NaN");
  if (Number.isFinite(declared) && declared > limitBytes) throw new BodyTooLargeError(limitBytes);
  if (req.body === null) return new Uint8Array(0);
  const ticket = ticketOf(req);
  const deadline = ticket === undefined ? undefined : new Deadline(ticket);
  try {
    // A declared length within the limit bounds the body (HTTP/1.1 reads
    // exactly that many bytes): take it in one native call, which costs far
    // less per request than pulling chunks through a stream reader.
    if (Number.isFinite(declared)) {
      if (ticket !== undefined && !ticket.reserveBody(declared)) {
        throw new BodyBudgetError(declared);
      }
      const whole = req.arrayBuffer();
      return new Uint8Array(deadline === undefined ? await whole : await deadline.race(whole));
    }
    return await readChunks(req.body, limitBytes, ticket, deadline);
  } catch (err) {
    if (err instanceof BodyReadError) throw err;
    throw new BodyIncompleteError(err);
  } finally {
    deadline?.clear();
  }
}

/** A body without Content-Length (chunked): bounded as it arrives. */
async function readChunks(
  body: ReadableStream<Uint8Array>,
  limitBytes: number,
  ticket: Ticket | undefined,
  deadline: Deadline | undefined,
): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  const reader = body.getReader();
  try {
    for (;;) {
      const next = reader.read();
      const { done, value } = deadline === undefined ? await next : await deadline.race(next);
      if (done) break;
      total += value.byteLength;
      if (total > limitBytes) throw new BodyTooLargeError(limitBytes);
      if (ticket !== undefined && !ticket.reserveBody(value.byteLength)) {
        throw new BodyBudgetError(total);
      }
      chunks.push(value);
    }
  } catch (err) {
    // Stop pulling the rest of a refused body (Deno then answers `connection: close`).
    reader.cancel().catch(() => {});
    throw err;
  } finally {
    try {
      reader.releaseLock();
    } catch {
      // A read abandoned at the deadline may still be pending: the lock goes with the stream.
    }
  }
  if (chunks.length === 1) return chunks[0] ?? new Uint8Array(0);
  const out = new Uint8Array(total);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.byteLength;
  }
  return out;
}

/** One timer per body read: rejects the pending read at the ticket's deadline. */
class Deadline {
  readonly #expired: Promise<never>;
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(ticket: Ticket) {
    const leftMs = Math.max(0, ticket.bodyDeadlineMs - performance.now());
    this.#expired = new Promise<never>((_, reject) => {
      this.#timer = setTimeout(() => reject(new BodyTimeoutError(ticket.bodyTimeoutMs)), leftMs);
    });
    this.#expired.catch(() => {});
  }

  /** `p`, or a {@link BodyTimeoutError} once the deadline passed (`p` is then abandoned). */
  race<T>(p: Promise<T>): Promise<T> {
    p.catch(() => {});
    return Promise.race([p, this.#expired]);
  }

  clear(): void {
    clearTimeout(this.#timer);
  }
}

const decoder = new TextDecoder();

/** Reads the body as UTF-8 text within the limit. */
export async function readText(req: Request, limitBytes: number): Promise<string> {
  return decoder.decode(await readBody(req, limitBytes));
}
