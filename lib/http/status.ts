/**
 * Cluster and diagnostics endpoints: /status, /nodes, /leader, /readyz and
 * /debug/vars (rqlite-api.md §4). /status answers 200 from the moment HTTP
 * is up, before the store is open, because rqlite's tooling treats any
 * error there during start-up as fatal.
 *
 * @module
 */

import { formatGoDuration } from "../sql/duration.ts";
import type { QueryParams } from "../sql/params.ts";
import type { Store } from "../store/store.ts";
import { count, type HttpContext } from "./context.ts";
import { goJson } from "./go_json.ts";
import { emptyStatus, jsonText, plainText, textError } from "./response.ts";

/** GET /status */
export async function handleStatus(
  req: Request,
  ctx: HttpContext,
  qp: QueryParams,
): Promise<Response> {
  if (req.method !== "GET") return emptyStatus(405);
  const report = await ctx.statusReport();
  let value: unknown = report;
  if (qp.key !== undefined && qp.key !== "") {
    for (const part of qp.key.split(".")) {
      if (value === null || typeof value !== "object" || Array.isArray(value)) break;
      value = (value as Record<string, unknown>)[part] ?? {};
    }
  }
  return jsonText(goJson(value, { pretty: qp.pretty }));
}

/** One node as /nodes and /leader show it (Go struct: field order kept). */
function nodeObject(ctx: HttpContext, store: Store, id: string, voter: boolean, t0: number) {
  const elapsedMs = performance.now() - t0;
  const self = id === ctx.nodeId;
  const leader = store.leaderId() === id;
  // Without clustering, only this node can be contacted.
  return self
    ? {
      id,
      api_addr: ctx.apiUrl,
      addr: ctx.raftAddr,
      version: ctx.version,
      voter,
      reachable: true,
      leader,
      time: elapsedMs / 1000,
      time_s: formatGoDuration(elapsedMs),
    }
    : {
      id,
      addr: id,
      version: "",
      voter,
      reachable: false,
      leader,
      time: elapsedMs / 1000,
      time_s: formatGoDuration(elapsedMs),
      error: "node is not reachable: clustering is not available in this build",
    };
}

/** GET /nodes */
export function handleNodes(req: Request, ctx: HttpContext, qp: QueryParams): Response {
  if (req.method !== "GET") return emptyStatus(405);
  const store = ctx.store();
  if (store === undefined) return textError(503, "store nodes: store not open");
  const t0 = performance.now();
  const conf = store.driver.status().conf;
  const ids = [...conf.voters.map((id) => ({ id, voter: true }))];
  if (qp.nonvoters) { for (const id of conf.learners) ids.push({ id, voter: false }); }
  ids.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const nodes = ids.map(({ id, voter }) => nodeObject(ctx, store, id, voter, t0));
  if (qp.ver === "2") {
    return jsonText(goJson({ nodes }, { pretty: qp.pretty, sortKeys: false }));
  }
  // The map is keyed (sorted) by id; each node keeps Go's field order.
  const text = `{${
    nodes.map((n) => `${goJson(n.id)}:${goJson(n, { sortKeys: false })}`).join(",")
  }}`;
  return jsonText(qp.pretty ? goJson(JSON.parse(text), { pretty: true, sortKeys: false }) : text);
}

/** GET|POST /leader */
export function handleLeader(req: Request, ctx: HttpContext, qp: QueryParams): Response {
  const store = ctx.store();
  if (req.method === "GET") {
    if (store === undefined || store.leaderId() === "") return textError(503, "leader not found");
    const t0 = performance.now();
    const leader = store.leaderId();
    const voter = store.driver.status().conf.voters.includes(leader);
    return jsonText(
      goJson(nodeObject(ctx, store, leader, voter, t0), { pretty: qp.pretty, sortKeys: false }),
    );
  }
  if (req.method !== "POST") return emptyStatus(405);
  if (store === undefined || store.leaderId() === "") return textError(503, "leader not found");
  const others = store.driver.status().conf.voters.filter((id) => id !== store.leaderId());
  if (others.length === 0) {
    return textError(500, "stepdown: no other voter to hand leadership to");
  }
  return textError(503, "stepdown needs clustering, which is not available in this build");
}

/** GET /readyz */
export function handleReadyz(req: Request, ctx: HttpContext, qp: QueryParams): Response {
  if (req.method !== "GET") return emptyStatus(405);
  if (qp.noleader) return plainText("[+]node ok");
  const store = ctx.store();
  if (store === undefined) return plainText("[+]node ok\n[+]leader does not exist", 503);
  if (store.leaderId() === "") return plainText("[+]node ok\n[+]leader does not exist", 503);
  let text = "[+]node ok\n[+]leader ok\n[+]store ok";
  if (qp.sync) text += "\n[+]sync ok";
  return plainText(`${text}\n[+]db ok`);
}

/** ANY /debug/vars: Go expvar layout. */
export async function handleVars(
  _req: Request,
  ctx: HttpContext,
  qp: QueryParams,
): Promise<Response> {
  const store = ctx.store();
  const mem = Deno.memoryUsage();
  const vars: Record<string, unknown> = {
    cmdline: ["raftlite", ...Deno.args],
    memstats: {
      Alloc: mem.heapUsed,
      HeapAlloc: mem.heapUsed,
      HeapSys: mem.heapTotal,
      Sys: mem.rss,
      ExternalAlloc: mem.external,
    },
    http: { ...ctx.counters },
  };
  if (store !== undefined) {
    const s = store.driver.status();
    const fsm = store.options.fsm.stats;
    vars.store = {
      num_snapshots: fsm.snapshots,
      num_restores: fsm.restores,
      num_applied_commands: fsm.appliedCommands,
      num_apply_batches: fsm.applyBatches,
      raft_commit_index: s.commit,
      raft_applied_index: s.appliedIndex,
      num_invalid_raft_messages: s.invalidMessages,
    };
  }
  count(ctx, "debug_vars");
  const names = Object.keys(vars).sort();
  const wanted = qp.key === undefined ? names : names.filter((n) => n === qp.key);
  // Go's expvar writes its Func vars (cmdline, memstats) with json.Marshal and
  // its Map vars as `{"k": v, "k2": v2}` (keys sorted, ": " and ", ").
  const lines = wanted.map((n) =>
    `${goJson(n)}: ${GO_FUNC_VARS.has(n) ? goJson(vars[n]) : expvarMap(vars[n])}`
  );
  await Promise.resolve();
  return jsonText(`{\n${lines.join(",\n")}\n}\n`);
}

/** The expvar vars that Go publishes as `expvar.Func` (encoded with json.Marshal). */
const GO_FUNC_VARS = new Set(["cmdline", "memstats"]);

/** Go's `expvar.Map.String()`: `{"a": 1, "b": 2}` with keys sorted. */
function expvarMap(value: unknown): string {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return goJson(value);
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${goJson(k)}: ${expvarMap(v)}`).join(", ")}}`;
}
