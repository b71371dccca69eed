/**
 * File-based snapshot, backup and restore primitives for the engine
 * (engine.ts `snapshotToFile`, `backupToFile`, `restoreFromFile`). A
 * database of any size goes file to file: nothing here holds a whole
 * database image in the JavaScript heap.
 *
 * Consistent copy of the live database (the engine calls these on the
 * write connection, between commands, so nothing writes meanwhile):
 * 1. `PRAGMA wal_checkpoint(TRUNCATE)` with a short wait for readers. When
 *    every WAL frame reached the main file (`busy` = 0, or `log` equal to
 *    `checkpointed`: readers only kept the WAL from being reset), the main
 *    file alone holds the state: it is copied with `Deno.copyFileSync`
 *    (kernel copy, ~360 MB/s).
 * 2. Otherwise (a reader still holds an older snapshot, or the database is
 *    `":memory:"`): SQLite's online backup (node:sqlite `backup()`), which
 *    reads through the write connection and so copies exactly its state.
 *    Never with a transaction open on that connection: the backup then
 *    waits forever (measured), so callers refuse that case first.
 *
 * Restore: the source file is copied beside the database, its header
 * checked (sqlite_file.ts), bytes 18/19 set to 1 (a WAL-mode image would
 * otherwise look for a `-wal` file that does not exist), and with
 * `quick_check` opened read-only for `PRAGMA quick_check`; only a copy that
 * passes is swapped in by the engine.
 *
 * @module
 */

import { backup, DatabaseSync } from "node:sqlite";
import {
  headerProblem,
  type JournalByte,
  readHeader,
  removeIfExists,
  setJournalBytes,
  syncFile,
} from "./sqlite_file.ts";

/** Pages per step of the online-backup fallback (fewer event-loop turns than the default 100). */
const BACKUP_PAGES_PER_STEP = 4096;

/** The live database as the copy functions see it. */
export interface LiveDatabase {
  /** The write connection. */
  readonly db: DatabaseSync;
  /** The database file, or undefined for `":memory:"`. */
  readonly file: string | undefined;
  /**
   * Runs a truncating checkpoint (short wait for readers) and returns its
   * `[busy, log, checkpointed]` row, or undefined when it failed outright.
   */
  checkpoint(): readonly [number, number, number] | undefined;
}

/** Whether a checkpoint row says the main file holds every committed frame. */
export function checkpointComplete(row: readonly [number, number, number] | undefined): boolean {
  if (row === undefined) return false;
  const [busy, log, done] = row;
  return log >= 0 && (busy === 0 || log === done);
}

/**
 * Writes a consistent copy of the live database to a fresh file at `dst`
 * (see the module note). Returns how: `"copy"` or `"backup"`.
 */
export async function copyLive(live: LiveDatabase, dst: string): Promise<"copy" | "backup"> {
  removeIfExists(dst);
  if (live.file !== undefined && checkpointComplete(live.checkpoint())) {
    Deno.copyFileSync(live.file, dst);
    return "copy";
  }
  try {
    await backup(live.db, dst, { rate: BACKUP_PAGES_PER_STEP });
  } catch (e) {
    removeIfExists(dst);
    throw e;
  }
  return "backup";
}

/**
 * A consistent copy at `dst` with header bytes 18/19 set to `journal`
 * (1 = rollback journal, opens anywhere; 2 = WAL, as the live file),
 * fsynced. Returns its size in bytes and how it was made (`copy`: the
 * WAL was checkpointed completely into the live file first).
 */
export async function writeCopy(
  live: LiveDatabase,
  dst: string,
  journal: JournalByte,
): Promise<{ size: number; how: "copy" | "backup" }> {
  const how = await copyLive(live, dst);
  try {
    setJournalBytes(dst, journal);
    return { size: syncFile(dst), how };
  } catch (e) {
    removeIfExists(dst);
    throw e;
  }
}

/**
 * `VACUUM INTO dst` (a compacted copy in rollback-journal mode), fsynced.
 * Deno allows it only with every permission granted; otherwise this
 * throws a clear error instead of SQLite's `too many attached databases`.
 */
export function vacuumInto(db: DatabaseSync, dst: string): number {
  removeIfExists(dst);
  try {
    db.prepare("VACUUM INTO ?").run(dst);
  } catch (e) {
    removeIfExists(dst);
    const msg = e instanceof Error ? e.message : String(e);
    if (/too many attached databases/.test(msg)) {
      throw new Error(
        "vacuum is not available: SQLite's VACUUM INTO needs the server to run with all " +
          "permissions (deno run -A)",
      );
    }
    throw e;
  }
  return syncFile(dst);
}

/** The first problem `PRAGMA quick_check` finds in the database file at `path`, if any. */
export function quickCheckProblem(path: string): string | undefined {
  let db: DatabaseSync | undefined;
  try {
    db = new DatabaseSync(path, { readOnly: true });
    const st = db.prepare("PRAGMA quick_check");
    st.setReturnArrays(true);
    const rows = st.all() as unknown as unknown[][];
    const first = rows[0]?.[0];
    return rows.length === 1 && first === "ok" ? undefined : `quick_check: ${String(first)}`;
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  } finally {
    db?.close();
  }
}

/** How much a restore checks before swapping a file in. */
export type RestoreCheck = "header" | "quick_check";

/**
 * Copies the database file `src` to `tmp` and prepares it to be swapped
 * in (see the module note). Returns the problem that makes it unusable
 * (then `tmp` is deleted), or undefined when `tmp` is ready.
 */
export function stageRestore(src: string, tmp: string, check: RestoreCheck): string | undefined {
  removeIfExists(tmp);
  let problem: string | undefined;
  try {
    Deno.copyFileSync(src, tmp);
    const { header, size } = readHeader(tmp);
    problem = headerProblem(header, size);
    if (problem === undefined) {
      setJournalBytes(tmp, 1);
      if (check === "quick_check") problem = quickCheckProblem(tmp);
    }
  } catch (e) {
    problem = e instanceof Error ? e.message : String(e);
  }
  if (problem !== undefined) removeIfExists(tmp);
  return problem;
}
