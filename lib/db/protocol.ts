/**
 * Messages between {@link DbClient} (main thread) and the database worker.
 * Everything is structured-cloneable; large byte arrays are transferred.
 *
 * @module
 */

import type { Command, Statement } from "./command.ts";
import type { EngineOptions } from "./engine.ts";

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
  }
  | { id: number; op: "load" | "restore"; bytes: Uint8Array }
  | { id: number; op: "serialize" | "stateHash" | "close" };

/** The worker's answer. Errors carry the error class name so the client can rebuild it. */
export type WorkerReply =
  | { id: number; ok: true; value: unknown }
  | { id: number; ok: false; name: string; message: string };
