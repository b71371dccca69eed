/**
 * What the uploader and the restore need of a place that keeps backups,
 * with two implementations: a local directory (file_store.ts) and
 * S3-compatible object storage (s3_store.ts). Both work on keys: a file
 * name in the directory, or an object key in the bucket.
 *
 * Each upload carries an id, the SHA-256 of the database bytes (before
 * compression), so a new
 * leader (or a restarted node) can tell that the newest backup already
 * holds what it would upload and skip it.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { createGunzip } from "node:zlib";

/** A place that keeps backups. */
export interface BackupStore {
  /** Where `key` lives, for logs and errors (`file:///dir/name`, `s3://bucket/key`). */
  describe(key: string): string;
  /** Stores the local file as `key` (replacing it whole), recording `id` with it. */
  put(key: string, localPath: string, id: string, signal?: AbortSignal): Promise<void>;
  /** The id recorded with `key`, or undefined when it is absent or has none. */
  idOf(key: string, signal?: AbortSignal): Promise<string | undefined>;
  /** Copies `key` to a new local file; false (and no file) when it does not exist. */
  get(key: string, localPath: string, maxBytes: number, signal?: AbortSignal): Promise<boolean>;
  /** Existing keys that are `key` itself or timestamped copies of it. */
  versionsOf(key: string, signal?: AbortSignal): Promise<string[]>;
}

/** Timestamps prefixed to names: UTC `YYYYMMDDhhmmss` and `_` (Go's "20060102150405"). */
const TIMESTAMPED = /^(\d{14})_/;

/** `dir/name` → `dir/20261122113501_name` for the time `ms` (UTC). */
export function timestampedKey(key: string, ms: number): string {
  const slash = key.lastIndexOf("/");
  const d = new Date(ms);
  const two = (n: number) => String(n).padStart(2, "0");
  const stamp = `${d.getUTCFullYear()}${two(d.getUTCMonth() + 1)}${two(d.getUTCDate())}` +
    `${two(d.getUTCHours())}${two(d.getUTCMinutes())}${two(d.getUTCSeconds())}`;
  return `${key.slice(0, slash + 1)}${stamp}_${key.slice(slash + 1)}`;
}

/** Whether `candidate` is `key` or a timestamped copy of it (same directory). */
export function isVersionOf(candidate: string, key: string): boolean {
  if (candidate === key) return true;
  const slash = key.lastIndexOf("/");
  const dir = key.slice(0, slash + 1);
  if (!candidate.startsWith(dir)) return false;
  const rest = candidate.slice(dir.length);
  const m = TIMESTAMPED.exec(rest);
  return m !== null && rest.slice(m[0].length) === key.slice(slash + 1);
}

/**
 * The newest of `keys` (versions of one key): the latest timestamp, and
 * the plain key only when there is no timestamped one.
 */
export function newestVersion(keys: readonly string[]): string | undefined {
  const stamp = (k: string) => TIMESTAMPED.exec(k.slice(k.lastIndexOf("/") + 1))?.[1] ?? "";
  let best: string | undefined;
  for (const k of keys) {
    if (best === undefined || stamp(k) > stamp(best)) best = k;
  }
  return best;
}

/** Bytes read at a time when hashing or copying files. */
export const CHUNK_BYTES = 1 << 20;

/** SHA-256 (hex) of a file, read in chunks (never whole in memory). */
export async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  using file = await Deno.open(path, { read: true });
  const buf = new Uint8Array(CHUNK_BYTES);
  for (;;) {
    const n = await file.read(buf);
    if (n === null) break;
    hash.update(buf.subarray(0, n));
  }
  return hash.digest("hex");
}

/**
 * SHA-256 (hex) of what a backup file holds: of its decompressed bytes when
 * it is gzip, else of the file. Streamed.
 */
export async function sha256OfContent(path: string): Promise<string> {
  const head = await readHead(path, 2);
  const hash = createHash("sha256");
  const stream = createReadStream(path, { highWaterMark: CHUNK_BYTES });
  const source = head[0] === 0x1f && head[1] === 0x8b ? stream.pipe(createGunzip()) : stream;
  for await (const chunk of source) hash.update(chunk as Uint8Array);
  return hash.digest("hex");
}

/** The first `n` bytes of a file (fewer when it is shorter). */
export async function readHead(path: string, n: number): Promise<Uint8Array> {
  using f = await Deno.open(path, { read: true });
  const buf = new Uint8Array(n);
  let got = 0;
  while (got < n) {
    const r = await f.read(buf.subarray(got));
    if (r === null) break;
    got += r;
  }
  return buf.subarray(0, got);
}
