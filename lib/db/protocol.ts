/**
 * Messages between {@link DbClient} (main thread) and the database worker.
 * Everything is structured-cloneable; large byte arrays are transferred.
 *
 * @module
 */

import type { Command, Statement } from "./command.ts";
import type { BackupOptions, EngineOptions, RestoreFileOptions } from "./engine.ts";

/** A request to the worker. `id` pairs it with its reply. */
export type WorkerRequest =
  | { id: number; op: "open"; options: EngineOptions }
  | { id: number; op: "execute" | "request"; command: Command }
  | { id: number; op: "query"; command: Command; readOnly: boolean }
  | { id: number; op: "classify"; statements: Statement[] }
  | {
    id: number;
    op: "apply";
    /** All encoded commands back to back. */
    buffer: ArrayBuffer;
    /** Byte length of each command in `buffer`, in order. */
    lengths: Uint32Array;
    /** False: nobody waits for the outcomes (e.g. a log replayed at start); reply with a count only. */
    results: boolean;
  }
  | { id: number; op: "load" | "restore" | "checkImage"; bytes: Uint8Array }
  | { id: number; op: "snapshotToFile"; path: string }
  | { id: number; op: "restoreFromFile"; path: string; options: RestoreFileOptions }
  | { id: number; op: "backupToFile"; path: string; options: BackupOptions }
  | { id: number; op: "serialize" | "stateHash" | "checkpoint" | "close" };

/** The worker's answer. Errors carry the error class name so the client can rebuild it. */
export type WorkerReply =
  | { id: number; ok: true; value: unknown }
  | { id: number; ok: false; name: string; message: string };
