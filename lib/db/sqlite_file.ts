/**
 * Byte-level helpers for SQLite database *files*, used by the file-based
 * snapshot, restore and backup paths (snapshot_file.ts): they never load a
 * whole database into memory, only its 100-byte header.
 *
 * Why a module of its own: the header rules (magic, page size, WAL flag in
 * bytes 18/19, in-header page count) are shared by images in memory
 * (engine.ts `restore(bytes)`) and by files, and must say the same thing
 * for both.
 *
 * @module
 */

/** The 16 bytes every SQLite 3 database starts with. */
export const SQLITE_MAGIC = "SQLite format 3\0";
/** Smallest valid database: one page of the smallest page size. */
const MIN_DB_BYTES = 512;
/** Bytes of the database header. */
export const HEADER_BYTES = 100;

/** Journal-mode value of header bytes 18/19: 1 = rollback journal, 2 = WAL. */
export type JournalByte = 1 | 2;

/**
 * The first problem with a database's header, or undefined when it looks
 * sound. `size` is the whole file's (or image's) length in bytes; `header`
 * holds at least its first {@link HEADER_BYTES} bytes when the file has them.
 * Checks: length, magic, page size (a power of two in 512..65536), the
 * read/write version bytes 18/19 (1 or 2), the fixed payload fractions
 * (64/32/32), a length that is a whole number of pages, and, when the
 * in-header page count is valid, that the file holds that many pages (a
 * truncated copy).
 */
export function headerProblem(header: Uint8Array, size: number): string | undefined {
  if (size < MIN_DB_BYTES || header.length < HEADER_BYTES) {
    return `too short (${size} bytes; a database has at least ${MIN_DB_BYTES})`;
  }
  for (let i = 0; i < SQLITE_MAGIC.length; i++) {
    if (header[i] !== SQLITE_MAGIC.charCodeAt(i)) return "bad header (not a SQLite 3 database)";
  }
  const view = new DataView(header.buffer, header.byteOffset, HEADER_BYTES);
  const raw = view.getUint16(16);
  const pageSize = raw === 1 ? 65536 : raw;
  if (pageSize < 512 || pageSize > 65536 || (pageSize & (pageSize - 1)) !== 0) {
    return `bad page size ${raw}`;
  }
  for (const at of [18, 19]) {
    if (header[at] !== 1 && header[at] !== 2) return `bad file format version ${header[at]}`;
  }
  if (header[21] !== 64 || header[22] !== 32 || header[23] !== 32) {
    return "bad payload fractions";
  }
  if (size % pageSize !== 0) return `size ${size} is not a multiple of the page size ${pageSize}`;
  const pages = view.getUint32(28);
  const countValid = pages > 0 && view.getUint32(24) === view.getUint32(92);
  if (countValid && pages * pageSize > size) {
    return `truncated: the header counts ${pages} pages of ${pageSize} bytes, the data has ${size} bytes`;
  }
  return undefined;
}

/** The first {@link HEADER_BYTES} bytes of a file (fewer if it is shorter) and its size. */
export function readHeader(path: string): { header: Uint8Array; size: number } {
  using f = Deno.openSync(path, { read: true });
  const size = f.statSync().size;
  const header = new Uint8Array(HEADER_BYTES);
  let got = 0;
  while (got < HEADER_BYTES) {
    const n = f.readSync(header.subarray(got));
    if (n === null) break;
    got += n;
  }
  return { header: header.subarray(0, got), size };
}

/**
 * Sets header bytes 18/19 of the database file at `path` to `value` with one
 * 2-byte positional write (what `PRAGMA journal_mode` changes between WAL
 * and rollback modes; nothing else in the file depends on them).
 */
export function setJournalBytes(path: string, value: JournalByte): void {
  using f = Deno.openSync(path, { read: true, write: true });
  const cur = new Uint8Array(2);
  f.seekSync(18, Deno.SeekMode.Start);
  if (f.readSync(cur) !== 2) throw new Error(`${path}: too short for a SQLite header`);
  if (cur[0] === value && cur[1] === value) return;
  f.seekSync(18, Deno.SeekMode.Start);
  const bytes = new Uint8Array([value, value]);
  let off = 0;
  while (off < 2) off += f.writeSync(bytes.subarray(off));
}

/** fsync()s the file at `path` and returns its size. */
export function syncFile(path: string): number {
  using f = Deno.openSync(path, { read: true, write: true });
  f.syncSync();
  return f.statSync().size;
}

/** Deletes `path` if it exists. */
export function removeIfExists(path: string): void {
  try {
    Deno.removeSync(path);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
}
