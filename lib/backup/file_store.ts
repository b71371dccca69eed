/**
 * Backups in a local directory (`"type": "file"`): each upload is written
 * to a temporary file beside its final name, flushed to disk, renamed over
 * it and the directory flushed, so a crash leaves the previous backup or
 * the new one whole, never a torn file. The id of a file is the SHA-256 of
 * the database it holds (gunzipped when it is gzip), computed when asked:
 * no side files.
 *
 * @module
 */

import { type BackupStore, CHUNK_BYTES, isVersionOf, sha256OfContent } from "./storage.ts";

/** The most directory entries looked at when listing versions. */
const MAX_LISTED = 100_000;

/** A directory that keeps backups. */
export class FileBackupStore implements BackupStore {
  constructor(readonly dir: string) {}

  describe(key: string): string {
    return `file://${this.#path(key)}`;
  }

  async put(key: string, localPath: string, _id: string, signal?: AbortSignal): Promise<void> {
    await Deno.mkdir(this.dir, { recursive: true });
    const final = this.#path(key);
    const temp = `${this.dir}/.${key}.${crypto.randomUUID()}.tmp`;
    try {
      await copyFile(localPath, temp, Infinity, signal);
      await Deno.rename(temp, final);
    } catch (err) {
      await Deno.remove(temp).catch(() => {});
      throw err;
    }
    await syncDir(this.dir);
  }

  async idOf(key: string): Promise<string | undefined> {
    try {
      return await sha256OfContent(this.#path(key));
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return undefined;
      throw err;
    }
  }

  async get(key: string, localPath: string, maxBytes: number, signal?: AbortSignal) {
    try {
      await copyFile(this.#path(key), localPath, maxBytes, signal);
      return true;
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return false;
      await Deno.remove(localPath).catch(() => {});
      throw err;
    }
  }

  async versionsOf(key: string): Promise<string[]> {
    const found: string[] = [];
    let seen = 0;
    try {
      for await (const e of Deno.readDir(this.dir)) {
        if (++seen > MAX_LISTED) break;
        if (e.isFile && isVersionOf(e.name, key)) found.push(e.name);
      }
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return [];
      throw err;
    }
    return found;
  }

  #path(key: string): string {
    return `${this.dir}/${key}`;
  }
}

/**
 * Copies `from` to a new file `to` in chunks and flushes it; throws when
 * `from` is larger than `maxBytes` (before copying anything).
 */
async function copyFile(
  from: string,
  to: string,
  maxBytes: number,
  signal?: AbortSignal,
): Promise<void> {
  using src = await Deno.open(from, { read: true });
  const size = (await src.stat()).size;
  if (size > maxBytes) {
    throw new Error(`${from} holds ${size} bytes, more than the ${maxBytes} bytes allowed`);
  }
  using dst = await Deno.open(to, { write: true, createNew: true });
  const buf = new Uint8Array(CHUNK_BYTES);
  for (;;) {
    signal?.throwIfAborted();
    const n = await src.read(buf);
    if (n === null) break;
    let off = 0;
    while (off < n) off += await dst.write(buf.subarray(off, n));
  }
  await dst.syncData();
}

async function syncDir(dir: string): Promise<void> {
  using d = await Deno.open(dir, { read: true });
  await d.sync().catch(() => {}); // some filesystems refuse fsync on directories
}
