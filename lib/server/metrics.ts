/**
 * The node's metrics for `GET /metrics` (Prometheus text format): what is
 * measured as it happens (request latency by route, log append + fdatasync
 * latency, leader changes, snapshot durations) and what is copied from the
 * node's state when scraped (Raft indexes and term, proposals, queue
 * depths, snapshot and restore counts, SQLite file sizes, memory).
 *
 * Routes are a fixed set (the router's table, `other` for the rest), so the
 * request histogram has a bounded number of series.
 *
 * @module
 */

import type { UploaderStats } from "../backup/mod.ts";
import type { DbClient } from "../db/mod.ts";
import { ROUTE_PATHS } from "../http/server.ts";
import { Family, observe, Registry, type Series } from "../metrics/mod.ts";
import type { Storage } from "../storage/mod.ts";
import type { Store } from "../store/store.ts";
import type { WriteQueue } from "../store/write_queue.ts";
import { VERSION } from "../version.ts";
import type { ClusterRuntime } from "./cluster.ts";

/** Route labels of the request histogram: the HTTP router's paths, then `other`. */
const ROUTES: readonly string[] = [...ROUTE_PATHS.exact, ...ROUTE_PATHS.prefix, "other"];
const EXACT_ROUTES: ReadonlySet<string> = new Set(ROUTE_PATHS.exact);
const OTHER = ROUTES.length - 1;

/** Index in {@link ROUTES} of the route serving `path` (`other` when none does), as the router picks it. */
function routeIndex(path: string): number {
  for (let i = 0; i < OTHER; i++) {
    const r = ROUTES[i]!;
    if (path === r || (!EXACT_ROUTES.has(r) && path.startsWith(r))) return i;
  }
  return OTHER;
}

/** The route label of `path`: its router entry, else "other" (a fixed, bounded set). */
export function routeLabel(path: string): string {
  return ROUTES[routeIndex(path)]!;
}

/** Status class labels by the status code's first digit; index 0 for anything else. */
const STATUS_CLASSES = ["other", "1xx", "2xx", "3xx", "4xx", "5xx"] as const;

function statusClassIndex(status: number): number {
  return status >= 100 && status < 600 ? Math.floor(status / 100) : 0;
}

/** What the collectors read at scrape time. */
export interface MetricSources {
  store(): Store | undefined;
  storage(): Storage | undefined;
  db(): DbClient | undefined;
  readonly writeQueue?: WriteQueue;
  /** Cluster requests refused for their credentials. */
  authRefusals(): number;
  /** The internode side: transport queues and cluster service requests. */
  readonly cluster?: ClusterRuntime;
  /** -auto-backup's counters, when it is configured. */
  readonly backups?: UploaderStats;
}

/** Label values of `raftlite_raft_role` (the core's roles, Prometheus-style). */
const ROLES = {
  leader: "leader",
  follower: "follower",
  candidate: "candidate",
  preCandidate: "pre_candidate",
} as const;

/** One node's metrics. */
export class NodeMetrics {
  readonly registry = new Registry();
  readonly #requests: Family;
  readonly #inFlight: Series;
  readonly #appendSync: Family;
  readonly #appendSyncSeries: Series;
  readonly #leaderChanges: Series;
  readonly #snapshotSeconds: Family;
  readonly #snapshotSeries: Series;
  /** Histogram series by route and status class, found once per pair. */
  /** By route index * STATUS_CLASSES.length + class index; filled on first use (no per-request keys). */
  readonly #requestSeries: (Series | undefined)[] = new Array(
    ROUTES.length * STATUS_CLASSES.length,
  );

  constructor(sources: MetricSources) {
    const r = this.registry;
    this.#requests = r.define(
      "raftlite_http_request_duration_seconds",
      "HTTP request latency until the response headers, by route and status class.",
      "histogram",
      { labels: ["route", "code"], maxSeries: ROUTES.length * STATUS_CLASSES.length },
    );
    this.#inFlight = r.define(
      "raftlite_http_requests_in_flight",
      "HTTP requests being handled now.",
      "gauge",
    ).series();
    this.#appendSync = r.define(
      "raftlite_log_append_sync_duration_seconds",
      "Raft log appends: one write plus one fdatasync, as the storage measured it.",
      "histogram",
    );
    this.#appendSyncSeries = this.#appendSync.series();
    this.#leaderChanges = r.define(
      "raftlite_raft_leader_changes_total",
      "Times this node saw the leader change (including to none).",
      "counter",
    ).series();
    this.#snapshotSeconds = r.define(
      "raftlite_snapshot_duration_seconds",
      "Local snapshots: capture, store and log compaction.",
      "histogram",
    );
    this.#snapshotSeries = this.#snapshotSeconds.series();
    this.#defineCollected(sources);
  }

  /** Records a finished request (latency until the response headers). */
  observeRequest(path: string, status: number, seconds: number): void {
    const route = routeIndex(path);
    const code = statusClassIndex(status);
    const slot = route * STATUS_CLASSES.length + code;
    let s = this.#requestSeries[slot];
    if (s === undefined) {
      s = this.#requests.series(ROUTES[route]!, STATUS_CLASSES[code]!);
      this.#requestSeries[slot] = s;
    }
    observe(this.#requests, s, seconds);
  }

  /** A request started (+1) or finished (-1). */
  requestsInFlight(delta: number): void {
    this.#inFlight.value += delta;
  }

  /** One log append's write + fdatasync took `ms`. */
  observeAppendSync(ms: number): void {
    observe(this.#appendSync, this.#appendSyncSeries, ms / 1000);
  }

  /** The known leader changed. */
  leaderChanged(): void {
    this.#leaderChanges.value++;
  }

  /** A local snapshot took `ms`. */
  observeSnapshot(ms: number): void {
    observe(this.#snapshotSeconds, this.#snapshotSeries, ms / 1000);
  }

  /** The exposition text. */
  render(): string {
    return this.registry.render();
  }

  #defineCollected(src: MetricSources): void {
    const r = this.registry;
    const gauge = (name: string, help: string) => r.define(name, help, "gauge").series();
    const counter = (name: string, help: string) => r.define(name, help, "counter").series();
    const term = gauge("raftlite_raft_term", "Current Raft term.");
    const commit = gauge("raftlite_raft_commit_index", "Highest log index known committed.");
    const applied = gauge("raftlite_raft_applied_index", "Highest log index applied to SQLite.");
    const last = gauge("raftlite_raft_last_log_index", "Index of the last entry in the log.");
    const leader = gauge("raftlite_raft_is_leader", "1 while this node is the leader.");
    const voters = gauge("raftlite_raft_voters", "Voters in the current configuration.");
    const role = r.define(
      "raftlite_raft_role",
      "1 for this node's current Raft role, 0 for the others.",
      "gauge",
      { labels: ["role"], maxSeries: 4 },
    );
    const roleSeries = Object.entries(ROLES).map(([core, label]) =>
      [core, role.series(label)] as const
    );
    const proposals = counter("raftlite_raft_proposals_total", "Commands proposed on this node.");
    const refused = counter(
      "raftlite_raft_proposals_refused_total",
      "Proposals refused at once (queue full or not leader).",
    );
    const failed = counter(
      "raftlite_raft_proposals_failed_total",
      "Accepted proposals that failed later (dropped, overwritten, outcome unknown, stopped).",
    );
    const backlog = gauge(
      "raftlite_raft_apply_backlog_entries",
      "Committed entries not yet applied to SQLite (commit index - applied index).",
    );
    const pending = gauge("raftlite_raft_pending_proposals", "Proposals waiting to be applied.");
    const pendingReads = gauge("raftlite_raft_pending_reads", "Linearizable reads waiting.");
    const invalid = counter(
      "raftlite_raft_invalid_messages_total",
      "Raft messages refused as malformed.",
    );
    const snapshots = counter("raftlite_snapshots_total", "Snapshots taken by this node.");
    const lastSnapshot = gauge(
      "raftlite_snapshot_last_duration_seconds",
      "How long the newest local snapshot took (0 before the first).",
    );
    const appends = counter("raftlite_log_appends_total", "Raft log appends (one fsync each).");
    const logBytes = counter("raftlite_log_written_bytes_total", "Bytes written to the Raft log.");
    const sendQueue = gauge(
      "raftlite_transport_send_queue_messages",
      "Raft messages queued for peers, all peers together (each queue is bounded).",
    );
    const sent = counter("raftlite_transport_messages_sent_total", "Raft messages sent to peers.");
    const dropped = counter(
      "raftlite_transport_messages_dropped_total",
      "Raft messages dropped (queue full, peer unknown or unreachable).",
    );
    const clusterRequests = r.define(
      "raftlite_cluster_requests_total",
      "Cluster service requests received, by type.",
      "counter",
      { labels: ["type"], maxSeries: 16 },
    );
    const installed = counter(
      "raftlite_snapshots_installed_total",
      "Snapshots received from a leader and restored.",
    );
    const restores = counter("raftlite_restores_total", "Database restores (snapshots, loads).");
    const applies = counter("raftlite_apply_batches_total", "Batches applied to SQLite.");
    const commands = counter("raftlite_applied_commands_total", "Commands applied to SQLite.");
    const queueDepth = gauge("raftlite_write_queue_depth", "Queued writes (?queue) not written.");
    const dbInFlight = gauge(
      "raftlite_sqlite_requests_in_flight",
      "Requests queued or running in the SQLite workers.",
    );
    const dbBytes = gauge("raftlite_sqlite_database_bytes", "Size of the SQLite database file.");
    const walBytes = gauge("raftlite_sqlite_wal_bytes", "Size of the SQLite WAL file.");
    const snapshotBytes = gauge(
      "raftlite_snapshot_store_bytes",
      "Bytes of the snapshots kept in the data directory.",
    );
    const rss = gauge("raftlite_process_resident_memory_bytes", "Resident set size.");
    const heap = gauge("raftlite_process_heap_used_bytes", "V8 heap used by the main isolate.");
    const heapTotal = gauge(
      "raftlite_process_heap_total_bytes",
      "V8 heap reserved by the main isolate.",
    );
    r.define("raftlite_build_info", "Always 1; the version as a label.", "gauge", {
      labels: ["version"],
      maxSeries: 1,
    }).set(1, `v${VERSION}`);
    const authRefused = counter(
      "raftlite_cluster_auth_refused_total",
      "Cluster requests refused for their credentials.",
    );
    const backups = src.backups;
    if (backups !== undefined) {
      const uploads = r.define(
        "raftlite_backup_rounds_total",
        "Automatic backup rounds on the leader by outcome (uploaded, failed, skipped: nothing " +
          "applied since the last upload, skipped_id: identical to the stored backup).",
        "counter",
        { labels: ["outcome"], maxSeries: 4 },
      );
      const outcomes = [
        [uploads.series("uploaded"), () => backups.uploadsOk],
        [uploads.series("failed"), () => backups.uploadsFail],
        [uploads.series("skipped"), () => backups.uploadsSkipped],
        [uploads.series("skipped_id"), () => backups.uploadsSkippedId],
      ] as const;
      const lastOk = gauge(
        "raftlite_backup_last_upload_timestamp_seconds",
        "Unix time of this node's last successful automatic backup upload (0 before one).",
      );
      r.onCollect(() => {
        for (const [series, value] of outcomes) series.value = value();
        lastOk.value = backups.lastUploadMs / 1000;
      });
    }
    r.onCollect(() => {
      const mem = Deno.memoryUsage();
      rss.value = mem.rss;
      heap.value = mem.heapUsed;
      heapTotal.value = mem.heapTotal;
      authRefused.value = src.authRefusals();
      queueDepth.value = src.writeQueue?.depth ?? 0;
      const store = src.store();
      if (store !== undefined) {
        const s = store.driver.status();
        term.value = s.term;
        commit.value = s.commit;
        applied.value = s.appliedIndex;
        last.value = s.lastIndex;
        leader.value = s.role === "leader" ? 1 : 0;
        for (const [core, series] of roleSeries) series.value = s.role === core ? 1 : 0;
        failed.value = s.proposalsFailed;
        backlog.value = Math.max(0, s.commit - s.appliedIndex);
        lastSnapshot.value = s.lastSnapshotMs / 1000;
        voters.value = s.conf.voters.length;
        proposals.value = s.proposals;
        refused.value = s.proposalsRefused;
        pending.value = s.pendingProposals;
        pendingReads.value = s.pendingReads;
        invalid.value = s.invalidMessages;
        snapshots.value = s.snapshotsTaken;
        installed.value = s.snapshotsInstalled;
        const fsm = store.options.fsm.stats;
        restores.value = fsm.restores;
        applies.value = fsm.applyBatches;
        commands.value = fsm.appliedCommands;
      }
      const db = src.db();
      if (db !== undefined) {
        dbInFlight.value = db.inFlight;
        dbBytes.value = fileSize(db.path);
        walBytes.value = fileSize(`${db.path}-wal`);
      }
      const storage = src.storage();
      if (storage !== undefined) {
        snapshotBytes.value = storage.snapshots.list().reduce((n, i) => n + i.size, 0);
        appends.value = storage.log.stats.appends;
        logBytes.value = storage.log.stats.bytesWritten;
      }
      const cluster = src.cluster;
      if (cluster !== undefined) {
        const t = cluster.transport.stats();
        let queued = 0;
        for (const p of Object.values(t.peers)) queued += p.queued;
        sendQueue.value = queued;
        sent.value = t.sent;
        dropped.value = t.dropped;
        for (const [type, n] of Object.entries(cluster.server.stats().requests)) {
          clusterRequests.series(type).value = n;
        }
      }
    });
  }
}

function fileSize(path: string): number {
  try {
    return Deno.statSync(path).size;
  } catch {
    return 0;
  }
}
