/**
 * The permission each endpoint needs, as rqlite's HTTP service checks them
 * (rqlite-api.md §10), and each cluster-service request.
 *
 * The check comes before the method check (a wrong method without
 * credentials is 401, not 405), so the table is by path and, where rqlite
 * distinguishes, by method. Paths nothing serves (404) and the redirects of
 * `/` and `/console` need no permission. raftlite's `/metrics` needs
 * `status`, like `/debug/vars`.
 *
 * @module
 */

import type { Permission } from "./users.ts";

/** Exact paths and the permissions they need. */
const EXACT: Readonly<Record<string, readonly Permission[]>> = {
  "/debug/vars": ["status"],
  "/metrics": ["status"],
  "/boot": ["load"],
  "/snapshot": ["snapshot"],
  "/reap": ["snapshot"],
};

/** Path prefixes and the permissions they need (matched in this order, as the router). */
const PREFIX: readonly (readonly [string, readonly Permission[]])[] = [
  ["/db/execute", ["execute"]],
  ["/db/query", ["query"]],
  ["/db/request", ["query", "execute"]],
  ["/db/sql", ["query"]],
  ["/db/backup", ["backup"]],
  ["/db/load", ["load"]],
  ["/remove", ["remove"]],
  ["/status", ["status"]],
  ["/nodes", ["status"]],
  ["/readyz", ["ready"]],
  ["/debug/", ["status"]],
  ["/console/", ["ui"]],
];

/**
 * The permissions `method path` needs, or undefined when it needs none
 * (unknown paths answer 404 regardless; OPTIONS is never checked).
 */
export function permissionsFor(method: string, path: string): readonly Permission[] | undefined {
  if (method === "OPTIONS") return undefined;
  if (path === "/leader") return method === "GET" ? ["status"] : ["leader-ops"];
  const exact = EXACT[path];
  if (exact !== undefined) return exact;
  for (const [prefix, perms] of PREFIX) {
    if (path.startsWith(prefix)) return perms;
  }
  return undefined;
}

/**
 * Cluster-service request types that carry client work or membership
 * changes, plus `load`: a forwarded /db/load travels as an execute request
 * (see {@link forwardedWriteKind}).
 */
export type ClusterRequestKind =
  | "nodeMeta"
  | "execute"
  | "load"
  | "query"
  | "request"
  | "join"
  | "notify"
  | "remove"
  | "stepdown";

/** The parts of a forwarded command that tell a load from a write. */
export interface ForwardedWrite {
  readonly kind: string;
  readonly rollbackOnError?: boolean;
}

/**
 * What a forwarded execute request is checked as. /db/load reaches the
 * leader as an execute request carrying either a database image (kind
 * `load`) or SQL text run with `rollbackOnError`, which only /db/load sets
 * (lib/http/load.ts). Both need `load` there, as on the node that took the
 * request and as rqlite's forwarded LOAD; any other write needs `execute`.
 */
export function forwardedWriteKind(cmd: ForwardedWrite): "execute" | "load" {
  return cmd.kind === "load" || cmd.rollbackOnError === true ? "load" : "execute";
}

/**
 * The permissions a cluster-service request needs: forwarded client
 * requests the same as over HTTP, membership changes as rqlite (a join as
 * a non-voter is allowed by `join-read-only` or `join-read-replica` too).
 * `nodeMeta` (API address, version, commit index) needs none: nodes ask it
 * of each other before they know any credentials.
 */
export function clusterPermissions(
  kind: ClusterRequestKind,
  nonVoterJoin = false,
): readonly (readonly Permission[])[] {
  switch (kind) {
    case "nodeMeta":
      return [];
    case "execute":
      return [["execute"]];
    case "load":
      return [["load"]];
    case "query":
      return [["query"]];
    case "request":
      return [["query", "execute"]];
    case "join":
      return nonVoterJoin ? [["join"], ["join-read-only"], ["join-read-replica"]] : [["join"]];
    case "notify":
      return [["join"]];
    case "remove":
      return [["remove"]];
    case "stepdown":
      return [["leader-ops"]];
  }
}
