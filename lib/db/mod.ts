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
 * - `client.ts` + `worker.ts` — {@link DbClient}: one write worker (the
 *   write connection: execute, log entries, strong reads, snapshots,
 *   restores) and `readWorkers` read workers (default 1; read-only
 *   connections serving query and classify) behind promises; batched
 *   application of log entries; restores that detach the readers; bounded
 *   queues. A slow read never delays an apply.
 * - `files.ts` — the database file of the default mode.
 * - `snapshot_file.ts`, `sqlite_file.ts`, `dump.ts` — file-based snapshots,
 *   restores and backups (checkpoint + file copy or online backup, header
 *   checks, rqlite's SQL dump), memory bounded whatever the database size.
 *
 * Where the database lives: the read workers must open the same database as
 * the write worker, so it is always a file in WAL mode (`synchronous=OFF`:
 * the Raft log is the authority). With `-on-disk` it is
 * `<data-dir>/db.sqlite`. "In memory" (the default) means a RAM-backed
 * file: a fresh `/dev/shm/raftlite-…-<pid>-<random>.sqlite` (or a file in
 * a new `Deno.makeTempDir()` directory when `/dev/shm` is unusable),
 * created at open, deleted with its `-wal`/`-shm` at close, and — as
 * before — rebuilt from the snapshot and the log at every start. A real
 * `":memory:"` database remains available to tests (engine default; with
 * `DbClient` it has no read workers).
 *
 * Invariants:
 * - Exactly one connection writes, and it applies commands one at a time in
 *   the order given; nothing else ever writes (reads use read-only
 *   connections, or `query_only` on a `":memory:"` database). Given the same
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
 * - A read sees every write acknowledged before it was issued; no read ever
 *   runs on a closed, stale or half-restored database.
 *
 * Why: rqlite clients compare bytes and rely on driver quirks, replicas must
 * not diverge, and node:sqlite is synchronous — so SQLite lives in workers
 * and the main thread keeps its heartbeats; and reads have their own
 * workers (as rqlite has its read-only connection pool) so that a long query
 * does not hold up the acknowledgement of every write behind it.
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
