/**
 * The HTTP service: routing and the behaviour every request shares
 * (rqlite-api.md §0): OPTIONS answered first, the query string validated
 * for every path, rqlite's headers on every response, 404/405 with empty
 * bodies. Handlers are `Request -> Response`; {@link createHandler} is what
 * `Deno.serve` runs and what tests call directly.
 *
 * @module
 */

import { type Authenticator, basicCredentials, permissionsFor } from "../auth/mod.ts";
import { METRICS_CONTENT_TYPE } from "../metrics/mod.ts";
import { BodyTimeoutError, BodyTooLargeError } from "./body.ts";
import { parseQueryParams } from "../sql/params.ts";
import { handleBackup } from "./backup.ts";
import type { HttpContext } from "./context.ts";
import { handleExecute, handleQuery, handleRequest, handleSql } from "./data.ts";
import { handleLoad } from "./load.ts";
import { emptyStatus, textError, withCommonHeaders } from "./response.ts";
import { handleStatus, handleVars } from "./status.ts";
import { handleBoot, handleReap, handleSnapshot } from "./maintenance.ts";
import { handleLeader, handleNodes, handleReadyz, handleRemove } from "./cluster_endpoints.ts";
import { handleConsole } from "../console/mod.ts";

type Handler = (
  req: Request,
  ctx: HttpContext,
  qp: Exclude<ReturnType<typeof parseQueryParams>, { ok: false }>["params"],
) => Response | Promise<Response>;

/** Routes whose path must match exactly. */
const EXACT: Record<string, Handler> = {
  "/leader": handleLeader,
  "/debug/vars": handleVars,
  "/boot": handleBoot,
  "/snapshot": handleSnapshot,
  "/reap": handleReap,
  "/metrics": handleMetrics,
};

/** Routes matched by prefix, as rqlite's mux does, in this order. */
const PREFIX: [string, Handler][] = [
  ["/db/execute", handleExecute],
  ["/db/query", handleQuery],
  ["/db/request", handleRequest],
  ["/db/sql", handleSql],
  ["/db/backup", handleBackup],
  ["/db/load", handleLoad],
  ["/remove", handleRemove],
  ["/status", handleStatus],
  ["/nodes", handleNodes],
  ["/readyz", handleReadyz],
  ["/console/", handleConsole],
];

/** The router's paths, exact and prefix (metric labels are this fixed set; see lib/server/metrics.ts). */
export const ROUTE_PATHS: {
  readonly exact: readonly string[];
  readonly prefix: readonly string[];
} = {
  exact: Object.keys(EXACT),
  prefix: PREFIX.map(([path]) => path),
};

/** The request handler for `Deno.serve`. */
export function createHandler(ctx: HttpContext): (req: Request) => Promise<Response> {
  const common = {
    version: ctx.version,
    allowOrigin: ctx.allowOrigin,
    authEnabled: ctx.auth !== undefined,
  };
  const metrics = ctx.metrics;
  const limit = ctx.maxConcurrentRequests ?? Infinity;
  let inFlight = 0;
  return async (req) => {
    const startMs = performance.now();
    if (inFlight >= limit && !(inFlight < limit + PROBE_RESERVE && isProbe(req.url))) {
      return withCommonHeaders(tooManyRequests(limit), common);
    }
    inFlight++;
    metrics?.requestsInFlight(1);
    let res: Response;
    try {
      res = await route(req, ctx);
    } catch (err) {
      res = errorResponse(err);
    } finally {
      inFlight--;
      metrics?.requestsInFlight(-1);
    }
    if (metrics !== undefined) {
      metrics.observeRequest(pathOf(req.url), res.status, (performance.now() - startMs) / 1000);
    }
    return withCommonHeaders(res, common);
  };
}

async function route(req: Request, ctx: HttpContext): Promise<Response> {
  if (req.method === "OPTIONS") return new Response(null, { status: 200 });
  const url = new URL(req.url);
  // Before anything else about the request (rqlite: 401 before 405).
  if (ctx.auth !== undefined && !(await authorized(req, url.pathname, ctx.auth))) {
    return emptyStatus(401);
  }
  const parsed = parseQueryParams(url.search);
  if (!parsed.ok) return textError(400, parsed.error);
  const path = url.pathname;
  if (path === "/" || path === "") return redirect("/console/", 302);
  if (path === "/console") return redirect("/console/", 301);
  const exact = EXACT[path];
  if (exact !== undefined) return await exact(req, ctx, parsed.params);
  for (const [prefix, handler] of PREFIX) {
    if (path.startsWith(prefix)) return await handler(req, ctx, parsed.params);
  }
  return emptyStatus(404);
}

/** Whether the request's Basic credentials (or `*`) may use what its path needs. */
function authorized(req: Request, path: string, auth: Authenticator): Promise<boolean> | true {
  const perms = permissionsFor(req.method, path);
  if (perms === undefined) return true;
  return auth.allowed(basicCredentials(req.headers.get("Authorization")), perms);
}

/** Requests beyond -max-concurrent-requests that health probes may still make. */
const PROBE_RESERVE = 16;
const PROBES = new Set(["/status", "/readyz", "/metrics", "/debug/vars", "/leader", "/nodes"]);

/** Whether `url` is a cheap health probe, which keeps a small reserve above the limit. */
function isProbe(url: string): boolean {
  return PROBES.has(pathOf(url));
}

/** 503 with Retry-After: the node handles -max-concurrent-requests requests already. */
function tooManyRequests(limit: number): Response {
  const res = textError(
    503,
    `too many concurrent requests: the limit is ${limit} (-max-concurrent-requests); retry shortly`,
  );
  res.headers.set("Retry-After", "1");
  return res;
}

/** A handler's failure: a body that was too large or too slow has its own status, the rest 500. */
function errorResponse(err: unknown): Response {
  if (err instanceof BodyTooLargeError) return textError(413, err.message);
  if (err instanceof BodyTimeoutError) {
    const res = textError(408, err.message);
    res.headers.set("Connection", "close");
    return res;
  }
  return textError(500, err instanceof Error ? err.message : String(err));
}

/** The path of an absolute request URL without building a URL object (hot path). */
function pathOf(url: string): string {
  const start = url.indexOf("/", url.indexOf("//") + 2);
  if (start < 0) return "/";
  const q = url.indexOf("?", start);
  return q < 0 ? url.slice(start) : url.slice(start, q);
}

/** GET /metrics: Prometheus text format (raftlite's; rqlite has none). */
function handleMetrics(req: Request, ctx: HttpContext): Response {
  if (req.method !== "GET") return emptyStatus(405);
  if (ctx.metrics === undefined) return emptyStatus(404);
  return new Response(ctx.metrics.render(), {
    headers: { "Content-Type": METRICS_CONTENT_TYPE },
  });
}

function redirect(location: string, status: number): Response {
  return new Response(null, { status, headers: { Location: location } });
}
