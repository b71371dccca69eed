/**
 * `SqliteEngine`: the SQLite state machine on node:sqlite, synchronous, with
 * rqlite's result semantics (rqlite-api.md §3, §4, §15).
 *
 * - One write connection applies every command in order. `last_insert_id`
 *   and `rows_affected` are that connection's `last_insert_rowid()` and
 *   `changes()` after each statement, so they carry over from earlier
 *   statements exactly as in rqlite (DDL after an INSERT reports the
 *   INSERT's values).
 * - A file database runs in WAL mode with `synchronous=OFF` (the Raft log is
 *   the durable record) and gets a second, read-only connection for queries.
 *   A `":memory:"` database has only the write connection; queries on it run
 *   under `PRAGMA query_only=1`.
 * - The WAL stays bounded: SQLite checkpoints it every 1000 pages
 *   (`wal_autocheckpoint`, passive, never waits for readers) and truncates
 *   the file back to `journal_size_limit` when it restarts. Readers that
 *   keep holding old snapshots can starve that; {@link SqliteEngine.maintain}
 *   then forces a `TRUNCATE` checkpoint once the WAL passes
 *   `walLimitBytes`, waiting at most {@link FORCED_CHECKPOINT_WAIT_MS} for
 *   readers and retrying at most once a second.
 * - A read-only engine (`readOnly`, a read worker's) opens only a read-only
 *   connection (`query_only`, its own busy timeout) on a file another
 *   engine writes in WAL mode. It serves query / classify / stateHash; every
 *   write path refuses with {@link DbError}. As a WAL reader, each statement
 *   (or each `transaction` batch) sees every transaction committed before
 *   it started.
 * - Read-only queries refuse statements the authorizer classifies as writes
 *   with `attempt to change database via query operation` before running
 *   anything (see connection.ts for the classification rules).
 * - Statement strings holding several `;`-separated statements run one
 *   statement after the other (go-sqlite3's loop): parameters bind to the
 *   first; an execute reports the counters after the last; a query returns
 *   the rows of the last.
 * - Group commit ({@link SqliteEngine.applyBatch}): log entries applied
 *   together share one SQLite transaction when they are plain single-
 *   statement writes, with results and final state identical to applying
 *   each on its own (see {@link SqliteEngine.applyBatch} for the rules).
 * - Snapshots and backups go file to file (`snapshotToFile`,
 *   `backupToFile`, `restoreFromFile`; snapshot_file.ts, dump.ts): a
 *   checkpoint plus a file copy, SQLite's online backup, or a streamed SQL
 *   dump, so no whole database image ever sits in the heap. `serialize` /
 *   `restore(bytes)` remain for images that travel as bytes (a load).
 * - `db_timeout` (`dbTimeoutMs`): node:sqlite has no interrupt and no
 *   progress handler, so a running SQLite call cannot be stopped. Reads
 *   check the deadline before each row they fetch and once more at the end;
 *   past it the statement yields `query timeout` (columns and types kept,
 *   no values) — the same result rqlite gives, only the time spent before
 *   giving it can be longer (a single long step, e.g. a big sort, finishes
 *   first). Writes ignore the timeout: a write that is cut short on one
 *   replica and not on another would make replicas diverge, so an `execute
 *   timeout` is never produced.
 *
 * @module
 */

import { createHash } from "node:crypto";
import type { Command, Param, Statement } from "./command.ts";
import {
  Connection,
  type ConnectionOptions,
  openDatabase,
  type Prepared,
  WriteRefused,
} from "./connection.ts";
import type { CommandOutcome, ExecuteResult, QueryResult, StatementResult } from "./result.ts";
import { columnHeader, convertRows, intValue } from "./rows.ts";
import { cleanSqliteMessage, leadingKeyword, skipBlank } from "./sql_text.ts";
import type { SQLInputValue } from "node:sqlite";
import { dumpToFile } from "./dump.ts";
import { headerProblem } from "./sqlite_file.ts";
import {
  checkpointComplete,
  type LiveDatabase,
  type RestoreCheck,
  stageRestore,
  vacuumInto,
  writeCopy,
} from "./snapshot_file.ts";

/** Engine settings. */
export interface EngineOptions {
  /** `":memory:"` (default) or a file path. */
  path?: string;
  /** `PRAGMA foreign_keys` (default false, like rqlited `-fk=false`). */
  foreignKeys?: boolean;
  /** `PRAGMA busy_timeout` in ms (default 5000). */
  busyTimeoutMs?: number;
  /** Prepared statements kept per connection (default 256). */
  statementCacheSize?: number;
  /**
   * Open only a read-only connection on `path`, a file that another engine
   * writes in WAL mode (a read worker). Default false.
   */
  readOnly?: boolean;
  /**
   * WAL size in bytes past which {@link SqliteEngine.maintain} forces a
   * truncating checkpoint (default 64 MiB; 0 disables it).
   */
  walLimitBytes?: number;
  /**
   * SQLite's automatic WAL checkpoints (default true). False keeps the
   * database file unchanged between snapshots (they checkpoint), which the
   * -on-disk fast restart relies on (lib/server/fingerprint.ts); the WAL is
   * still bounded by `walLimitBytes`.
   */
  autoCheckpoint?: boolean;
}

/** Size and modification time of the database file (see {@link SqliteEngine.snapshotToFile}). */
export interface DbFileStat {
  readonly size: number;
  readonly mtimeMs: number;
}

/** What {@link SqliteEngine.snapshotToFile} reports. */
export interface SnapshotFileResult {
  readonly sizeBytes: number;
  /**
   * The live database file right after the snapshot's checkpoint, when the
   * WAL was checkpointed completely: the file alone then holds exactly the
   * snapshot's state (until the next checkpoint changes its mtime).
   */
  readonly dbFile?: DbFileStat;
}

/** What {@link SqliteEngine.close} reports. */
export interface CloseReport {
  /** The database file after a complete final checkpoint: it alone holds the whole state. */
  readonly cleanDbFile?: DbFileStat;
}

/** What {@link SqliteEngine.backupToFile} writes (rqlite's `fmt`, `vacuum`, `tables`). */
export interface BackupOptions {
  /**
   * `binary`: the database file as it is live (WAL mode, header bytes 18/19
   * = 2); `delete`: the same converted to rollback-journal mode; `sql`:
   * rqlite's SQL text dump (dump.ts).
   */
  format: "binary" | "delete" | "sql";
  /** A compacted copy (`VACUUM INTO`); only with `binary`. */
  vacuum?: boolean;
  /** `sql` only: dump just these tables. */
  tables?: readonly string[];
}

/** Options of {@link SqliteEngine.restoreFromFile}. */
export interface RestoreFileOptions {
  /**
   * `header` (default): check the header and the file size; `quick_check`:
   * also run `PRAGMA quick_check` on the copy before swapping it in.
   */
  check?: RestoreCheck;
}

/** rqlite's error for `vacuum` with a format other than binary (and unknown formats). */
export const INVALID_BACKUP_FORMAT = "invalid backup format";

/** How long a forced checkpoint may wait for readers before it gives up (retried later). */
export const FORCED_CHECKPOINT_WAIT_MS = 100;
/** `PRAGMA journal_size_limit` of the write connection: the WAL file shrinks back to this. */
const JOURNAL_SIZE_LIMIT = 16 * 1024 * 1024;

/** A whole-command failure (e.g. BEGIN inside an open transaction). */
export class DbError extends Error {
  override name = "DbError";
}

/** A refused restore/load: the bytes are not a sound SQLite database. The old DB is intact. */
export class RestoreError extends Error {
  override name = "RestoreError";
}

/** rqlite's message for a write sent through /db/query. */
export const QUERY_WRITE_ERROR = "attempt to change database via query operation";
/** rqlite's message for a read past its `db_timeout`. */
export const QUERY_TIMEOUT_ERROR = "query timeout";

/** Commands in one group commit at most (the driver's apply batches hold up to 4096). */
export const GROUP_COMMIT_MAX = 4096;

/**
 * Leading keywords of the statements a group may hold: writes that cannot
 * begin, end or otherwise control a transaction (see
 * {@link SqliteEngine.applyBatch}).
 */
const GROUPABLE_KEYWORDS: ReadonlySet<string> = new Set([
  "INSERT",
  "UPDATE",
  "DELETE",
  "REPLACE",
  "CREATE",
  "DROP",
  "ALTER",
  "WITH",
]);

/** Temporary tables that {@link SqliteEngine.restoreCounters} creates and drops again. */
const COUNTER_ROWID_TABLE = 'temp."raftlite group commit: rowid"';
const COUNTER_CHANGES_TABLE = 'temp."raftlite group commit: changes"';

/**
 * Thrown out of {@link SqliteEngine.execute} / {@link SqliteEngine.request}
 * (through {@link SqliteEngine.apply}) when a statement ended the group's
 * transaction: SQLite rolled it back as a whole (`OR ROLLBACK`,
 * `RAISE(ROLLBACK)`, an I/O error...). Nothing after that statement ran.
 */
class GroupLost extends Error {
  override name = "GroupLost";
}

/** A group commit in progress. */
interface Group {
  /** Indices (into the batch) of the commands applied in the group, in order. */
  readonly members: number[];
  /** The write connection's `last_insert_rowid()` and `changes()` before the group. */
  readonly lastInsertRowid: bigint;
  readonly changes: bigint;
}

function messageOf(e: unknown): string {
  return cleanSqliteMessage(e instanceof Error ? e.message : String(e));
}

/**
 * `bytes`, or a copy with header bytes 18/19 set to 1 when they say WAL: a
 * WAL-mode image can neither be deserialized nor opened without its `-wal`.
 */
function rollbackJournalImage(bytes: Uint8Array): Uint8Array {
  if (bytes[18] !== 2 && bytes[19] !== 2) return bytes;
  const img = bytes.slice();
  img[18] = 1;
  img[19] = 1;
  return img;
}

/** Node's positional/named argument list for `params`. */
function bindArgs(params: readonly Param[]): SQLInputValue[] {
  if (params.length === 0) return [];
  let named: Record<string, SQLInputValue> | undefined;
  const positional: SQLInputValue[] = [];
  for (const p of params) {
    const v = p.value;
    const b: SQLInputValue = typeof v === "boolean" ? (v ? 1n : 0n) : v;
    if (p.name !== undefined) (named ??= {})[p.name] = b;
    else positional.push(b);
  }
  // node:sqlite takes the named-parameter object as the first argument.
  return named === undefined ? positional : [named as unknown as SQLInputValue, ...positional];
}

type Runner = {
  run(...a: SQLInputValue[]): { lastInsertRowid: number | bigint; changes: number | bigint };
  all(...a: SQLInputValue[]): unknown[];
  iterate(...a: SQLInputValue[]): IterableIterator<unknown>;
};

function runner(p: Prepared): Runner {
  return p.stmt as unknown as Runner;
}

/** The SQLite state machine. Not thread-safe; everything is synchronous. */
export class SqliteEngine {
  /** `":memory:"` or the database file path. */
  readonly path: string;
  readonly memory: boolean;
  /** Only reads: a read worker's engine (see {@link EngineOptions.readOnly}). */
  readonly readOnly: boolean;
  private readonly connOptions: ConnectionOptions;
  private readonly walLimitBytes: number;
  private readonly autoCheckpoint: boolean;
  /** The write connection; the read-only connection itself in a read-only engine. */
  private w: Connection;
  private r: Connection | undefined;
  private closed = false;
  private nextForcedCheckpoint = 0;
  /** A group commit's transaction is open on the write connection (see {@link applyBatch}). */
  private grouped = false;

  constructor(options: EngineOptions = {}) {
    this.path = options.path ?? ":memory:";
    this.memory = this.path === ":memory:";
    this.readOnly = options.readOnly ?? false;
    if (this.readOnly && this.memory) {
      throw new DbError("a read-only engine needs a database file written by another engine");
    }
    this.connOptions = {
      foreignKeys: options.foreignKeys ?? false,
      busyTimeoutMs: options.busyTimeoutMs ?? 5000,
      cacheSize: options.statementCacheSize ?? 256,
    };
    this.walLimitBytes = options.walLimitBytes ?? 64 * 1024 * 1024;
    this.autoCheckpoint = options.autoCheckpoint ?? true;
    if (this.readOnly) {
      this.r = this.openRead();
      this.w = this.r;
    } else {
      this.w = this.openWrite(this.path);
      this.r = this.memory ? undefined : this.openRead();
    }
  }

  private openWrite(path: string): Connection {
    const o = this.connOptions;
    const c = new Connection(openDatabase(path, o), o.cacheSize);
    this.configure(c, !this.memory);
    return c;
  }

  private configure(c: Connection, file: boolean): void {
    const o = this.connOptions;
    const pragmas = [
      `PRAGMA busy_timeout=${o.busyTimeoutMs}`,
      `PRAGMA foreign_keys=${o.foreignKeys ? "ON" : "OFF"}`,
    ];
    if (file) {
      pragmas.unshift(
        "PRAGMA journal_mode=WAL",
        "PRAGMA synchronous=OFF",
        `PRAGMA wal_autocheckpoint=${this.autoCheckpoint ? 1000 : 0}`,
        `PRAGMA journal_size_limit=${JOURNAL_SIZE_LIMIT}`,
      );
    }
    c.internalExec(pragmas.join(";"));
  }

  private openRead(): Connection {
    const o = this.connOptions;
    const c = new Connection(openDatabase(this.path, { ...o, readOnly: true }), o.cacheSize);
    c.internalExec(`PRAGMA busy_timeout=${o.busyTimeoutMs};PRAGMA query_only=1`);
    return c;
  }

  private assertOpen(): void {
    if (this.closed) throw new DbError("database is closed");
  }

  private assertWritable(): void {
    this.assertOpen();
    if (this.readOnly) throw new DbError("read-only engine: writes go to the write engine");
  }

  /**
   * Keeps the WAL bounded (see the module note); call after applying
   * writes. Cheap when there is nothing to do (one `stat`).
   */
  maintain(): void {
    if (this.closed || this.readOnly || this.memory || this.walLimitBytes <= 0) return;
    let size: number;
    try {
      size = Deno.statSync(`${this.path}-wal`).size;
    } catch {
      return;
    }
    if (size <= this.walLimitBytes) return;
    const now = performance.now();
    if (now < this.nextForcedCheckpoint || this.w.db.isTransaction) return;
    this.nextForcedCheckpoint = now + 1000;
    // Busy or locked: readers still hold old snapshots; the next call retries.
    this.checkpointTruncate();
  }

  /**
   * `PRAGMA wal_checkpoint(TRUNCATE)` waiting at most
   * {@link FORCED_CHECKPOINT_WAIT_MS} for readers: its `[busy, log,
   * checkpointed]` row, or undefined when it failed (e.g. locked).
   */
  private checkpointTruncate(): [number, number, number] | undefined {
    const c = this.w;
    try {
      c.internalExec(`PRAGMA busy_timeout=${FORCED_CHECKPOINT_WAIT_MS}`);
      const row = c.internalRow("PRAGMA wal_checkpoint(TRUNCATE)");
      return row === undefined ? undefined : [Number(row[0]), Number(row[1]), Number(row[2])];
    } catch {
      return undefined;
    } finally {
      c.internalExec(`PRAGMA busy_timeout=${this.connOptions.busyTimeoutMs}`);
    }
  }

  /** Applies one command from the log; never throws. */
  apply(cmd: Command): CommandOutcome {
    try {
      switch (cmd.kind) {
        case "execute":
          return { results: this.execute(cmd) };
        case "query":
          return { results: this.query(cmd) };
        case "request":
          return { results: this.request(cmd) };
        case "load":
          if (cmd.data === undefined) return { results: [], error: "load command without data" };
          this.load(cmd.data);
          return { results: [] };
        case "noop":
          return { results: [] };
        default:
          return { results: [], error: `unknown command kind: ${String(cmd.kind)}` };
      }
    } catch (e) {
      if (e instanceof GroupLost) throw e;
      return { results: [], error: e instanceof Error ? e.message : String(e) };
    }
  }

  /**
   * Applies a batch of commands from the log, in order, with group commit:
   * one outcome per item (a string item is a command that could not be
   * decoded, its outcome that error). Outcomes and the final database state
   * are exactly those of {@link apply} on each command in turn, whatever
   * the batch boundaries; only the number of SQLite commits differs. Never
   * throws for a command; throws only when the engine cannot restore an
   * identical state (then the replica must stop).
   *
   * A *group* is a run of consecutive *simple* commands applied inside one
   * transaction (a plain deferred BEGIN issued here, COMMIT at its end). A
   * command is simple when it is an `execute` or a `request` without
   * `transaction` and `rollbackOnError`, and every statement in it is blank,
   * or is one single statement (SQLite's own parse says nothing but blanks
   * follows it; a statement that does not prepare does not count) that
   * starts with INSERT, UPDATE, DELETE, REPLACE, CREATE, DROP, ALTER or
   * WITH, without the `explain` flag. Such statements can neither begin nor
   * commit a transaction; statement failures inside the group roll back the
   * statement alone, as the autocommit transaction would (ABORT), `OR FAIL`
   * keeps its partial changes as in autocommit, and `changes()` /
   * `last_insert_rowid()` are those of the connection either way.
   *
   * Every other command (queries, `transaction` commands, BEGIN / COMMIT /
   * ROLLBACK / SAVEPOINT / RELEASE / END, PRAGMA, VACUUM, ATTACH, multi-
   * statement strings, loads...) first commits the open group, then runs on
   * its own as before. Commands that do not decode and `noop`s touch nothing
   * and leave the group open. No group starts while the write connection is
   * inside a transaction (a client's BEGIN), nor while foreign key
   * enforcement is on (a deferred constraint fails a statement's own commit
   * in autocommit, but only the group's COMMIT inside one). A group holds at
   * most {@link GROUP_COMMIT_MAX} commands and is committed before this
   * returns.
   *
   * When SQLite rolls the group's whole transaction back (`OR ROLLBACK`, a
   * column's `ON CONFLICT ROLLBACK`, a trigger's `RAISE(ROLLBACK)`, an error
   * SQLite escalates: SQLITE_FULL, SQLITE_IOERR, SQLITE_NOMEM...), checked
   * after every statement, or when the group's COMMIT fails, the group's
   * commands so far are undone; they are then applied again one at a time
   * in autocommit from the same state, `last_insert_rowid()` and
   * `changes()` restored first, and their outcomes replace the earlier
   * ones. The next simple command starts a new group.
   */
  applyBatch(items: readonly (Command | string)[]): CommandOutcome[] {
    const out: CommandOutcome[] = new Array(items.length);
    let group: Group | undefined;
    // Set when no group could start (a client's transaction, foreign keys
    // on): only a command that is not simple changes that (or, rarely, a
    // rollback; then not grouping is merely slower), so do not ask again
    // before one has run.
    let noGroup = false;
    try {
      for (let i = 0; i < items.length; i++) {
        const item = items[i]!;
        if (typeof item === "string") {
          out[i] = { results: [], error: item };
          continue;
        }
        if (item.kind === "noop") {
          out[i] = this.apply(item);
          continue;
        }
        const simple = this.simple(item);
        if (group !== undefined && (!simple || group.members.length >= GROUP_COMMIT_MAX)) {
          const g = group;
          group = undefined;
          this.endGroup(g, items, out);
        }
        if (group !== undefined && !this.w.db.isTransaction) {
          // Only a statement can end the transaction (checked after each);
          // should anything else have rolled it back, redo before going on.
          const g = group;
          group = undefined;
          this.redoGroup(g, items, out);
        }
        if (group === undefined && simple && !noGroup) {
          group = this.startGroup();
          noGroup = group === undefined;
        }
        if (group === undefined) {
          out[i] = this.apply(item);
          if (!simple) noGroup = false;
          continue;
        }
        group.members.push(i);
        try {
          out[i] = this.apply(item);
        } catch (e) {
          if (!(e instanceof GroupLost)) throw e;
          const g = group;
          group = undefined;
          this.redoGroup(g, items, out);
        }
      }
      if (group !== undefined) {
        const g = group;
        group = undefined;
        this.endGroup(g, items, out);
      }
      return out;
    } finally {
      if (this.grouped) this.abandonGroup();
    }
  }

  /** Whether `cmd` may join a group (see {@link applyBatch}). */
  private simple(cmd: Command): boolean {
    if (cmd.kind !== "execute" && cmd.kind !== "request") return false;
    if (cmd.transaction || cmd.rollbackOnError || this.closed || this.readOnly) return false;
    for (const st of cmd.statements) {
      if (st.sql === "") continue;
      if (st.explain || !this.singleWrite(st.sql)) return false;
    }
    return true;
  }

  /**
   * True when `sql` is blank or exactly one statement that starts with a
   * groupable keyword. The end of the statement is where SQLite's parser
   * ended it (the same as {@link exec} and {@link rows} use), which depends
   * only on the text once the statement prepares; a statement that does not
   * prepare (yet) is not simple.
   */
  private singleWrite(sql: string): boolean {
    const pos = skipBlank(sql, 0);
    if (pos >= sql.length) return true;
    if (!GROUPABLE_KEYWORDS.has(leadingKeyword(sql))) return false;
    try {
      const p = this.w.prepare(pos === 0 ? sql : sql.slice(pos));
      return skipBlank(sql, pos + p.sourceLength) >= sql.length;
    } catch {
      return false;
    }
  }

  /** Opens a group's transaction, or undefined when no group may start now. */
  private startGroup(): Group | undefined {
    const c = this.w;
    if (this.closed || this.readOnly || this.grouped || c.db.isTransaction) return undefined;
    let lastInsertRowid: bigint;
    let changes: bigint;
    try {
      // Not cached: a flag pragma's value is compiled into the statement.
      const fk = c.internalRow("PRAGMA foreign_keys");
      if (fk === undefined || fk[0] !== 0n) return undefined;
      const row = c.internalRow("SELECT last_insert_rowid(), changes()")!;
      lastInsertRowid = row[0] as bigint;
      changes = row[1] as bigint;
      c.internalExec("BEGIN");
    } catch {
      return undefined;
    }
    this.grouped = true;
    return { members: [], lastInsertRowid, changes };
  }

  /**
   * Commits a group; if the COMMIT fails without committing, applies the
   * group's commands again one by one.
   *
   * A failing COMMIT either left the transaction open (SQLITE_BUSY), or
   * rolled it back (an I/O error writing the WAL), or committed and then
   * failed in the WAL hook (the automatic checkpoint runs inside the
   * COMMIT's step and its error becomes the COMMIT's). The last two both
   * leave no transaction; the read connection's `PRAGMA data_version`,
   * which changes when another connection commits, tells them apart. (An
   * in-memory database has no WAL hook.)
   */
  private endGroup(g: Group, items: readonly (Command | string)[], out: CommandOutcome[]): void {
    this.grouped = false;
    const c = this.w;
    // Gone: rolled back (nothing in a group can commit), though every
    // statement checks for that already.
    if (!c.db.isTransaction) return this.redoGroup(g, items, out);
    const version = this.readDataVersion();
    try {
      c.internalExec("COMMIT");
      return;
    } catch {
      // Handled below.
    }
    if (!c.db.isTransaction && this.r !== undefined) {
      const now = this.readDataVersion();
      if (version === undefined || now === undefined) {
        throw new DbError("group commit: COMMIT failed and whether it committed is unknown");
      }
      if (now !== version) return; // Committed; the error came after (the checkpoint).
    }
    this.redoGroup(g, items, out);
  }

  /** The read connection's `PRAGMA data_version`; undefined without one or on failure. */
  private readDataVersion(): unknown {
    if (this.r === undefined) return undefined;
    try {
      const row = runner(this.r.prepare("PRAGMA data_version")).all()[0] as unknown[] | undefined;
      return row?.[0];
    } catch {
      return undefined;
    }
  }

  /**
   * Undoes what is left of a group's transaction and applies its commands
   * again one at a time in autocommit, from the state and counters the
   * group started with, replacing their outcomes.
   */
  private redoGroup(g: Group, items: readonly (Command | string)[], out: CommandOutcome[]): void {
    this.grouped = false;
    const c = this.w;
    if (c.db.isTransaction) c.internalExec("ROLLBACK");
    if (c.db.isTransaction) throw new DbError("group commit: cannot roll the group back");
    this.restoreCounters(g.lastInsertRowid, g.changes);
    for (const i of g.members) out[i] = this.apply(items[i] as Command);
  }

  /** After an unexpected failure: rolls back an open group's transaction (best effort). */
  private abandonGroup(): void {
    this.grouped = false;
    try {
      if (!this.closed && this.w.db.isTransaction) this.w.internalExec("ROLLBACK");
    } catch {
      // The caller is failing already.
    }
  }

  /**
   * Sets the write connection's `last_insert_rowid()` to `lastInsertRowid`
   * and `changes()` to `changes` (neither is rolled back with a
   * transaction; node:sqlite cannot set them directly): inserts `changes`
   * rows into a temporary WITHOUT ROWID table (which leaves
   * `last_insert_rowid()` alone), one row with that rowid into a temporary
   * rowid table, then deletes the `changes` rows. Both tables are dropped
   * again (DDL changes neither counter). Throws if the counters do not come
   * out right. Autocommit only.
   */
  private restoreCounters(lastInsertRowid: bigint, changes: bigint): void {
    const c = this.w;
    c.internalExec(
      `CREATE TABLE ${COUNTER_CHANGES_TABLE}(k INTEGER PRIMARY KEY) WITHOUT ROWID;` +
        `CREATE TABLE ${COUNTER_ROWID_TABLE}(x)`,
    );
    try {
      c.internalRow(
        `WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < ?1) ` +
          `INSERT INTO ${COUNTER_CHANGES_TABLE}(k) SELECT n FROM s WHERE ?1 > 0`,
        changes,
      );
      c.internalRow(`INSERT INTO ${COUNTER_ROWID_TABLE}(rowid) VALUES(?)`, lastInsertRowid);
      c.internalExec(`DROP TABLE ${COUNTER_ROWID_TABLE}`);
      c.internalRow(`DELETE FROM ${COUNTER_CHANGES_TABLE} WHERE k > 0`);
    } finally {
      c.internalExec(
        `DROP TABLE IF EXISTS ${COUNTER_ROWID_TABLE};DROP TABLE IF EXISTS ${COUNTER_CHANGES_TABLE}`,
      );
    }
    const row = c.internalRow("SELECT last_insert_rowid(), changes()")!;
    if (row[0] !== lastInsertRowid || row[1] !== changes) {
      throw new DbError(
        `group commit: restored counters ${row[0]}/${row[1]}, not ${lastInsertRowid}/${changes}`,
      );
    }
  }

  /**
   * Runs statements as writes (rqlite /db/execute). Statement errors are
   * per-result; with `transaction` the first error rolls back and stops.
   * Throws {@link DbError} only when the transaction cannot be opened or
   * committed (then nothing of the command is applied).
   */
  execute(cmd: Command): StatementResult[] {
    this.assertWritable();
    const c = this.w;
    let open = cmd.transaction && this.begin(c);
    const results: StatementResult[] = [];
    for (const st of cmd.statements) {
      if (st.sql === "") continue;
      const t0 = cmd.timings ? performance.now() : 0;
      const r = st.forceQuery ? this.rows(c, st, cmd, false, 0) : this.exec(c, st);
      if (cmd.timings) r.timeSec = (performance.now() - t0) / 1000;
      results.push(r);
      if (this.grouped && !c.db.isTransaction) throw new GroupLost();
      if (r.error !== undefined) {
        if (open) {
          this.rollback(c);
          open = false;
          break;
        }
        if (cmd.rollbackOnError && c.db.isTransaction) this.rollback(c);
      }
    }
    if (open) this.commit(c);
    return results;
  }

  /**
   * Runs statements as reads (rqlite /db/query). With `readOnly` (default)
   * writes are refused per statement; file databases read on the read-only
   * connection, in-memory ones under `query_only`. Errors never stop the
   * batch; `transaction` reads in one snapshot (BEGIN…ROLLBACK).
   */
  query(cmd: Command, opts: { readOnly?: boolean } = {}): StatementResult[] {
    this.assertOpen();
    const readOnly = opts.readOnly ?? true;
    if (!readOnly) this.assertWritable();
    const c = readOnly && this.r !== undefined ? this.r : this.w;
    const guard = readOnly && this.r === undefined;
    if (guard) c.internalExec("PRAGMA query_only=1");
    let open = false;
    try {
      open = cmd.transaction && !c.db.isTransaction && this.begin(c);
      const results: StatementResult[] = [];
      for (const st of cmd.statements) {
        if (st.sql === "") continue;
        const t0 = cmd.timings ? performance.now() : 0;
        const r = this.rows(c, st, cmd, readOnly, cmd.dbTimeoutMs ?? 0);
        if (cmd.timings) r.timeSec = (performance.now() - t0) / 1000;
        results.push(r);
      }
      return results;
    } finally {
      if (open) this.rollback(c);
      if (guard) c.internalExec("PRAGMA query_only=0");
    }
  }

  /**
   * Unified statements (rqlite /db/request): each statement is classified at
   * prepare time; reads return rows, writes counters. A statement that fails
   * to prepare yields its error and the batch goes on (even in a
   * transaction); execution errors stop and roll back only with
   * `transaction`.
   */
  request(cmd: Command): StatementResult[] {
    this.assertWritable();
    const c = this.w;
    let open = cmd.transaction && this.begin(c);
    const results: StatementResult[] = [];
    for (const st of cmd.statements) {
      if (st.sql === "") continue;
      const t0 = cmd.timings ? performance.now() : 0;
      let r: StatementResult;
      const read = this.requestKind(c, st);
      if (typeof read === "string") {
        r = { error: read };
      } else {
        if (read) r = this.rows(c, st, cmd, false, cmd.dbTimeoutMs ?? 0);
        else r = st.forceQuery ? this.rows(c, st, cmd, false, 0) : this.exec(c, st);
      }
      if (cmd.timings) r.timeSec = (performance.now() - t0) / 1000;
      results.push(r);
      if (this.grouped && !c.db.isTransaction) throw new GroupLost();
      if (r.error !== undefined && typeof read !== "string" && open) {
        this.rollback(c);
        open = false;
        break;
      }
    }
    if (open) this.commit(c);
    return results;
  }

  /**
   * True when `st` is a read, false for a write, or the prepare error
   * message. EXPLAIN is always a read; a string of several statements is a
   * write unless every statement in it is a read.
   */
  private requestKind(c: Connection, st: Statement): boolean | string {
    if (st.explain) return true;
    const sql = st.sql;
    let pos = skipBlank(sql, 0);
    if (pos >= sql.length) return false;
    let read = true;
    let first = true;
    while (pos < sql.length) {
      const text = pos === 0 ? sql : sql.slice(pos);
      let p: Prepared;
      try {
        p = c.prepare(text);
      } catch (e) {
        // Only the first statement's prepare failure is a "prepare error";
        // later ones may depend on earlier statements and surface when run.
        if (first) return messageOf(e);
        return false;
      }
      if (!p.readOnly && leadingKeyword(text) !== "EXPLAIN") read = false;
      if (!read) return false;
      first = false;
      pos = skipBlank(sql, pos + p.sourceLength);
    }
    return read;
  }

  /**
   * Prepares `text` without letting any write take effect; undefined when it
   * is not a read (EXPLAIN counts as a read but may not run a writing
   * pragma). Throws SQLite's prepare errors.
   */
  private readOnlyPrepare(c: Connection, text: string, explain: boolean): Prepared | undefined {
    const isExplain = explain || leadingKeyword(text) === "EXPLAIN";
    try {
      const p = c.prepare(text, isExplain ? "pragmas" : "writes");
      return p.readOnly || (isExplain && !p.writesPragma) ? p : undefined;
    } catch (e) {
      if (e instanceof WriteRefused) return undefined;
      throw e;
    }
  }

  /**
   * Side-effect-free classification for routing /db/request: true for each
   * statement that is a read (rqlite serves a request locally when all are),
   * false for writes and for statements that do not prepare (rqlite counts
   * those as writes). Statements holding no SQL count as reads.
   */
  classify(statements: readonly Statement[]): boolean[] {
    this.assertOpen();
    const c = this.r ?? this.w;
    return statements.map((st) => {
      const sql = st.sql;
      let pos = skipBlank(sql, 0);
      if (pos >= sql.length) return true;
      try {
        while (pos < sql.length) {
          const text = pos === 0 ? sql : sql.slice(pos);
          const p = this.readOnlyPrepare(c, text, pos === 0 && st.explain === true);
          if (p === undefined) return false;
          pos = skipBlank(sql, pos + p.sourceLength);
        }
        return true;
      } catch {
        return false;
      }
    });
  }

  /** Runs one statement string as a write; never throws. */
  private exec(c: Connection, st: Statement): ExecuteResult {
    const sql = st.sql;
    try {
      let pos = skipBlank(sql, 0);
      if (pos >= sql.length) return this.counters(c);
      let res: { lastInsertRowid: number | bigint; changes: number | bigint } | undefined;
      let args = bindArgs(st.params);
      while (pos < sql.length) {
        const p = c.prepare(pos === 0 ? sql : sql.slice(pos));
        res = runner(p).run(...args);
        args = [];
        pos = skipBlank(sql, pos + p.sourceLength);
      }
      return {
        lastInsertId: intValue(BigInt(res!.lastInsertRowid)),
        rowsAffected: Number(res!.changes),
      };
    } catch (e) {
      return { error: messageOf(e) };
    }
  }

  /** The connection's carried-over counters (for statements SQLite never saw). */
  private counters(c: Connection): ExecuteResult {
    const p = c.prepare("SELECT last_insert_rowid(), changes()");
    const row = runner(p).all()[0] as [bigint, bigint];
    return { lastInsertId: intValue(row[0]), rowsAffected: Number(row[1]) };
  }

  /**
   * Runs one statement string returning rows of its last statement; never
   * throws. `timeoutMs` is the read deadline (0 for writes: see the module note).
   */
  private rows(
    c: Connection,
    st: Statement,
    cmd: Command,
    readOnly: boolean,
    timeoutMs: number,
  ): StatementResult {
    const sql = st.sql;
    try {
      let pos = skipBlank(sql, 0);
      if (pos >= sql.length) return { columns: [], types: [], values: [] };
      if (readOnly) {
        // Classify every statement before running any of them.
        for (let q = pos; q < sql.length;) {
          const text = q === 0 ? sql : sql.slice(q);
          const ok = this.readOnlyPrepare(c, text, q === pos && st.explain === true);
          if (ok === undefined) return { error: QUERY_WRITE_ERROR };
          q = skipBlank(sql, q + ok.sourceLength);
        }
      }
      let args = bindArgs(st.params);
      for (;;) {
        const p = c.prepare(pos === 0 ? sql : sql.slice(pos));
        const next = skipBlank(sql, pos + p.sourceLength);
        if (next >= sql.length) return this.fetch(p, args, cmd, timeoutMs);
        runner(p).run(...args);
        args = [];
        pos = next;
      }
    } catch (e) {
      return { error: e instanceof WriteRefused ? QUERY_WRITE_ERROR : messageOf(e) };
    }
  }

  /**
   * Executes a prepared statement and builds its result rows. `timeoutMs`
   * (reads only; 0 = none) is checked before every row and at the end.
   */
  private fetch(p: Prepared, args: SQLInputValue[], cmd: Command, timeout: number): QueryResult {
    const { columns, decl } = columnHeader(p.stmt.columns(), cmd.qualifyColumns ?? false);
    let raw: unknown[][];
    if (timeout > 0) {
      const deadline = performance.now() + timeout;
      raw = [];
      const it = runner(p).iterate(...args);
      let late = false;
      for (const row of it) {
        raw.push(row as unknown[]);
        if (performance.now() > deadline) {
          late = true;
          it.return?.();
          break;
        }
      }
      if (late || performance.now() > deadline) {
        return { columns, types: decl, values: [], error: QUERY_TIMEOUT_ERROR };
      }
    } else {
      raw = runner(p).all(...args) as unknown[][];
    }
    const { types, values } = convertRows(decl, raw);
    return { columns, types, values };
  }

  private begin(c: Connection): boolean {
    try {
      c.internalExec("BEGIN");
      return true;
    } catch (e) {
      throw new DbError(messageOf(e));
    }
  }

  private rollback(c: Connection): void {
    if (!c.db.isTransaction) return;
    try {
      c.internalExec("ROLLBACK");
    } catch {
      // Nothing to undo (SQLite already rolled back, e.g. after SQLITE_FULL).
    }
  }

  /**
   * COMMIT; if it fails (a deferred foreign key violation) roll back and
   * report the whole command as failed. (rqlite ignores the failure and
   * answers success for statements that were rolled back; a replicated
   * database should not claim that.)
   */
  private commit(c: Connection): void {
    if (!c.db.isTransaction) return;
    try {
      c.internalExec("COMMIT");
    } catch (e) {
      this.rollback(c);
      throw new DbError(messageOf(e));
    }
  }

  /**
   * The database image (`sqlite3_serialize`), with header bytes 18/19 set to
   * 1 (rollback journal) so that it deserializes anywhere (a WAL-mode image
   * cannot be deserialized, deno-facts.md §1).
   */
  serialize(): Uint8Array {
    this.assertWritable();
    const img = this.w.db.serialize();
    if (img[18] === 2) img[18] = 1;
    if (img[19] === 2) img[19] = 1;
    return img;
  }

  /**
   * Replaces the whole database with `bytes` (a SQLite image). The image is
   * checked first — header, then `PRAGMA quick_check` on a private copy —
   * and refused with {@link RestoreError}, leaving the current database
   * untouched, if it is not sound.
   */
  restore(bytes: Uint8Array): void {
    this.assertWritable();
    const scratch = this.openValidated(bytes);
    if (this.memory) {
      this.w.close();
      this.w = scratch;
      this.configure(scratch, false);
      return;
    }
    scratch.close();
    const tmp = `${this.path}.restore-tmp`;
    Deno.writeFileSync(tmp, rollbackJournalImage(bytes));
    this.swapIn(tmp);
  }

  /** A replicated load of a database image (same as {@link restore}). */
  load(bytes: Uint8Array): void {
    this.restore(bytes);
  }

  /**
   * Checks a database image as {@link restore} does (header, then
   * `PRAGMA quick_check` on a private copy) without touching this engine's
   * database; throws {@link RestoreError}. Allowed on a read-only engine.
   */
  checkImage(bytes: Uint8Array): void {
    this.assertOpen();
    this.openValidated(bytes).close();
  }

  private openValidated(bytes: Uint8Array): Connection {
    if (!(bytes instanceof Uint8Array)) {
      throw new RestoreError("invalid SQLite data: not a byte array");
    }
    const problem = headerProblem(bytes.subarray(0, 100), bytes.length);
    if (problem !== undefined) throw new RestoreError(`invalid SQLite data: ${problem}`);
    const img = rollbackJournalImage(bytes);
    const o = this.connOptions;
    const c = new Connection(openDatabase(":memory:", o), o.cacheSize);
    try {
      c.db.deserialize(img);
      const rows = runner(c.prepare("PRAGMA quick_check")).all() as unknown[][];
      const first = rows[0]?.[0];
      if (rows.length !== 1 || first !== "ok") {
        throw new RestoreError(`invalid SQLite data: quick_check: ${String(first)}`);
      }
      return c;
    } catch (e) {
      c.close();
      if (e instanceof RestoreError) throw e;
      throw new RestoreError(`invalid SQLite data: ${messageOf(e)}`);
    }
  }

  /**
   * Replaces the database file with the checked file `tmp` (beside it, in
   * rollback-journal mode): closes both connections, drops the old WAL and
   * shared memory, renames `tmp` over the file and reopens.
   */
  private swapIn(tmp: string): void {
    this.r?.close();
    this.w.close();
    try {
      for (const suffix of ["-wal", "-shm"]) {
        try {
          Deno.removeSync(this.path + suffix);
        } catch (e) {
          if (!(e instanceof Deno.errors.NotFound)) throw e;
        }
      }
      Deno.renameSync(tmp, this.path);
    } finally {
      this.w = this.openWrite(this.path);
      this.r = this.openRead();
    }
  }

  /**
   * Checkpoints the WAL into the main file and truncates it, waiting at
   * most {@link FORCED_CHECKPOINT_WAIT_MS} for readers. True when every
   * committed frame reached the main file (always for `":memory:"`).
   */
  checkpoint(): boolean {
    this.assertWritable();
    if (this.memory) return true;
    return checkpointComplete(this.checkpointTruncate());
  }

  /** The live database for the file copy functions (snapshot_file.ts). */
  private live(): LiveDatabase {
    return {
      db: this.w.db,
      file: this.memory ? undefined : this.path,
      checkpoint: () => this.checkpointTruncate(),
    };
  }

  /**
   * Refuses a copy while the write connection holds a transaction opened by
   * an explicit BEGIN: its state is not committed, and SQLite's online
   * backup would wait for it forever.
   */
  private assertCopyable(): void {
    this.assertWritable();
    if (this.w.db.isTransaction) {
      throw new DbError(
        "cannot copy the database while a transaction is open (a BEGIN without COMMIT)",
      );
    }
  }

  /**
   * Writes a self-contained database file at `path` (replaced if it
   * exists) holding exactly the current state, in rollback-journal mode
   * (header bytes 18/19 = 1, so it opens anywhere), fsynced. Memory
   * bounded: a checkpoint and a file copy, or SQLite's online backup when
   * readers keep the checkpoint from completing (snapshot_file.ts).
   * Refused with {@link DbError} while an explicit transaction is open.
   */
  async snapshotToFile(path: string): Promise<SnapshotFileResult> {
    this.assertCopyable();
    const { size, how } = await writeCopy(this.live(), path, 1);
    const dbFile = how === "copy" && !this.memory ? statFile(this.path) : undefined;
    return dbFile === undefined ? { sizeBytes: size } : { sizeBytes: size, dbFile };
  }

  /**
   * A backup file at `path` as rqlite's `GET /db/backup` serves it (see
   * {@link BackupOptions}), fsynced. `vacuum` with a format other than
   * binary throws {@link DbError} `invalid backup format`; `vacuum` needs
   * Deno's full permissions (else a clear error). The SQL dump works even
   * inside an open transaction; the binary formats do not (see
   * {@link snapshotToFile}).
   */
  async backupToFile(path: string, opts: BackupOptions): Promise<{ sizeBytes: number }> {
    this.assertWritable();
    if (opts.vacuum && opts.format !== "binary") throw new DbError(INVALID_BACKUP_FORMAT);
    switch (opts.format) {
      case "sql":
        return { sizeBytes: dumpToFile(this.w.db, path, opts.tables) };
      case "delete":
        return await this.snapshotToFile(path);
      case "binary":
        this.assertCopyable();
        if (opts.vacuum) return { sizeBytes: vacuumInto(this.w.db, path) };
        return { sizeBytes: (await writeCopy(this.live(), path, this.memory ? 1 : 2)).size };
      default:
        throw new DbError(INVALID_BACKUP_FORMAT);
    }
  }

  /**
   * Replaces the whole database with a copy of the SQLite file at `path`
   * (which stays where it is), checked first as `opts.check` says; a file
   * that fails is refused with {@link RestoreError} and the current
   * database is untouched. WAL-mode files (header bytes 18/19 = 2) are
   * fine. Memory bounded (file copies). A `":memory:"` engine (tests) reads
   * the file and uses {@link restore}, which always runs `quick_check`.
   */
  restoreFromFile(path: string, opts: RestoreFileOptions = {}): void {
    this.assertWritable();
    if (this.memory) {
      let bytes: Uint8Array;
      try {
        bytes = Deno.readFileSync(path);
      } catch (e) {
        throw new RestoreError(`invalid SQLite data: ${messageOf(e)}`);
      }
      this.restore(bytes);
      return;
    }
    const tmp = `${this.path}.restore-tmp`;
    const problem = stageRestore(path, tmp, opts.check ?? "header");
    if (problem !== undefined) throw new RestoreError(`invalid SQLite data: ${problem}`);
    this.swapIn(tmp);
  }

  /**
   * A SHA-256 over the logical content: schema rows, then every table's rows
   * in a total order. Equal for equal contents whatever the storage mode or
   * page layout; meant for tests and the simulator's replica check.
   */
  stateHash(): string {
    this.assertOpen();
    const h = createHash("sha256");
    const c = this.w;
    // Fresh statements, not cached ones: a cached statement's column list
    // stays that of the schema it was prepared for until its next step.
    const all = (sql: string): unknown[][] => {
      const st = c.db.prepare(sql);
      st.setReadBigInts(true);
      st.setReturnArrays(true);
      return st.all() as unknown as unknown[][];
    };
    const schema = all("SELECT type, name, tbl_name, sql FROM sqlite_schema ORDER BY type, name");
    const tables: string[] = [];
    for (const row of schema) {
      h.update(JSON.stringify(row));
      const sql = row[3];
      if (row[0] === "table" && !(typeof sql === "string" && /^create\s+virtual/i.test(sql))) {
        tables.push(String(row[1]));
      }
    }
    for (const t of tables) {
      const quoted = `"${t.replaceAll('"', '""')}"`;
      const n = c.db.prepare(`SELECT * FROM ${quoted}`).columns().length;
      const order = Array.from({ length: n }, (_, i) => i + 1).join(",");
      const rows = all(`SELECT * FROM ${quoted} ORDER BY ${order}`);
      h.update(`table ${t} ${rows.length}\n`);
      for (const row of rows) {
        for (const v of row) {
          if (v instanceof Uint8Array) h.update("b").update(v);
          else h.update(`${typeof v}:${String(v)}`);
          h.update("\u0000");
        }
      }
    }
    return h.digest("hex");
  }

  /** Whether the write connection is inside an open transaction. */
  get inTransaction(): boolean {
    return this.w.db.isTransaction;
  }

  /** Closes all connections; further calls fail with {@link DbError}. */
  /**
   * Closes all connections; further calls fail with {@link DbError}. A
   * writable file database is checkpointed completely first when readers
   * allow it, and then reports the file's stat (see {@link CloseReport}).
   */
  close(): CloseReport {
    if (this.closed) return {};
    this.closed = true;
    this.r?.close();
    this.r = undefined;
    let clean = false;
    if (!this.readOnly && !this.memory && !this.w.db.isTransaction) {
      clean = checkpointComplete(this.checkpointTruncate());
    }
    this.w.close();
    const cleanDbFile = clean ? statFile(this.path) : undefined;
    return cleanDbFile === undefined ? {} : { cleanDbFile };
  }
}

function statFile(path: string): DbFileStat | undefined {
  try {
    const st = Deno.statSync(path);
    return st.mtime === null ? undefined : { size: st.size, mtimeMs: st.mtime.getTime() };
  } catch {
    return undefined;
  }
}
