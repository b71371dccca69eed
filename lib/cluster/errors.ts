/**
 * Errors of the cluster service, on both sides of the wire.
 *
 * Client side, every failure is a {@link ClusterError}: the remote handler
 * failed ({@link RemoteError}, whose `message` is the remote text unchanged,
 * e.g. `not leader` or `stale read`), or the request never got an answer
 * ({@link ClusterTimeoutError}, {@link ClusterConnectionError},
 * {@link ClusterBusyError}, {@link ClusterClosedError}).
 *
 * Server side, {@link toRemoteError} turns whatever a handler threw into the
 * error part of a response. lib/cluster sits below lib/store, so it knows the
 * store's errors by `name` and message, not by class.
 *
 * @module
 */

import type { RemoteErrorBody, RemoteErrorCode, RequestType } from "./protocol.ts";

/** Base class of every error the cluster client rejects with. */
export class ClusterError extends Error {
  override readonly name: string = "ClusterError";
}

/**
 * The remote node answered with an error. `message` is the remote's text
 * exactly (rqlite puts it in the response's `error` field); `code`
 * classifies it; `leaderAddr` is the leader's Raft address when the remote
 * said `not leader` and knew it.
 */
export class RemoteError extends ClusterError {
  override readonly name = "RemoteError";
  readonly code: RemoteErrorCode;
  readonly leaderAddr?: string;
  constructor(body: RemoteErrorBody, readonly addr: string) {
    super(body.message);
    this.code = body.code;
    if (body.leaderAddr !== undefined) this.leaderAddr = body.leaderAddr;
  }
}

/** No answer within the request's time limit (the remote may still complete it). */
export class ClusterTimeoutError extends ClusterError {
  override readonly name = "ClusterTimeoutError";
  constructor(readonly type: RequestType, readonly addr: string, readonly timeoutMs: number) {
    super(`timeout waiting for node ${addr} to respond to ${type} after ${timeoutMs} ms`);
  }
}

/**
 * The connection could not be opened, or was lost before the answer came.
 * `sent` tells whether the request may have reached the remote (a write may
 * then still apply there); when false it certainly did not.
 */
export class ClusterConnectionError extends ClusterError {
  override readonly name = "ClusterConnectionError";
  constructor(
    message: string,
    readonly addr: string,
    readonly sent: boolean,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** Too many requests to one node are in flight; retry shortly. Nothing was sent. */
export class ClusterBusyError extends ClusterError {
  override readonly name = "ClusterBusyError";
  constructor(readonly addr: string, readonly inFlightMax: number) {
    super(`too many cluster requests in flight to ${addr} (max ${inFlightMax}); retry shortly`);
  }
}

/** The client was closed; nothing more is sent. */
export class ClusterClosedError extends ClusterError {
  override readonly name = "ClusterClosedError";
  constructor() {
    super("cluster client is closed");
  }
}

/**
 * A handler may throw this to choose the response's error code and, for
 * `not_leader`, the leader's Raft address (what a joiner follows).
 */
export class ClusterHandlerError extends Error {
  override readonly name = "ClusterHandlerError";
  readonly code: RemoteErrorCode;
  readonly leaderAddr?: string;
  constructor(message: string, options: { code?: RemoteErrorCode; leaderAddr?: string } = {}) {
    super(message);
    this.code = options.code ?? "error";
    if (options.leaderAddr !== undefined) this.leaderAddr = options.leaderAddr;
  }
}

/** Store error names (lib/store/store.ts) and the codes they travel as. */
const CODE_BY_NAME: Record<string, RemoteErrorCode> = {
  StaleReadError: "stale_read",
  StoreTimeoutError: "timeout",
  StoreBusyError: "busy",
  CommandTooLargeError: "too_large",
  ClusterTimeoutError: "timeout",
  ClusterBusyError: "busy",
  ClusterConnectionError: "unavailable",
};

/** rqlite's error literals (rqlite-api.md §6) and the codes they travel as. */
const CODE_BY_MESSAGE: Record<string, RemoteErrorCode> = {
  "not leader": "not_leader",
  "leader not found": "leader_not_found",
  "stale read": "stale_read",
  "unauthorized": "unauthorized",
  "timeout waiting for leader": "timeout",
  "timeout waiting for fsm": "timeout",
  "query timeout": "timeout",
  "execute timeout": "timeout",
};

/**
 * The error part of a response for whatever a handler threw. The message is
 * kept unchanged; the code comes from a {@link ClusterHandlerError}, a
 * forwarded {@link RemoteError}, the store's error class names, or rqlite's
 * literal messages, in that order; a string property `leaderAddr` on the
 * error is passed on.
 */
export function toRemoteError(err: unknown): RemoteErrorBody {
  if (!(err instanceof Error)) return { message: String(err), code: "error" };
  const message = err.message;
  let code: RemoteErrorCode;
  if (err instanceof ClusterHandlerError || err instanceof RemoteError) code = err.code;
  else if (err.name === "NotLeaderStoreError") {
    code = message === "leader not found" ? "leader_not_found" : "not_leader";
  } else {
    code = CODE_BY_NAME[err.name] ?? CODE_BY_MESSAGE[message] ?? codeOfText(message);
  }
  const leaderAddr = (err as { leaderAddr?: unknown }).leaderAddr;
  return typeof leaderAddr === "string" && leaderAddr !== ""
    ? { message, code, leaderAddr }
    : { message, code };
}

function codeOfText(message: string): RemoteErrorCode {
  if (message.startsWith("index ") && message.endsWith(": timeout waiting for fsm")) {
    return "timeout";
  }
  return "error";
}
