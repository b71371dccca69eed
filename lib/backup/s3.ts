/**
 * A small S3 client for automatic backups and restores (rqlite's
 * `-auto-backup` / `-auto-restore` with type "s3"): upload a file with
 * metadata, read an object's size and metadata, download an object to a
 * file, list keys. Works with AWS S3 and S3-compatible servers (MinIO,
 * s3rver, ...). Every request is signed with SigV4 (./sigv4.ts) over the
 * real SHA-256 of its body, so the server rejects a body damaged on the way.
 *
 * Design notes:
 * - **Path-style or virtual-hosted.** AWS prefers virtual-hosted URLs
 *   (`https://bucket.s3.region.amazonaws.com/key`); self-hosted servers
 *   usually have one host name and no wildcard DNS, so they need path-style
 *   (`http://host:9000/bucket/key`): `forcePathStyle` picks.
 * - **Parts.** A single PUT must be hashed (for the signature) before it is
 *   sent, so it is held in memory: files up to `partSizeBytes` go up in one
 *   PUT, larger ones as a multipart upload, one part read, hashed and sent
 *   at a time. Memory is bounded by the part size (default 16 MiB), whatever
 *   the database size. S3 allows 10,000 parts: for files larger than 10,000
 *   parts the part size grows to fit (up to S3's 5 GiB part limit). A failed
 *   multipart upload is aborted so no orphan parts are left (and billed).
 * - **Downloads** stream to a file and stop at `maxBytes`; nothing of an
 *   object is held in memory.
 * - **Errors** are {@link S3Error}s naming the operation, the object, the
 *   S3 error code and message, and what setting to check. There are no
 *   retries here: the caller (the backup loop) retries on its schedule.
 * - XML answers are read with small regular expressions: only a handful of
 *   elements are needed, and the bodies read are bounded.
 *
 * @module
 */

import { awsUriEncode, EMPTY_SHA256, sha256Hex, signRequest } from "./sigv4.ts";

/** How to reach a bucket. */
export interface S3Options {
  /** "" = AWS (https://s3.<region>.amazonaws.com); else a URL ("http://127.0.0.1:9000") or host[:port] (https assumed). */
  endpoint: string;
  /** "" → "us-east-1" */
  region: string;
  bucket: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** STS session token for temporary credentials. */
  sessionToken?: string;
  /** Path-style URLs (endpoint/bucket/key), as MinIO-like servers need; else virtual-hosted (bucket.host/key). */
  forcePathStyle: boolean;
  /** Bytes per part: files larger than this go up as a multipart upload. Default 16 MiB; S3 needs at least 5 MiB (any value >= 1 is accepted, for tests). */
  partSizeBytes?: number;
  /** Per-request timeout (for a download: the longest wait for the next bytes); default 60 s. */
  requestTimeoutMs?: number;
  /** Keys asked for per ListObjectsV2 page (max-keys), 1..1000; default 1000. */
  listPageSize?: number;
  /** For custom TLS (CA certificates) or proxies. */
  client?: Deno.HttpClient;
}

/**
 * A failed S3 request. `status` is the HTTP status (0 when no response
 * came: `NetworkError`, `Timeout`); `code` is S3's error code
 * (`SignatureDoesNotMatch`, `NoSuchBucket`, ...), or for HEAD (which has no
 * body) one derived from the status, or one of this client's own:
 * `ObjectTooLarge`, `IncompleteBody`, `BadResponse`, `FileChanged`,
 * `TooManyKeys`.
 */
export class S3Error extends Error {
  /** HTTP status; 0 when the server gave no response. */
  readonly status: number;
  /** S3 error code, e.g. "SignatureDoesNotMatch". */
  readonly code: string;
  constructor(message: string, status: number, code: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "S3Error";
    this.status = status;
    this.code = code;
  }
}

const MiB = 1024 * 1024;
const DEFAULT_PART_SIZE = 16 * MiB;
const MAX_PART_SIZE = 5 * 1024 * MiB;
const MAX_PARTS = 10_000;
const DEFAULT_TIMEOUT_MS = 60_000;
/** Error bodies and small XML answers are read up to this many bytes. */
const MAX_ERROR_BODY = 64 * 1024;
/** A ListObjectsV2 page of 1000 keys of 1024 bytes, escaped, fits easily. */
const MAX_XML_BODY = 16 * MiB;
/** A hard stop for list(), whatever maxKeys says. */
const MAX_LIST_PAGES = 10_000;
/** AWS's limit on user metadata (names and values). */
const MAX_METADATA_BYTES = 2048;

/** What to check, per S3 error code. */
const HINTS: Record<string, string> = {
  SignatureDoesNotMatch: "check secret_access_key",
  InvalidAccessKeyId: "check access_key_id",
  InvalidToken: "check session_token",
  ExpiredToken: "the session_token expired; refresh the credentials",
  AccessDenied: "check that the credentials may access this bucket and key",
  NoSuchBucket: "check bucket (and endpoint and region)",
  AuthorizationHeaderMalformed: "check region",
  PermanentRedirect: "check region and endpoint",
  IllegalLocationConstraintException: "check region",
  RequestTimeTooSkewed: "check this host's clock",
  NetworkError: "check endpoint and that the server is reachable",
  Timeout: "check endpoint and network, or raise the timeout",
  EntityTooSmall: "the part size is below S3's 5 MiB minimum",
};

const xmlEntities: Record<string, string> = {
  amp: "&",
  lt: "<",
  gt: ">",
  quot: '"',
  apos: "'",
};

/** Decodes the XML entities S3 uses (&amp; &lt; &gt; &quot; &apos; and numeric ones). */
function xmlDecode(s: string): string {
  return s.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|[a-z]+);/g, (m, e: string) => {
    if (e.startsWith("#x")) return safeCodePoint(parseInt(e.slice(2), 16), m);
    if (e.startsWith("#")) return safeCodePoint(parseInt(e.slice(1), 10), m);
    return xmlEntities[e] ?? m;
  });
}

function safeCodePoint(n: number, fallback: string): string {
  return n >= 0 && n <= 0x10ffff ? String.fromCodePoint(n) : fallback;
}

function xmlEscape(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(
    /"/g,
    "&quot;",
  );
}

/** The decoded text of the first `<tag>` in `xml`, or undefined. */
function xmlFirst(xml: string, tag: string): string | undefined {
  const m = new RegExp(`<${tag}>([^<]*)</${tag}>`).exec(xml);
  return m ? xmlDecode(m[1]!) : undefined;
}

/** Reads at most `limit` bytes of a body as text, then cancels the rest. */
async function readText(res: Response, limit: number): Promise<string> {
  return (await readBounded(res, limit)).text;
}

/** Reads at most `limit` bytes of a body as text; `truncated` when there was more. */
async function readBounded(
  res: Response,
  limit: number,
): Promise<{ text: string; truncated: boolean }> {
  if (!res.body) return { text: "", truncated: false };
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let n = 0;
  try {
    while (n <= limit) {
      const r = await reader.read();
      if (r.done) break;
      chunks.push(r.value);
      n += r.value.length;
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
  const all = new Uint8Array(Math.min(n, limit));
  let off = 0;
  for (const c of chunks) {
    const take = Math.min(c.length, all.length - off);
    all.set(c.subarray(0, take), off);
    off += take;
    if (off === all.length) break;
  }
  return { text: new TextDecoder().decode(all), truncated: n > limit };
}

/** Like readText, but a body over the limit is an error rather than cut. */
async function readXml(res: Response, what: string): Promise<string> {
  const { text, truncated } = await readBounded(res, MAX_XML_BODY);
  if (truncated) {
    throw new S3Error(
      `${what}: response body over ${MAX_XML_BODY} bytes`,
      res.status,
      "BadResponse",
    );
  }
  return text;
}

/** Reads up to `buf.length` bytes of `file` into `buf`; the count read (short only at EOF). */
async function readFull(file: Deno.FsFile, buf: Uint8Array): Promise<number> {
  let off = 0;
  while (off < buf.length) {
    const n = await file.read(buf.subarray(off));
    if (n === null) break;
    off += n;
  }
  return off;
}

interface RequestSpec {
  method: "GET" | "HEAD" | "PUT" | "POST" | "DELETE";
  /** Object key; undefined for the bucket itself. */
  key?: string;
  query?: [string, string][];
  headers?: Record<string, string>;
  body?: Uint8Array;
  signal?: AbortSignal;
  /** For messages: "PUT", "CreateMultipartUpload", ... */
  op: string;
}

/** A response and how to stop waiting on it (see {@link S3Client.send}). */
interface Sent {
  res: Response;
  /** Restarts the inactivity timer (call on each chunk of a streamed body). */
  touch(): void;
  /** Stops the timer; call once the body has been consumed or cancelled. */
  done(): void;
  /** Whether the inactivity timer fired (an abort error is then a Timeout). */
  timedOut(): boolean;
}

/** An S3 bucket's client. Stateless between calls; safe to share. */
export class S3Client {
  readonly #opts: S3Options;
  readonly #region: string;
  readonly #base: URL;
  readonly #pathStyle: boolean;
  readonly #partSize: number;
  readonly #timeoutMs: number;
  readonly #pageSize: number;

  /** Validates the options (throws an Error naming the bad one); makes no request. */
  constructor(opts: S3Options) {
    if (!opts.bucket || /[/\s]/.test(opts.bucket)) {
      throw new Error(`S3: invalid bucket ${JSON.stringify(opts.bucket)}`);
    }
    if (!opts.accessKeyId || !opts.secretAccessKey) {
      throw new Error("S3: access_key_id and secret_access_key are required");
    }
    const part = opts.partSizeBytes ?? DEFAULT_PART_SIZE;
    if (!Number.isSafeInteger(part) || part < 1 || part > MAX_PART_SIZE) {
      throw new Error(`S3: part size must be an integer from 1 to ${MAX_PART_SIZE}, got ${part}`);
    }
    const timeout = opts.requestTimeoutMs ?? DEFAULT_TIMEOUT_MS;
    if (!(timeout > 0) || !Number.isFinite(timeout)) {
      throw new Error(`S3: request timeout must be > 0 ms, got ${timeout}`);
    }
    const page = opts.listPageSize ?? 1000;
    if (!Number.isSafeInteger(page) || page < 1 || page > 1000) {
      throw new Error(`S3: list page size must be an integer from 1 to 1000, got ${page}`);
    }
    this.#opts = opts;
    this.#region = opts.region || "us-east-1";
    this.#partSize = part;
    this.#timeoutMs = timeout;
    this.#pageSize = page;
    this.#pathStyle = opts.forcePathStyle;

    let base: URL;
    const ep = opts.endpoint.trim();
    try {
      if (ep === "") base = new URL(`https://s3.${this.#region}.amazonaws.com`);
      else if (/^[a-z][a-z0-9+.-]*:\/\//i.test(ep)) base = new URL(ep);
      else base = new URL(`https://${ep}`);
    } catch {
      throw new Error(`S3: invalid endpoint ${JSON.stringify(opts.endpoint)}`);
    }
    if (base.protocol !== "http:" && base.protocol !== "https:") {
      throw new Error(`S3: endpoint must be http or https, got ${JSON.stringify(opts.endpoint)}`);
    }
    if ((base.pathname !== "/" && base.pathname !== "") || base.search || base.hash) {
      throw new Error(
        `S3: endpoint must be a scheme, host and port only, got ${JSON.stringify(opts.endpoint)}`,
      );
    }
    if (base.username || base.password) {
      throw new Error("S3: endpoint must not contain credentials");
    }
    if (!this.#pathStyle) base.hostname = `${opts.bucket}.${base.hostname}`;
    this.#base = base;
  }

  /** e.g. "s3://bucket/key", for logs and messages. */
  describe(key: string): string {
    return `s3://${this.#opts.bucket}/${key}`;
  }

  #url(key: string | undefined, query: [string, string][]): URL {
    const bucketPath = this.#pathStyle ? `/${awsUriEncode(this.#opts.bucket, false)}` : "";
    let path: string;
    if (key === undefined) path = bucketPath === "" ? "/" : bucketPath;
    else path = `${bucketPath}/${awsUriEncode(key, true)}`;
    const qs = query.map(([k, v]) => `${awsUriEncode(k, false)}=${awsUriEncode(v, false)}`)
      .join("&");
    // Built as text so nothing is re-encoded; keys are checked (checkKey) to have no
    // "." or ".." segments, which URL parsing would resolve away.
    return new URL(`${this.#base.origin}${path}${qs ? "?" + qs : ""}`);
  }

  #fail(op: string, key: string | undefined, status: number, code: string, msg: string): S3Error {
    const where = key === undefined ? `s3://${this.#opts.bucket}` : this.describe(key);
    const hint = HINTS[code];
    return new S3Error(
      `S3 ${op} ${where} failed: ${status ? status + " " : ""}${code}${msg ? ": " + msg : ""}${
        hint ? "; " + hint : ""
      }`,
      status,
      code,
    );
  }

  /** An S3Error for a non-2xx response, its body read (bounded) and cancelled. */
  async #errorFrom(spec: RequestSpec, sent: Sent): Promise<S3Error> {
    const { res } = sent;
    let text = "";
    try {
      text = await readText(res, MAX_ERROR_BODY);
    } catch { /* the status alone will do */ }
    sent.done();
    let code = xmlFirst(text, "Code");
    let message = xmlFirst(text, "Message") ?? "";
    if (!code) {
      code = res.status === 404
        ? (spec.key === undefined ? "NoSuchBucket" : "NotFound")
        : res.status === 403
        ? "Forbidden"
        : res.status === 301
        ? "PermanentRedirect"
        : `HTTP${res.status}`;
      if (!message) message = res.statusText || text.trim().slice(0, 200);
    }
    return this.#fail(spec.op, spec.key, res.status, code, message);
  }

  /**
   * Signs and sends one request. The timeout is an inactivity timeout: it
   * covers waiting for the response and, through `touch()`, for each chunk
   * of a streamed body. The caller's `signal` aborts with its own reason.
   */
  async #send(spec: RequestSpec): Promise<Sent> {
    if (spec.key !== undefined) checkKey(spec.key);
    spec.signal?.throwIfAborted();
    const url = this.#url(spec.key, spec.query ?? []);
    const headers = new Headers(spec.headers);
    const body = spec.body;
    signRequest(
      {
        method: spec.method,
        url,
        headers,
        payloadSha256Hex: body ? sha256Hex(body) : EMPTY_SHA256,
      },
      {
        accessKeyId: this.#opts.accessKeyId,
        secretAccessKey: this.#opts.secretAccessKey,
        sessionToken: this.#opts.sessionToken,
      },
      this.#region,
      "s3",
      new Date(),
    );

    const ac = new AbortController();
    let timedOut = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const touch = () => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        timedOut = true;
        ac.abort(new Error("timeout"));
      }, this.#timeoutMs);
    };
    const onAbort = () => ac.abort(spec.signal!.reason);
    spec.signal?.addEventListener("abort", onAbort, { once: true });
    const done = () => {
      clearTimeout(timer);
      spec.signal?.removeEventListener("abort", onAbort);
    };
    touch();
    const init: RequestInit & { client?: Deno.HttpClient } = {
      method: spec.method,
      headers,
      body: body as BodyInit | undefined,
      signal: ac.signal,
      redirect: "manual",
    };
    if (this.#opts.client) init.client = this.#opts.client;
    let res: Response;
    try {
      res = await fetch(url, init);
    } catch (e) {
      done();
      throw this.#wrapFetchError(spec, e, timedOut);
    }
    return { res, touch, done, timedOut: () => timedOut };
  }

  #wrapFetchError(spec: RequestSpec, e: unknown, timedOut: boolean): unknown {
    if (spec.signal?.aborted) return spec.signal.reason;
    if (timedOut) {
      return this.#fail(
        spec.op,
        spec.key,
        0,
        "Timeout",
        `no response within ${this.#timeoutMs} ms`,
      );
    }
    if (e instanceof S3Error) return e;
    const err = this.#fail(
      spec.op,
      spec.key,
      0,
      "NetworkError",
      `${e instanceof Error ? e.message : String(e)} (${this.#base.origin})`,
    );
    (err as { cause?: unknown }).cause = e;
    return err;
  }

  /** Sends a request that must answer 2xx; returns its body text (bounded) when `wantBody`. */
  async #simple(spec: RequestSpec, wantBody: boolean): Promise<{ text: string; res: Response }> {
    const sent = await this.#send(spec);
    if (sent.res.status < 200 || sent.res.status > 299) throw await this.#errorFrom(spec, sent);
    try {
      const text = wantBody
        ? await readXml(sent.res, `S3 ${spec.op} ${this.describe(spec.key ?? "")}`)
        : "";
      if (!wantBody) await sent.res.body?.cancel();
      return { text, res: sent.res };
    } catch (e) {
      throw this.#wrapFetchError(spec, e, sent.timedOut());
    } finally {
      sent.done();
    }
  }

  /**
   * Uploads the local file as `key` with x-amz-meta-<k> headers; single PUT
   * when size <= part size (body read into memory, bounded by part size),
   * else CreateMultipartUpload / UploadPart (one part in memory at a time) /
   * CompleteMultipartUpload, AbortMultipartUpload on any failure.
   *
   * Metadata names must be lowercase letters, digits, `-` and `_`; values
   * printable ASCII (S3 limits user metadata to 2 KiB in total). Throws
   * `FileChanged` if the file's size changes while it is read.
   */
  async putFile(
    key: string,
    path: string,
    metadata: Record<string, string>,
    signal?: AbortSignal,
  ): Promise<void> {
    checkKey(key);
    const metaHeaders = metadataHeaders(metadata);
    using file = await Deno.open(path, { read: true });
    const size = (await file.stat()).size;
    const fileChanged = () =>
      this.#fail("PUT", key, 0, "FileChanged", `${path} changed size while being uploaded`);

    if (size <= this.#partSize) {
      const body = new Uint8Array(size);
      if (await readFull(file, body) !== size) throw fileChanged();
      if (await file.read(new Uint8Array(1)) !== null) throw fileChanged();
      await this.#simple({
        method: "PUT",
        key,
        headers: { ...metaHeaders, "content-type": "application/octet-stream" },
        body,
        signal,
        op: "PUT",
      }, false);
      return;
    }

    // Parts of at least partSize, grown so that the file fits in 10,000 parts.
    const partSize = Math.max(this.#partSize, Math.ceil(size / MAX_PARTS));
    if (partSize > MAX_PART_SIZE) {
      throw this.#fail(
        "PUT",
        key,
        0,
        "EntityTooLarge",
        `${path} is ${size} bytes, over S3's limit`,
      );
    }
    const { text } = await this.#simple({
      method: "POST",
      key,
      query: [["uploads", ""]],
      headers: { ...metaHeaders, "content-type": "application/octet-stream" },
      signal,
      op: "CreateMultipartUpload",
    }, true);
    const uploadId = xmlFirst(text, "UploadId");
    if (!uploadId) {
      throw this.#fail("CreateMultipartUpload", key, 200, "BadResponse", "no UploadId in answer");
    }

    try {
      const parts: string[] = [];
      const buf = new Uint8Array(partSize);
      let sent = 0;
      for (let n = 1; sent < size; n++) {
        const want = Math.min(partSize, size - sent);
        const chunk = buf.subarray(0, want);
        if (await readFull(file, chunk) !== want) throw fileChanged();
        const { res } = await this.#simple({
          method: "PUT",
          key,
          query: [["partNumber", String(n)], ["uploadId", uploadId]],
          body: chunk,
          signal,
          op: `UploadPart ${n}`,
        }, false);
        const etag = res.headers.get("etag");
        if (!etag) throw this.#fail(`UploadPart ${n}`, key, 200, "BadResponse", "no ETag");
        parts.push(etag);
        sent += want;
      }
      if (await file.read(new Uint8Array(1)) !== null) throw fileChanged();

      const xml = "<CompleteMultipartUpload>" +
        parts.map((etag, i) =>
          `<Part><PartNumber>${i + 1}</PartNumber><ETag>${xmlEscape(etag)}</ETag></Part>`
        ).join("") +
        "</CompleteMultipartUpload>";
      const done = await this.#simple({
        method: "POST",
        key,
        query: [["uploadId", uploadId]],
        headers: { "content-type": "application/xml" },
        body: new TextEncoder().encode(xml),
        signal,
        op: "CompleteMultipartUpload",
      }, true);
      // S3 may answer 200 and still fail, with an <Error> body.
      if (/<Error>/.test(done.text)) {
        throw this.#fail(
          "CompleteMultipartUpload",
          key,
          200,
          xmlFirst(done.text, "Code") ?? "InternalError",
          xmlFirst(done.text, "Message") ?? "",
        );
      }
    } catch (e) {
      await this.#abortUpload(key, uploadId);
      throw e;
    }
  }

  /** Best effort: the caller's signal may have fired already, so not passed on. */
  async #abortUpload(key: string, uploadId: string): Promise<void> {
    try {
      await this.#simple({
        method: "DELETE",
        key,
        query: [["uploadId", uploadId]],
        op: "AbortMultipartUpload",
      }, false);
    } catch { /* the original error matters more; a bucket lifecycle rule cleans up the rest */ }
  }

  /**
   * HEAD: undefined on 404; metadata keys lowercased without the x-amz-meta- prefix.
   * A HEAD answer has no body, so a missing bucket is also just a 404 here:
   * `list` or `getToFile` tell it apart (`NoSuchBucket`).
   */
  async head(
    key: string,
    signal?: AbortSignal,
  ): Promise<{ sizeBytes: number; metadata: Record<string, string> } | undefined> {
    const spec: RequestSpec = { method: "HEAD", key, signal, op: "HEAD" };
    const sent = await this.#send(spec);
    const { res } = sent;
    if (res.status === 404) {
      await res.body?.cancel();
      sent.done();
      return undefined;
    }
    if (res.status < 200 || res.status > 299) throw await this.#errorFrom(spec, sent);
    await res.body?.cancel();
    sent.done();
    const sizeBytes = Number(res.headers.get("content-length") ?? "");
    if (!Number.isSafeInteger(sizeBytes) || sizeBytes < 0) {
      throw this.#fail("HEAD", key, res.status, "BadResponse", "no valid Content-Length");
    }
    const metadata: Record<string, string> = {};
    for (const [name, value] of res.headers) {
      if (name.startsWith("x-amz-meta-")) metadata[name.slice("x-amz-meta-".length)] = value;
    }
    return { sizeBytes, metadata };
  }

  /**
   * GET streamed to a new file at `path` (not held in memory; synced to
   * disk when complete; a file already there is replaced); false on 404 (no
   * file left); throws S3Error `ObjectTooLarge` when the object exceeds
   * maxBytes (file removed). Whenever it does not return true, there is no
   * file at `path` afterwards, so a partial download is never mistaken for
   * a backup. A 404 for a missing bucket throws `NoSuchBucket`: that is a
   * configuration error, not a missing object.
   */
  async getToFile(
    key: string,
    path: string,
    maxBytes: number,
    signal?: AbortSignal,
  ): Promise<boolean> {
    let ok = false;
    try {
      ok = await this.#getToFile(key, path, maxBytes, signal);
      return ok;
    } finally {
      if (!ok) {
        await Deno.remove(path).catch((e) => {
          if (!(e instanceof Deno.errors.NotFound)) throw e;
        });
      }
    }
  }

  async #getToFile(
    key: string,
    path: string,
    maxBytes: number,
    signal?: AbortSignal,
  ): Promise<boolean> {
    const spec: RequestSpec = { method: "GET", key, signal, op: "GET" };
    const sent = await this.#send(spec);
    const { res } = sent;
    if (res.status === 404) {
      const err = await this.#errorFrom(spec, sent);
      if (err.code === "NoSuchBucket") throw err;
      return false;
    }
    if (res.status < 200 || res.status > 299) throw await this.#errorFrom(spec, sent);
    const tooLarge = (n: string) =>
      this.#fail(
        "GET",
        key,
        res.status,
        "ObjectTooLarge",
        `${n} bytes, over the limit ${maxBytes}`,
      );
    const lengthHeader = res.headers.get("content-length");
    const length = lengthHeader === null ? undefined : Number(lengthHeader);
    if (length !== undefined && length > maxBytes) {
      await res.body?.cancel();
      sent.done();
      throw tooLarge(String(length));
    }

    let file: Deno.FsFile | undefined;
    try {
      file = await Deno.open(path, { write: true, create: true, truncate: true });
      let n = 0;
      if (res.body) {
        const reader = res.body.getReader();
        try {
          while (true) {
            let r: ReadableStreamReadResult<Uint8Array>;
            try {
              r = await reader.read();
            } catch (e) {
              throw this.#wrapFetchError(spec, e, sent.timedOut());
            }
            if (r.done) break;
            sent.touch();
            n += r.value.length;
            if (n > maxBytes) throw tooLarge(`over ${n}`);
            let off = 0;
            while (off < r.value.length) off += await file.write(r.value.subarray(off));
          }
        } finally {
          await reader.cancel().catch(() => {});
        }
      }
      if (length !== undefined && n !== length) {
        throw this.#fail("GET", key, res.status, "IncompleteBody", `got ${n} of ${length} bytes`);
      }
      await file.syncData();
      return true;
    } finally {
      sent.done();
      file?.close();
    }
  }

  /** ListObjectsV2 keys under prefix, following continuation tokens, at most maxKeys keys in total (bounded loop). */
  async list(prefix: string, maxKeys: number, signal?: AbortSignal): Promise<string[]> {
    if (!Number.isSafeInteger(maxKeys) || maxKeys < 0) {
      throw new Error(`S3 list: maxKeys must be a non-negative integer, got ${maxKeys}`);
    }
    const keys: string[] = [];
    let token: string | undefined;
    for (let page = 0; keys.length < maxKeys; page++) {
      if (page >= MAX_LIST_PAGES) {
        throw this.#fail("ListObjectsV2", undefined, 0, "TooManyKeys", `over ${page} pages`);
      }
      const query: [string, string][] = [
        ["list-type", "2"],
        ["max-keys", String(Math.min(this.#pageSize, maxKeys - keys.length))],
        ["prefix", prefix],
      ];
      if (token !== undefined) query.push(["continuation-token", token]);
      const { text } = await this.#simple(
        { method: "GET", query, signal, op: "ListObjectsV2" },
        true,
      );
      for (const m of text.matchAll(/<Contents>([\s\S]*?)<\/Contents>/g)) {
        const k = xmlFirst(m[1]!, "Key");
        if (k !== undefined && keys.length < maxKeys) keys.push(k);
      }
      if (xmlFirst(text, "IsTruncated") !== "true") break;
      const next = xmlFirst(text, "NextContinuationToken");
      if (!next || next === token) {
        throw this.#fail(
          "ListObjectsV2",
          undefined,
          200,
          "BadResponse",
          "truncated answer without a new NextContinuationToken",
        );
      }
      token = next;
    }
    return keys;
  }
}

/**
 * Object keys this client accepts: 1..1024 UTF-8 bytes, no control
 * characters, and no "." or ".." path segments (URLs resolve those away,
 * so the object would be stored under another key).
 */
function checkKey(key: string): void {
  const bytes = new TextEncoder().encode(key).length;
  if (bytes < 1 || bytes > 1024) {
    throw new Error(`S3: object key must be 1 to 1024 bytes, got ${bytes}`);
  }
  // deno-lint-ignore no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(key)) {
    throw new Error(`S3: object key ${JSON.stringify(key)} contains control characters`);
  }
  if (key.split("/").some((seg) => seg === "." || seg === "..")) {
    throw new Error(`S3: object key ${JSON.stringify(key)} has a "." or ".." segment`);
  }
}

function metadataHeaders(metadata: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  let total = 0;
  for (const [k, v] of Object.entries(metadata)) {
    if (!/^[a-z0-9_-]+$/.test(k)) {
      throw new Error(`S3: metadata name ${JSON.stringify(k)}: use lowercase a-z, 0-9, - and _`);
    }
    if (!/^[\x20-\x7e]*$/.test(v)) {
      throw new Error(`S3: metadata ${k} value must be printable ASCII, got ${JSON.stringify(v)}`);
    }
    total += k.length + v.length;
    out[`x-amz-meta-${k}`] = v;
  }
  if (total > MAX_METADATA_BYTES) {
    throw new Error(`S3: metadata is ${total} bytes, over S3's ${MAX_METADATA_BYTES}`);
  }
  return out;
}
