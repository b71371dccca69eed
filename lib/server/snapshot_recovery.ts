/**
 * Start-up check of the snapshots, and recovery from a corrupt one.
 *
 * Every snapshot file carries its size and CRC32C in its meta. Before the
 * driver starts, {@link checkSnapshotsAtStart} reads the newest snapshot
 * through and checks both. A damaged one is never loaded: it is renamed to
 * `*.corrupt` (kept for an operator), reported in one log line, and the next
 * older one is tried. Snapshots the store already found damaged at open
 * (meta unreadable, data truncated) are moved aside the same way.
 *
 * A snapshot is usable only if the log holds every entry after it
 * (`firstIndex() - 1 <= index`); with no snapshot, the log must start at 1.
 * When none is usable the entries the lost snapshot covered exist only on
 * other nodes:
 *
 * - With another voter in the last known configuration, the node recovers
 *   from the leader: it durably writes `<data>/raft/recovery.json` with a
 *   vote floor (the last log index it held), empties its log (keeping term
 *   and vote), and starts with no state; the leader sees a follower with an
 *   empty log and sends its snapshot through the normal InstallSnapshot path.
 *   Until the log reaches the floor the node neither votes nor campaigns
 *   (Raft option `voteFloorIndex`): it may have acknowledged entries that
 *   only a minority now holds, and voting with an empty log could elect a
 *   leader lacking them. The marker survives crashes and restarts; it is
 *   removed by {@link clearRecoveryIfCaughtUp} once the node has caught up.
 * - Alone, there is nothing to fetch: start-up fails with an error that
 *   says what is wrong and how to restore.
 *
 * Order of the recovery writes, for crash safety: the marker first (temp ->
 * fsync -> rename -> fsync dir), then the log reset, then the hard state.
 * A crash anywhere leaves the marker, so the floor is honoured at the next
 * start whatever state the log is in.
 *
 * @module
 */

import { applyConfChange, decodeConfChange, EMPTY_CONF } from "../raft/confchange.ts";
import type { ConfState, SnapshotMeta } from "../raft/types.ts";
import { CorruptionError, SnapshotCorruptError, type Storage } from "../storage/mod.ts";
import type { Log } from "../log/mod.ts";

/** Name of the recovery marker inside `<data-dir>/raft/`. */
export const RECOVERY_FILE = "recovery.json";

/** What {@link checkSnapshotsAtStart} found and did. */
export interface StartRecovery {
  /**
   * Pass as the Raft option `voteFloorIndex`: no votes and no campaigns
   * until the log reaches it. 0 when no recovery is in progress.
   */
  readonly voteFloorIndex: number;
  /** Snapshot files moved aside as `*.corrupt` by this call. */
  readonly quarantined: readonly string[];
  /** True when this call emptied the log to fetch the state from the leader. */
  readonly logReset: boolean;
  /**
   * Raft addresses of the other members as last known (node id -> address),
   * while a recovery is in progress; empty otherwise. A node with an emptied
   * log has no configuration to route its replies by until the leader's
   * snapshot arrives: hand these to the transport's address book.
   */
  readonly peerAddresses: Readonly<Record<string, string>>;
}

/** Contents of `<data-dir>/raft/recovery.json`. */
export interface RecoveryMarker {
  /** The last log index this node held before its log was emptied. */
  readonly voteFloorIndex: number;
  /** Why the log was emptied. */
  readonly reason: string;
  /** Raft addresses of the other members as last known (see StartRecovery.peerAddresses). */
  readonly peers?: Readonly<Record<string, string>>;
}

/** A snapshot found damaged and moved aside. */
interface Corrupt {
  /** The data file as it was named (or the meta file when that is what is damaged). */
  readonly file: string;
  readonly reason: string;
  /** Its metadata, when readable (gives the membership and the index it covered). */
  readonly meta: SnapshotMeta | undefined;
  readonly movedTo: readonly string[];
}

/** The path of the recovery marker of `dataDir`. */
export function recoveryMarkerPath(dataDir: string): string {
  return `${trimSlash(dataDir)}/raft/${RECOVERY_FILE}`;
}

/**
 * Verifies the snapshots of an opened data directory before the driver
 * starts (see the module note). Call it after `openStorage` and before
 * creating the driver; pass the result's `voteFloorIndex` to the Raft options.
 * `nodeId` tells this node apart from the other voters of its last known
 * configuration (without it, two or more voters are taken to mean others exist).
 *
 * Throws when no usable snapshot remains, the log was compacted and no other
 * voter exists to fetch the state from; the message says what to do.
 */
export async function checkSnapshotsAtStart(
  storage: Storage,
  dataDir: string,
  log: Log,
  nodeId?: string,
  options: { trustNewest?: boolean } = {},
): Promise<StartRecovery> {
  const marker = await readRecoveryMarker(dataDir);
  const corrupt = await quarantineInvalidAtOpen(storage);
  let base: SnapshotMeta | undefined;
  for (let meta = storage.snapshots.latest(); meta !== undefined;) {
    const info = storage.snapshots.info(meta);
    try {
      // trustNewest: the caller checks the newest one's CRC in the background
      // (-on-disk fast restart: the state comes from db.sqlite, not from it).
      const trusted = options.trustNewest === true && corrupt.length === 0 &&
        meta === storage.snapshots.latest() && base === undefined;
      if (!trusted) await storage.snapshots.verify(meta);
      base = meta;
      break;
    } catch (e) {
      if (!(e instanceof SnapshotCorruptError)) throw e;
      const movedTo = await storage.snapshots.quarantine(meta);
      corrupt.push({ file: info?.dataFile ?? e.file, reason: detail(e), meta, movedTo });
    }
    meta = storage.snapshots.latest();
  }
  const quarantined = corrupt.flatMap((c) => c.movedTo);
  const first = storage.log.firstIndex();
  const usable = base === undefined ? first === 1 : first - 1 <= base.index;

  if (usable) {
    reportCorrupt(corrupt, log, nextStep(base, first));
    const floor = await honourMarker(marker, storage, dataDir, log);
    const peerAddresses = floor > 0 ? marker?.peers ?? {} : {};
    return { voteFloorIndex: floor, quarantined, logReset: false, peerAddresses };
  }

  const lastIndex = storage.log.lastIndex();
  const conf = lastKnownConf(storage, [...corrupt.map((c) => c.meta), base]);
  const others = conf.voters.filter((id) => id !== nodeId);
  const alone = nodeId === undefined ? conf.voters.length < 2 : others.length === 0;
  if (alone) {
    reportCorrupt(corrupt, log, "this node cannot start (see the error)");
    throw new Error(unrecoverableMessage(storage, corrupt, base, first, conf));
  }

  const floor = Math.max(
    lastIndex,
    storage.stable.hardState().commit,
    marker?.voteFloorIndex ?? 0,
    ...corrupt.map((c) => c.meta?.index ?? 0),
  );
  const what = corrupt.length > 0
    ? `snapshot ${corrupt[0]?.file} is corrupt`
    : `no snapshot is left (${storage.snapshots.dir})`;
  const reason = `${what} and the log was compacted through index ${first - 1}`;
  reportCorrupt(
    corrupt,
    log,
    "no usable snapshot is left: this node will fetch one from the leader",
  );
  const peerAddresses: Record<string, string> = {};
  for (const [id, addr] of Object.entries(conf.context ?? {})) {
    if (id !== nodeId) peerAddresses[id] = addr;
  }
  await writeRecoveryMarker(dataDir, { voteFloorIndex: floor, reason, peers: peerAddresses });
  const resetTo: SnapshotMeta = base ?? { index: 0, term: 0, conf: EMPTY_CONF };
  await promised((done) => storage.log.reset(resetTo, done));
  const hs = storage.stable.hardState();
  await promised((done) => storage.stable.setHardState({ ...hs, commit: 0 }, done));
  log.warn(
    `recovering from the leader: ${reason}, so the entries up to there exist only on other ` +
      `nodes (${others.join(", ")}). The local log (entries ${first}..${lastIndex}) was emptied` +
      `${base === undefined ? "" : ` back to snapshot ${base.term}-${base.index}`}; the leader ` +
      `will send a snapshot. Until this node's log reaches index ${floor} it will not vote or ` +
      `campaign (marker ${recoveryMarkerPath(dataDir)}).`,
  );
  return { voteFloorIndex: floor, quarantined, logReset: true, peerAddresses };
}

/**
 * Removes the recovery marker once the node's log (or applied index) has
 * reached its vote floor. Returns true when no marker remains. Cheap when
 * there is none; call it from the driver's onApplied / onRestored hooks, or
 * use {@link recoveryWatcher}.
 */
export async function clearRecoveryIfCaughtUp(
  dataDir: string,
  lastIndex: number,
): Promise<boolean> {
  const marker = await readRecoveryMarker(dataDir);
  if (marker === undefined) return true;
  if (lastIndex < marker.voteFloorIndex) return false;
  await removeMarker(dataDir);
  return true;
}

/**
 * A callback for the driver observer: call it with each new applied or
 * restored index. Once the index reaches `voteFloorIndex` it removes the
 * marker (once) and logs it. A no-op when `voteFloorIndex` is 0.
 */
export function recoveryWatcher(
  dataDir: string,
  voteFloorIndex: number,
  log: Log,
): (index: number) => void {
  let state: "waiting" | "clearing" | "done" = voteFloorIndex > 0 ? "waiting" : "done";
  return (index: number) => {
    if (state !== "waiting" || index < voteFloorIndex) return;
    state = "clearing";
    clearRecoveryIfCaughtUp(dataDir, index).then(
      (cleared) => {
        state = cleared ? "done" : "waiting";
        if (cleared) {
          log.info(
            `recovery finished: the log reached index ${voteFloorIndex}; voting normally again`,
          );
        }
      },
      (e) => {
        state = "waiting";
        log.warn(`could not remove ${recoveryMarkerPath(dataDir)}: ${errorText(e)}`);
      },
    );
  };
}

/** The marker of `dataDir`, or undefined. Throws when it exists but does not parse. */
export async function readRecoveryMarker(dataDir: string): Promise<RecoveryMarker | undefined> {
  const path = recoveryMarkerPath(dataDir);
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    raw = undefined;
  }
  const m = raw as Partial<RecoveryMarker> | undefined;
  const floor = m?.voteFloorIndex;
  if (typeof floor !== "number" || !Number.isSafeInteger(floor) || floor < 0) {
    throw new CorruptionError(
      path,
      -1,
      `the recovery marker is damaged, so the index below which this node must not vote is ` +
        `unknown. If the node has long caught up with the leader, delete the file; otherwise ` +
        `remove the node from the cluster and re-join it with an empty data directory.`,
    );
  }
  const peers: Record<string, string> = {};
  if (typeof m?.peers === "object" && m.peers !== null) {
    for (const [id, addr] of Object.entries(m.peers)) {
      if (typeof addr === "string") peers[id] = addr;
    }
  }
  return { voteFloorIndex: floor, reason: typeof m?.reason === "string" ? m.reason : "", peers };
}

// ------------------------------------------------------------------ helpers

/** Moves aside the snapshots the store found damaged at open (they are not in its list). */
async function quarantineInvalidAtOpen(storage: Storage): Promise<Corrupt[]> {
  const out: Corrupt[] = [];
  for (const bad of storage.snapshots.openReport.invalid) {
    const metaFile = bad.file;
    const dataFile = metaFile.replace(/\.meta$/, ".snap");
    const meta = await readMetaLoosely(metaFile);
    const movedTo: string[] = [];
    for (const f of [metaFile, dataFile]) {
      try {
        await Deno.rename(f, `${f}.corrupt`);
        movedTo.push(`${f}.corrupt`);
      } catch (e) {
        if (!(e instanceof Deno.errors.NotFound)) throw e;
      }
    }
    if (movedTo.length > 0) await fsyncDir(storage.snapshots.dir);
    out.push({ file: dataFile, reason: bad.reason, meta, movedTo });
  }
  return out;
}

/** Index, term and membership from a meta file that failed validation, if they are there. */
async function readMetaLoosely(path: string): Promise<SnapshotMeta | undefined> {
  try {
    const raw = JSON.parse(await Deno.readTextFile(path)) as Partial<SnapshotMeta>;
    const ids = (v: unknown) => Array.isArray(v) && v.every((x) => typeof x === "string");
    const conf = raw.conf as Partial<ConfState> | undefined;
    if (
      typeof raw.index !== "number" || typeof raw.term !== "number" || conf === undefined ||
      !ids(conf.voters) || !ids(conf.learners)
    ) return undefined;
    const context = typeof conf.context === "object" && conf.context !== null &&
        Object.values(conf.context).every((v) => typeof v === "string")
      ? conf.context
      : undefined;
    const base = { voters: conf.voters as string[], learners: conf.learners as string[] };
    return {
      index: raw.index,
      term: raw.term,
      conf: context === undefined ? base : { ...base, context },
    };
  } catch {
    return undefined;
  }
}

/** The newest membership known: the newest snapshot meta seen, then config entries of the log after it. */
function lastKnownConf(storage: Storage, metas: readonly (SnapshotMeta | undefined)[]): ConfState {
  let conf: ConfState = EMPTY_CONF;
  let at = 0;
  for (const m of metas) {
    if (m !== undefined && m.index >= at) {
      conf = m.conf;
      at = m.index;
    }
  }
  const last = storage.log.lastIndex();
  let lo = Math.max(at + 1, storage.log.firstIndex());
  while (lo <= last) {
    const batch = storage.log.entries(lo, last + 1, 8 << 20);
    for (const e of batch) {
      if (e.kind !== "config") continue;
      try {
        conf = applyConfChange(conf, decodeConfChange(e.data));
      } catch {
        // An undecodable entry says nothing about the members; the log check at open vouches for the rest.
      }
    }
    lo += batch.length;
  }
  return conf;
}

/** Keeps honouring an existing marker (an interrupted recovery), or removes it once caught up. */
async function honourMarker(
  marker: RecoveryMarker | undefined,
  storage: Storage,
  dataDir: string,
  log: Log,
): Promise<number> {
  if (marker === undefined) return 0;
  const last = storage.log.lastIndex();
  if (last >= marker.voteFloorIndex) {
    await removeMarker(dataDir);
    log.info(`recovery finished: the log reaches index ${last} (floor ${marker.voteFloorIndex})`);
    return 0;
  }
  log.warn(
    `recovery from the leader still in progress (${marker.reason || "log emptied"}): this node ` +
      `will not vote or campaign until its log reaches index ${marker.voteFloorIndex} (now ${last})`,
  );
  return marker.voteFloorIndex;
}

function nextStep(base: SnapshotMeta | undefined, first: number): string {
  if (base !== undefined) {
    return `using the older snapshot ${base.term}-${base.index} and the log after it`;
  }
  return `no snapshot is left; the log holds every entry from index ${first}, so the state is rebuilt from it`;
}

/** One line per damaged snapshot: file, reason, where it went, what happens next. */
function reportCorrupt(corrupt: readonly Corrupt[], log: Log, last: string) {
  corrupt.forEach((c, i) => {
    const next = i + 1 < corrupt.length ? "trying the next older snapshot" : last;
    const kept = c.movedTo.length > 0 ? `kept as ${c.movedTo.join(", ")}` : "files already gone";
    log.warn(`snapshot ${c.file} is corrupt and will not be loaded: ${c.reason}; ${kept}; ${next}`);
  });
}

function unrecoverableMessage(
  storage: Storage,
  corrupt: readonly Corrupt[],
  base: SnapshotMeta | undefined,
  first: number,
  conf: ConfState,
): string {
  const damaged = corrupt.length > 0
    ? `snapshot ${corrupt.map((c) => `${c.file} (${c.reason})`).join(" and ")} ` +
      `${corrupt.length > 1 ? "are" : "is"} corrupt`
    : `no snapshot is left in ${storage.snapshots.dir}`;
  const older = base === undefined
    ? ""
    : ` The intact snapshot ${base.term}-${base.index} is too old: the log starts at ${first}.`;
  const members = conf.voters.length > 0 ? ` (members: ${conf.voters.join(", ")})` : "";
  return `cannot start: ${damaged}, and the Raft log was compacted through index ${first - 1}, ` +
    `so the data up to there exists nowhere else on this node.${older} This node is the only ` +
    `voter${members}: there is no leader to fetch a good snapshot from. The damaged files are ` +
    `kept as *.corrupt in ${storage.snapshots.dir}. Restore from a backup: start a node with a ` +
    `fresh, empty data directory and load the backup (POST /db/load, or /boot for a SQLite ` +
    `file), or restore this data directory from a copy.`;
}

async function writeRecoveryMarker(dataDir: string, marker: RecoveryMarker): Promise<void> {
  const path = recoveryMarkerPath(dataDir);
  const tmp = `${path}.tmp`;
  const bytes = new TextEncoder().encode(JSON.stringify(marker) + "\n");
  const f = await Deno.open(tmp, { write: true, create: true, truncate: true });
  try {
    let done = 0;
    while (done < bytes.length) done += await f.write(bytes.subarray(done));
    await f.sync();
  } finally {
    f.close();
  }
  await Deno.rename(tmp, path);
  await fsyncDir(parentDir(path));
}

async function removeMarker(dataDir: string): Promise<void> {
  const path = recoveryMarkerPath(dataDir);
  try {
    await Deno.remove(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return;
    throw e;
  }
  await fsyncDir(parentDir(path));
}

async function fsyncDir(dir: string): Promise<void> {
  const f = await Deno.open(dir, { read: true });
  try {
    await f.sync();
  } finally {
    f.close();
  }
}

function promised(start: (done: (err?: Error) => void) => void): Promise<void> {
  return new Promise((resolve, reject) => start((err) => (err ? reject(err) : resolve())));
}

/** The message of a CorruptionError without the file name it starts with. */
function detail(e: CorruptionError): string {
  const prefix = `${e.file}: `;
  return e.message.startsWith(prefix) ? e.message.slice(prefix.length) : e.message;
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function trimSlash(path: string): string {
  return path.length > 1 ? path.replace(/\/+$/, "") : path;
}

function parentDir(path: string): string {
  const i = path.lastIndexOf("/");
  return i <= 0 ? "/" : path.slice(0, i);
}
