/**
 * The data endpoints: /db/execute, /db/query, /db/request and /db/sql
 * (rqlite-api.md §2-§4, §7). Each parses its body, rewrites statements for
 * determinism where rqlite does, refuses disallowed pragmas, hands a
 * command to the store and encodes the outcome byte-for-byte as rqlite.
 *
 * @module
 */

import { type Command, encodeResponse, type StatementResult } from "../db/mod.ts";
import { checkDisallowedPragmas } from "../db/pragma.ts";
import type { QueryParams } from "../sql/params.ts";
import { analyze, processStatements } from "../sql/rewrite.ts";
import { parseJsonRequest, parseTextRequest } from "../sql/request.ts";
import type { Statement } from "../sql/types.ts";
import { basicCredentials, type Credentials } from "../auth/mod.ts";
import { type ClusterClient, RemoteError } from "../cluster/mod.ts";
import { PayloadTooLargeError } from "../cluster/protocol.ts";
import {
  CommandTooLargeError,
  NotLeaderStoreError,
  type Store,
  StoreBusyError,
  type StoreOutcome,
} from "../store/store.ts";
import { BodyTooLargeError, readText } from "./body.ts";
import { count, type HttpContext } from "./context.ts";
import { goJson } from "./go_json.ts";
import { leaderTarget, redirectToLeader } from "./leader.ts";
import { handleQueuedExecute } from "./queue.ts";
import { emptyStatus, jsonText, textError } from "./response.ts";

type Endpoint = "execute" | "query" | "request";

/** rqlite's `http` expvar counter per endpoint (`executions`, `queries`, `requests`). */
const COUNTER: Record<Endpoint, string> = {
  execute: "executions",
  query: "queries",
  request: "requests",
};

/** Statements of a request, or the response that refuses it. */
async function statementsOf(
  req: Request,
  ctx: HttpContext,
  qp: QueryParams,
  endpoint: Endpoint,
): Promise<Statement[] | Response> {
  if (req.method === "GET") {
    return qp.q === undefined ? [] : [{ sql: qp.q, params: [] }];
  }
  let text: string;
  try {
    text = await readText(req, ctx.maxBodyBytes);
  } catch (err) {
    if (err instanceof BodyTooLargeError) return textError(413, err.message);
    throw err;
  }
  const plain = (req.headers.get("content-type") ?? "").startsWith("text/plain");
  if (plain && endpoint !== "request") return parseTextRequest(text);
  const parsed = parseJsonRequest(text, { maxStatements: ctx.maxStatements });
  if (!parsed.ok) return textError(400, parsed.error);
  return parsed.statements;
}

/** Applies §7 rewriting; for queries only at level strong (detection always). */
function rewrite(
  statements: Statement[],
  ctx: HttpContext,
  qp: QueryParams,
  endpoint: Endpoint,
): Statement[] | Response {
  const full = endpoint !== "query" || qp.level === "strong";
  const out = processStatements(statements, {
    norwrandom: qp.norwrandom || !full,
    norwtime: qp.norwtime || !full,
    noparse: qp.noparse,
    random: ctx.random,
    nowMs: () => ctx.nowMs(),
  });
  if (!out.ok) return textError(500, out.error);
  return out.statements;
}

function commandOf(kind: Command["kind"], statements: Statement[], qp: QueryParams): Command {
  return {
    kind,
    statements,
    transaction: qp.transaction,
    dbTimeoutMs: qp.dbTimeoutMs ?? 0,
    qualifyColumns: qp.qualifyColumns,
    timings: qp.timings,
  };
}

function encodeOptions(qp: QueryParams) {
  return { pretty: qp.pretty, associative: qp.associative, blobArray: qp.blobArray };
}

/** A 200 JSON response with rqlite's shape. */
export function resultsResponse(
  ctx: HttpContext,
  qp: QueryParams,
  results: readonly StatementResult[],
  extra: { error?: string; raftIndex?: number; startMs: number; servedBy?: string },
): Response {
  const body = encodeResponse({
    results,
    error: extra.error,
    timeSec: qp.timings ? (performance.now() - extra.startMs) / 1000 : undefined,
    raftIndex: qp.raftIndex ? extra.raftIndex : undefined,
  }, encodeOptions(qp));
  return jsonText(body, 200, { "X-RQLITE-SERVED-BY": extra.servedBy ?? ctx.httpAdvAddr });
}

/** How an endpoint runs a command here, or on the leader over the cluster service. */
export interface Runner {
  readonly local: (store: Store, cmd: Command) => Promise<StoreOutcome>;
  /** Runs `cmd` on the leader at `addr`, with the HTTP request's credentials (the leader re-checks them). */
  readonly remote: (
    client: ClusterClient,
    addr: string,
    cmd: Command,
    credentials: Credentials | undefined,
  ) => Promise<StoreOutcome>;
}

/** A {@link Runner} that also builds the endpoint's command from its statements. */
interface DataRunner extends Runner {
  readonly command: (statements: Statement[]) => Command;
}

/**
 * This node is not the leader: answer 301 to the leader (`redirect`), or
 * forward the command to it transparently (rqlite-api.md §11).
 */
async function toLeader(
  req: Request,
  ctx: HttpContext,
  qp: QueryParams,
  err: NotLeaderStoreError,
  cmd: Command,
  runner: Runner,
  startMs: number,
): Promise<Response> {
  const target = leaderTarget(ctx, err.leaderId);
  if (target === undefined) return textError(503, "leader not found");
  const { client, addr } = target;
  if (qp.redirect) return redirectToLeader(req, client, addr, qp.timeoutMs);
  try {
    count(ctx, "forwarded");
    const credentials = basicCredentials(req.headers.get("Authorization"));
    const { outcome, raftIndex } = await runner.remote(client, addr, cmd, credentials);
    return resultsResponse(ctx, qp, outcome.results, {
      error: outcome.error,
      raftIndex,
      startMs,
      servedBy: addr,
    });
  } catch (remoteErr) {
    // The leader refused the forwarded credentials: as rqlite, 401 with no body.
    if (remoteErr instanceof RemoteError && remoteErr.code === "unauthorized") {
      return emptyStatus(401);
    }
    if (remoteErr instanceof PayloadTooLargeError) return textError(413, remoteErr.message);
    if (remoteErr instanceof RemoteError && remoteErr.code === "too_large") {
      return textError(413, remoteErr.message);
    }
    if (remoteErr instanceof RemoteError && remoteErr.code === "busy") return busy(remoteErr);
    if (
      remoteErr instanceof RemoteError && remoteErr.code !== "not_leader" &&
      remoteErr.code !== "leader_not_found"
    ) {
      return resultsResponse(ctx, qp, [], { error: remoteErr.message, startMs });
    }
    // The leader moved or cannot be reached: the client should retry.
    return textError(503, "leader not found");
  }
}

/**
 * Runs `cmd` through the store and answers with rqlite's JSON; on a
 * follower forwards it to the leader (or redirects, or 503), as execute does.
 */
export async function runCommand(
  req: Request,
  ctx: HttpContext,
  qp: QueryParams,
  store: Store,
  cmd: Command,
  runner: Runner,
  startMs: number,
): Promise<Response> {
  try {
    const { outcome, raftIndex } = await runner.local(store, cmd);
    return resultsResponse(ctx, qp, outcome.results, {
      error: outcome.error,
      raftIndex,
      startMs,
    });
  } catch (err) {
    if (err instanceof NotLeaderStoreError) {
      return toLeader(req, ctx, qp, err, cmd, runner, startMs);
    }
    if (err instanceof StoreBusyError) return busy(err);
    if (err instanceof CommandTooLargeError) return textError(413, err.message);
    const message = err instanceof Error ? err.message : String(err);
    return resultsResponse(ctx, qp, [], { error: message, startMs });
  }
}

/** Seconds a client is told to wait when the node has too many writes pending. */
const BUSY_RETRY_AFTER_S = 1;

/**
 * Too many proposals pending on this node (a bounded queue is full): 503
 * with Retry-After, so clients back off instead of the node buffering
 * without bound. Nothing of the request was proposed.
 */
function busy(err: Error): Response {
  const res = textError(
    503,
    `node busy: ${err.message}; nothing was written, retry in ${BUSY_RETRY_AFTER_S} s`,
  );
  res.headers.set("Retry-After", String(BUSY_RETRY_AFTER_S));
  return res;
}

async function runData(
  req: Request,
  ctx: HttpContext,
  qp: QueryParams,
  endpoint: Endpoint,
  runner: DataRunner,
): Promise<Response> {
  const startMs = performance.now();
  const store = ctx.store();
  if (store === undefined) {
    return resultsResponse(ctx, qp, [], { error: "store not open", startMs });
  }
  const parsed = await statementsOf(req, ctx, qp, endpoint);
  if (parsed instanceof Response) return parsed;
  const statements = rewrite(parsed, ctx, qp, endpoint);
  if (statements instanceof Response) return statements;
  const pragma = checkDisallowedPragmas(statements);
  if (pragma !== undefined) return resultsResponse(ctx, qp, [], { error: pragma, startMs });
  if (statements.length === 0) return resultsResponse(ctx, qp, [], { startMs });
  count(ctx, COUNTER[endpoint]);
  return runCommand(req, ctx, qp, store, runner.command(statements), runner, startMs);
}

/** Time a forwarded call may take: the request's own timeout plus a margin. */
function forwardTimeoutMs(qp: QueryParams): number {
  return (qp.timeoutMs ?? 30_000) + 1_000;
}

/** POST /db/execute */
export function handleExecute(req: Request, ctx: HttpContext, qp: QueryParams): Promise<Response> {
  if (req.method !== "POST") return Promise.resolve(emptyStatus(405));
  if (qp.queue) return handleQueuedExecute(req, ctx, qp);
  return runData(req, ctx, qp, "execute", {
    command: (statements) => commandOf("execute", statements, qp),
    ...executeRunner(qp),
  });
}

/** Writes through the log here, or on the leader over the cluster service (execute, load). */
export function executeRunner(qp: QueryParams): Runner {
  return {
    local: (store, cmd) => store.execute(cmd, qp.timeoutMs ?? undefined),
    remote: (client, addr, cmd, credentials) =>
      client.execute(addr, cmd, { timeoutMs: qp.timeoutMs }, {
        timeoutMs: forwardTimeoutMs(qp),
        credentials,
      }),
  };
}

function readOptions(qp: QueryParams) {
  return {
    level: qp.level,
    freshnessMs: qp.freshnessMs,
    freshnessStrict: qp.freshnessStrict,
    linearizableTimeoutMs: qp.linearizableTimeoutMs,
    timeoutMs: qp.timeoutMs,
  };
}

/** GET|POST /db/query */
export function handleQuery(req: Request, ctx: HttpContext, qp: QueryParams): Promise<Response> {
  if (req.method !== "GET" && req.method !== "POST") return Promise.resolve(emptyStatus(405));
  return runData(req, ctx, qp, "query", {
    command: (statements) => commandOf("query", statements, qp),
    local: (store, cmd) => store.query(cmd, readOptions(qp)),
    remote: (client, addr, cmd, credentials) =>
      client.query(addr, cmd, readOptions(qp), { timeoutMs: forwardTimeoutMs(qp), credentials }),
  });
}

/** POST /db/request */
export function handleRequest(req: Request, ctx: HttpContext, qp: QueryParams): Promise<Response> {
  if (req.method !== "POST") return Promise.resolve(emptyStatus(405));
  return runData(req, ctx, qp, "request", {
    command: (statements) => commandOf("request", statements, qp),
    local: (store, cmd) => store.request(cmd, readOptions(qp)),
    remote: (client, addr, cmd, credentials) =>
      client.request(addr, cmd, readOptions(qp), { timeoutMs: forwardTimeoutMs(qp), credentials }),
  });
}

/** GET|POST /db/sql: shows the rewriting without executing anything. */
export async function handleSql(
  req: Request,
  ctx: HttpContext,
  qp: QueryParams,
): Promise<Response> {
  if (req.method !== "GET" && req.method !== "POST") return emptyStatus(405);
  const startMs = performance.now();
  let sqls: string[];
  if (req.method === "GET") {
    if (qp.q === undefined) return textError(400, "query not specified");
    sqls = [qp.q];
  } else {
    const parsed = await statementsOf(req, ctx, qp, "request");
    if (parsed instanceof Response) return parsed;
    sqls = parsed.map((s) => s.sql);
  }
  const options = {
    norwrandom: qp.norwrandom,
    norwtime: qp.norwtime,
    random: ctx.random,
    nowMs: () => ctx.nowMs(),
  };
  const results = sqls.map((sql) => analyze(sql, options));
  const body = { results, time: (performance.now() - startMs) / 1000 };
  return jsonText(goJson(body, { pretty: qp.pretty, sortKeys: false }));
}
