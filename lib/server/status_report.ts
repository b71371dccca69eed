/**
 * The /status document (rqlite-api.md §4): the keys rqlite's tools read,
 * with values from the driver, storage and SQLite worker. Before the store
 * is open, `store` is `{"open":false}`; once open rqlite serialises `open`
 * as `{}` (a quirk kept for compatibility).
 *
 * @module
 */

import type { DbClient } from "../db/mod.ts";
import type { HttpCounters } from "../http/context.ts";
import type { RequestLimiter } from "../http/limits.ts";
import { formatGoDuration } from "../sql/duration.ts";
import type { Storage } from "../storage/mod.ts";
import type { Store } from "../store/store.ts";
import type { WriteQueue } from "../store/write_queue.ts";
import { VERSION } from "../version.ts";
import type { ClusterRuntime } from "./cluster.ts";
import type { Config } from "./config.ts";

export interface StatusSources {
  readonly config: Config;
  readonly store: Store | undefined;
  readonly storage: Storage | undefined;
  readonly db: DbClient | undefined;
  readonly startedMs: number;
  readonly httpCounters: HttpCounters;
  /** The address the HTTP listener is bound to (rqlite reports the listener's, not the flag's). */
  readonly httpBindAddr: string;
  /** Internode transport and cluster client counters. */
  readonly cluster?: ClusterRuntime;
  /** Queued writes (`http.queue._default`). */
  readonly writeQueue?: WriteQueue;
  /** Request admission (`http.limits`): in flight now and refusals so far. */
  readonly limiter?: RequestLimiter;
}

const RAFT_STATE: Record<string, string> = {
  leader: "Leader",
  follower: "Follower",
  candidate: "Candidate",
  preCandidate: "Candidate",
};

/** Builds the /status object (keys are sorted when encoded, as Go maps are). */
export function statusReport(src: StatusSources): Promise<Record<string, unknown>> {
  const { config } = src;
  const now = Date.now();
  return Promise.resolve({
    os: {
      pid: Deno.pid,
      ppid: Deno.ppid,
      page_size: 4096,
      executable: Deno.execPath(),
      hostname: Deno.hostname(),
    },
    runtime: {
      GOARCH: Deno.build.arch === "x86_64" ? "amd64" : Deno.build.arch,
      GOOS: Deno.build.os,
      GOMAXPROCS: navigator.hardwareConcurrency,
      num_cpu: navigator.hardwareConcurrency,
      num_goroutine: 0,
      version: `deno${Deno.version.deno}`,
    },
    http: {
      bind_addr: src.httpBindAddr,
      auth: config.authFile === "" ? "disabled" : "enabled",
      tls: { enabled: "false" },
      allow_origin: config.httpAllowOrigin || undefined,
      counters: { ...src.httpCounters },
      queue: src.writeQueue === undefined ? undefined : { _default: queueSection(src.writeQueue) },
      limits: src.limiter?.stats(),
    },
    node: {
      start_time: new Date(src.startedMs).toISOString(),
      current_time: new Date(now).toISOString(),
      uptime: formatGoDuration(now - src.startedMs),
    },
    build: {
      version: `v${VERSION}`,
      commit: "unknown",
      compiler_toolchain: `deno ${Deno.version.deno}`,
      compiler_command: "deno",
      build_time: "unknown",
    },
    cluster: {
      addr: config.raftAdvAddr,
      api_addr: `${config.httpTls === undefined ? "http" : "https"}://${config.httpAdvAddr}`,
      https: String(config.httpTls !== undefined),
      transport: src.cluster?.transport.stats(),
      auth_enabled: config.authFile !== "",
      num_auth_refused: src.cluster?.authRefusals ?? 0,
      mux: src.cluster?.mux.stats(),
    },
    store: storeSection(src),
  });
}

function storeSection(src: StatusSources): Record<string, unknown> {
  const { store, storage, config } = src;
  if (store === undefined || storage === undefined) return { open: false };
  const s = store.driver.status();
  const leaderId = s.leader;
  const snapshot = storage.snapshots.latest();
  const fsm = store.options.fsm.stats;
  // Only this node's Raft address is known without clustering; other ids stand for theirs.
  const raftAddrOf = (id: string) =>
    id === config.nodeId ? config.raftAdvAddr : src.cluster?.addressOf(id) ?? "";
  return {
    open: {},
    node_id: config.nodeId,
    addr: config.raftAdvAddr,
    leader: { node_id: leaderId, addr: leaderId === "" ? "" : raftAddrOf(leaderId) },
    ready: leaderId !== "",
    fsm_index: s.appliedIndex,
    db_applied_index: s.appliedIndex,
    fsm_update_time: fsm.lastUpdateMs === 0 ? "" : new Date(fsm.lastUpdateMs).toISOString(),
    strong_read_term: store.strongReadTerm,
    raft: {
      state: RAFT_STATE[s.role] ?? "Follower",
      term: s.term,
      commit_index: s.commit,
      applied_index: s.appliedIndex,
      fsm_pending: Math.max(0, s.commit - s.appliedIndex),
      last_log_index: s.lastIndex,
      first_log_index: s.firstIndex,
      last_snapshot_index: snapshot?.index ?? 0,
      last_snapshot_term: snapshot?.term ?? 0,
      num_peers: Math.max(0, s.conf.voters.length - 1),
      voter: s.conf.voters.includes(config.nodeId),
      latest_configuration: s.conf,
      pending_proposals: s.pendingProposals,
      invalid_messages: s.invalidMessages,
    },
    nodes: [
      ...s.conf.voters.map((id) => ({ id, addr: raftAddrOf(id), suffrage: "voter" })),
      ...s.conf.learners.map((id) => ({ id, addr: raftAddrOf(id), suffrage: "nonvoter" })),
    ],
    sqlite3: {
      path: config.onDisk ? config.dbPath : ":memory:",
      version: "3.53.2",
      fk_constraints: config.foreignKeys ? "enabled" : "disabled",
    },
    snapshot_store: {
      dir: `${config.dataDir}/snapshots`,
      snapshots: storage.snapshots.list().map((i) => `${i.meta.term}-${i.meta.index}`),
      sizes: storage.snapshots.list().map((i) => i.size),
    },
    snapshot_threshold: config.snapshotThreshold,
    snapshot_interval: formatGoDuration(config.snapshotIntervalMs),
    trailing_logs: config.trailingEntries,
    snapshots_taken: s.snapshotsTaken,
    snapshots_installed: s.snapshotsInstalled,
    last_snapshot_duration_ms: s.lastSnapshotMs,
    restores: fsm.restores,
    apply_timeout: formatGoDuration(config.applyTimeoutMs),
    election_timeout: formatGoDuration(config.electionTicks * config.tickMs),
    heartbeat_timeout: formatGoDuration(config.heartbeatTicks * config.tickMs),
    dir: config.dataDir,
  };
}

/**
 * rqlite's `http.queue._default`: the queue's settings and
 * `sequence_number`, the last sequence number whose batch was written (0
 * before the first), plus raftlite's counters.
 */
function queueSection(q: WriteQueue): Record<string, unknown> {
  const o = q.options;
  const st = q.stats();
  return {
    sequence_number: st.sequenceNumber,
    max_size: o.capacity,
    batch_size: o.batchSize,
    timeout: formatGoDuration(o.timeoutMs),
    tx: o.transaction,
    depth: st.depth,
    num_batches: st.batches,
    num_statements: st.statements,
    num_failed_attempts: st.failedAttempts,
    num_rejected_batches: st.rejectedBatches,
    num_dropped: st.dropped,
    num_refused_full: st.refusedFull,
  };
}
