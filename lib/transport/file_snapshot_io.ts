/**
 * The production {@link SnapshotIo}: snapshots are sent straight from their
 * files in the snapshot directory and received into temp files there, which
 * the driver then hands to the snapshot store to move into place. Neither
 * side ever holds more than one chunk of a snapshot in memory.
 *
 * @module
 */

import type { SnapshotData } from "../node/interfaces.ts";
import { FileSnapshotData, type FileSnapshotStore } from "../storage/snapshot_store.ts";
import type { SnapshotIo, SnapshotSink, SnapshotSource } from "./raft_transport.ts";

/** Snapshot I/O on the files of `store`. */
export function fileSnapshotIo(store: FileSnapshotStore): SnapshotIo {
  return {
    open: (data) => openSource(data),
    create: async (_total: number): Promise<SnapshotSink> => {
      const w = await store.createTempWriter("recv");
      return {
        write: (chunk) => w.write(chunk),
        finish: (crc) => w.finish(crc),
        abort: () => w.abort(),
      };
    },
  };
}

async function openSource(data: SnapshotData): Promise<SnapshotSource> {
  if (!(data instanceof FileSnapshotData)) {
    throw new TypeError("fileSnapshotIo sends FileSnapshotData only");
  }
  const file = await Deno.open(data.path, { read: true });
  return {
    crc32c: data.crc32c,
    read: (into) => file.read(into),
    close: () => file.close(),
  };
}
