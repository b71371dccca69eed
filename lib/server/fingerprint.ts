/**
 * The `-on-disk` fast restart (rqlite-api.md §12, rqlite's `clean_snapshot`).
 *
 * Normally a node rebuilds its database at start: restore the newest
 * snapshot, replay the log after it. With `-on-disk` the database file is
 * still there, and for a large database the rebuild is the slow part of a
 * restart. `<data>/clean_snapshot` records that `db.sqlite` *without its
 * WAL* holds exactly the state as of log index `index`, together with the
 * file's size and modification time at that moment. It is written
 *
 * - after a snapshot is durable: the snapshot checkpointed the WAL into the
 *   file, and the size/mtime are the ones measured right after that
 *   checkpoint (in the write worker, before any later write);
 * - after a clean shutdown that checkpointed everything (index = applied).
 *
 * At start, if the file's size and mtime still match, the node deletes the
 * WAL (later changes are in the Raft log and will be replayed), keeps the
 * file and starts the driver at that index instead of restoring. Any other
 * change to the file (a later checkpoint, a restore, an edit) changes its
 * mtime, so a stale fingerprint never matches and the node rebuilds as
 * usual. The fingerprint is only ever a shortcut; without it nothing is lost.
 *
 * @module
 */

const NAME = "clean_snapshot";
const FORMAT = 1;

/** The database file's identity at the moment it held the state of `index`. */
export interface DbFileStat {
  readonly size: number;
  readonly mtimeMs: number;
}

/** What `clean_snapshot` records. */
export interface Fingerprint extends DbFileStat {
  readonly index: number;
}

/** Path of the fingerprint file in `dataDir`. */
export function fingerprintPath(dataDir: string): string {
  return `${dataDir}/${NAME}`;
}

/** Size and mtime of `path`, or undefined when it does not exist. */
export function statDbFile(path: string): DbFileStat | undefined {
  try {
    const st = Deno.statSync(path);
    if (st.mtime === null) return undefined;
    return { size: st.size, mtimeMs: st.mtime.getTime() };
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  }
}

/** Durably records that the database file with `stat` holds the state as of `index`. */
export async function writeFingerprint(
  dataDir: string,
  index: number,
  stat: DbFileStat,
): Promise<void> {
  const path = fingerprintPath(dataDir);
  const tmp = `${path}.tmp`;
  const body = JSON.stringify({ format: FORMAT, index, size: stat.size, mtimeMs: stat.mtimeMs });
  const f = await Deno.open(tmp, { write: true, create: true, truncate: true });
  try {
    await f.write(new TextEncoder().encode(body + "\n"));
    await f.sync();
  } finally {
    f.close();
  }
  await Deno.rename(tmp, path);
}

/** Removes the fingerprint (best effort). */
export function removeFingerprint(dataDir: string): void {
  try {
    Deno.removeSync(fingerprintPath(dataDir));
  } catch {
    // Not there.
  }
}

/** The recorded fingerprint, or undefined when absent or unreadable. */
export function readFingerprint(dataDir: string): Fingerprint | undefined {
  let raw: unknown;
  try {
    raw = JSON.parse(Deno.readTextFileSync(fingerprintPath(dataDir)));
  } catch {
    return undefined;
  }
  if (typeof raw !== "object" || raw === null) return undefined;
  const r = raw as Record<string, unknown>;
  const ok = r.format === FORMAT &&
    [r.index, r.size, r.mtimeMs].every((v) =>
      typeof v === "number" && Number.isFinite(v) && v >= 0
    );
  if (!ok) return undefined;
  return { index: r.index as number, size: r.size as number, mtimeMs: r.mtimeMs as number };
}

/**
 * The log index `dbPath` holds when the fingerprint matches it, else
 * undefined. Reads only metadata; costs nothing for large files.
 */
export function matchFingerprint(dataDir: string, dbPath: string): number | undefined {
  const fp = readFingerprint(dataDir);
  if (fp === undefined) return undefined;
  const st = statDbFile(dbPath);
  if (st === undefined || st.size !== fp.size || st.mtimeMs !== fp.mtimeMs) return undefined;
  return fp.index;
}
