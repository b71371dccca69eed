/**
 * Finding the leader for a request this node cannot serve (rqlite-api.md
 * §6, §11): its internode address, its HTTP API URL (asked over the
 * cluster service's node-meta call), and the `redirect` answer. Shared by
 * the data endpoints, which forward over the cluster service, and by
 * /db/backup, which streams from the leader's HTTP API.
 *
 * @module
 */

import type { ClusterClient } from "../cluster/mod.ts";
import type { HttpContext } from "./context.ts";
import { textError } from "./response.ts";

/** How long asking the leader for its API URL may take by default. */
const META_TIMEOUT_MS = 10_000;

/** The leader's internode address and a client to reach it, or undefined when unknown. */
export function leaderTarget(
  ctx: HttpContext,
  leaderId: string,
): { addr: string; client: ClusterClient } | undefined {
  if (leaderId === "" || ctx.cluster === undefined) return undefined;
  const addr = ctx.cluster.addressOf(leaderId);
  return addr === undefined ? undefined : { addr, client: ctx.cluster.client };
}

/** The leader's HTTP API URL (`http://host:port`); throws when it cannot be asked. */
export async function leaderApiUrl(
  client: ClusterClient,
  addr: string,
  timeoutMs = META_TIMEOUT_MS,
): Promise<string> {
  const meta = await client.nodeMeta(addr, { timeoutMs });
  return meta.apiUrl;
}

/**
 * rqlite's `redirect` answer: 301 to the leader's API URL with the same
 * path and raw query; 500 `leader not found` when its URL cannot be learned.
 */
export async function redirectToLeader(
  req: Request,
  client: ClusterClient,
  addr: string,
  timeoutMs = META_TIMEOUT_MS,
): Promise<Response> {
  let apiUrl: string;
  try {
    apiUrl = await leaderApiUrl(client, addr, timeoutMs);
  } catch {
    return textError(500, "leader not found");
  }
  const url = new URL(req.url);
  return new Response(null, {
    status: 301,
    headers: { Location: `${apiUrl}${url.pathname}${url.search}` },
  });
}
