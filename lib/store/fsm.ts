/**
 * The SQLite state machine behind the driver's {@link StateMachine}
 * interface: committed entries go to the database worker in one batch per
 * apply call. A snapshot is a SQLite database file written by the write
 * worker into the snapshot directory (`snapshotToFile`: a checkpoint and a
 * file copy, never the whole image in the JS heap), which the snapshot store
 * then moves into place; a restore copies a stored snapshot file over the
 * database (`restoreFromFile`). Snapshot files are CRC-checked by the store
 * and the transport, so a restore checks only the SQLite header.
 *
 * A failure of the worker leaves the node unable to apply the log, so it is
 * fatal (`onFatal`): continuing would acknowledge writes that were not
 * applied.
 *
 * @module
 */

import type { CommandOutcome, DbClient, DbFileStat } from "../db/mod.ts";
import type { Done, SnapshotData, StateMachine } from "../node/interfaces.ts";
import { FileSnapshotData } from "../storage/snapshot_store.ts";
import type { Entry, SnapshotMeta } from "../raft/types.ts";

/** Result of one applied entry: the command's outcome, or null for no-ops and config entries. */
export type ApplyResult = CommandOutcome | null;

/** Counters shown in /status and /debug/vars. */
export interface FsmStats {
  appliedCommands: number;
  applyBatches: number;
  restores: number;
  snapshots: number;
  /** Wall time (ms since epoch) of the last apply, restore or load. */
  lastUpdateMs: number;
}

export class SqliteStateMachine implements StateMachine {
  readonly stats: FsmStats = {
    appliedCommands: 0,
    applyBatches: 0,
    restores: 0,
    snapshots: 0,
    lastUpdateMs: 0,
  };

  constructor(
    private readonly db: DbClient,
    private readonly onFatal: (err: Error) => void,
    /** A fresh temp path inside the snapshot directory (FileSnapshotStore.tempPath). */
    private readonly tempPath: () => string,
    /** Whether anybody waits for the outcomes of applied entries (else only counts come back). */
    private readonly resultsWanted: () => boolean = () => true,
  ) {}

  /**
   * Index of the last entry whose apply (or restore) the database finished,
   * counted even after the driver stopped listening: after the database
   * closes, this is exactly the state its file holds (the -on-disk
   * fingerprint written at shutdown depends on it).
   */
  appliedThrough = 0;

  /**
   * Raft index of the newest command applied (or of the snapshot restored):
   * unchanged, the database is unchanged (no-op and configuration entries
   * do not count). Automatic backups skip a round when it has not moved.
   */
  lastCommandIndex = 0;

  /** The database file's stat right after the newest snapshot's checkpoint, if it was complete. */
  lastSnapshotDbFile: DbFileStat | undefined;

  apply(entries: readonly Entry[], done: (results: unknown[]) => void): void {
    const commands: Uint8Array[] = [];
    const positions: number[] = [];
    for (const [i, e] of entries.entries()) {
      if (e.kind === "normal" && e.data.byteLength > 0) {
        commands.push(e.data);
        positions.push(i);
      }
    }
    const results: ApplyResult[] = new Array(entries.length).fill(null);
    const last = entries.at(-1)?.index ?? this.appliedThrough;
    if (commands.length === 0) {
      this.appliedThrough = last;
      return done(results);
    }
    const lastCommand = entries[positions.at(-1) ?? 0]?.index ?? last;
    this.db.applyCommands(commands, { results: this.resultsWanted() }).then((outcomes) => {
      this.appliedThrough = last;
      this.lastCommandIndex = lastCommand;
      for (const [k, outcome] of outcomes.entries()) {
        const at = positions[k];
        if (at !== undefined) results[at] = outcome;
      }
      this.stats.appliedCommands += commands.length;
      this.stats.applyBatches++;
      this.stats.lastUpdateMs = Date.now();
      done(results);
    }, (err) => this.onFatal(asError(err, "applying committed entries")));
  }

  snapshot(done: (err: Error | undefined, data: SnapshotData) => void): void {
    const path = this.tempPath();
    this.lastSnapshotDbFile = undefined;
    this.db.snapshotToFile(path).then(({ sizeBytes, dbFile }) => {
      this.lastSnapshotDbFile = dbFile;
      this.stats.snapshots++;
      done(undefined, new FileSnapshotData(path, sizeBytes));
    }, (err) => {
      Deno.remove(path).catch(() => {});
      done(asError(err, "writing a snapshot of the database"), new Uint8Array(0));
    });
  }

  restore(meta: SnapshotMeta, data: SnapshotData, done: Done): void {
    if (!(data instanceof FileSnapshotData)) {
      return done(new TypeError("the SQLite state machine restores snapshot files only"));
    }
    this.db.restoreFromFile(data.path, { check: "header" }).then(() => {
      this.appliedThrough = meta.index;
      this.lastCommandIndex = meta.index;
      this.stats.restores++;
      this.stats.lastUpdateMs = Date.now();
      done();
    }, (err) => done(asError(err, "restoring a snapshot")));
  }
}

function asError(err: unknown, what: string): Error {
  const e = err instanceof Error ? err : new Error(String(err));
  return new Error(`state machine failed ${what}: ${e.message}`, { cause: e });
}
