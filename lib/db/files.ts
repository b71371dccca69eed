/**
 * The database file of the default "in-memory" mode: a RAM-backed file that
 * the write worker and the read workers open together (a real `:memory:`
 * database is private to one connection, so it cannot be shared).
 *
 * - Under `/dev/shm` (tmpfs) when that directory exists and a file can be
 *   created there: `raftlite-ns<pid namespace>-<pid>-<random hex>.sqlite`
 *   (`raftlite-<pid>-<random hex>.sqlite` when the pid namespace cannot be
 *   read). The name is fresh at every start (created with `createNew`), so
 *   a file left behind by a crashed run is never mistaken for this one.
 * - Files left behind by killed processes would hold RAM forever, so before
 *   creating its file a process deletes those of its own pid namespace whose
 *   pid no longer exists in `/proc` (in the same namespace that means the
 *   process is dead; a live or reused pid is left alone). Best effort.
 * - Otherwise in a fresh `Deno.makeTempDir()` directory (`db.sqlite`), which
 *   is then removed as a whole.
 *
 * {@link removeRamDbFile} deletes the file with its `-wal`, `-shm` and
 * restore scratch files.
 *
 * @module
 */

/** A database file this process created and must delete. */
export interface RamDbFile {
  readonly path: string;
  /** The temporary directory holding it, when `/dev/shm` was not usable. */
  readonly dir?: string;
}

const SHM = "/dev/shm";

/** Suffixes of the files SQLite and the engine keep beside a database file. */
export const DB_FILE_SUFFIXES = ["", "-wal", "-shm", "-journal", ".restore-tmp"] as const;

function randomHex(bytes: number): string {
  const b = crypto.getRandomValues(new Uint8Array(bytes));
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

/** The inode number of this process's pid namespace, when /proc tells it. */
function pidNamespace(): string | undefined {
  try {
    return /^pid:\[(\d+)\]$/.exec(Deno.readLinkSync("/proc/self/ns/pid"))?.[1];
  } catch {
    return undefined;
  }
}

/** Deletes RAM database files of dead processes of pid namespace `ns` in `dir`. */
export async function removeOrphans(dir: string, ns: string): Promise<string[]> {
  const re = new RegExp(
    `^raftlite-ns${ns}-(\\d+)-[0-9a-f]{16}\\.sqlite(?:-wal|-shm|-journal|\\.restore-tmp)?$`,
  );
  const removed: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    const m = re.exec(e.name);
    if (m === null || Number(m[1]) === Deno.pid) continue;
    try {
      await Deno.stat(`/proc/${m[1]}`);
      continue; // alive (or the pid was reused): not ours to judge
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) continue;
    }
    try {
      await Deno.remove(`${dir}/${e.name}`);
      removed.push(e.name);
    } catch {
      // Raced with another cleaner, or not ours (sticky /dev/shm).
    }
  }
  return removed;
}

/** Creates a fresh, empty RAM-backed database file (see the module note). */
export async function createRamDbFile(shmDir = SHM): Promise<RamDbFile> {
  try {
    const st = await Deno.stat(shmDir);
    if (st.isDirectory) {
      const ns = pidNamespace();
      if (ns !== undefined) await removeOrphans(shmDir, ns).catch(() => {});
      const tag = ns === undefined ? "" : `ns${ns}-`;
      const path = `${shmDir}/raftlite-${tag}${Deno.pid}-${randomHex(8)}.sqlite`;
      const f = await Deno.open(path, { createNew: true, write: true });
      f.close();
      return { path };
    }
  } catch {
    // Missing, not writable or not permitted: fall back to a temporary directory.
  }
  const dir = await Deno.makeTempDir({ prefix: "raftlite-db-" });
  const path = `${dir}/db.sqlite`;
  const f = await Deno.open(path, { createNew: true, write: true });
  f.close();
  return { path, dir };
}

/** Deletes the file and its companions (best effort, synchronous: also used on failure). */
export function removeRamDbFile(file: RamDbFile): void {
  for (const suffix of DB_FILE_SUFFIXES) {
    try {
      Deno.removeSync(file.path + suffix);
    } catch {
      // Not there (SQLite already removed the WAL), or nothing we can do.
    }
  }
  if (file.dir !== undefined) {
    try {
      Deno.removeSync(file.dir, { recursive: true });
    } catch {
      // Already gone.
    }
  }
}
