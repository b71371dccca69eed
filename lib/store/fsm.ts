/**
 * The SQLite state machine behind the driver's {@link StateMachine}
 * interface: committed entries go to the database worker in one batch per
 * apply call; snapshots are the serialized database image.
 *
 * A failure of the worker leaves the node unable to apply the log, so it is
 * fatal (`onFatal`): continuing would acknowledge writes that were not
 * applied.
 *
 * @module
 */

import type { CommandOutcome, DbClient } from "../db/mod.ts";
import type { Done, StateMachine } from "../node/interfaces.ts";
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
  ) {}

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
    if (commands.length === 0) return done(results);
    this.db.applyCommands(commands).then((outcomes) => {
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

  snapshot(done: (err: Error | undefined, data: Uint8Array) => void): void {
    this.db.serialize().then((data) => {
      this.stats.snapshots++;
      done(undefined, data);
    }, (err) => done(asError(err, "serializing the database"), new Uint8Array(0)));
  }

  restore(_meta: SnapshotMeta, data: Uint8Array, done: Done): void {
    this.db.restore(data).then(() => {
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
