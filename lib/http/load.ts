/**
 * POST /db/load (rqlite-api.md §4): restores the database from a body that
 * is either a SQLite database file or SQL text, replicated through Raft.
 *
 * - The body is read whole, up to the server's `-max-body-bytes` (413
 *   beyond, as for the other endpoints). Content-Type is not consulted.
 * - It begins with the 13 bytes `SQLite format` → a database file. It is
 *   checked first, as the apply will check it (header, then `PRAGMA
 *   quick_check` on a private copy, in a database worker); a file that
 *   fails is refused with 400 `invalid SQLite data: ...` and nothing is
 *   proposed. A sound file goes through the log as one `load` command
 *   that replaces the database on every node; response `{"results":[]}`.
 * - Otherwise SQL text (e.g. a `.dump`): one statement string through the
 *   log, no rewriting, rolled back if a statement fails inside a
 *   transaction the text opened (`rollbackOnError`); execute-shaped
 *   response with the final statement's counters, or the error.
 * - Followers forward to the leader over the cluster service (or 301 with
 *   `redirect`, 503 without a leader), exactly as /db/execute does.
 *
 * @module
 */

import { type Command, RestoreError } from "../db/mod.ts";
import type { QueryParams } from "../sql/params.ts";
import type { Store } from "../store/store.ts";
import { BodyTooLargeError, readBody } from "./body.ts";
import { count, type HttpContext } from "./context.ts";
import { executeRunner, resultsResponse, runCommand } from "./data.ts";
import { emptyStatus, textError } from "./response.ts";

/** What rqlite looks for to tell a database file from SQL text. */
const SQLITE_PREFIX = new TextEncoder().encode("SQLite format");

/** Whether `body` starts like a SQLite database file (rqlite's `IsValidSQLiteData`). */
export function looksLikeSqliteFile(body: Uint8Array): boolean {
  if (body.length < SQLITE_PREFIX.length) return false;
  return SQLITE_PREFIX.every((b, i) => body[i] === b);
}

/** POST /db/load */
export async function handleLoad(
  req: Request,
  ctx: HttpContext,
  qp: QueryParams,
): Promise<Response> {
  if (req.method !== "POST") return emptyStatus(405);
  const startMs = performance.now();
  const store = ctx.store();
  if (store === undefined) {
    return resultsResponse(ctx, qp, [], { error: "store not open", startMs });
  }
  let body: Uint8Array;
  try {
    body = await readBody(req, ctx.maxBodyBytes);
  } catch (err) {
    if (err instanceof BodyTooLargeError) return textError(413, err.message);
    throw err;
  }
  count(ctx, "loads");
  const cmd = looksLikeSqliteFile(body) ? await imageCommand(store, body) : sqlCommand(body, qp);
  if (cmd instanceof Response) return cmd;
  return runCommand(req, ctx, qp, store, cmd, executeRunner(qp), startMs);
}

/** The load command for a database file, or the 400 that refuses a bad one. */
async function imageCommand(store: Store, body: Uint8Array): Promise<Command | Response> {
  try {
    await store.options.db.checkImage(body);
  } catch (err) {
    if (err instanceof RestoreError) return textError(400, err.message);
    throw err;
  }
  return { kind: "load", statements: [], transaction: false, data: body };
}

/**
 * SQL text as one statement string that rolls back its own transaction on
 * an error. `rollbackOnError` also marks the command as a load for the
 * leader's permission check when it is forwarded (lib/auth/routes.ts).
 */
function sqlCommand(body: Uint8Array, qp: QueryParams): Command {
  return {
    kind: "execute",
    statements: [{ sql: new TextDecoder().decode(body), params: [] }],
    transaction: false,
    rollbackOnError: true,
    timings: qp.timings,
  };
}
