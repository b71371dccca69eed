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
  /** `-max-concurrent-requests`: HTTP requests handled at once. */
  readonly maxConcurrentRequests: number;
  /** `-http-read-timeout`: longest a request body may take to arrive (0 = no limit). */
  readonly httpReadTimeoutMs: number;
  /** `-raft-max-frame-bytes`: largest frame read or written on the Raft port. */
  readonly raftMaxFrameBytes: number;
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
}

/** Milliseconds per Raft tick; heartbeats go out every tick. */
const TICK_MS = 100;

/** Builds and validates the configuration. Throws {@link FlagError} with the fix. */
export function configFromFlags(flags: ParsedFlags): Config {
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
  if (!(maxBody >= 1024)) throw new FlagError("-max-body-bytes must be at least 1024");
  const maxConcurrent = int("max-concurrent-requests");
  if (!(maxConcurrent >= 1 && Number.isSafeInteger(maxConcurrent))) {
    throw new FlagError("-max-concurrent-requests must be at least 1");
  }
  const readTimeout = ms("http-read-timeout");
  if (!(readTimeout >= 0)) throw new FlagError("-http-read-timeout must be a duration >= 0");
  const maxFrameFlag = int("raft-max-frame-bytes");
  const maxFrame = maxFrameFlag === 0 ? Math.max(80 << 20, maxBody + (1 << 20)) : maxFrameFlag;
  if (
    !(maxFrame >= maxBody + (1 << 20) && Number.isSafeInteger(maxFrame) && maxFrame <= 2 ** 32 - 1)
  ) {
    throw new FlagError(
      `-raft-max-frame-bytes must be at least -max-body-bytes + 1 MiB (${maxBody + (1 << 20)}), ` +
        "so a forwarded request fits, and below 4 GiB",
    );
  }
  const maxStatements = int("max-statements");
  if (!(maxStatements >= 1)) throw new FlagError("-max-statements must be at least 1");
  const join = get("join").split(",").map((a) => a.trim()).filter((a) => a !== "");
  for (const addr of join) {
    if (addr.includes("://")) {
      throw new FlagError(`-join address "${addr}" must be a Raft address host:port, not a URL`);
    }
  }
  const bootstrapExpect = int("bootstrap-expect");
  if (!(bootstrapExpect >= 0)) throw new FlagError("-bootstrap-expect must be >= 0");
  if (bootstrapExpect > 0 && join.length === 0) {
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
  const authFile = get("auth");
  const joinAs = get("join-as");
  if (joinAs !== "" && authFile === "") {
    throw new FlagError("-join-as needs -auth: the user's password is read from the users file");
  }
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
    maxConcurrentRequests: maxConcurrent,
    httpReadTimeoutMs: readTimeout,
    raftMaxFrameBytes: maxFrame,
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
    authFile: authFile === "" ? "" : absolute(authFile),
    joinAs,
    ...(http.tls === undefined ? {} : { httpTls: http.tls }),
    ...(http.caCert === undefined ? {} : { httpCaCert: http.caCert }),
    ...(nodeTls === undefined ? {} : { nodeTls }),
  };
}

function absolute(path: string): string {
  if (path.startsWith("/")) return path.replace(/\/+$/, "") || "/";
  return `${Deno.cwd()}/${path}`.replace(/\/\.\//g, "/").replace(/\/+$/, "");
}
