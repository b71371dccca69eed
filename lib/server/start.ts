/**
 * Starting and stopping one raftlite node: the wiring of every layer in
 * the order rqlited uses (rqlite-api.md §8): HTTP first (so /status answers
 * while the store opens), then storage, the SQLite worker, the Raft driver
 * and the store.
 *
 * Durability: the SQLite database is rebuilt from the newest snapshot plus
 * the log at every start (in memory by default — a RAM-backed file under
 * /dev/shm, see lib/db/files.ts — or `<data-dir>/db.sqlite` with `-on-disk`),
 * so the log stays the only authority.
 *
 * @module
 */

import { DbClient } from "../db/mod.ts";
import { createHandler } from "../http/server.ts";
import { type HttpListener, serveHttp } from "../http/listen.ts";
import { queuedBatchWriter } from "../http/queue.ts";
import type { HttpContext } from "../http/context.ts";
import { RequestLimiter } from "../http/limits.ts";
import { RaftDriver } from "../node/driver.ts";
import { SystemClock } from "../node/memory.ts";
import { cryptoRandom } from "../sql/random.ts";
import { openStorage, type Storage } from "../storage/mod.ts";
import { SqliteStateMachine } from "../store/fsm.ts";
import { Membership } from "../store/membership.ts";
import { ENCODED_BYTES_PER_SOURCE_CHAR, Store } from "../store/store.ts";
import { WriteQueue } from "../store/write_queue.ts";
import { DEFAULT_HEADER_TIMEOUT_MS, Mux } from "../transport/mux.ts";
import { tlsConnect, tlsListen } from "../transport/tls.ts";
import { fileSnapshotIo } from "../transport/file_snapshot_io.ts";
import { ClusterRuntime } from "./cluster.ts";
import { VERSION } from "../version.ts";
import type { Config } from "./config.ts";
import { statusReport } from "./status_report.ts";
import { Maintenance } from "./maintenance.ts";
import { checkSnapshotsAtStart, recoveryWatcher } from "./snapshot_recovery.ts";
import { matchFingerprint, removeFingerprint, writeFingerprint } from "./fingerprint.ts";
import { Authenticator, type Credentials, loadUsersFile } from "../auth/mod.ts";
import { NodeMetrics } from "./metrics.ts";
import { type Log, Logger, type LogSink, stderrSink } from "../log/mod.ts";
import { waitForAddresses } from "./discovery.ts";
import {
  downloadBackup,
  type Downloaded,
  installRestore,
  openBackupStore,
  Uploader,
} from "../backup/mod.ts";

/** A running node. */
export interface RunningNode {
  readonly config: Config;
  /** The bound HTTP address (host:port), useful with port 0. */
  readonly httpAddr: string;
  /** The bound Raft address. */
  readonly raftAddr: string;
  store(): Store | undefined;
  /** Resolves when the store is open and serving (or rejects when start-up failed). */
  readonly ready: Promise<void>;
  /** Stops everything; safe to call twice. */
  close(): Promise<void>;
  /** Before a graceful stop: hand leadership over or leave the cluster, as configured. */
  leave(): Promise<void>;
  /** The HTTP handler itself (`Request -> Response`), for tests without a socket. */
  handler(req: Request): Promise<Response>;
}

function hostPort(addr: string): { hostname: string; port: number } {
  const i = addr.lastIndexOf(":");
  if (i < 0) throw new Error(`address "${addr}" has no port; use host:port`);
  const port = Number(addr.slice(i + 1));
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`address "${addr}" has an invalid port`);
  }
  return { hostname: addr.slice(0, i).replace(/^\[|\]$/g, "") || "0.0.0.0", port };
}

/** Largest snapshot a follower accepts from a leader (they stream to disk, so disk is the real bound). */
const MAX_SNAPSHOT_BYTES = 1024 * 1024 * 1024 * 1024;

/** Room in a Raft frame beside one log entry (message header, ids, the frame type byte). */
const ENTRY_FRAME_OVERHEAD_BYTES = 64 * 1024;

/** The largest encoded command proposed: one must fit in a Raft frame. */
function maxEntryBytes(config: Config): number {
  return config.raftMaxFrameBytes - ENTRY_FRAME_OVERHEAD_BYTES;
}

/**
 * Request-body bytes buffered at once over all HTTP requests: two bodies
 * of the largest size, and at least 256 MiB, so many ordinary requests go
 * side by side while `-max-concurrent-requests` huge uploads cannot
 * exhaust memory.
 */
function bodyBytesInFlight(config: Config): number {
  return Math.max(2 * config.maxBodyBytes, 256 << 20);
}

/** Body bytes the write queue holds at most (at least one -max-body-bytes request). */
const QUEUE_MAX_BYTES = 256 << 20;

/**
 * How long shutdown tries to write queued requests: two election timeouts,
 * time for a leader to be found if one can be (at least 1 s).
 */
function queueDrainMs(config: Config): number {
  return Math.max(1_000, 2 * config.electionTicks * config.tickMs);
}

/** Uniform integers for the core's election jitter. */
const raftRandom = {
  nextInt(n: number): number {
    return Math.floor(Math.random() * n);
  },
};

/** Starts a node. HTTP is listening when this returns; `ready` tells when the store is. */
export function startNode(configIn: Config, sink: LogSink = stderrSink): RunningNode {
  const logger = new Logger({ level: configIn.logLevel, raftLevel: configIn.raftLogLevel, sink });
  const log = logger.for("node");
  const raftLog = logger.for("raft");
  const storageLog = logger.for("storage");
  const storeLog = logger.for("store");
  let store: Store | undefined;
  let storage: Storage | undefined;
  const openedStorage = (): Storage => {
    if (storage === undefined) throw new Error("storage is not open yet");
    return storage;
  };
  let db: DbClient | undefined;
  let driver: RaftDriver | undefined;
  let fsm: SqliteStateMachine | undefined;
  let membership: Membership | undefined;
  const startedMs = Date.now();
  // -auth is read before anything listens: a bad users file stops the start.
  const { auth, nodeCredentials } = loadAuth(configIn);

  // The internode port: Raft (service 1) and the cluster service (service 2),
  // over TLS when -node-cert is set (then every outbound dial is TLS too).
  // TLS refusals (certificates, handshakes) are logged once per peer and reason by the transport.
  const tlsLog = logger.for("transport");
  const tlsHooks = {
    log: (line: string) => tlsLog.warn(line),
    onListenError: (err: Error) => fatal(err),
  };
  const nodeTls = configIn.nodeTls;
  const mux = Mux.listen({
    ...hostPort(configIn.raftAddr),
    ...(nodeTls === undefined ? {} : { listen: tlsListen(nodeTls, tlsHooks) }),
    maxConnections: configIn.raftMaxConns,
    headerTimeoutMs: Math.min(DEFAULT_HEADER_TIMEOUT_MS, configIn.raftIdleTimeoutMs),
  });
  const raftAddr = mux.address;

  let handle: (req: Request, info?: { completed: Promise<void> }) => Promise<Response> = () =>
    Promise.resolve(new Response(null, { status: 503 }));
  const httpLog = logger.for("http");
  let server: HttpListener;
  try {
    server = serveHttp({
      ...hostPort(configIn.httpAddr),
      ...(configIn.httpTls === undefined ? {} : { tls: configIn.httpTls }),
      handler: (req, info) => handle(req, info),
      log: (line) => httpLog.warn(line),
      onListenError: (err) => fatal(err),
    });
  } catch (err) {
    void mux.close();
    throw err;
  }
  const httpAddr = addrText(server.addr);
  // With port 0 (tests) the advertised addresses and the default id come from the bound ports.
  const config = resolveAddresses(configIn, httpAddr, raftAddr);
  const apiUrl = `${server.scheme}://${config.httpAdvAddr}`;
  // Calls to other nodes' HTTPS APIs (backups from the leader) trust -http-ca-cert and
  // present this node's certificate only where client certificates are required.
  const httpClient = outboundHttpClient(config);

  const cluster = new ClusterRuntime({
    nodeId: config.nodeId,
    raftAdvAddr: config.raftAdvAddr,
    apiUrl,
    version: `v${VERSION}`,
    mux,
    connectTimeoutMs: config.connectTimeoutMs,
    ...(nodeTls === undefined ? {} : { connect: tlsConnect(nodeTls, tlsHooks) }),
    maxFrameBytes: config.raftMaxFrameBytes,
    idleTimeoutMs: config.raftIdleTimeoutMs,
    // Storage opens later (in `ready`); snapshots only move once it has.
    snapshotIo: {
      open: (data) => fileSnapshotIo(openedStorage().snapshots).open(data),
      create: (total) => fileSnapshotIo(openedStorage().snapshots).create(total),
    },
    maxSnapshotBytes: MAX_SNAPSHOT_BYTES,
    store: () => store,
    driver: () => driver,
    membership: () => membership,
    log: logger.for("cluster"),
    ...(auth === undefined ? {} : { auth }),
    ...(nodeCredentials === undefined ? {} : { nodeCredentials }),
  });

  // Queued writes (/db/execute?queue): sequence numbers start at the node's
  // start time in Unix nanoseconds (microsecond resolution, exact as BigInt).
  const writeQueue = new WriteQueue({
    capacity: config.writeQueueCapacity,
    batchSize: config.writeQueueBatchSize,
    timeoutMs: config.writeQueueTimeoutMs,
    transaction: config.writeQueueTx,
    startSequence: BigInt(Math.round((performance.timeOrigin + performance.now()) * 1000)) *
      1000n,
    // Batches of at most this much JSON always encode into one log entry.
    maxBatchBytes: Math.min(
      config.maxBodyBytes,
      Math.floor((maxEntryBytes(config) - 1024) / ENCODED_BYTES_PER_SOURCE_CHAR),
    ),
    maxQueuedBytes: Math.max(config.maxBodyBytes, QUEUE_MAX_BYTES),
    write: (cmd) => queuedBatchWriter(ctx, config.applyTimeoutMs)(cmd),
    log: logger.for("http"),
  });

  // -auto-restore: set while a downloaded backup waits to be loaded (/readyz says so).
  let restorePending = false;
  // -auto-backup: the leader's periodic uploads (started once the store is open).
  const uploader = config.autoBackup === undefined ? undefined : (() => {
    const { store: backupStore, key } = openBackupStore(config.autoBackup.storage);
    return new Uploader({
      config: config.autoBackup,
      store: backupStore,
      key,
      // Not while a restore is pending: the empty database must never replace the backup.
      isLeader: () => !restorePending && (store?.isLeader() ?? false),
      dataIndex: () => fsm?.lastCommandIndex ?? 0,
      backup: async (path, { vacuum }) => {
        if (db === undefined) throw new Error("the database is not open yet");
        await db.backupToFile(path, { format: "binary", vacuum });
      },
      tempDir: `${config.dataDir}/backup-tmp`,
      log: logger.for("backup"),
      nowMs: () => Date.now(),
    });
  })();
  const metrics = new NodeMetrics({
    store: () => store,
    storage: () => storage,
    db: () => db,
    writeQueue,
    authRefusals: () => cluster.authRefusals,
    cluster,
    ...(uploader === undefined ? {} : { backups: uploader.stats }),
  });
  let knownLeader = "";
  const stopRestore = new AbortController();
  // store.num_restores_start / _skipped: whether the start restored a snapshot or kept db.sqlite.
  const startRestores = { restored: 0, skipped: 0 };

  const ctx: HttpContext = {
    version: `v${VERSION}`,
    nodeId: config.nodeId,
    httpAdvAddr: config.httpAdvAddr,
    httpBindAddr: httpAddr,
    apiUrl,
    raftAddr: config.raftAdvAddr,
    allowOrigin: config.httpAllowOrigin,
    maxBodyBytes: config.maxBodyBytes,
    maxStatements: config.maxStatements,
    limiter: new RequestLimiter({
      maxConcurrent: config.maxConcurrentRequests,
      maxBodyBytesInFlight: bodyBytesInFlight(config),
      bodyTimeoutMs: config.httpReadTimeoutMs,
    }),
    store: () => store,
    writeQueue,
    cluster: {
      addressOf: (id) => cluster.addressOf(id),
      client: cluster.client,
      membership: () => membership,
    },
    statusReport: () =>
      statusReport({
        config,
        store,
        storage,
        db,
        startedMs,
        httpCounters: ctx.counters,
        httpBindAddr: httpAddr,
        cluster,
        writeQueue,
        limiter: ctx.limiter,
      }),
    maintenance: new Maintenance({
      nodeId: config.nodeId,
      store: () => store,
      db: () => db,
      snapshots: () => storage?.snapshots,
      log: logger.for("boot"),
    }),
    counters: {},
    metrics,
    varsExtra: () => debugVarsExtra(cluster, membership, startRestores, uploader),
    notReadyReason: () => restorePending ? "auto-restore pending" : undefined,
    ...(auth === undefined ? {} : { auth }),
    ...(nodeCredentials === undefined ? {} : { nodeCredentials }),
    ...(httpClient === undefined ? {} : { httpClient }),
    random: cryptoRandom,
    nowMs: () => Date.now(),
  };
  handle = createHandler(ctx);

  const ready = (async () => {
    storage = await openStorage(config.dataDir);
    storage.log.onAppendSynced = (ms) => metrics.observeAppendSync(ms);
    for (const w of storage.warnings) storageLog.warn(w);
    const recoveryLog = logger.for("recovery");
    // -on-disk with a matching db.sqlite: the newest snapshot is not read at
    // start (its CRC is checked in the background once the node runs).
    const trustNewest = config.onDisk &&
      matchFingerprint(config.dataDir, config.dbPath) !== undefined;
    const recovery = await checkSnapshotsAtStart(
      storage,
      config.dataDir,
      recoveryLog,
      config.nodeId,
      { trustNewest },
    );
    const caughtUp = recoveryWatcher(config.dataDir, recovery.voteFloorIndex, recoveryLog);
    for (const [id, addr] of Object.entries(recovery.peerAddresses)) cluster.learned.set(id, addr);
    const heldIndex = config.onDisk
      ? await prepareOnDiskDb(config, storage, recovery.voteFloorIndex, storeLog)
      : undefined;
    // In memory: a fresh RAM-backed file the read workers share, deleted at close.
    db = await DbClient.open({
      path: config.onDisk ? config.dbPath : undefined,
      foreignKeys: config.foreignKeys,
      // -on-disk: the file changes only at snapshots, so a fingerprint can vouch for it.
      autoCheckpoint: !config.onDisk,
    });
    const snapshots = storage.snapshots;
    const sm = new SqliteStateMachine(
      db,
      (err) => fatal(err),
      () => snapshots.tempPath("local"),
      () => driver?.hasPendingProposals() ?? true,
    );
    fsm = sm;
    if (heldIndex !== undefined) sm.appliedThrough = heldIndex;
    // rqlite's restore-at-start skip: db.sqlite already holds the newest snapshot's state.
    if (heldIndex !== undefined && storage.snapshots.latest() !== undefined) {
      startRestores.skipped = 1;
    }
    let driverStarted = false;
    const isNew = storage.log.lastIndex() === 0 && storage.snapshots.latest() === undefined &&
      storage.stable.hardState().term === 0;
    const restoreFile = await autoRestoreDownload(config, isNew, logger.for("restore"));
    const joinTargets = await discoveredTargets(config, isNew, log) ?? config.join;
    const boot = await decideBootstrap(config, isNew, cluster, log, joinTargets);
    driver = new RaftDriver({
      id: config.nodeId,
      clock: new SystemClock(),
      logStore: storage.log,
      stableStore: storage.stable,
      snapshotStore: storage.snapshots,
      stateMachine: fsm,
      transport: cluster.transport,
      random: raftRandom,
      tickMs: config.tickMs,
      raft: {
        electionTicks: config.electionTicks,
        heartbeatTicks: config.heartbeatTicks,
        voteFloorIndex: recovery.voteFloorIndex,
      },
      observer: {
        onApplied: (_id, entries) => caughtUp(entries.at(-1)?.index ?? 0),
        onRestored: (_id, meta) => {
          caughtUp(meta.index);
          if (!driverStarted) startRestores.restored++;
          raftLog.info(
            driverStarted ? "installed a snapshot from the leader" : "restored a snapshot",
            {
              index: meta.index,
              term: meta.term,
            },
          );
        },
        onSoftState: (_id, term, ss) => {
          raftLog.debug(() => `state ${ss.role}`, { term, leader: ss.leader || "none" });
          if (ss.leader === knownLeader) return;
          knownLeader = ss.leader;
          metrics.leaderChanged();
          raftLog.info("leader changed", { leader: ss.leader || "none", term, role: ss.role });
        },
        onSnapshotTaken: (_id, meta) => {
          const ms = driver?.status().lastSnapshotMs ?? 0;
          metrics.observeSnapshot(ms);
          raftLog.info("snapshot taken", {
            index: meta.index,
            term: meta.term,
            ms: Math.round(ms),
          });
          const dbFile = sm.lastSnapshotDbFile;
          if (!config.onDisk || dbFile === undefined) return;
          writeFingerprint(config.dataDir, meta.index, dbFile).catch((err) =>
            storeLog.warn(`could not write the -on-disk fingerprint: ${err}`)
          );
        },
      },
      snapshotThreshold: config.snapshotThreshold,
      trailingEntries: config.trailingEntries,
      snapshotIntervalMs: config.snapshotIntervalMs,
      stateMachineIndex: heldIndex,
      bootstrap: boot === undefined ? undefined : [...boot.keys()],
      bootstrapContext: boot === undefined ? undefined : Object.fromEntries(boot),
      onFatal: (err) => fatal(err),
    });
    await new Promise<void>((resolve, reject) =>
      driver?.start((err) => (err ? reject(err) : resolve()))
    );
    driverStarted = true;
    membership = new Membership(driver, config.applyTimeoutMs);
    store = new Store({
      nodeId: config.nodeId,
      raftAddr: config.raftAdvAddr,
      driver,
      db,
      fsm,
      applyTimeoutMs: config.applyTimeoutMs,
      voter: !config.nonVoter,
      maxEntryBytes: maxEntryBytes(config),
    });
    if (trustNewest) verifyInBackground(storage, driver, storageLog);
    if (restoreFile !== undefined) {
      restorePending = true;
      void finishRestore(
        restoreFile,
        store,
        config,
        stopRestore.signal,
        logger.for("restore"),
        fatal,
      )
        .finally(() => restorePending = false);
    }
    uploader?.start();
    const conf = driver.status().conf;
    // A lone voter need not wait out an election timeout.
    if (conf.voters.length === 1 && conf.voters[0] === config.nodeId) driver.campaign();
    warnIfNotMember(config, conf, log);
    if (isNew && boot === undefined && joinTargets.length > 0) {
      const via = await cluster.join(
        joinTargets,
        !config.nonVoter,
        config.joinAttempts,
        config.joinIntervalMs,
      );
      log.info(`joined the cluster via ${via}`);
    } else if (!isNew && config.join.length > 0) {
      log.warn(`this node already has state; -join ${config.join.join(",")} ignored`);
    }
  })();

  let closing: Promise<void> | undefined;
  const close = () =>
    closing ??= (async () => {
      await ready.catch(() => {});
      stopRestore.abort();
      await uploader?.stop();
      // Queued writes live in memory: write them while a leader is reachable, within a bound.
      await writeQueue.close(queueDrainMs(config));
      await flushCommitHint(driver);
      driver?.stop();
      await server.shutdown().catch(() => {});
      await cluster.close().catch(() => {});
      await mux.close().catch(() => {});
      httpClient?.close();
      await writeQueue.stopped;
      const closed = await db?.close().catch(() => undefined);
      // -on-disk: a database file checkpointed completely at close holds
      // exactly the entries applied so far; the next start can use it as is.
      if (config.onDisk && fsm !== undefined && closed?.cleanDbFile !== undefined) {
        await writeFingerprint(config.dataDir, fsm.appliedThrough, closed.cleanDbFile)
          .catch(() => {});
      }
      await storage?.close().catch(() => {});
    })();

  /** Graceful leave: hand leadership over, or leave the cluster, as configured. */
  const leave = async () => {
    await ready.catch(() => {});
    // While this node may still lead: write what is queued before handing leadership over.
    await writeQueue.close(queueDrainMs(config));
    if (membership === undefined || driver === undefined) return;
    const s = driver.status();
    try {
      if (config.clusterRemoveShutdown) {
        await removeSelf(config, cluster, membership, s.role === "leader", log);
      } else if (config.shutdownStepdown && s.role === "leader" && s.conf.voters.length > 1) {
        // Bounded: if the other nodes are stopping too, do not hold the exit.
        await membership.stepdown(undefined, true, 3_000);
        log.info("leadership handed over before shutdown");
      }
    } catch (err) {
      log.warn(`graceful leave failed: ${err instanceof Error ? err.message : String(err)}`);
    }
  };

  function fatal(err: Error): void {
    log.error(`fatal: ${err.message}`);
    // The node cannot apply the log safely any more; stop serving at once.
    void close().finally(() => Deno.exit(1));
  }

  return {
    config,
    httpAddr,
    raftAddr,
    store: () => store,
    ready,
    close,
    leave,
    handler: (req) => handle(req),
  };
}

/**
 * How a node with no state starts: alone (bootstraps itself), by joining
 * (no bootstrap; the leader adds it), or by bootstrap-expect (bootstraps
 * with the set of nodes that announced themselves). Undefined: no bootstrap.
 */
async function decideBootstrap(
  config: Config,
  isNew: boolean,
  cluster: ClusterRuntime,
  log: Log,
  joinTargets: readonly string[],
): Promise<Map<string, string> | undefined> {
  if (!isNew) return undefined;
  if (config.bootstrapExpect > 0) {
    // A new node (a replacement VM) whose peers already form a cluster joins it.
    if (await clusterExists(cluster, joinTargets, config.raftAdvAddr)) return undefined;
    log.info(`waiting for ${config.bootstrapExpect} nodes to announce themselves`);
    const set = await cluster.collectNotifiers(
      joinTargets,
      config.bootstrapExpect,
      config.joinIntervalMs,
      config.bootstrapExpectTimeoutMs,
    );
    log.info(`bootstrapping with ${[...set.keys()].join(", ")}`);
    return set;
  }
  if (joinTargets.length > 0) return undefined;
  if (config.nonVoter) throw new Error("a non-voter must join a cluster: pass -join");
  return new Map([[config.nodeId, config.raftAdvAddr]]);
}

/** Whether any of `targets` (other than this node) already has a committed log. */
async function clusterExists(
  cluster: ClusterRuntime,
  targets: readonly string[],
  self: string,
): Promise<boolean> {
  const answers = await Promise.all(
    targets.filter((t) => t !== self).map(async (t) => {
      try {
        return (await cluster.learn(t, 2_000)).commitIndex > 0;
      } catch {
        return false; // not up yet
      }
    }),
  );
  return answers.some((x) => x);
}

/**
 * With `-disco-mode`: on a new node, the Raft addresses DNS names (waiting
 * up to -bootstrap-expect-timeout for -bootstrap-expect of them); on a node
 * with state, none (it knows its cluster). Undefined without discovery.
 */
async function discoveredTargets(
  config: Config,
  isNew: boolean,
  log: Log,
): Promise<string[] | undefined> {
  const disco = config.discovery;
  if (disco === undefined) return undefined;
  if (!isNew) return [];
  const found = await waitForAddresses(
    disco,
    config.bootstrapExpect,
    config.bootstrapExpectTimeoutMs,
    config.joinIntervalMs,
    (v) => Deno.env.get(v),
  );
  log.info(`discovery (${disco.mode} ${disco.name}) found ${found.join(", ") || "no nodes"}`);
  return found;
}

/**
 * The /debug/vars counters of rqlite-api.md §4 that live outside the HTTP
 * layer. `cluster.num_client_force_new_conn` stays 0 (raftlite's cluster
 * client never forces a new connection on a caller's request),
 * `snapshot.upgrade_ok` 0 (there is one snapshot format, nothing to
 * upgrade). The `uploader` counters are those of -auto-backup (0 without it).
 */
function debugVarsExtra(
  cluster: ClusterRuntime,
  membership: Membership | undefined,
  startRestores: { restored: number; skipped: number },
  uploader: Uploader | undefined,
): Record<string, Record<string, number>> {
  return {
    store: {
      num_restores_start: startRestores.restored,
      num_restores_start_skipped: startRestores.skipped,
      num_ignored_joins: membership?.stats.ignoredJoins ?? 0,
      num_removed_before_joins: membership?.stats.removedBeforeJoins ?? 0,
    },
    cluster: {
      num_join_req: cluster.joinRequests,
      num_client_force_new_conn: 0,
      num_auth_refused: cluster.authRefusals,
    },
    snapshot: { upgrade_ok: 0 },
    uploader: {
      num_uploads_ok: uploader?.stats.uploadsOk ?? 0,
      num_uploads_fail: uploader?.stats.uploadsFail ?? 0,
      num_uploads_skipped: uploader?.stats.uploadsSkipped ?? 0,
      num_uploads_skipped_id: uploader?.stats.uploadsSkippedId ?? 0,
    },
  };
}

/**
 * Present from the decision to restore until the restore is settled: a
 * node that stops (or crashes) in between has state (it bootstrapped) but
 * not the backup, and restores again at its next start.
 */
const RESTORE_MARKER = "auto-restore.pending";

function restoreMarkerExists(dataDir: string): boolean {
  try {
    Deno.statSync(`${dataDir}/${RESTORE_MARKER}`);
    return true;
  } catch {
    return false;
  }
}

async function clearRestoreMarker(dataDir: string): Promise<void> {
  await Deno.remove(`${dataDir}/${RESTORE_MARKER}`).catch(() => {});
}

/**
 * -auto-restore on a node with no state (or whose earlier restore did not
 * settle): the newest backup, downloaded before Raft starts (undefined when
 * there is none, or the node has state). It must fit in one log entry. A
 * failure stops the start unless the config says `continue_on_failure`.
 */
async function autoRestoreDownload(
  config: Config,
  isNew: boolean,
  log: Log,
): Promise<Downloaded | undefined> {
  const restore = config.autoRestore;
  if (restore === undefined) return undefined;
  const unfinished = restoreMarkerExists(config.dataDir);
  if (!isNew && !unfinished) {
    log.info("the data directory holds a cluster's state; -auto-restore skipped");
    return undefined;
  }
  if (unfinished && !isNew) {
    log.warn("an automatic restore did not finish before this node last stopped; restoring again");
  }
  await Deno.writeTextFile(`${config.dataDir}/${RESTORE_MARKER}`, `${new Date().toISOString()}\n`);
  const { store, key } = openBackupStore(restore.storage);
  // The image travels in one load command: its encoding adds a few bytes of framing.
  const limit = maxEntryBytes(config) - 1024;
  try {
    const file = await downloadBackup(restore, store, key, config.dataDir, limit, log);
    if (file === undefined) {
      log.info(`no backup at ${store.describe(key)}; starting empty`);
      await clearRestoreMarker(config.dataDir);
    }
    return file;
  } catch (err) {
    await clearRestoreMarker(config.dataDir);
    const why = err instanceof Error ? err.message : String(err);
    // Too large: "more than the N bytes allowed" (file), "over the limit N" (S3), "more than N bytes" (gunzip).
    const fits = /more than|over the limit/.test(why)
      ? ` (a restore travels as one log entry: ` +
        `raise -raft-max-frame-bytes above the database's size)`
      : "";
    if (!restore.continueOnFailure) throw new Error(`${why}${fits}`);
    log.warn(`${why}${fits}; starting empty (continue_on_failure)`);
    return undefined;
  }
}

/** Loads the downloaded backup once a leader is known (lib/backup/restore.ts). */
async function finishRestore(
  file: Downloaded,
  store: Store,
  config: Config,
  signal: AbortSignal,
  log: Log,
  fatal: (err: Error) => void,
): Promise<void> {
  const fsm = store.options.fsm;
  try {
    const outcome = await installRestore(file, {
      leaderId: () => store.leaderId(),
      isLeader: () => store.isLeader(),
      dataIndex: () => fsm.lastCommandIndex,
      load: async (image) => {
        await store.options.db.checkImage(image);
        const { outcome } = await store.execute({
          kind: "load",
          statements: [],
          transaction: false,
          data: image,
        });
        if (outcome.error !== undefined) throw new Error(outcome.error);
      },
    }, signal);
    const said = {
      restored: `restored the database from ${file.source} (${file.sizeBytes} bytes)`,
      not_leader: "another node leads and restores the backup; the downloaded copy is dropped",
      has_data: "the cluster already holds data; the downloaded backup is not loaded",
    }[outcome];
    log.info(said);
    await clearRestoreMarker(config.dataDir);
  } catch (err) {
    // Stopped or fatal: the marker stays, so the next start tries again.
    if (signal.aborted) return;
    const why = err instanceof Error ? err.message : String(err);
    if (config.autoRestore?.continueOnFailure) {
      log.error(`automatic restore from ${file.source} failed: ${why}; running without it`);
      await clearRestoreMarker(config.dataDir);
    } else fatal(new Error(`automatic restore from ${file.source} failed: ${why}`));
  }
}

/** The users file of -auth and the -join-as credentials; throws a message for `fatal:`. */
function loadAuth(config: Config): { auth?: Authenticator; nodeCredentials?: Credentials } {
  if (config.authFile === "") return {};
  const auth = new Authenticator(loadUsersFile(config.authFile));
  if (config.joinAs === "") return { auth };
  return {
    auth,
    nodeCredentials: { username: config.joinAs, password: auth.passwordOf(config.joinAs) },
  };
}

async function removeSelf(
  config: Config,
  cluster: ClusterRuntime,
  membership: Membership,
  isLeader: boolean,
  log: Log,
): Promise<void> {
  if (isLeader) {
    await membership.remove(config.nodeId);
  } else {
    const leader = cluster.leaderAddr();
    if (leader === undefined) throw new Error("no leader to remove this node");
    await cluster.client.remove(leader, config.nodeId, {
      timeoutMs: 10_000,
      credentials: cluster.nodeCredentials,
    });
  }
  log.info("removed this node from the cluster before shutdown");
}

function warnIfNotMember(
  config: Config,
  conf: { voters: readonly string[]; learners: readonly string[] },
  log: Log,
): void {
  const members = [...conf.voters, ...conf.learners];
  if (members.length === 0 || members.includes(config.nodeId)) return;
  log.warn(
    `this node's id "${config.nodeId}" is not in the cluster configuration ` +
      `(${members.join(", ")}); if it was started with another -raft-addr before, pass the old ` +
      `id with -node-id`,
  );
}

function outboundHttpClient(config: Config): Deno.HttpClient | undefined {
  if (config.httpCaCert === undefined) return undefined;
  const mutual = config.httpTls?.verifyClient === true;
  return Deno.createHttpClient({
    caCerts: [config.httpCaCert],
    ...(mutual && config.httpTls ? { cert: config.httpTls.cert, key: config.httpTls.key } : {}),
  });
}

function resolveAddresses(config: Config, httpAddr: string, raftAddr: string): Config {
  const httpAdvAddr = config.httpAdvAddr || httpAddr;
  const raftAdvAddr = config.raftAdvAddr || raftAddr;
  return { ...config, httpAdvAddr, raftAdvAddr, nodeId: config.nodeId || raftAdvAddr };
}

function addrText(addr: Deno.Addr): string {
  const a = addr as Deno.NetAddr;
  return a.hostname.includes(":") ? `[${a.hostname}]:${a.port}` : `${a.hostname}:${a.port}`;
}

/** Records the commit index before stopping (bounded), so a restart applies it at once. */
function flushCommitHint(driver: RaftDriver | undefined): Promise<void> {
  if (driver === undefined) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, 1_000);
    driver.flushCommitHint(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/**
 * The newest snapshot's CRC, checked after an -on-disk fast start. A damaged
 * one is moved aside and replaced at once by a new snapshot of the database
 * (forced: even at the same index), so followers are never sent it.
 */
function verifyInBackground(storage: Storage, driver: RaftDriver, log: Log) {
  const meta = storage.snapshots.latest();
  if (meta === undefined) return;
  storage.snapshots.verify(meta).catch(async (err) => {
    log.warn(
      `snapshot ${meta.term}-${meta.index} failed its background check: ${err}; replacing it`,
    );
    await storage.snapshots.quarantine(meta).catch(() => {});
    // WARN both ways: the repair belongs to the damage report, which an operator reads at WARN.
    driver.snapshotNow(undefined, (e, taken) => {
      if (e === undefined) {
        log.warn(`snapshot ${taken?.term}-${taken?.index} replaces the damaged one`);
      } else log.error(`could not replace the damaged snapshot: ${e.message}`);
    }, { force: true });
  });
}

/**
 * -on-disk at start: keep db.sqlite when its fingerprint matches and the
 * log can continue from the index it vouches for (lib/server/fingerprint.ts);
 * its WAL holds only changes the log will replay, so it goes. Otherwise the
 * database is rebuilt from scratch. Returns the index the file holds.
 */
async function prepareOnDiskDb(
  config: Config,
  storage: Storage,
  voteFloorIndex: number,
  log: Log,
): Promise<number | undefined> {
  const held = voteFloorIndex > 0 ? undefined : matchFingerprint(config.dataDir, config.dbPath);
  const snap = storage.snapshots.latest();
  const first = storage.log.firstIndex();
  const last = storage.log.lastIndex();
  const continues = held !== undefined && held <= last &&
    (snap === undefined ? first === 1 : held >= snap.index);
  if (continues) {
    for (const suffix of ["-wal", "-shm"]) await removeIfPresent(config.dbPath + suffix);
    log.info(`-on-disk: ${config.dbPath} matches its fingerprint at index ${held}; not rebuilt`);
    return held;
  }
  removeFingerprint(config.dataDir);
  await removeDbFiles(config.dbPath);
  return undefined;
}

async function removeIfPresent(path: string): Promise<void> {
  await Deno.remove(path).catch((e) => {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  });
}

async function removeDbFiles(path: string): Promise<void> {
  for (const suffix of ["", "-wal", "-shm"]) {
    await Deno.remove(path + suffix).catch((e) => {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    });
  }
}
