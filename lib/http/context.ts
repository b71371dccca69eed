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

export interface HttpContext {
  readonly version: string;
  readonly nodeId: string;
  /** Advertised HTTP address (host:port) — X-RQLITE-SERVED-BY. */
  readonly httpAdvAddr: string;
  /** Bound HTTP address. */
  readonly httpBindAddr: string;
  /** Full API URL of this node (`http://host:port`). */
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
  /** Random source and clock for statement rewriting. */
  readonly random: RandomSource;
  nowMs(): number;
}

/** Increments a counter. */
export function count(ctx: HttpContext, name: string, by = 1): void {
  ctx.counters[name] = (ctx.counters[name] ?? 0) + by;
}
