/**
 * What the HTTP handlers need from the running node. Handlers are plain
 * `Request -> Response` functions over this context, so tests build one
 * around a real store without a socket.
 *
 * @module
 */

import type { ClusterClient } from "../cluster/client.ts";
import type { NodeMaintenance } from "./maintenance.ts";
import type { RandomSource } from "../sql/random.ts";
import type { RequestLimiter } from "./limits.ts";
import type { Membership } from "../store/membership.ts";
import type { Store } from "../store/store.ts";
import type { WriteQueue } from "../store/write_queue.ts";
import type { Authenticator, Credentials } from "../auth/mod.ts";

/** Reaching other nodes: forwarding to the leader, node metadata, membership. */
export interface HttpCluster {
  /** The Raft (internode) address of a member, if known. */
  addressOf(id: string): string | undefined;
  readonly client: ClusterClient;
  /** Membership operations (on the leader); undefined until the store is open. */
  membership(): Membership | undefined;
}

/** Counters exposed in /debug/vars under `http`. */
export interface HttpCounters {
  [name: string]: number;
}

/** What the HTTP layer reports to and reads from the node's metrics (lib/server/metrics.ts). */
export interface HttpMetrics {
  /** A finished request: its path, status and latency until the response headers. */
  observeRequest(path: string, status: number, seconds: number): void;
  /** A request started (+1) or finished (-1). */
  requestsInFlight(delta: number): void;
  /** The Prometheus exposition text. */
  render(): string;
}

export interface HttpContext {
  readonly version: string;
  readonly nodeId: string;
  /** Advertised HTTP address (host:port) — X-RQLITE-SERVED-BY. */
  readonly httpAdvAddr: string;
  /** Bound HTTP address. */
  readonly httpBindAddr: string;
  /** Full API URL of this node (`http://host:port`, `https://` with -http-cert). */
  readonly apiUrl: string;
  readonly raftAddr: string;
  readonly allowOrigin: string;
  /** Largest accepted request body. */
  readonly maxBodyBytes: number;
  /** Most statements in one request. */
  readonly maxStatements: number;
  /** Concurrency, body-byte and body-time bounds; undefined in handler tests without them. */
  readonly limiter?: RequestLimiter;
  /** The store once open; undefined while starting (status still answers). */
  store(): Store | undefined;
  /** Other nodes; undefined in handler tests without a cluster. */
  readonly cluster?: HttpCluster;
  /** Queued writes (`/db/execute?queue`); undefined in handler tests that do not need them. */
  readonly writeQueue?: WriteQueue;
  /** /snapshot, /reap, /boot; undefined in handler tests that do not need them. */
  readonly maintenance?: NodeMaintenance;
  /** Extra /status sections (os, runtime, node, build, store details). */
  statusReport(): Promise<Record<string, unknown>>;
  readonly counters: HttpCounters;
  /**
   * More /debug/vars maps (e.g. `cluster`, `snapshot`, `uploader`) and extra
   * `store` counters, read when /debug/vars is asked for.
   */
  varsExtra?(): Record<string, Record<string, number>>;
  /** GET /metrics and request timing; undefined in handler tests that do not need them. */
  readonly metrics?: HttpMetrics;
  /** `-auth`: who may do what; undefined when every request is allowed. */
  readonly auth?: Authenticator;
  /** This node's own credentials (`-join-as`), for batches it forwards on nobody's behalf. */
  readonly nodeCredentials?: Credentials;
  /** Client for other nodes' HTTPS APIs (trusts -http-ca-cert); default fetch's. */
  readonly httpClient?: Deno.HttpClient;
  /** Random source and clock for statement rewriting. */
  readonly random: RandomSource;
  nowMs(): number;
  /** Why the node is not ready although it has a leader (e.g. "auto-restore pending"); undefined when it is. */
  notReadyReason?(): string | undefined;
}

/** Increments a counter. */
export function count(ctx: HttpContext, name: string, by = 1): void {
  ctx.counters[name] = (ctx.counters[name] ?? 0) + by;
}
