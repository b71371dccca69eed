/**
 * The node's configuration, derived from rqlited-style flags
 * (lib/config/flags.ts) with validation that says what to fix.
 *
 * @module
 */

import { FlagError, type ParsedFlags, parseDurationMs } from "../config/flags.ts";
import type { HttpTlsConfig } from "../http/listen.ts";
import type { NodeTlsConfig } from "../transport/tls.ts";
import { httpTlsFromFlags, nodeTlsFromFlags } from "./tls_config.ts";
import { type DiscoveryConfig, discoveryFromFlags } from "./discovery.ts";
import {
  type BackupConfig,
  BackupConfigError,
  parseBackupConfig,
  parseRestoreConfig,
  type RestoreConfig,
} from "../backup/config.ts";

/** Everything a node needs to start. Durations are in milliseconds. */
export interface Config {
  readonly dataDir: string;
  /** "" until resolved: defaults to the advertised Raft address. */
  readonly nodeId: string;
  readonly httpAddr: string;
  readonly httpAdvAddr: string;
  readonly raftAddr: string;
  readonly raftAdvAddr: string;
  readonly httpAllowOrigin: string;
  readonly maxBodyBytes: number;
  readonly maxStatements: number;
  /** `-max-concurrent-requests`: HTTP requests in flight at most (probes get a small reserve above). */
  readonly maxConcurrentRequests: number;
  /** `-http-read-timeout`: time a client has to send a request body. */
  readonly httpReadTimeoutMs: number;
  /** `-raft-max-frame-bytes` resolved: largest frame on the Raft port (Raft and cluster service). */
  readonly raftMaxFrameBytes: number;
  /** `-raft-max-conns`: connections open at once on the Raft port. */
  readonly raftMaxConns: number;
  /** `-raft-idle-timeout`: a Raft-port connection that completes no frame for this long is closed. */
  readonly raftIdleTimeoutMs: number;
  readonly onDisk: boolean;
  /** `<data-dir>/db.sqlite`. */
  readonly dbPath: string;
  readonly foreignKeys: boolean;
  /** Raft timing: one tick, and the election/heartbeat periods in ticks. */
  readonly tickMs: number;
  readonly electionTicks: number;
  readonly heartbeatTicks: number;
  readonly snapshotThreshold: number;
  readonly trailingEntries: number;
  /** -raft-snap-int: snapshot this often when anything changed (0: never by time). */
  readonly snapshotIntervalMs: number;
  readonly applyTimeoutMs: number;
  readonly raftLogLevel: "ERROR" | "WARN" | "INFO" | "DEBUG";
  /** `-log-level` (raftlite): threshold of every component but raft, cluster, transport, storage. */
  readonly logLevel: "ERROR" | "WARN" | "INFO" | "DEBUG";
  readonly shutdownStepdown: boolean;
  /** Raft addresses to join (`-join`), empty when not joining. */
  readonly join: readonly string[];
  readonly joinAttempts: number;
  readonly joinIntervalMs: number;
  /** `-bootstrap-expect`: voters to wait for before bootstrapping (0 = off). */
  readonly bootstrapExpect: number;
  readonly bootstrapExpectTimeoutMs: number;
  /** `-raft-non-voter`: join as a read-only node. */
  readonly nonVoter: boolean;
  /** `-raft-cluster-remove-shutdown`: leave the cluster on graceful shutdown. */
  readonly clusterRemoveShutdown: boolean;
  readonly connectTimeoutMs: number;
  /** `-write-queue-capacity`: queued-write requests held at most. */
  readonly writeQueueCapacity: number;
  /** `-write-queue-batch-size`: queued requests per Raft entry at most. */
  readonly writeQueueBatchSize: number;
  /** `-write-queue-timeout`: longest a queued write waits for its batch to fill. */
  readonly writeQueueTimeoutMs: number;
  /** `-write-queue-tx`: each queued batch in one transaction. */
  readonly writeQueueTx: boolean;
  /** `-disco-mode dns|dns-srv` with `-disco-config`: Raft addresses from DNS instead of -join. */
  readonly discovery?: DiscoveryConfig;
  /** `-auth`: path of the users file, "" when every request is allowed. */
  readonly authFile: string;
  /** `-join-as`: the user whose credentials this node sends for join/notify/remove ("" = none). */
  readonly joinAs: string;
  /** HTTPS (`-http-cert`/`-http-key`, client verification); undefined: plain HTTP. */
  readonly httpTls?: HttpTlsConfig;
  /** `-http-ca-cert` (PEM): trusted when this node calls another node's HTTPS API. */
  readonly httpCaCert?: string;
  /** Internode TLS (`-node-*`); undefined: plain TCP. */
  readonly nodeTls?: NodeTlsConfig;
  /** `-auto-backup FILE`: periodic backups by the leader. */
  readonly autoBackup?: BackupConfig;
  /** `-auto-restore FILE`: restore on the first start of an empty node. */
  readonly autoRestore?: RestoreConfig;
}

/** Milliseconds per Raft tick; heartbeats go out every tick. */
const TICK_MS = 100;

/** Builds and validates the configuration. Throws {@link FlagError} with the fix. */
export function configFromFlags(
  flags: ParsedFlags,
  env: (name: string) => string | undefined = (name) => Deno.env.get(name),
): Config {
  const get = (name: string): string => flags.values.get(name) ?? "";
  const int = (name: string): number => Number(get(name));
  const ms = (name: string): number => parseDurationMs(get(name)) ?? NaN;
  const httpAddr = get("http-addr");
  const raftAddr = get("raft-addr");
  if (httpAddr.includes("://")) {
    throw new FlagError("HTTP bind address should not include protocol (http:// or https://)");
  }
  for (const [name, addr] of [["http-addr", httpAddr], ["raft-addr", raftAddr]]) {
    if (!/:\d+$/.test(addr ?? "")) throw new FlagError(`-${name} "${addr}" must be host:port`);
  }
  if (httpAddr === raftAddr && !httpAddr.endsWith(":0")) {
    throw new FlagError("HTTP and Raft addresses must differ");
  }
  const election = Math.max(ms("raft-election-timeout"), ms("raft-heartbeat-timeout"));
  if (!(election >= 2 * TICK_MS)) {
    throw new FlagError(`-raft-election-timeout must be at least ${2 * TICK_MS}ms`);
  }
  const snap = int("raft-snap");
  if (!(snap >= 0)) throw new FlagError("-raft-snap must be >= 0");
  const snapInterval = ms("raft-snap-int");
  if (!(snapInterval >= 0)) throw new FlagError("-raft-snap-int must be a duration >= 0");
  const level = get("raft-log-level").toUpperCase();
  if (!["ERROR", "WARN", "INFO", "DEBUG"].includes(level)) {
    throw new FlagError(
      `-raft-log-level "${get("raft-log-level")}": use ERROR, WARN, INFO or DEBUG`,
    );
  }
  const logLevel = get("log-level").toUpperCase();
  if (!["ERROR", "WARN", "INFO", "DEBUG"].includes(logLevel)) {
    throw new FlagError(`-log-level "${get("log-level")}": use ERROR, WARN, INFO or DEBUG`);
  }
  const maxBody = int("max-body-bytes");
  if (!(maxBody >= 1024 && maxBody <= MAX_BODY_BYTES)) {
    throw new FlagError(`-max-body-bytes must be between 1024 and ${MAX_BODY_BYTES}`);
  }
  const maxStatements = int("max-statements");
  if (!(maxStatements >= 1)) throw new FlagError("-max-statements must be at least 1");
  const limits = limitsFromFlags(int, ms, maxBody);
  const join = get("join").split(",").map((a) => a.trim()).filter((a) => a !== "");
  for (const addr of join) {
    if (addr.includes("://")) {
      throw new FlagError(`-join address "${addr}" must be a Raft address host:port, not a URL`);
    }
  }
  const bootstrapExpect = int("bootstrap-expect");
  if (!(bootstrapExpect >= 0)) throw new FlagError("-bootstrap-expect must be >= 0");
  if (bootstrapExpect > 0 && join.length === 0 && get("disco-mode") === "") {
    throw new FlagError("-bootstrap-expect requires -join with the addresses of the nodes");
  }
  const nonVoter = get("raft-non-voter") === "true";
  if (nonVoter && bootstrapExpect > 0) {
    throw new FlagError("a non-voter cannot bootstrap a cluster (-bootstrap-expect)");
  }
  const joinAttempts = int("join-attempts");
  if (!(joinAttempts >= 1)) throw new FlagError("-join-attempts must be at least 1");
  const writeQueueCapacity = int("write-queue-capacity");
  if (!(writeQueueCapacity >= 1 && Number.isSafeInteger(writeQueueCapacity))) {
    throw new FlagError("-write-queue-capacity must be at least 1");
  }
  const writeQueueBatchSize = int("write-queue-batch-size");
  if (!(writeQueueBatchSize >= 1 && Number.isSafeInteger(writeQueueBatchSize))) {
    throw new FlagError("-write-queue-batch-size must be at least 1");
  }
  const writeQueueTimeoutMs = ms("write-queue-timeout");
  if (!(writeQueueTimeoutMs > 0)) {
    throw new FlagError("-write-queue-timeout must be a duration > 0, such as 50ms");
  }
  const discovery = discoveryFromFlags(get("disco-mode"), get("disco-config"));
  if (discovery !== undefined && join.length > 0) {
    throw new FlagError("-disco-mode and -join cannot be used together: DNS gives the addresses");
  }
  if (discovery !== undefined && !nonVoter && bootstrapExpect === 0) {
    throw new FlagError(
      "-disco-mode dns/dns-srv needs -bootstrap-expect N (the number of voters to wait for)",
    );
  }
  const authFile = get("auth");
  const joinAs = get("join-as");
  if (joinAs !== "" && authFile === "") {
    throw new FlagError("-join-as needs -auth: the user's password is read from the users file");
  }
  const backups = backupsFromFlags(get, env, join.length > 0, bootstrapExpect > 0);
  const http = httpTlsFromFlags(get);
  const nodeTls = nodeTlsFromFlags(get);
  const dataDir = absolute(flags.dataDir);
  return {
    dataDir,
    nodeId: get("node-id"),
    httpAddr,
    httpAdvAddr: get("http-adv-addr"),
    raftAddr,
    raftAdvAddr: get("raft-adv-addr"),
    httpAllowOrigin: get("http-allow-origin"),
    maxBodyBytes: maxBody,
    maxStatements,
    ...limits,
    onDisk: get("on-disk") === "true",
    dbPath: `${dataDir}/db.sqlite`,
    foreignKeys: get("fk") === "true",
    tickMs: TICK_MS,
    electionTicks: Math.round(election / TICK_MS),
    heartbeatTicks: 1,
    snapshotThreshold: snap,
    // rqlite keeps 1.25 x -raft-snap entries behind a snapshot.
    trailingEntries: Math.floor(snap * 1.25),
    snapshotIntervalMs: snapInterval,
    applyTimeoutMs: ms("raft-apply-timeout"),
    raftLogLevel: level as Config["raftLogLevel"],
    logLevel: logLevel as Config["logLevel"],
    shutdownStepdown: get("raft-shutdown-stepdown") === "true",
    join,
    joinAttempts,
    joinIntervalMs: ms("join-interval"),
    bootstrapExpect,
    bootstrapExpectTimeoutMs: ms("bootstrap-expect-timeout"),
    nonVoter,
    clusterRemoveShutdown: get("raft-cluster-remove-shutdown") === "true",
    connectTimeoutMs: ms("cluster-connect-timeout"),
    writeQueueCapacity,
    writeQueueBatchSize,
    writeQueueTimeoutMs,
    writeQueueTx: get("write-queue-tx") === "true",
    ...(discovery === undefined ? {} : { discovery }),
    authFile: authFile === "" ? "" : absolute(authFile),
    joinAs,
    ...(http.tls === undefined ? {} : { httpTls: http.tls }),
    ...(http.caCert === undefined ? {} : { httpCaCert: http.caCert }),
    ...(nodeTls === undefined ? {} : { nodeTls }),
    ...backups,
  };
}

/**
 * `-auto-backup` and `-auto-restore`: each names a JSON file (lib/backup/config.ts),
 * read and checked now so a mistake stops the start with what to fix.
 */
function backupsFromFlags(
  get: (name: string) => string,
  env: (name: string) => string | undefined,
  joining: boolean,
  bootstrapExpect: boolean,
): { autoBackup?: BackupConfig; autoRestore?: RestoreConfig } {
  const read = (flag: string): string | undefined => {
    const path = get(flag);
    if (path === "") return undefined;
    try {
      return Deno.readTextFileSync(path);
    } catch (err) {
      throw new FlagError(`-${flag} ${path}: cannot read it: ${(err as Error).message}`);
    }
  };
  const out: { autoBackup?: BackupConfig; autoRestore?: RestoreConfig } = {};
  try {
    const backup = read("auto-backup");
    if (backup !== undefined) {
      out.autoBackup = parseBackupConfig(backup, env, `-auto-backup ${get("auto-backup")}`);
    }
    const restore = read("auto-restore");
    if (restore !== undefined) {
      out.autoRestore = parseRestoreConfig(restore, env, `-auto-restore ${get("auto-restore")}`);
    }
  } catch (err) {
    if (err instanceof BackupConfigError) throw new FlagError(err.message);
    throw err;
  }
  if (out.autoRestore !== undefined && joining && !bootstrapExpect) {
    throw new FlagError(
      "-auto-restore cannot be used with -join: a joining node gets its data from the cluster " +
        "(use it with -bootstrap-expect, or on the first node only)",
    );
  }
  return out;
}

const MiB = 1024 * 1024;
/**
 * Largest -max-body-bytes: a body is decoded into one string and parsed on
 * a heap of about 1 GiB (lib/server/v8_flags.ts); far larger cannot work.
 */
const MAX_BODY_BYTES = 256 * MiB;
/** -raft-max-frame-bytes 0: at least this much (room for large log entries and snapshots' chunks). */
const DEFAULT_RAFT_FRAME_BYTES = 80 * MiB;
/** Room beyond a request body in a frame: a forwarded request carries its options and credentials. */
const FRAME_OVERHEAD_BYTES = 1 * MiB;
/** The frame length prefix is a u32. */
const MAX_FRAME_BYTES = 0xffff_ffff;
/** Fewer Raft-port connections could not serve one peer's Raft, snapshot and cluster connections. */
const MIN_RAFT_CONNS = 8;
/** A shorter idle timeout would close peers' connections between elections for nothing. */
const MIN_RAFT_IDLE_MS = 1_000;

/** The limits that protect the node (README "Limits"), validated. */
function limitsFromFlags(
  int: (name: string) => number,
  ms: (name: string) => number,
  maxBodyBytes: number,
): Pick<
  Config,
  | "maxConcurrentRequests"
  | "httpReadTimeoutMs"
  | "raftMaxFrameBytes"
  | "raftMaxConns"
  | "raftIdleTimeoutMs"
> {
  const maxConcurrentRequests = int("max-concurrent-requests");
  if (!(Number.isSafeInteger(maxConcurrentRequests) && maxConcurrentRequests >= 1)) {
    throw new FlagError("-max-concurrent-requests must be at least 1");
  }
  const httpReadTimeoutMs = ms("http-read-timeout");
  if (!(httpReadTimeoutMs > 0)) {
    throw new FlagError("-http-read-timeout must be a duration > 0, such as 60s");
  }
  const minFrame = maxBodyBytes + FRAME_OVERHEAD_BYTES;
  let raftMaxFrameBytes = int("raft-max-frame-bytes");
  if (raftMaxFrameBytes === 0) raftMaxFrameBytes = Math.max(DEFAULT_RAFT_FRAME_BYTES, minFrame);
  if (!(raftMaxFrameBytes >= minFrame && raftMaxFrameBytes <= MAX_FRAME_BYTES)) {
    throw new FlagError(
      `-raft-max-frame-bytes must be 0 (automatic) or between -max-body-bytes + 1 MiB ` +
        `(${minFrame}, so a forwarded request fits) and ${MAX_FRAME_BYTES}`,
    );
  }
  const raftMaxConns = int("raft-max-conns");
  if (!(Number.isSafeInteger(raftMaxConns) && raftMaxConns >= MIN_RAFT_CONNS)) {
    throw new FlagError(`-raft-max-conns must be at least ${MIN_RAFT_CONNS}`);
  }
  const raftIdleTimeoutMs = ms("raft-idle-timeout");
  if (!(raftIdleTimeoutMs >= MIN_RAFT_IDLE_MS)) {
    throw new FlagError(`-raft-idle-timeout must be at least ${MIN_RAFT_IDLE_MS / 1000}s`);
  }
  return {
    maxConcurrentRequests,
    httpReadTimeoutMs,
    raftMaxFrameBytes,
    raftMaxConns,
    raftIdleTimeoutMs,
  };
}

function absolute(path: string): string {
  if (path.startsWith("/")) return path.replace(/\/+$/, "") || "/";
  return `${Deno.cwd()}/${path}`.replace(/\/\.\//g, "/").replace(/\/+$/, "");
}
