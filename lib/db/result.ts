/**
 * Result values of the state machine, as plain structured-cloneable objects
 * (they cross the worker boundary as they are).
 *
 * @module
 */

/**
 * A result cell. Integers are `number` when they are safe (|v| <= 2^53 - 1)
 * and `bigint` beyond; REALs are `number`; TEXT and converted DATE/DATETIME/
 * TIMESTAMP values are `string`; BOOLEAN-declared integers are `boolean`;
 * BLOBs are `Uint8Array`.
 */
export type Value = null | number | bigint | string | boolean | Uint8Array;

/** Outcome of a statement run as a write (rqlite `Result`). */
export interface ExecuteResult {
  /** SQLite `last_insert_rowid()` of the write connection after the statement. */
  lastInsertId?: number | bigint;
  /** SQLite `changes()` of the write connection after the statement. */
  rowsAffected?: number;
  error?: string;
  /** Execution time in seconds (only with `timings`). */
  timeSec?: number;
}

/** Outcome of a statement run as a read (rqlite `Rows`). */
export interface QueryResult {
  columns: string[];
  /** Lower-cased declared types, or types inferred from the first row. */
  types: string[];
  values: Value[][];
  error?: string;
  timeSec?: number;
}

/** Either shape; a pure failure is an {@link ExecuteResult} with only `error`. */
export type StatementResult = ExecuteResult | QueryResult;

/** True for the read shape. */
export function isQueryResult(r: StatementResult): r is QueryResult {
  return (r as QueryResult).columns !== undefined;
}

/**
 * Outcome of applying one command: per-statement results, or a whole-command
 * `error` (a bad encoding, a refused load, a failed BEGIN) with no results.
 */
export interface CommandOutcome {
  results: StatementResult[];
  error?: string;
}
