/**
 * Disallowed PRAGMAs (rqlite-api.md §4): statements that would change how
 * the node stores or checkpoints its database behind the Raft log's back.
 * Any of them anywhere in a request rejects the whole request with the
 * top-level error {@link DISALLOWED_PRAGMA_ERROR} (HTTP 200).
 *
 * rqlite matches `^\s*PRAGMA\s+(\w+\.)?NAME\s*=` (and `wal_checkpoint` in any
 * form) case-insensitively at the start of each statement string. This
 * check is a superset: it also looks at every statement of a
 * `;`-separated string, skips comments, accepts quoted schema and pragma
 * names and the call form `PRAGMA journal_mode(off)`, which sets the value
 * just like `=`. Read forms (`PRAGMA journal_mode`) stay allowed.
 *
 * The engine denies the same pragmas again in its authorizer, so a command
 * that reached the log without this check still cannot apply them.
 *
 * @module
 */

import { readWord, skipSpaceAndComments, statementStarts } from "./sql_text.ts";

/** The top-level error rqlite returns for a request holding a disallowed pragma. */
export const DISALLOWED_PRAGMA_ERROR = "disallowed pragma";

/** Pragmas that may be read but not set. */
const SET_DISALLOWED = new Set(["journal_mode", "wal_autocheckpoint", "synchronous", "query_only"]);
/** Pragmas disallowed in every form. */
const ALWAYS_DISALLOWED = new Set(["wal_checkpoint"]);

/**
 * True when an authorizer PRAGMA callback (`name`, `arg`) would apply a
 * disallowed pragma (`arg` is the value for `=`/call forms, else null).
 */
export function isDisallowedPragmaAction(name: string | null, arg: string | null): boolean {
  if (name === null) return false;
  const n = name.toLowerCase();
  return ALWAYS_DISALLOWED.has(n) || (arg !== null && SET_DISALLOWED.has(n));
}

/** True when the statement starting at `pos` is a disallowed pragma. */
function disallowedAt(sql: string, pos: number): boolean {
  const kw = readWord(sql, pos);
  if (kw === undefined || kw.quoted || kw.text.toLowerCase() !== "pragma") return false;
  let i = skipSpaceAndComments(sql, kw.end);
  let name = readWord(sql, i);
  if (name === undefined) return false;
  i = skipSpaceAndComments(sql, name.end);
  if (sql[i] === ".") {
    i = skipSpaceAndComments(sql, i + 1);
    name = readWord(sql, i);
    if (name === undefined) return false;
    i = skipSpaceAndComments(sql, name.end);
  }
  const n = name.text.toLowerCase();
  if (ALWAYS_DISALLOWED.has(n)) return true;
  return SET_DISALLOWED.has(n) && (sql[i] === "=" || sql[i] === "(");
}

/** True when `sql` (one or more `;`-separated statements) holds a disallowed pragma. */
export function hasDisallowedPragma(sql: string): boolean {
  // Cheap pre-filter: almost no statement mentions a pragma.
  if (!/pragma/i.test(sql)) return false;
  for (const start of statementStarts(sql)) {
    if (disallowedAt(sql, start)) return true;
  }
  return false;
}

/**
 * Checks a request's statements. Returns {@link DISALLOWED_PRAGMA_ERROR} when
 * any statement holds a disallowed pragma (the caller answers
 * `{"results":[],"error":"disallowed pragma"}`), else undefined.
 */
export function checkDisallowedPragmas(
  statements: readonly { readonly sql: string }[],
): string | undefined {
  for (const s of statements) {
    if (hasDisallowedPragma(s.sql)) return DISALLOWED_PRAGMA_ERROR;
  }
  return undefined;
}
