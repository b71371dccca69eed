/**
 * The node side of `POST /snapshot`, `POST /reap` and `POST /boot`
 * (rqlite-api.md §4, §12).
 *
 * `/boot` loads a large SQLite file into a single-node cluster without
 * putting it through the Raft log (a log entry of a gigabyte would have to
 * sit in memory): the body streams into a temp file in the snapshot
 * directory (bounded by {@link MAX_BOOT_BYTES}), is checked (`SQLite
 * format` header, then `PRAGMA quick_check` on the copy), replaces the
 * database, and a snapshot is forced at once with no trailing log, so that
 * a restart rebuilds from the booted data and never replays older entries
 * over it. Only a lone voter may do this: on a cluster the other nodes
 * would silently diverge. Until the snapshot is durable `/boot` has not
 * answered, so a crash before it loses nothing that was acknowledged.
 *
 * @module
 */

import type { DbClient } from "../db/mod.ts";
import { RestoreError } from "../db/engine.ts";
import { BootError, type NodeMaintenance } from "../http/maintenance.ts";
import type { Log } from "../log/mod.ts";
import type { RaftDriver } from "../node/driver.ts";
import type { FileSnapshotStore } from "../storage/snapshot_store.ts";
import type { Store } from "../store/store.ts";

/** Largest file `/boot` accepts (the disk is the practical limit; this keeps a runaway upload finite). */
export const MAX_BOOT_BYTES = 256 * 1024 * 1024 * 1024;

const SQLITE_MAGIC = new TextEncoder().encode("SQLite format");

/** What the maintenance operations work on. */
export interface MaintenanceDeps {
  readonly nodeId: string;
  store(): Store | undefined;
  db(): DbClient | undefined;
  snapshots(): FileSnapshotStore | undefined;
  /** Where a finished /boot is reported. */
  readonly log: Log;
  readonly maxBootBytes?: number;
}

/** {@link NodeMaintenance} over the running node. */
export class Maintenance implements NodeMaintenance {
  #booting = false;

  constructor(private readonly deps: MaintenanceDeps) {}

  snapshot(trailingLogs: number | undefined): Promise<{ index: number; term: number } | undefined> {
    const driver = this.#driver();
    return new Promise((resolve, reject) =>
      driver.snapshotNow(trailingLogs, (err, meta) => (err ? reject(err) : resolve(meta)))
    );
  }

  async reap(): Promise<{ snapshotsReaped: number; walsCheckpointed: number }> {
    const snapshots = this.deps.snapshots();
    if (snapshots === undefined) throw new Error("store is not open");
    const snapshotsReaped = await snapshots.reap();
    const db = this.deps.db();
    const walsCheckpointed = db === undefined ? 0 : (await db.checkpoint()) ? 1 : 0;
    return { snapshotsReaped, walsCheckpointed };
  }

  async boot(body: ReadableStream<Uint8Array>): Promise<void> {
    const store = this.deps.store();
    const db = this.deps.db();
    const snapshots = this.deps.snapshots();
    if (store === undefined || db === undefined || snapshots === undefined) {
      throw new BootError(503, "store is not open");
    }
    this.#checkSingleNodeLeader(store.driver);
    if (this.#booting) throw new BootError(503, "a boot is already in progress");
    this.#booting = true;
    const tmp = snapshots.tempPath("boot");
    const startMs = performance.now();
    try {
      const bytes = await receiveSqliteFile(body, tmp, this.deps.maxBootBytes ?? MAX_BOOT_BYTES);
      try {
        await db.restoreFromFile(tmp, { check: "quick_check" });
      } catch (err) {
        if (err instanceof RestoreError) throw new BootError(400, err.message);
        throw err;
      }
      // An entry applied after the restore moves the applied index past the
      // newest snapshot, so the forced snapshot below always has something
      // to capture: the booted database.
      await store.execute({ kind: "noop", statements: [], transaction: false });
      const meta = await this.snapshot(0);
      if (meta === undefined) throw new Error("boot: the forced snapshot captured nothing");
      this.deps.log.info(`boot: loaded ${bytes} bytes`, {
        ms: Math.round(performance.now() - startMs),
        snapshot: `${meta.term}-${meta.index}`,
      });
    } finally {
      this.#booting = false;
      await Deno.remove(tmp).catch(() => {});
    }
  }

  #driver(): RaftDriver {
    const store = this.deps.store();
    if (store === undefined) throw new Error("store is not open");
    return store.driver;
  }

  #checkSingleNodeLeader(driver: RaftDriver): void {
    if (!driver.isLeader()) throw new BootError(503, "not leader");
    const conf = driver.conf();
    const alone = conf.voters.length === 1 && conf.voters[0] === this.deps.nodeId &&
      conf.learners.length === 0;
    if (!alone) throw new BootError(503, "not single-node");
  }
}

/**
 * Writes `body` to a new file at `path`, refusing anything that does not
 * start with `SQLite format` or exceeds `maxBytes`; returns the size.
 */
export async function receiveSqliteFile(
  body: ReadableStream<Uint8Array>,
  path: string,
  maxBytes: number,
): Promise<number> {
  const file = await Deno.open(path, { write: true, createNew: true });
  const reader = body.getReader();
  const head = new Uint8Array(SQLITE_MAGIC.length);
  let size = 0;
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      if (size < head.length) head.set(value.subarray(0, head.length - size), size);
      size += value.byteLength;
      if (size > maxBytes) throw new BootError(400, `boot file exceeds ${maxBytes} bytes`);
      if (size >= head.length && !startsWithMagic(head)) {
        throw new BootError(400, "invalid SQLite data");
      }
      writeAllSync(file, value);
    }
    if (size < head.length) throw new BootError(400, "invalid SQLite data");
    await file.sync();
    return size;
  } catch (err) {
    await reader.cancel().catch(() => {});
    throw err;
  } finally {
    file.close();
  }
}

function startsWithMagic(head: Uint8Array): boolean {
  return SQLITE_MAGIC.every((b, i) => head[i] === b);
}

/**
 * Synchronous on purpose: an awaited write per body chunk let Deno's
 * request body pile up (measured: a 256 MiB fetch upload at 6 MB/s and
 * +458 MiB RSS at 1 GiB); a small synchronous write per chunk keeps up.
 */
function writeAllSync(file: Deno.FsFile, bytes: Uint8Array): void {
  let off = 0;
  while (off < bytes.byteLength) off += file.writeSync(bytes.subarray(off));
}
