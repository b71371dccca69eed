/**
 * # lib/db — the SQLite state machine
 *
 * What it owns: everything between a command taken from the Raft log and
 * rqlite's JSON bytes for its results.
 *
 * - `command.ts` — the {@link Command} that travels in the log and between
 *   nodes, and its exact binary codec (int64 exact, float64 bit-exact, raw
 *   blobs, UTF-8 strings; garbage throws {@link CommandDecodeError}).
 * - `engine.ts` — {@link SqliteEngine}, synchronous, on `node:sqlite`:
 *   execute / query / request with rqlite's semantics (carried-over
 *   `last_insert_id`/`rows_affected`, transactions, per-statement errors
 *   with SQLite's messages, read-only enforcement), serialize / restore /
 *   load with validation, a logical state hash.
 * - `rows.ts`, `go_time.ts` — result values exactly as rqlite's driver
 *   produces them (declared types lower-cased, inferred expression types,
 *   DATE/DATETIME/TIMESTAMP and BOOLEAN conversions, exact big integers).
 * - `encode.ts` — results to rqlite's JSON text byte for byte, as Go's
 *   `encoding/json` writes it (field order, omitempty, sorted map keys,
 *   HTML-safe escapes, float spelling, MarshalIndent layout).
 * - `pragma.ts` — disallowed PRAGMA detection (whole request refused with
 *   `disallowed pragma`); the engine's authorizer denies them again.
 * - `client.ts` + `worker.ts` — {@link DbClient}: the engine in a Deno
 *   Worker behind promises, batched application of log entries, bounded
 *   in-flight requests.
 *
 * Invariants:
 * - Exactly one connection writes, and it applies commands one at a time in
 *   the order given; nothing else ever writes (reads use a read-only
 *   connection, or `query_only` on an in-memory database). Given the same
 *   commands in the same order, every replica reaches the same state: no
 *   wall-clock decision ever changes what a write does (`db_timeout` only
 *   cuts reads short).
 * - No SQL text that holds no statement is ever handed to `prepare()`
 *   (node:sqlite crashes the process on it); no authorizer ever throws.
 * - A restore/load either replaces the whole database with a checked image
 *   or leaves the old one untouched.
 * - Results are plain structured-cloneable objects; integers beyond 2^53 are
 *   `bigint` from SQLite to the JSON digits.
 *
 * Why: rqlite clients compare bytes and rely on driver quirks, replicas must
 * not diverge, and node:sqlite is synchronous — so SQLite lives in a worker
 * and the main thread keeps its heartbeats.
 *
 * @module
 */

export * from "./command.ts";
export * from "./result.ts";
export * from "./engine.ts";
export * from "./encode.ts";
export * from "./pragma.ts";
export * from "./client.ts";
export { formatTimeInteger, formatTimeText, GO_ZERO_TIME, GoTimeError } from "./go_time.ts";
export { isBlankSql, leadingKeyword } from "./sql_text.ts";
