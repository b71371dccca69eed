/**
 * # lib/storage — the durable log, hard state and snapshots
 *
 * What it owns: everything raftlite keeps on disk for Raft, as
 * implementations of the driver's {@link LogStore}, {@link StableStore} and
 * {@link SnapshotStore} (lib/node/interfaces.ts).
 *
 * ## Data directory
 *
 * ```
 * <data-dir>/raft/log-<first index, 20 digits>.seg   log segments (SegmentLog)
 * <data-dir>/raft/logmeta                            compaction point: index + term (two slots)
 * <data-dir>/raft/hardstate                          term, vote, commit hint (two slots)
 * <data-dir>/snapshots/<term>-<index>.snap           snapshot data
 * <data-dir>/snapshots/<term>-<index>.meta           JSON: index, term, conf, size, crc32c, createdMs
 * ```
 *
 * ## Formats (little endian, CRC32C everywhere)
 *
 * - Log record: magic "RLG1" u32 | crc u32 | length u32 | index u64 | term u64 |
 *   position in its write batch u32 | kind u8 | data. The CRC covers length
 *   and payload. 33 bytes of overhead per entry. Segments are plain record
 *   sequences; the file name gives the first index.
 * - Slot files (`hardstate`, `logmeta`): two 4 KiB slots, each magic "RLS1" |
 *   crc | seq u64 | length | payload; the valid slot with the higher seq wins.
 *
 * ## What is fsynced when, and why
 *
 * - `append`: one write of every record of the batch, one fdatasync, then
 *   `done` (group commit: the driver passes everything proposed meanwhile as
 *   one batch). A new segment also fsyncs the directory. Replacing a
 *   conflicting suffix removes later segments newest first + fsyncs the
 *   directory, truncates + fsyncs the segment, then appends.
 * - `setHardState` / `logmeta`: one in-place write to the older slot + one
 *   fdatasync. A torn write damages only that slot; the other still holds
 *   the previous state. Cheaper than temp + fsync + rename + fsync(dir), and
 *   it is on the election path.
 * - `compact`: logmeta first, then whole segments below it are deleted.
 *   `reset`: segments deleted (newest first) + directory fsync, then logmeta.
 *   Either way a crash leaves a state open accepts (stale segments, or a
 *   shorter log the driver resets again against its stored snapshot).
 * - Snapshots: data to a temp file (CRC computed as it streams), fsync,
 *   rename; meta to a temp file, fsync, rename; directory fsync. Meta last,
 *   so a visible meta means a complete snapshot. Old ones are removed only
 *   after the new one is durable.
 *
 * ## Invariants
 *
 * - Acknowledged entries are never dropped silently. At open every record is
 *   verified; the only damage repaired is a torn tail: damage at the end of
 *   the LAST segment followed by nothing but garbage or intact records of
 *   the same (unacknowledged) write batch. Anything else — damage in an
 *   earlier segment, damage followed by a later write, a gap between
 *   segments, terms going backwards, both hard-state slots bad — throws
 *   {@link CorruptionError} naming the file and offset.
 * - Every write reaches disk through a per-store FIFO, one at a time; each
 *   `done` runs exactly once, after its data is durable, and the first I/O
 *   error stops the store (later operations fail with
 *   {@link StorageFailedError}): memory may then be ahead of disk.
 * - Memory changes when an operation is called (the synchronous Raft core
 *   reads it at once); entries not yet on disk stay in the cache until they are.
 * - Visible files change only by atomic rename or by appending/truncating
 *   segments; a crash leaves either the old or the new version.
 *
 * @module
 */

import type { HardState } from "../raft/types.ts";
import { CorruptionError } from "./errors.ts";
import { ensureDir, join } from "./fs_util.ts";
import { SegmentLog, type SegmentLogOptions } from "./segment_log.ts";
import { FileSnapshotStore, type SnapshotStoreOptions } from "./snapshot_store.ts";
import { FileStableStore, HARD_STATE_FILE } from "./stable_store.ts";

export { crc32c } from "./crc32c.ts";
export {
  CorruptionError,
  SnapshotCorruptError,
  StorageFailedError,
  StorageMisuseError,
} from "./errors.ts";
export {
  type LogOpenReport,
  type LogStats,
  RECORD_OVERHEAD,
  SegmentLog,
  type SegmentLogOptions,
  segmentName,
  type TornTail,
} from "./segment_log.ts";
export {
  FileSnapshotData,
  FileSnapshotStore,
  type SnapshotInfo,
  type SnapshotOpenReport,
  type SnapshotReader,
  type SnapshotStoreOptions,
  type SnapshotWriter,
  type TempSnapshotWriter,
} from "./snapshot_store.ts";
export { FileStableStore, type StableOpenReport } from "./stable_store.ts";

/** Options of {@link openStorage}. */
export interface StorageOptions {
  readonly log?: SegmentLogOptions;
  readonly snapshots?: SnapshotStoreOptions;
}

/** The three stores of one data directory. */
export interface Storage {
  readonly log: SegmentLog;
  readonly stable: FileStableStore;
  readonly snapshots: FileSnapshotStore;
  /** Conditions worth logging at start (e.g. a torn tail was cut). */
  readonly warnings: readonly string[];
  /** Waits for pending writes and closes every file. */
  close(): Promise<void>;
}

/**
 * Opens (creating when new) `<dataDir>/raft` and `<dataDir>/snapshots`.
 * Throws {@link CorruptionError} when a store is damaged, or when the hard
 * state is missing although the log or snapshots exist (its term and vote
 * would be forgotten, which could make this node vote twice in a term).
 */
export async function openStorage(dataDir: string, options: StorageOptions = {}): Promise<Storage> {
  await ensureDir(dataDir);
  const raftDir = join(dataDir, "raft");
  const opened: { close(): Promise<void> }[] = [];
  try {
    // Hard state first: on a new node it is durable before any log entry.
    const stable = await FileStableStore.open(raftDir);
    opened.push(stable);
    const log = await SegmentLog.open(raftDir, options.log);
    opened.push(log);
    const snapshots = await FileSnapshotStore.open(join(dataDir, "snapshots"), options.snapshots);
    opened.push(snapshots);
    const latest = snapshots.latest();
    if (stable.openReport.created && (log.lastIndex() > 0 || latest !== undefined)) {
      throw new CorruptionError(
        join(raftDir, HARD_STATE_FILE),
        -1,
        `the hard state (term, vote) is missing but the log (last index ${log.lastIndex()}) or ` +
          `snapshots exist; starting would forget this node's vote. Restore the file or ` +
          `re-join this node with an empty data directory.`,
      );
    }
    const warnings = describe(log, stable.hardState(), latest?.index ?? 0);
    for (const s of snapshots.openReport.invalid) {
      warnings.push(`snapshot ${s.file} skipped: ${s.reason}`);
    }
    return {
      log,
      stable,
      snapshots,
      warnings,
      close: async () => {
        await Promise.all(opened.map((s) => s.close()));
      },
    };
  } catch (e) {
    await Promise.allSettled(opened.map((s) => s.close()));
    throw e;
  }
}

function describe(log: SegmentLog, hs: HardState, snapshotIndex: number): string[] {
  const out: string[] = [];
  const torn = log.openReport.torn;
  if (torn !== undefined) {
    out.push(
      `raft log: torn tail cut at ${torn.file} offset ${torn.offset} (${torn.droppedBytes} bytes, ` +
        `${torn.droppedIntactRecords} intact records of the unacknowledged write): ${torn.reason}`,
    );
  }
  const stored = Math.max(log.lastIndex(), snapshotIndex);
  if (hs.commit > stored) {
    // Possible when the hard state and the log write of one Ready raced a crash.
    out.push(
      `hard state commit index ${hs.commit} is beyond the stored log (last index ` +
        `${log.lastIndex()}, snapshot ${snapshotIndex}); the missing entries must come from the leader`,
    );
  }
  if (log.openReport.removedStaleSegments.length > 0) {
    out.push(
      `raft log: removed segments below the compaction point: ${
        log.openReport.removedStaleSegments.join(", ")
      }`,
    );
  }
  return out;
}
