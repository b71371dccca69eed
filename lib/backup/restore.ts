/**
 * Automatic restore (`-auto-restore`): on the first start of a node with
 * an empty data directory, the newest backup is downloaded (the configured
 * name, or else its newest timestamped copy), gunzipped when it is gzip,
 * checked to be a SQLite database, and kept as
 * `<data-dir>/auto-restore.sqlite` until the node knows its leader. Then:
 *
 * - this node leads and nothing was applied yet → the file goes through
 *   the Raft log as one `load` command, exactly as `POST /db/load` of a
 *   database file: every node (and every later one) gets it;
 * - another node leads, or data exists already → nothing (with
 *   `-bootstrap-expect`, every new node downloads; the leader loads).
 *
 * The file is removed either way. (The node keeps a marker,
 * `auto-restore.pending`, from the decision to restore until it settles,
 * so a node stopped in between restores again at its next start:
 * lib/server/start.ts.) `/readyz` answers 503 until this is
 * done, so a load balancer sends no traffic to a node about to be
 * overwritten. A download that fails stops the start unless
 * `continue_on_failure` is set (then the node starts empty). The whole
 * image travels in one log entry, so it must fit in
 * `-raft-max-frame-bytes` (the error says so).
 *
 * @module
 */

import { createReadStream, createWriteStream } from "node:fs";
import { pipeline } from "node:stream/promises";
import { createGunzip } from "node:zlib";
import type { Log } from "../log/mod.ts";
import type { RestoreConfig } from "./config.ts";
import { type BackupStore, CHUNK_BYTES, newestVersion, readHead } from "./storage.ts";

/** What the download found. */
export interface Downloaded {
  /** A SQLite database file (decompressed). */
  readonly path: string;
  /** Where it came from. */
  readonly source: string;
  readonly sizeBytes: number;
}

/** The first bytes of every SQLite database file. */
const SQLITE_HEADER = new TextEncoder().encode("SQLite format 3\0");

/**
 * Downloads the newest backup into `dir` (as `auto-restore.sqlite`);
 * undefined when the store holds none. At most `maxBytes` before and after
 * decompression. Throws with a message naming the source on failure.
 */
export async function downloadBackup(
  config: RestoreConfig,
  store: BackupStore,
  key: string,
  dir: string,
  maxBytes: number,
  log: Log,
): Promise<Downloaded | undefined> {
  const signal = AbortSignal.timeout(config.timeoutMs);
  const download = `${dir}/auto-restore.download`;
  const path = `${dir}/auto-restore.sqlite`;
  for (const p of [download, path]) await Deno.remove(p).catch(() => {});
  let source = key;
  try {
    let found = await store.get(key, download, maxBytes, signal);
    if (!found) {
      const newest = newestVersion((await store.versionsOf(key, signal)).filter((k) => k !== key));
      if (newest === undefined) return undefined;
      source = newest;
      found = await store.get(newest, download, maxBytes, signal);
      if (!found) return undefined;
    }
    if (await isGzip(download)) {
      await gunzipFile(download, path, maxBytes, signal);
      await Deno.remove(download);
    } else {
      await Deno.rename(download, path);
    }
    if (!(await startsWith(path, SQLITE_HEADER))) {
      throw new Error("it is not a SQLite database (nor a gzipped one)");
    }
    const sizeBytes = (await Deno.stat(path)).size;
    log.info(`downloaded ${store.describe(source)} for the automatic restore`, { sizeBytes });
    return { path, source: store.describe(source), sizeBytes };
  } catch (err) {
    for (const p of [download, path]) await Deno.remove(p).catch(() => {});
    const why = signal.aborted
      ? `it took longer than the restore's "timeout" of ${config.timeoutMs / 1000}s`
      : err instanceof Error
      ? err.message
      : String(err);
    throw new Error(`automatic restore from ${store.describe(source)} failed: ${why}`, {
      cause: err,
    });
  }
}

/** What the node offers the install step. */
export interface RestoreTarget {
  /** The leader's id, "" while unknown. */
  leaderId(): string;
  isLeader(): boolean;
  /** Raft index of the newest applied command (0: the database was never written). */
  dataIndex(): number;
  /** Checks and loads a database image through the log (POST /db/load's path). */
  load(image: Uint8Array): Promise<void>;
}

/** How an install ended. */
export type InstallOutcome = "restored" | "not_leader" | "has_data";

/**
 * Waits until a leader is known, then loads the file if this node leads a
 * cluster that holds no data yet; removes the file in every case. Polls
 * every `pollMs`; gives up when `signal` aborts (the node stops).
 */
export async function installRestore(
  file: Downloaded,
  target: RestoreTarget,
  signal: AbortSignal,
  pollMs = 50,
): Promise<InstallOutcome> {
  try {
    while (target.leaderId() === "") {
      signal.throwIfAborted();
      await new Promise((r) => setTimeout(r, pollMs));
    }
    if (!target.isLeader()) return "not_leader";
    if (target.dataIndex() > 0) return "has_data";
    await target.load(await Deno.readFile(file.path));
    return "restored";
  } finally {
    await Deno.remove(file.path).catch(() => {});
  }
}

async function startsWith(path: string, prefix: Uint8Array): Promise<boolean> {
  const head = await readHead(path, prefix.length);
  return head.length === prefix.length && prefix.every((b, i) => head[i] === b);
}

async function isGzip(path: string): Promise<boolean> {
  return await startsWith(path, new Uint8Array([0x1f, 0x8b]));
}

/** The decompressed backup outgrew its bound. */
class TooLargeError extends Error {}

/** Gunzips `from` into a new file `to`, streaming (node:zlib); throws past `maxBytes` of output. */
async function gunzipFile(
  from: string,
  to: string,
  maxBytes: number,
  signal: AbortSignal,
): Promise<void> {
  let total = 0;
  async function* bounded(source: AsyncIterable<Uint8Array>) {
    for await (const chunk of source) {
      total += chunk.byteLength;
      if (total > maxBytes) {
        throw new TooLargeError(`it decompresses to more than ${maxBytes} bytes`);
      }
      yield chunk;
    }
  }
  try {
    await pipeline(
      createReadStream(from, { highWaterMark: CHUNK_BYTES }),
      createGunzip(),
      bounded,
      createWriteStream(to, { flags: "wx" }),
      { signal },
    );
  } catch (err) {
    if (err instanceof TooLargeError) throw err;
    const why = err instanceof Error ? err.message : String(err);
    throw new Error(`it could not be decompressed: ${why}`, { cause: err });
  }
}
