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
import { parseQueryParams } from "../sql/params.ts";
import { bodyErrorResponse, BodyReadError } from "./body.ts";
import { pathOf, RETRY_AFTER_S } from "./limits.ts";
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

/** The request handler for `Deno.serve` (`info` from Deno.serve: the slot is held until delivery). */
export function createHandler(
  ctx: HttpContext,
): (req: Request, info?: { completed: Promise<void> }) => Promise<Response> {
  const common = {
    version: ctx.version,
    allowOrigin: ctx.allowOrigin,
    authEnabled: ctx.auth !== undefined,
  };
  const metrics = ctx.metrics;
  const limiter = ctx.limiter;
  return async (req, info) => {
    const startMs = performance.now();
    const ticket = limiter?.admit(req);
    if (limiter !== undefined && ticket === undefined) {
      return withCommonHeaders(overloaded(limiter.maxConcurrent), common);
    }
    metrics?.requestsInFlight(1);
    let res: Response;
    try {
      res = await route(req, ctx);
    } catch (err) {
      if (err instanceof BodyReadError) res = bodyErrorResponse(err);
      else res = textError(500, err instanceof Error ? err.message : String(err));
    } finally {
      metrics?.requestsInFlight(-1);
      if (ticket !== undefined) {
        const release = () => limiter!.release(ticket);
        if (info === undefined) release();
        else info.completed.then(release, release);
      }
    }
    if (metrics !== undefined) {
      metrics.observeRequest(pathOf(req.url), res.status, (performance.now() - startMs) / 1000);
    }
    return withCommonHeaders(res, common);
  };
}

/** 503 at once when the node works on too many requests (never an unbounded queue). */
function overloaded(limit: number): Response {
  const res = textError(
    503,
    `too many concurrent requests: the limit is ${limit} (-max-concurrent-requests); ` +
      `retry in ${RETRY_AFTER_S} s`,
  );
  res.headers.set("Retry-After", String(RETRY_AFTER_S));
  return res;
}

async function route(req: Request, ctx: HttpContext): Promise<Response> {
  if (req.method === "OPTIONS") return new Response(null, { status: 200 });
  let url: URL;
  try {
    url = new URL(req.url);
  } catch {
    // Deno builds the URL from the Host header, which the client chose (Go: 400 too).
    return textError(400, "malformed Host header or request URL");
  }
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
