/**
 * rqlite's SQL text dump (`GET /db/backup?fmt=sql`, rqlite-api.md §4),
 * written to a file incrementally so a dump of any size needs only a
 * bounded buffer.
 *
 * The format follows rqlite's `db.Dump` (itself Python's `iterdump`):
 *
 * ```
 * PRAGMA foreign_keys=OFF;
 * BEGIN TRANSACTION;
 * <CREATE TABLE as stored in sqlite_master>;      -- per table, ORDER BY name
 * INSERT INTO "t" VALUES(<quote(col)>,...);        -- per row, table order
 * DELETE FROM "sqlite_sequence";                   -- after the other tables
 * INSERT INTO "sqlite_sequence" VALUES('t',5);
 * <CREATE INDEX / TRIGGER / VIEW>;                 -- sqlite_master order
 * COMMIT;
 * ```
 *
 * `sqlite_sequence` comes after every other table (as in Python 3.13's
 * `iterdump`): in name order it would come before the AUTOINCREMENT tables
 * named after "sqlite_sequence", whose CREATE makes it exist, so loading
 * such a dump into an empty database would fail with "no such table".
 * Other `sqlite_*` tables (e.g. `sqlite_stat1`) are skipped. Values come
 * from SQLite's own `quote()`, so they load back exactly (integers in full,
 * reals round-tripping, blobs as `X'..'`). With `tables`, only those tables
 * and the indexes, triggers and views whose `tbl_name` is one of them are
 * written.
 *
 * Runs on the write connection, between commands, so the dump is one
 * consistent state.
 *
 * @module
 */

import type { DatabaseSync } from "node:sqlite";

/** Bytes buffered before a write to the file. */
const FLUSH_BYTES = 1 << 20;

/** Appends text to a file through a bounded buffer. */
class TextSink {
  private readonly file: Deno.FsFile;
  private readonly parts: string[] = [];
  private pending = 0;
  private readonly encoder = new TextEncoder();
  /** Bytes written so far. */
  written = 0;

  constructor(path: string) {
    this.file = Deno.openSync(path, { write: true, create: true, truncate: true });
  }

  /** Adds `text`; flushes once about {@link FLUSH_BYTES} are buffered. */
  write(text: string): void {
    this.parts.push(text);
    this.pending += text.length;
    if (this.pending >= FLUSH_BYTES) this.flush();
  }

  flush(): void {
    if (this.parts.length === 0) return;
    const bytes = this.encoder.encode(this.parts.join(""));
    this.parts.length = 0;
    this.pending = 0;
    let off = 0;
    while (off < bytes.length) off += this.file.writeSync(bytes.subarray(off));
    this.written += bytes.length;
  }

  /** Flushes, fsyncs and closes; returns the file size. */
  finish(): number {
    this.flush();
    this.file.syncSync();
    this.file.close();
    return this.written;
  }

  /** Closes without flushing (after a failure); never throws. */
  abandon(): void {
    try {
      this.file.close();
    } catch {
      // Already closed.
    }
  }
}

/** `"name"` with inner quotes doubled, as rqlite and SQLite quote identifiers. */
function ident(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** `AND <col> IN (?, ?, ...)` for a table filter, or "" without one. */
function filterClause(column: string, tables: readonly string[] | undefined): string {
  if (tables === undefined || tables.length === 0) return "";
  return ` AND "${column}" IN (${tables.map(() => "?").join(", ")})`;
}

/** Rows of `sql` as arrays, one at a time. */
function* rows(
  db: DatabaseSync,
  sql: string,
  params: readonly string[] = [],
): Generator<unknown[]> {
  const st = db.prepare(sql);
  st.setReturnArrays(true);
  st.setReadBigInts(true);
  for (const row of st.iterate(...params)) yield row as unknown as unknown[];
}

/** Writes one table's CREATE (or sqlite_sequence's DELETE) and its rows. */
function dumpTable(db: DatabaseSync, sink: TextSink, name: string, sql: string): void {
  if (name === "sqlite_sequence") sink.write(`DELETE FROM "sqlite_sequence";\n`);
  else sink.write(`${sql};\n`);
  const t = ident(name);
  const columns = [...rows(db, `PRAGMA table_info(${t})`)].map((r) => String(r[1]));
  if (columns.length === 0) return;
  const values = columns.map((c) => `quote(${ident(c)})`).join(`||','||`);
  const select = `SELECT 'INSERT INTO ${
    t.replaceAll("'", "''")
  } VALUES('||${values}||')' FROM ${t}`;
  for (const [line] of rows(db, select)) sink.write(`${String(line)};\n`);
}

/** Writes every table, then the indexes, triggers and views. */
function dumpAll(db: DatabaseSync, sink: TextSink, only: readonly string[] | undefined): void {
  const filter = only ?? [];
  sink.write("PRAGMA foreign_keys=OFF;\nBEGIN TRANSACTION;\n");
  const tableSql = `SELECT "name", "sql" FROM "sqlite_master" WHERE "sql" NOT NULL AND ` +
    `"type" == 'table'${filterClause("name", only)} ORDER BY "name"`;
  const tables: [string, string][] = [...rows(db, tableSql, filter)].map((r) => [
    String(r[0]),
    String(r[1]),
  ]);
  let sequence = false;
  for (const [name, sql] of tables) {
    if (name === "sqlite_sequence") sequence = true;
    else if (!name.startsWith("sqlite_")) dumpTable(db, sink, name, sql);
  }
  if (sequence) dumpTable(db, sink, "sqlite_sequence", "");
  const otherSql = `SELECT "sql" FROM "sqlite_master" WHERE "sql" NOT NULL AND ` +
    `"type" IN ('index', 'trigger', 'view')${filterClause("tbl_name", only)}`;
  for (const [sql] of rows(db, otherSql, filter)) sink.write(`${String(sql)};\n`);
  sink.write("COMMIT;\n");
}

/**
 * Writes rqlite's SQL dump of `db` to a fresh file at `path` (replaced if it
 * exists), fsyncs it and returns its size. `tables` limits the dump (see
 * the module note). On failure the partial file is deleted.
 */
export function dumpToFile(
  db: DatabaseSync,
  path: string,
  tables?: readonly string[],
): number {
  const sink = new TextSink(path);
  try {
    dumpAll(db, sink, tables);
    return sink.finish();
  } catch (e) {
    sink.abandon();
    try {
      Deno.removeSync(path);
    } catch {
      // Already gone.
    }
    throw e;
  }
}
