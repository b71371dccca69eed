/**
 * Plain SQL from the prompt or a `.read` file: sent as one JSON array to
 * `POST /db/request` (`level` = `.consistency`), or to `/db/execute` with
 * `.forcewrites on`, with `timings` under `.timer on` and `blob_array`
 * under `.blobarray on` — as rqlite's CLI does. Results print in order:
 * rows in the current `.mode`, writes as rqlite's `N row affected` /
 * `N rows affected` (`(F sec)` with the timer), errors as `ERR! <error>`.
 *
 * @module
 */

import { httpErrorMessage, type TextResponse } from "./connection.ts";
import { formatResult, type ResultSet } from "./format.ts";
import type { Session } from "./session.ts";

/** One entry of an rqlite `results` array. */
export interface ApiResult {
  columns?: string[];
  types?: string[];
  values?: unknown[][];
  last_insert_id?: number | bigint;
  rows_affected?: number | bigint;
  error?: string;
  time?: number;
}

/** An rqlite data response. */
interface ApiResponse {
  results?: ApiResult[];
  error?: string;
}

/** Outcome counts of a batch, for `.read`'s summary. */
export interface BatchOutcome {
  statements: number;
  errors: number;
  rowsAffected: number;
}

/** Sends `statements` in one request and prints each result. */
export async function runStatements(
  session: Session,
  statements: readonly string[],
): Promise<BatchOutcome> {
  const s = session.settings;
  const params = new URLSearchParams();
  if (!s.forceWrites) params.set("level", s.consistency);
  if (s.timer) params.set("timings", "");
  if (s.blobArray) params.set("blob_array", "");
  const path = `${s.forceWrites ? "/db/execute" : "/db/request"}?${params}`.replace(
    /=(&|$)/g,
    "$1",
  );
  const r = await session.run((signal) =>
    session.conn.fetchText(path, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: () => JSON.stringify(statements),
      signal,
    })
  );
  return printResponse(session, r, statements.length);
}

/** Runs one read through `/db/query` at the session's level (`.tables`, `.schema`, `.indexes`). */
export async function runQuery(session: Session, sql: string): Promise<void> {
  const params = new URLSearchParams({ level: session.settings.consistency });
  if (session.settings.timer) params.set("timings", "");
  const path = `/db/query?${params}`.replace(/=(&|$)/g, "$1");
  const r = await session.run((signal) =>
    session.conn.fetchText(path, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: () => JSON.stringify([sql]),
      signal,
    })
  );
  printResponse(session, r, 1);
}

function printResponse(session: Session, r: TextResponse, sent: number): BatchOutcome {
  const outcome: BatchOutcome = { statements: sent, errors: 0, rowsAffected: 0 };
  if (r.status !== 200) throw new Error(httpErrorMessage(r));
  const body = r.json as ApiResponse | undefined;
  if (body === undefined || typeof body !== "object") {
    throw new Error(`unexpected response (not JSON): ${r.text.slice(0, 200)}`);
  }
  if (body.error !== undefined) throw new Error(body.error);
  for (const result of body.results ?? []) {
    if (result.error !== undefined) {
      outcome.errors++;
      session.error(result.error);
    } else if (result.columns !== undefined) printRows(session, result);
    else outcome.rowsAffected += printWrite(session, result);
  }
  return outcome;
}

function printRows(session: Session, result: ApiResult): void {
  const rs: ResultSet = {
    columns: result.columns ?? [],
    types: result.types ?? [],
    values: result.values ?? [],
  };
  session.write(formatResult(rs, session.settings.mode));
  if (session.settings.timer && result.time !== undefined) {
    session.print(`Run Time: ${result.time.toFixed(6)} seconds`);
  }
}

function printWrite(session: Session, result: ApiResult): number {
  const n = Number(result.rows_affected ?? 0);
  const rows = `${n} ${n === 1 ? "row" : "rows"} affected`;
  const time = session.settings.timer && result.time !== undefined
    ? ` (${result.time.toFixed(6)} sec)`
    : "";
  session.print(rows + time);
  if (session.settings.changes && result.last_insert_id !== undefined) {
    session.print(`last insert ID: ${result.last_insert_id}`);
  }
  return n;
}
