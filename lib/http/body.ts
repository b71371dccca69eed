/**
 * Reading request bodies with a hard size bound: a body over the limit is
 * refused with 413 before it is buffered whole.
 *
 * @module
 */

/** The body exceeded the limit. */
export class BodyTooLargeError extends Error {
  override readonly name = "BodyTooLargeError";
  constructor(readonly limitBytes: number) {
    super(
      `request body too large: the limit is ${limitBytes} bytes (raise it with -max-body-bytes)`,
    );
  }
}

/** The client did not send its whole body in time (`-http-read-timeout`). */
export class BodyTimeoutError extends Error {
  override readonly name = "BodyTimeoutError";
  constructor(readonly timeoutMs: number) {
    super(`request body read timeout: not received within ${timeoutMs} ms (-http-read-timeout)`);
  }
}

/**
 * Reads the whole body within `limitBytes` and, when `timeoutMs` is given,
 * within that time: a client trickling its body cannot hold a request slot
 * (see -max-concurrent-requests) for longer.
 */
export async function readBody(
  req: Request,
  limitBytes: number,
  timeoutMs?: number,
): Promise<Uint8Array> {
  if (timeoutMs === undefined || !(timeoutMs > 0)) return await readBodyUntimed(req, limitBytes);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new BodyTimeoutError(timeoutMs)), timeoutMs);
  });
  const reading = readBodyUntimed(req, limitBytes);
  reading.catch(() => {}); // settles after a timeout too; nobody waits then
  try {
    return await Promise.race([reading, expired]);
  } finally {
    clearTimeout(timer);
  }
}

async function readBodyUntimed(req: Request, limitBytes: number): Promise<Uint8Array> {
  const declared = Number(req.headers.get("content-length") ?? "NaN");
  if (Number.isFinite(declared) && declared > limitBytes) throw new BodyTooLargeError(limitBytes);
  if (req.body === null) return new Uint8Array(0);
  // A declared length within the limit bounds the body (HTTP/1.1 reads
  // exactly that many bytes): take it in one native call, which costs far
  // less per request than pulling chunks through a stream reader.
  if (Number.isFinite(declared)) return new Uint8Array(await req.arrayBuffer());
  const chunks: Uint8Array[] = [];
  let total = 0;
  const reader = req.body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.byteLength;
      if (total > limitBytes) {
        // Cancelled, not just released: Deno.serve keeps an abandoned body's resource open.
        await reader.cancel().catch(() => {});
        throw new BodyTooLargeError(limitBytes);
      }
      chunks.push(value);
    }
  } finally {
    reader.releaseLock();
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

const decoder = new TextDecoder();

/** Reads the body as UTF-8 text within the limits (see {@link readBody}). */
export async function readText(
  req: Request,
  limitBytes: number,
  timeoutMs?: number,
): Promise<string> {
  return decoder.decode(await readBody(req, limitBytes, timeoutMs));
}
