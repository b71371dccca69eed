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

/** The request handler for `Deno.serve`. */
export function createHandler(ctx: HttpContext): (req: Request) => Promise<Response> {
  const common = {
    version: ctx.version,
    allowOrigin: ctx.allowOrigin,
    authEnabled: ctx.auth !== undefined,
  };
  const metrics = ctx.metrics;
  return async (req) => {
    const startMs = performance.now();
    metrics?.requestsInFlight(1);
    let res: Response;
    try {
      res = await route(req, ctx);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      res = textError(500, message);
    } finally {
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
