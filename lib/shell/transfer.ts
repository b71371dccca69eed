/**
 * The long operations: `.backup`, `.dump` (downloads) and `.restore`,
 * `.boot` (uploads). Bytes stream between the socket and the file in
 * chunks, never held whole in memory, counted by a progress meter on a
 * terminal. Downloads go to `FILE.partial` and are renamed into place only
 * when complete, so a failed or cancelled backup never leaves a truncated
 * file under the real name. These requests have no `-t` bound (a 1 GiB
 * upload takes longer than 30 s); Ctrl-C cancels them.
 *
 * @module
 */

import { httpErrorMessage } from "./connection.ts";
import { countBytes, Progress } from "./progress.ts";
import type { Session } from "./session.ts";
import type { ApiResult } from "./sql.ts";

/** The first 16 bytes of every SQLite database file. */
const SQLITE_HEADER = "SQLite format 3\0";

/** True when the file at `path` starts with SQLite's header. */
export async function isSqliteFile(path: string): Promise<boolean> {
  const f = await Deno.open(path);
  try {
    const head = new Uint8Array(16);
    let got = 0;
    // Bounded: at most 16 reads of at least one byte each.
    while (got < 16) {
      const n = await f.read(head.subarray(got));
      if (n === null) break;
      got += n;
    }
    return got === 16 && new TextDecoder().decode(head) === SQLITE_HEADER;
  } finally {
    f.close();
  }
}

/** Downloads `path` (an API path) into `file`; returns the bytes written. */
export async function download(
  session: Session,
  label: string,
  path: string,
  file: string,
): Promise<number> {
  const partial = `${file}.partial`;
  return await session.run(async (signal) => {
    const res = await session.conn.request(path, { signal, noTimeout: true });
    if (res.status !== 200) {
      const text = await res.text();
      throw new Error(httpErrorMessage({ status: res.status, statusText: res.statusText, text }));
    }
    const length = Number(res.headers.get("content-length") ?? NaN);
    const progress = new Progress(label, session.progressSink, isNaN(length) ? undefined : length);
    const out = await Deno.open(partial, { write: true, create: true, truncate: true });
    try {
      await countBytes(res.body ?? ReadableStream.from([]), progress).pipeTo(out.writable, {
        signal,
      });
    } catch (err) {
      progress.finish(false);
      await Deno.remove(partial).catch(() => {});
      throw err;
    }
    await Deno.rename(partial, file);
    progress.finish(true);
    return progress.bytes;
  });
}

/** Uploads `file` as the body of `POST path`; returns the response text after a 2xx. */
export async function upload(
  session: Session,
  label: string,
  path: string,
  file: string,
  contentType: string,
  trailer?: string,
): Promise<{ status: number; text: string }> {
  const size = (await Deno.stat(file)).size + (trailer?.length ?? 0);
  return await session.run(async (signal) => {
    let progress: Progress | undefined;
    const body = async () => {
      progress = new Progress(label, session.progressSink, size);
      const f = await Deno.open(file);
      return countBytes(withTrailer(f.readable, trailer), progress);
    };
    try {
      const res = await session.conn.request(path, {
        method: "POST",
        headers: { "Content-Type": contentType },
        body,
        signal,
        noTimeout: true,
        idempotent: false,
      });
      const text = await res.text();
      if (res.status < 200 || res.status > 299) {
        throw new Error(httpErrorMessage({ status: res.status, statusText: res.statusText, text }));
      }
      progress?.finish(true);
      return { status: res.status, text };
    } catch (err) {
      progress?.finish(false);
      throw err;
    }
  });
}

/** `stream` followed by the bytes of `trailer`. */
function withTrailer(
  stream: ReadableStream<Uint8Array>,
  trailer: string | undefined,
): ReadableStream<Uint8Array> {
  if (trailer === undefined) return stream;
  async function* chunks(): AsyncGenerator<Uint8Array> {
    yield* stream;
    yield new TextEncoder().encode(trailer);
  }
  return ReadableStream.from(chunks());
}

/** `.backup FILE`: the binary database. */
export async function backupCommand(session: Session, file: string): Promise<void> {
  await download(session, "backup", "/db/backup", file);
  session.print("backup file written successfully");
}

/** `.dump FILE [T1,T2]`: the database as SQL text. */
export async function dumpCommand(session: Session, file: string, tables?: string): Promise<void> {
  const q = new URLSearchParams({ fmt: "sql" });
  if (tables !== undefined && tables !== "") q.set("tables", tables);
  await download(session, "dump", `/db/backup?${q}`, file);
  session.print("SQL text file written successfully");
}

/**
 * `.restore FILE`: a SQLite file (sent as octet-stream) or SQL text (sent as
 * text/plain with `PRAGMA foreign_keys=ON|OFF;` appended to match the
 * node's setting, as rqlite's CLI does) through `POST /db/load`.
 */
export async function restoreCommand(session: Session, file: string): Promise<void> {
  const binary = await isSqliteFile(file);
  let trailer: string | undefined;
  if (!binary) {
    const fk = await session.run((signal) =>
      session.conn.fetchText("/status?key=store.sqlite3.fk_constraints", { signal })
    );
    trailer = `\nPRAGMA foreign_keys=${fk.json === "enabled" ? "ON" : "OFF"};`;
  }
  const r = await upload(
    session,
    "restore",
    "/db/load",
    file,
    binary ? "application/octet-stream" : "text/plain",
    trailer,
  );
  let body: { results?: ApiResult[]; error?: string } | undefined;
  try {
    body = JSON.parse(r.text);
  } catch {
    body = undefined;
  }
  if (body?.error !== undefined) throw new Error(body.error);
  const failed = (body?.results ?? []).find((x) => x.error !== undefined);
  if (failed?.error !== undefined) throw new Error(failed.error);
  session.print("Database restored successfully");
}

/** `.boot FILE`: a SQLite file straight into a single node (`POST /boot`). */
export async function bootCommand(session: Session, file: string): Promise<void> {
  if (!await isSqliteFile(file)) {
    throw new Error(`${file} is not a SQLite database file; .boot takes a file from .backup`);
  }
  await upload(session, "boot", "/boot", file, "application/octet-stream");
  session.print("Node booted successfully");
}
