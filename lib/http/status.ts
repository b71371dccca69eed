/**
 * Diagnostics endpoints: /status and /debug/vars (rqlite-api.md §4); the
 * cluster endpoints live in cluster_endpoints.ts. /status answers 200 from the moment HTTP
 * is up, before the store is open, because rqlite's tooling treats any
 * error there during start-up as fatal.
 *
 * @module
 */

import type { QueryParams } from "../sql/params.ts";
import { count, type HttpContext } from "./context.ts";
import { goJson } from "./go_json.ts";
import { emptyStatus, jsonText } from "./response.ts";

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
    // rqlite's e2e reads these two even before any happened.
    http: { user_snapshots: 0, user_reaps: 0, ...ctx.counters },
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
  for (const [name, map] of Object.entries(ctx.varsExtra?.() ?? {})) {
    vars[name] = { ...(vars[name] as Record<string, unknown> | undefined), ...map };
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
