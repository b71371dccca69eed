/**
 * Small file-system helpers shared by the stores: full writes, positioned
 * synchronous reads, directory fsync, creation of directories durably.
 *
 * @module
 */

/**
 * Writes all of `data` at the file's current position (`write` may be partial).
 * Returns the number of `write` calls it took.
 */
export async function writeAll(file: Deno.FsFile, data: Uint8Array): Promise<number> {
  let done = 0;
  let calls = 0;
  while (done < data.length) {
    done += await file.write(done === 0 ? data : data.subarray(done));
    calls++;
  }
  return calls;
}

/** Reads exactly `length` bytes at `position`; fewer at end of file returns a shorter array. */
export function readAtSync(file: Deno.FsFile, position: number, length: number): Uint8Array {
  const buf = new Uint8Array(length);
  file.seekSync(position, Deno.SeekMode.Start);
  let got = 0;
  while (got < length) {
    const n = file.readSync(buf.subarray(got));
    if (n === null || n === 0) break;
    got += n;
  }
  return got === length ? buf : buf.subarray(0, got);
}

/** Makes the directory entries of `dir` (created, renamed, removed files) durable. */
export async function fsyncDir(dir: string): Promise<void> {
  const f = await Deno.open(dir, { read: true });
  try {
    await f.sync();
  } finally {
    f.close();
  }
}

/** Creates `dir` (and parents) if needed and makes its entry durable in its parent. */
export async function ensureDir(dir: string): Promise<void> {
  try {
    const st = await Deno.stat(dir);
    if (!st.isDirectory) throw new Error(`${dir} exists and is not a directory`);
    return;
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  await Deno.mkdir(dir, { recursive: true });
  await fsyncDir(dir);
  await fsyncDir(parentOf(dir));
}

/** Removes `path`; a missing file is fine. Returns whether something was removed. */
export async function removeIfExists(path: string): Promise<boolean> {
  try {
    await Deno.remove(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/** `path` joined with `name` (POSIX separators; the data dir is a local path). */
export function join(dir: string, name: string): string {
  return dir.endsWith("/") ? dir + name : `${dir}/${name}`;
}

/** The parent directory of `path` ("." for a bare name). */
export function parentOf(path: string): string {
  const trimmed = path.replace(/\/+$/, "");
  const i = trimmed.lastIndexOf("/");
  if (i < 0) return ".";
  return i === 0 ? "/" : trimmed.slice(0, i);
}

/** The file names in `dir`. */
export async function listNames(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) if (e.isFile) names.push(e.name);
  return names.sort();
}
