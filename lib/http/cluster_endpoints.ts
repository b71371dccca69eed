/**
 * Cluster endpoints (rqlite-api.md §4): /nodes (each member contacted in
 * parallel for its metadata, bounded by `timeout`), /leader (GET the
 * leader's node object; POST stepdown), DELETE /remove, and /readyz.
 *
 * @module
 */

import { basicCredentials } from "../auth/mod.ts";
import { ClusterConnectionError, ClusterTimeoutError, RemoteError } from "../cluster/mod.ts";
import { formatGoDuration } from "../sql/duration.ts";
import type { QueryParams } from "../sql/params.ts";
import { NotLeaderStoreError, type Store } from "../store/store.ts";
import { BodyReadError, readText } from "./body.ts";
import type { HttpContext } from "./context.ts";
import { goJson } from "./go_json.ts";
import { emptyStatus, jsonText, plainText, textError } from "./response.ts";

/** rqlite's node object; field order is Go's struct order. */
interface NodeObject {
  id: string;
  api_addr?: string;
  addr: string;
  version: string;
  voter: boolean;
  reachable: boolean;
  leader: boolean;
  time: number;
  time_s: string;
  error?: string;
}

async function describeNode(
  ctx: HttpContext,
  store: Store,
  id: string,
  voter: boolean,
  timeoutMs: number,
): Promise<NodeObject> {
  const t0 = performance.now();
  const addr = id === ctx.nodeId ? ctx.raftAddr : ctx.cluster?.addressOf(id) ?? "";
  const leader = store.leaderId() === id;
  const done = (fields: Partial<NodeObject>): NodeObject => {
    const ms = performance.now() - t0;
    const base: NodeObject = {
      id,
      addr,
      version: "",
      voter,
      reachable: false,
      leader,
      time: ms / 1000,
      time_s: formatGoDuration(ms),
    };
    const out = { ...base, ...fields };
    // Keep Go's field order: api_addr after id.
    return {
      id: out.id,
      ...(out.api_addr === undefined ? {} : { api_addr: out.api_addr }),
      addr: out.addr,
      version: out.version,
      voter: out.voter,
      reachable: out.reachable,
      leader: out.leader,
      time: out.time,
      time_s: out.time_s,
      ...(out.error === undefined ? {} : { error: out.error }),
    };
  };
  if (id === ctx.nodeId) {
    return done({ api_addr: ctx.apiUrl, version: ctx.version, reachable: true });
  }
  if (ctx.cluster === undefined || addr === "") {
    return done({ error: "node address unknown" });
  }
  try {
    const meta = await ctx.cluster.client.nodeMeta(addr, { timeoutMs });
    return done({ api_addr: meta.apiUrl, version: meta.version || "unknown", reachable: true });
  } catch (err) {
    const error = err instanceof ClusterTimeoutError
      ? "timeout waiting for node to respond"
      : err instanceof Error
      ? err.message
      : String(err);
    return done({ error });
  }
}

function byId<T extends { id: string }>(a: T, b: T): number {
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/** GET /nodes */
export async function handleNodes(
  req: Request,
  ctx: HttpContext,
  qp: QueryParams,
): Promise<Response> {
  if (req.method !== "GET") return emptyStatus(405);
  const store = ctx.store();
  if (store === undefined) return textError(503, "store nodes: store not open");
  const conf = store.driver.status().conf;
  const ids = conf.voters.map((id) => ({ id, voter: true }));
  if (qp.nonvoters) { for (const id of conf.learners) ids.push({ id, voter: false }); }
  ids.sort(byId);
  const timeoutMs = qp.timeoutMs ?? 30_000;
  const nodes = await Promise.all(
    ids.map(({ id, voter }) => describeNode(ctx, store, id, voter, timeoutMs)),
  );
  if (qp.ver === "2") {
    return jsonText(goJson({ nodes }, { pretty: qp.pretty, sortKeys: false }));
  }
  const legacy: Record<string, NodeObject> = {};
  for (const n of nodes) legacy[n.id] = n;
  return jsonText(goJson(legacy, { pretty: qp.pretty, sortKeys: false }));
}

/** GET|POST /leader */
export async function handleLeader(
  req: Request,
  ctx: HttpContext,
  qp: QueryParams,
): Promise<Response> {
  const store = ctx.store();
  if (req.method === "GET") {
    if (store === undefined || store.leaderId() === "") return textError(503, "leader not found");
    const leader = store.leaderId();
    const voter = store.driver.status().conf.voters.includes(leader);
    const node = await describeNode(ctx, store, leader, voter, qp.timeoutMs ?? 30_000);
    return jsonText(goJson(node, { pretty: qp.pretty, sortKeys: false }));
  }
  if (req.method !== "POST") return emptyStatus(405);
  if (store === undefined) return textError(503, "leader not found");
  let target: string | undefined;
  const type = req.headers.get("content-type") ?? "";
  const text = await readText(req, ctx.maxBodyBytes);
  if (type === "application/json" && text.length > 0) {
    try {
      const body = JSON.parse(text) as { id?: unknown } | null;
      if (body !== null && typeof body.id === "string" && body.id !== "") target = body.id;
    } catch (err) {
      return textError(400, `invalid JSON: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  if (!store.isLeader()) {
    // rqlite: without wait a follower answers at once; with wait it forwards.
    if (!qp.wait) return new Response(null, { status: 200 });
    const addr = leaderAddr(ctx, store);
    if (addr === undefined || ctx.cluster === undefined) return textError(503, "leader not found");
    return await remoteCall(
      () =>
        ctx.cluster!.client.stepdown(addr, { id: target, wait: true }, {
          timeoutMs: (qp.timeoutMs ?? 30_000) + 1000,
          credentials: basicCredentials(req.headers.get("Authorization")),
        }),
      "remote stepdown not authorized",
    );
  }
  const membership = ctx.cluster?.membership();
  if (membership === undefined) return textError(503, "leader not found");
  try {
    await membership.stepdown(target, qp.wait);
    return new Response(null, { status: 200 });
  } catch (err) {
    return textError(500, err instanceof Error ? err.message : String(err));
  }
}

/** DELETE /remove with body {"id": "..."} */
export async function handleRemove(
  req: Request,
  ctx: HttpContext,
  qp: QueryParams,
): Promise<Response> {
  if (req.method !== "DELETE") return emptyStatus(405);
  const store = ctx.store();
  if (store === undefined) return textError(503, "leader not found");
  let id: string;
  try {
    const body: unknown = JSON.parse(await readText(req, ctx.maxBodyBytes));
    if (body === null || typeof body !== "object" || Array.isArray(body)) return emptyStatus(400);
    const keys = Object.keys(body);
    const value = (body as Record<string, unknown>).id;
    if (keys.length !== 1 || typeof value !== "string") return emptyStatus(400);
    id = value;
  } catch (err) {
    if (err instanceof BodyReadError) throw err; // 413/408/503, answered by the server
    return emptyStatus(400);
  }
  const served = { "X-RQLITE-SERVED-BY": ctx.httpAdvAddr };
  if (store.isLeader()) {
    try {
      await ctx.cluster?.membership()?.remove(id);
      return new Response(null, { status: 200, headers: served });
    } catch (err) {
      if (err instanceof NotLeaderStoreError) return textError(503, "leader not found");
      return textError(500, err instanceof Error ? err.message : String(err));
    }
  }
  const addr = leaderAddr(ctx, store);
  if (addr === undefined || ctx.cluster === undefined) return textError(503, "leader not found");
  if (qp.redirect) {
    try {
      const meta = await ctx.cluster.client.nodeMeta(addr, { timeoutMs: 10_000 });
      const url = new URL(req.url);
      return new Response(null, {
        status: 301,
        headers: { Location: `${meta.apiUrl}${url.pathname}${url.search}` },
      });
    } catch {
      return textError(500, "leader not found");
    }
  }
  const res = await remoteCall(
    () =>
      ctx.cluster!.client.remove(addr, id, {
        timeoutMs: (qp.timeoutMs ?? 30_000) + 1000,
        credentials: basicCredentials(req.headers.get("Authorization")),
      }),
    "remote remove node not authorized",
  );
  if (res.status === 200) res.headers.set("X-RQLITE-SERVED-BY", addr);
  return res;
}

function leaderAddr(ctx: HttpContext, store: Store): string | undefined {
  const leader = store.leaderId();
  return leader === "" ? undefined : ctx.cluster?.addressOf(leader);
}

async function remoteCall(call: () => Promise<void>, unauthorized: string): Promise<Response> {
  try {
    await call();
    return new Response(null, { status: 200 });
  } catch (err) {
    if (err instanceof RemoteError) {
      // rqlite words the refused forward of a remove/stepdown; other 401s have no body.
      if (err.code === "unauthorized") return textError(401, unauthorized);
      if (err.code === "not_leader" || err.code === "leader_not_found") {
        return textError(503, "leader not found");
      }
      return textError(500, err.message);
    }
    if (err instanceof ClusterConnectionError || err instanceof ClusterTimeoutError) {
      return textError(503, "leader not found");
    }
    return textError(500, err instanceof Error ? err.message : String(err));
  }
}

/** GET /readyz */
export async function handleReadyz(
  req: Request,
  ctx: HttpContext,
  qp: QueryParams,
): Promise<Response> {
  if (req.method !== "GET") return emptyStatus(405);
  if (qp.noleader) return plainText("[+]node ok");
  const store = ctx.store();
  if (store === undefined) return plainText("[+]node ok\n[+]leader does not exist", 503);
  if (store.leaderId() === "") return plainText("[+]node ok\n[+]leader does not exist", 503);
  const pending = ctx.notReadyReason?.();
  if (pending !== undefined) return plainText(`[+]node ok\n[+]${pending}`, 503);
  let text = "[+]node ok";
  const addr = store.isLeader() ? undefined : leaderAddr(ctx, store);
  let leaderCommit = store.driver.status().commit;
  if (addr !== undefined && ctx.cluster !== undefined) {
    try {
      const meta = await ctx.cluster.client.nodeMeta(addr, { timeoutMs: qp.timeoutMs ?? 5_000 });
      leaderCommit = meta.commitIndex;
    } catch (err) {
      const why = err instanceof Error ? err.message : String(err);
      return plainText(`${text}\n[+]leader not contactable: ${why}`, 503);
    }
  }
  text += "\n[+]leader ok\n[+]store ok";
  if (qp.sync) {
    const deadline = performance.now() + (qp.timeoutMs ?? 30_000);
    while (store.driver.status().commit < leaderCommit) {
      if (performance.now() > deadline) {
        return plainText(`${text}\n[+]sync timeout waiting for commit index`, 503);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    text += "\n[+]sync ok";
  }
  return plainText(`${text}\n[+]db ok`);
}
