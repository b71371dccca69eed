/**
 * One node:sqlite connection with what the engine needs around it: a
 * bounded statement cache, read-only classification of every prepared
 * statement by an authorizer, and the disallowed-pragma backstop.
 *
 * Classification (node:sqlite has no `sqlite3_stmt_readonly`): while a
 * statement is prepared, the authorizer records its actions. A statement is
 * read-only when it fired at least one action and every action was SELECT,
 * READ, FUNCTION, RECURSIVE or a read-only PRAGMA. VACUUM, REINDEX and
 * `DROP TABLE IF EXISTS <missing>` fire no action at all and so count as
 * writes. Transaction control (BEGIN, COMMIT, SAVEPOINT) and ATTACH also
 * count as writes; `sqlite3_stmt_readonly` calls them read-only, but here
 * reads of an in-memory database share the write connection, where they
 * would change its state. The authorizer never throws (a throwing authorizer
 * makes node:sqlite swallow the next error, deno-facts.md §1).
 *
 * @module
 */

import { DatabaseSync, type SQLInputValue, type StatementSync } from "node:sqlite";
import { isDisallowedPragmaAction } from "./pragma.ts";

// Authorizer codes from sqlite3.h (a stable ABI).
const SQLITE_OK = 0;
const SQLITE_DENY = 1;
const SQLITE_PRAGMA = 19;
const SQLITE_READ = 20;
const SQLITE_SELECT = 21;
const SQLITE_FUNCTION = 31;
const SQLITE_RECURSIVE = 33;

/** Pragmas that only read even when given an argument. */
const READ_PRAGMAS_WITH_ARG = new Set([
  "table_info",
  "table_xinfo",
  "table_list",
  "index_info",
  "index_xinfo",
  "index_list",
  "foreign_key_list",
  "foreign_key_check",
  "integrity_check",
  "quick_check",
]);

/** Pragmas that change something even without an argument. */
const WRITE_PRAGMAS_NO_ARG = new Set([
  "optimize",
  "shrink_memory",
  "wal_checkpoint",
  "incremental_vacuum",
]);

function isReadPragma(name: string | null, arg: string | null): boolean {
  if (name === null) return false;
  const n = name.toLowerCase();
  return arg === null ? !WRITE_PRAGMAS_NO_ARG.has(n) : READ_PRAGMAS_WITH_ARG.has(n);
}

/** What a prepare refuses while compiling: nothing, writing pragmas, or every write. */
export type Deny = "none" | "pragmas" | "writes";

/** A read-only prepare met a statement that writes (nothing of it took effect). */
export class WriteRefused extends Error {
  override name = "WriteRefused";
  constructor() {
    super("statement is not read-only");
  }
}

/** A cached prepared statement. */
export interface Prepared {
  readonly stmt: StatementSync;
  /** UTF-16 length of the SQL text SQLite consumed (the statement and its `;`). */
  readonly sourceLength: number;
  /** Authorizer classification, see the module note. */
  readonly readOnly: boolean;
  /** It applied a pragma that is not a plain read while being prepared. */
  readonly writesPragma: boolean;
  /** It returns rows (a query, or RETURNING): its result columns depend on the schema. */
  readonly returnsRows: boolean;
  /** `PRAGMA schema_version` when it was prepared (checked for statements returning rows). */
  readonly schemaVersion: number;
}

/** Options to open a connection. */
export interface ConnectionOptions {
  readonly readOnly?: boolean;
  readonly foreignKeys: boolean;
  readonly busyTimeoutMs: number;
  readonly cacheSize: number;
}

/** Opens a node:sqlite database with rqlite-compatible settings. */
export function openDatabase(path: string, o: ConnectionOptions): DatabaseSync {
  return new DatabaseSync(path, {
    readOnly: o.readOnly ?? false,
    enableForeignKeyConstraints: o.foreignKeys,
    // SQLite's (and go-sqlite3's) default: "x" falls back to a string
    // literal; rqlite's documented examples rely on it.
    enableDoubleQuotedStringLiterals: true,
    timeout: o.busyTimeoutMs,
  });
}

/** A database connection with cache, classification and guard. */
export class Connection {
  private readonly cache = new Map<string, Prepared>();
  /** While true the authorizer allows everything (the engine's own statements). */
  private internal = false;
  private recording = false;
  private deny: Deny = "none";
  private actions = 0;
  private sawWrite = false;
  private denied = false;
  private sawWritePragma = false;

  constructor(readonly db: DatabaseSync, private readonly cacheSize: number) {
    db.setAuthorizer(this.authorize);
  }

  private readonly authorize = (
    action: number,
    arg1: string | null,
    arg2: string | null,
  ): number => {
    try {
      if (action === SQLITE_PRAGMA && !this.internal && isDisallowedPragmaAction(arg1, arg2)) {
        return SQLITE_DENY;
      }
      if (this.recording) {
        this.actions++;
        if (
          !(action === SQLITE_SELECT || action === SQLITE_READ || action === SQLITE_FUNCTION ||
            action === SQLITE_RECURSIVE ||
            (action === SQLITE_PRAGMA && isReadPragma(arg1, arg2)))
        ) {
          this.sawWrite = true;
          if (action === SQLITE_PRAGMA) this.sawWritePragma = true;
          // Pragmas act while being prepared (`PRAGMA foreign_keys=ON` sets
          // the connection's flag inside sqlite3_prepare, even under
          // EXPLAIN): a read-only prepare must refuse them here.
          if (this.deny === "writes" || (this.deny === "pragmas" && action === SQLITE_PRAGMA)) {
            this.denied = true;
            return SQLITE_DENY;
          }
        }
      }
      return SQLITE_OK;
    } catch {
      return SQLITE_DENY;
    }
  };

  /**
   * Prepares the first statement of `sql` (which must not be blank, see
   * sql_text.ts), from the cache when possible. Throws SQLite's error.
   *
   * With `deny` = "writes", a statement that is not read-only is refused
   * while it is prepared (nothing of it takes effect) and {@link WriteRefused}
   * is thrown; with "pragmas" only writing pragmas are (for EXPLAIN). A
   * cached statement comes back with its `readOnly` for the caller to judge.
   */
  prepare(sql: string, deny: Deny = "none"): Prepared {
    let hit = this.cache.get(sql);
    // node:sqlite reads a statement's column count before SQLite re-prepares
    // it after a schema change: the first run of a cached `SELECT *` after
    // `ALTER TABLE ADD COLUMN` would drop the new column. And a prepare uses
    // the connection's cached schema, stale when another connection changed
    // it. So before a statement that returns rows is reused, and before any
    // new prepare, the schema version is checked; on a change the connection
    // reloads its schema and such statements are prepared again.
    let version = -1;
    if (hit === undefined || hit.returnsRows) {
      version = this.schemaVersion();
      if (version !== this.knownSchemaVersion) {
        this.reloadSchema();
        this.knownSchemaVersion = version;
      }
      if (hit !== undefined && hit.schemaVersion !== version) {
        this.cache.delete(sql);
        hit = undefined;
      }
    }
    if (hit !== undefined) {
      // Refresh recency: Map iteration order is insertion order.
      this.cache.delete(sql);
      this.cache.set(sql, hit);
      return hit;
    }
    this.recording = true;
    this.deny = deny;
    this.actions = 0;
    this.sawWrite = false;
    this.denied = false;
    this.sawWritePragma = false;
    let stmt: StatementSync;
    try {
      stmt = this.db.prepare(sql);
    } catch (e) {
      if (this.denied) throw new WriteRefused();
      throw e;
    } finally {
      this.recording = false;
      this.deny = "none";
    }
    stmt.setReadBigInts(true);
    stmt.setReturnArrays(true);
    stmt.setAllowUnknownNamedParameters(true);
    const returnsRows = stmt.columns().length > 0;
    const p: Prepared = {
      stmt,
      sourceLength: stmt.sourceSQL.length,
      readOnly: this.actions > 0 && !this.sawWrite,
      writesPragma: this.sawWritePragma,
      returnsRows,
      schemaVersion: version,
    };
    if (this.cache.size >= this.cacheSize) {
      const oldest = this.cache.keys().next();
      if (!oldest.done) this.cache.delete(oldest.value);
    }
    this.cache.set(sql, p);
    return p;
  }

  /** Runs the engine's own SQL (pragmas, BEGIN/COMMIT) past the pragma guard. */
  internalExec(sql: string): void {
    this.internal = true;
    try {
      this.db.exec(sql);
    } finally {
      this.internal = false;
    }
  }

  /**
   * Runs one statement of the engine's own past the pragma guard (not
   * cached), with positional `params`, and returns its first row as an
   * array, or undefined.
   */
  internalRow(sql: string, ...params: SQLInputValue[]): unknown[] | undefined {
    this.internal = true;
    try {
      const st = this.db.prepare(sql);
      st.setReturnArrays(true);
      st.setReadBigInts(true);
      return st.get(...params) as unknown[] | undefined;
    } finally {
      this.internal = false;
    }
  }

  /** Drops all cached statements. */
  clearCache(): void {
    this.cache.clear();
  }

  #schemaStmt: StatementSync | undefined;
  /** The schema version this connection last reloaded or checked against. */
  private knownSchemaVersion = -1;

  /**
   * Makes this connection reload a schema another connection changed: a
   * prepare uses the schema cached in the connection, which SQLite only
   * checks against the file when a statement runs.
   */
  private reloadSchema(): void {
    this.internal = true;
    try {
      this.db.prepare("SELECT count(*) FROM sqlite_schema").get();
    } finally {
      this.internal = false;
    }
  }

  /** `PRAGMA schema_version`: changes with every schema change, by any connection. */
  private schemaVersion(): number {
    if (this.#schemaStmt === undefined) {
      this.internal = true;
      try {
        this.#schemaStmt = this.db.prepare("PRAGMA schema_version");
      } finally {
        this.internal = false;
      }
      this.#schemaStmt.setReturnArrays(true);
    }
    const row = this.#schemaStmt.get() as unknown[] | undefined;
    return Number(row?.[0] ?? 0);
  }

  /** Closes the database (finalizing cached statements). */
  close(): void {
    this.cache.clear();
    this.#schemaStmt = undefined;
    if (this.db.isOpen) this.db.close();
  }
}
