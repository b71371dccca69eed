/**
 * `POST /db/execute?queue` (rqlite-api.md §4, §6): queued writes over the
 * node's {@link WriteQueue}, and the batch writer the queue's drainer uses.
 *
 * The handler answers at once with `{"results":[],"sequence_number":N}`;
 * with `wait` it first waits (up to `timeout`, default 30 s) until the
 * batch holding the request is written, else 408 `queue wait timeout`.
 * Unless `noleader`, a node that knows no leader refuses with 503 `leader
 * not found` (no queued writes on a node cut off from its cluster). With
 * `redirect`, a follower answers 301 to the leader as /db/execute does. An
 * empty body (`[]`, `null`, nothing) is 400 `no statements` unless `wait`
 * is set: then it is a flush checkpoint that returns once everything queued
 * before it is written. Statements are rewritten (RANDOM, `now`) on this
 * node, as for /db/execute; a disallowed pragma refuses the request (200
 * with `error`) instead of poisoning a batch. A full queue makes the
 * request wait for room up to `timeout`, then 503 (retry later).
 *
 * The writer sends each batch through the store's execute path; on a
 * follower it forwards the batch to the leader over the cluster service.
 * A batch mixes the writes of many clients, each already checked here for
 * `execute`, so it carries no client's credentials: with `-auth` it goes
 * with this node's `-join-as` user (which then needs `execute` for queued
 * writes through followers), else without any (as rqlite's queue).
 *
 * @module
 */

import { encodeResponse } from "../db/encode.ts";
import { CommandEncodeError } from "../db/command.ts";
import type { Command } from "../db/mod.ts";
import { checkDisallowedPragmas } from "../db/pragma.ts";
import { RemoteError } from "../cluster/mod.ts";
import type { QueryParams } from "../sql/params.ts";
import { ERR_NO_STATEMENTS, parseJsonRequest, parseTextRequest } from "../sql/request.ts";
import { processStatements } from "../sql/rewrite.ts";
import type { Statement } from "../sql/types.ts";
import { CommandTooLargeError, NotLeaderStoreError } from "../store/store.ts";
import {
  BatchRejectedError,
  type BatchWriter,
  QueueClosedError,
  QueueFullError,
  type Ticket,
  type Written,
} from "../store/write_queue.ts";
import { BodyTooLargeError, readText } from "./body.ts";
import { count, type HttpContext } from "./context.ts";
import { leaderTarget, redirectToLeader } from "./leader.ts";
import { jsonText, textError } from "./response.ts";

/** rqlite's default `timeout` for the queue wait. */
const DEFAULT_TIMEOUT_MS = 30_000;
/** Bound on one forwarded batch (rqlite's cluster client default). */
const FORWARD_TIMEOUT_MS = 30_000;
/** Remote refusals that retrying cannot cure. */
const PERMANENT_REMOTE = new Set(["bad_request", "too_large", "unauthorized"]);

/** POST /db/execute?queue (the caller checked the method). */
export async function handleQueuedExecute(
  req: Request,
  ctx: HttpContext,
  qp: QueryParams,
): Promise<Response> {
  const startMs = performance.now();
  const deadlineMs = startMs + (qp.timeoutMs ?? DEFAULT_TIMEOUT_MS);
  const queue = ctx.writeQueue;
  if (queue === undefined) return textError(503, "queued writes are not available on this node");
  const store = ctx.store();
  const leaderId = store?.leaderId() ?? "";
  if (leaderId === "" && !qp.noleader) return textError(503, "leader not found");
  if (qp.redirect && leaderId !== "" && store !== undefined && !store.isLeader()) {
    const target = leaderTarget(ctx, leaderId);
    if (target === undefined) return textError(503, "leader not found");
    return redirectToLeader(req, target.client, target.addr, qp.timeoutMs);
  }
  const body = await bodyStatements(req, ctx);
  if (body instanceof Response) return body;
  if (body.statements.length === 0 && body.noStatements && !qp.wait) {
    return textError(400, ERR_NO_STATEMENTS);
  }
  const processed = processStatements(body.statements, {
    norwrandom: qp.norwrandom,
    norwtime: qp.norwtime,
    noparse: qp.noparse,
    random: ctx.random,
    nowMs: () => ctx.nowMs(),
  });
  if (!processed.ok) return textError(500, processed.error);
  const pragma = checkDisallowedPragmas(processed.statements);
  if (pragma !== undefined) return response(ctx, qp, startMs, 0n, pragma);
  // Refused now, not acknowledged and then dropped when its batch cannot be one log entry.
  try {
    const cmd = { kind: "execute" as const, statements: processed.statements, transaction: false };
    store?.checkEntrySize(cmd, body.bytes);
  } catch (err) {
    if (err instanceof CommandTooLargeError) return textError(413, err.message);
    throw err;
  }

  let ticket: Ticket;
  try {
    const t = queue.enqueue(processed.statements, {
      bytes: body.bytes,
      wait: qp.wait,
      admitTimeoutMs: deadlineMs - performance.now(),
    });
    ticket = t instanceof Promise ? await t : t;
  } catch (err) {
    if (err instanceof QueueFullError || err instanceof QueueClosedError) {
      return textError(503, err.message);
    }
    throw err;
  }
  count(ctx, "queued_executions");
  if (ticket.done === undefined) return response(ctx, qp, startMs, ticket.sequence);
  const written = await within(ticket.done, deadlineMs - performance.now());
  if (written === undefined) return textError(408, "queue wait timeout");
  return response(ctx, qp, startMs, ticket.sequence, written.error);
}

function response(
  ctx: HttpContext,
  qp: QueryParams,
  startMs: number,
  sequence: bigint,
  error?: string,
): Response {
  const text = encodeResponse({
    results: [],
    error,
    timeSec: qp.timings ? (performance.now() - startMs) / 1000 : undefined,
    sequenceNumber: sequence,
  }, { pretty: qp.pretty });
  return jsonText(text, 200, { "X-RQLITE-SERVED-BY": ctx.httpAdvAddr });
}

interface BodyStatements {
  readonly statements: Statement[];
  /** The body held no statement list at all (`[]`, `null`, nothing). */
  readonly noStatements: boolean;
  readonly bytes: number;
}

/** The body's statements; `no statements` is not an error here (`wait` makes it a flush). */
async function bodyStatements(req: Request, ctx: HttpContext): Promise<BodyStatements | Response> {
  let text: string;
  try {
    text = await readText(req, ctx.maxBodyBytes);
  } catch (err) {
    if (err instanceof BodyTooLargeError) return textError(413, err.message);
    throw err;
  }
  if ((req.headers.get("content-type") ?? "").startsWith("text/plain")) {
    const statements = parseTextRequest(text);
    return { statements, noStatements: statements.length === 0, bytes: text.length };
  }
  const parsed = parseJsonRequest(text, { maxStatements: ctx.maxStatements });
  if (parsed.ok) return { statements: parsed.statements, noStatements: false, bytes: text.length };
  if (parsed.error === ERR_NO_STATEMENTS) {
    return { statements: [], noStatements: true, bytes: text.length };
  }
  return textError(400, parsed.error);
}

/** `p`'s value, or undefined when `ms` passes first. */
function within(p: Promise<Written>, ms: number): Promise<Written | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), Math.max(0, ms));
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/**
 * The queue's {@link BatchWriter}: the batch goes through this node's store
 * when it leads, else to the leader over the cluster service. Failures for
 * want of a leader or a connection throw (the queue retries); refusals that
 * can never succeed throw {@link BatchRejectedError}.
 */
export function queuedBatchWriter(ctx: HttpContext, applyTimeoutMs: number): BatchWriter {
  return async (cmd: Command) => {
    const store = ctx.store();
    if (store === undefined) throw new Error("store not open");
    let leaderId: string;
    try {
      const { outcome } = await store.execute(cmd, applyTimeoutMs);
      return outcome.error;
    } catch (err) {
      if (err instanceof CommandEncodeError) throw new BatchRejectedError(err.message);
      if (!(err instanceof NotLeaderStoreError)) throw err;
      leaderId = err.leaderId;
    }
    const target = leaderTarget(ctx, leaderId);
    if (target === undefined) throw new NotLeaderStoreError("");
    try {
      const { outcome } = await target.client.execute(
        target.addr,
        cmd,
        { timeoutMs: applyTimeoutMs },
        { timeoutMs: FORWARD_TIMEOUT_MS, credentials: ctx.nodeCredentials },
      );
      return outcome.error;
    } catch (err) {
      if (
        err instanceof CommandEncodeError ||
        err instanceof RemoteError && PERMANENT_REMOTE.has(err.code)
      ) {
        throw new BatchRejectedError(`leader ${target.addr} refused the batch: ${err.message}`);
      }
      throw err;
    }
  };
}
