/**
 * GET /db/backup (rqlite-api.md §4, §6, §11).
 *
 * - On the leader (or anywhere with `noleader`): the write worker writes
 *   the backup (`fmt=binary` default, `delete`, `sql`; `tables`; `vacuum`
 *   with binary only, else 500 `invalid backup format`) to a file in a
 *   fresh temporary directory (`Deno.makeTempDir`, so `TMPDIR` decides
 *   where), which is streamed to the client in 64 KiB chunks (gzip with
 *   `compress`) and deleted with its directory once the stream finishes,
 *   fails or is cancelled. The database is never held in memory.
 * - At most {@link MAX_CONCURRENT_BACKUPS} backups per node are produced or
 *   streamed at once; one more is answered 503 with a plain-text reason
 *   (a transient condition: retry later).
 * - On a follower: `redirect` → 301 to the leader; otherwise the leader's
 *   HTTP API is asked for the same backup with `noleader` added (the
 *   `Authorization` header passed along) and its bytes are streamed back.
 *   No known leader, or the leader unreachable → 503 `leader not found`;
 *   the leader refusing the credentials → 401 `remote backup not
 *   authorized`.
 *
 * `Content-Type` is `application/sql` for `fmt=sql`, else
 * `application/octet-stream`, also with `compress` (no Content-Encoding:
 * the download is the gzip file itself, as rqlite serves it).
 *
 * @module
 */

import { type DbClient, INVALID_BACKUP_FORMAT } from "../db/mod.ts";
import type { BackupFormat, QueryParams } from "../sql/params.ts";
import { count, type HttpContext } from "./context.ts";
import { fileStream } from "./file_stream.ts";
import { leaderApiUrl, leaderTarget, redirectToLeader } from "./leader.ts";
import { emptyStatus, textError } from "./response.ts";

/** Backups produced or streamed at once by one node; more are refused with 503. */
export const MAX_CONCURRENT_BACKUPS = 2;
/** How long a forwarded backup may take to start arriving without `timeout`. */
const FORWARD_TIMEOUT_MS = 30_000;

/** Backups in progress per node (keyed by the node's HTTP context). */
const inProgress = new WeakMap<HttpContext, number>();

/** Takes a backup slot; returns its release (idempotent), or undefined when all are taken. */
function takeSlot(ctx: HttpContext): (() => void) | undefined {
  const n = inProgress.get(ctx) ?? 0;
  if (n >= MAX_CONCURRENT_BACKUPS) return undefined;
  inProgress.set(ctx, n + 1);
  let released = false;
  return () => {
    if (released) return;
    released = true;
    inProgress.set(ctx, (inProgress.get(ctx) ?? 1) - 1);
  };
}

/** A gzip transform over byte chunks (the DOM typings take BufferSource in). */
function gzip(): ReadableWritablePair<Uint8Array, Uint8Array> {
  return new CompressionStream("gzip") as unknown as ReadableWritablePair<Uint8Array, Uint8Array>;
}

function contentType(format: BackupFormat): string {
  return format === "sql" ? "application/sql" : "application/octet-stream";
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** GET /db/backup */
export function handleBackup(
  req: Request,
  ctx: HttpContext,
  qp: QueryParams,
): Promise<Response> | Response {
  if (req.method !== "GET") return emptyStatus(405);
  if (qp.vacuum && qp.backupFormat !== "binary") return textError(500, INVALID_BACKUP_FORMAT);
  const store = ctx.store();
  if (store === undefined) return textError(503, "store not open");
  if (!qp.noleader && !store.isLeader()) return fromLeader(req, ctx, qp, store.leaderId());
  return localBackup(ctx, qp, store.options.db);
}

/** Writes the backup to a temporary file and streams it; the file goes when the stream ends. */
async function localBackup(ctx: HttpContext, qp: QueryParams, db: DbClient): Promise<Response> {
  const release = takeSlot(ctx);
  if (release === undefined) {
    return textError(
      503,
      `too many backups in progress (at most ${MAX_CONCURRENT_BACKUPS} at once); retry later`,
    );
  }
  let dir: string | undefined;
  const cleanup = () => {
    if (dir !== undefined) Deno.remove(dir, { recursive: true }).catch(() => {});
    release();
  };
  try {
    dir = await Deno.makeTempDir({ prefix: "raftlite-backup-" });
    const path = `${dir}/backup`;
    await db.backupToFile(path, {
      format: qp.backupFormat,
      vacuum: qp.vacuum,
      tables: qp.tables,
    });
    const file = await Deno.open(path, { read: true });
    count(ctx, "backups");
    const stream = fileStream(file, cleanup);
    const body = qp.compress ? stream.pipeThrough(gzip()) : stream;
    return new Response(body, { headers: { "Content-Type": contentType(qp.backupFormat) } });
  } catch (err) {
    cleanup();
    return textError(500, errorText(err));
  }
}

/** A follower's backup: redirect, or the leader's bytes streamed through. */
async function fromLeader(
  req: Request,
  ctx: HttpContext,
  qp: QueryParams,
  leaderId: string,
): Promise<Response> {
  const target = leaderTarget(ctx, leaderId);
  if (target === undefined) return textError(503, "leader not found");
  if (qp.redirect) return redirectToLeader(req, target.client, target.addr, qp.timeoutMs);
  let apiUrl: string;
  try {
    apiUrl = await leaderApiUrl(target.client, target.addr, qp.timeoutMs);
  } catch {
    return textError(503, "leader not found");
  }
  count(ctx, "forwarded");
  return await proxyBackup(req, apiUrl, qp.timeoutMs ?? FORWARD_TIMEOUT_MS, ctx.httpClient);
}

/**
 * Fetches the same backup from the leader's HTTP API with `noleader` added
 * and streams its body back (cancelling ours cancels the fetch). `client`
 * (from -http-ca-cert) lets the fetch trust the leader's HTTPS certificate.
 * `timeoutMs` bounds the wait for the leader's response headers.
 */
async function proxyBackup(
  req: Request,
  apiUrl: string,
  timeoutMs: number,
  client: Deno.HttpClient | undefined,
): Promise<Response> {
  const url = new URL(req.url);
  const search = url.search === "" ? "?noleader" : `${url.search}&noleader`;
  const headers = new Headers();
  const auth = req.headers.get("authorization");
  if (auth !== null) headers.set("Authorization", auth);
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), Math.max(1, timeoutMs));
  let res: Response;
  try {
    res = await fetch(`${apiUrl}${url.pathname}${search}`, {
      headers,
      signal: abort.signal,
      redirect: "manual",
      ...(client === undefined ? {} : { client }),
    });
  } catch {
    return textError(503, "leader not found");
  } finally {
    clearTimeout(timer);
  }
  if (res.status === 401) {
    await res.body?.cancel();
    return textError(401, "remote backup not authorized");
  }
  const out = new Headers();
  for (const name of ["content-type", "x-content-type-options"]) {
    const v = res.headers.get(name);
    if (v !== null) out.set(name, v);
  }
  return new Response(res.body, { status: res.status, headers: out });
}
