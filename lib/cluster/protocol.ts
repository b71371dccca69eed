/**
 * The cluster service's messages (rqlite-api.md §9, raftlite's own wire
 * format): one request or one response per transport frame.
 *
 * ```
 * request:  u8 version=1 | u8 type | u32 id | u32 timeoutMs | u8 flags
 *           | [u16 userBytes | user | u16 passwordBytes | password]   (flags & 1)
 *           | body
 * response: u8 version=1 | u8 status (0 ok, 1 error) | u32 id | body
 * ```
 *
 * Integers are little-endian. `body` is one value in the exact encoding of
 * `value_codec.ts`, which carries `bigint`, `Uint8Array`, `-0`, NaN and
 * nested plain objects exactly; a command travels inside it as the bytes of
 * lib/db's {@link encodeCommand}, so the cluster service and the Raft log
 * share one command codec. Every decoded body is checked field by field
 * before it reaches a handler or a caller: a peer can make a request fail,
 * never hand the store a value of the wrong type.
 *
 * Errors: malformed input throws {@link ProtocolError} (the connection that
 * carried it is closed); an unknown request type with a well-formed header
 * is reported by {@link decodeRequest} so the server can answer it (a newer
 * peer keeps its connection); a message larger than the frame limit throws
 * {@link PayloadTooLargeError} before anything is written.
 *
 * @module
 */

import {
  type Command,
  CommandDecodeError,
  type CommandOutcome,
  decodeCommand,
  encodeCommand,
} from "../db/mod.ts";
import type { ConsistencyLevel } from "../sql/params.ts";
import { decodeValue, encodeValue, ValueDecodeError } from "./value_codec.ts";

/** The version byte this codec writes and accepts. */
export const PROTOCOL_VERSION = 1;

/** Request type numbers on the wire (never reuse a number). */
export const REQUEST_TYPE_CODES = {
  nodeMeta: 1,
  execute: 2,
  query: 3,
  request: 4,
  join: 5,
  notify: 6,
  remove: 7,
  stepdown: 8,
} as const;

/** The kinds of request the cluster service answers. */
export type RequestType = keyof typeof REQUEST_TYPE_CODES;

const TYPE_BY_CODE = new Map<number, RequestType>(
  Object.entries(REQUEST_TYPE_CODES).map(([k, v]) => [v, k as RequestType]),
);

/** Credentials forwarded from the HTTP request (checked by the receiving node). */
export interface Credentials {
  readonly username: string;
  readonly password: string;
}

/** What a node says about itself (rqlite `NodeMeta`). */
export interface NodeMeta {
  /** Advertised HTTP API URL with scheme, e.g. `http://10.0.0.1:4001`. */
  readonly apiUrl: string;
  /** The node's Raft commit index. */
  readonly commitIndex: number;
  /** raftlite version of the node. */
  readonly version: string;
  readonly nodeId: string;
}

/** Options of a forwarded write. */
export interface ExecuteOptions {
  /** How long the leader waits for the write to apply (its default when absent). */
  readonly timeoutMs?: number;
}

/** Options of a forwarded read (same shape as lib/store's `ReadOptions`). */
export interface ReadOptions {
  readonly level: ConsistencyLevel;
  readonly freshnessMs?: number;
  readonly freshnessStrict?: boolean;
  readonly linearizableTimeoutMs?: number;
  readonly timeoutMs?: number;
}

/** Outcome of a forwarded execute/query/request (same shape as lib/store's `StoreOutcome`). */
export interface CommandResult {
  readonly outcome: CommandOutcome;
  readonly raftIndex: number;
}

/** Add a node to the cluster (rqlite `JOIN`). */
export interface JoinRequest {
  readonly id: string;
  readonly raftAddr: string;
  readonly voter: boolean;
  /**
   * The joiner has no state at all (a new or wiped node). A member with the
   * same id and address is then replaced instead of the join being ignored:
   * its old log is gone, so the leader's view of it is wrong.
   */
  readonly fresh?: boolean;
}

/** Announce a node for bootstrap-expect (rqlite `NOTIFY`). */
export interface NotifyRequest {
  readonly id: string;
  readonly raftAddr: string;
}

/** Remove a node from the cluster configuration (rqlite `REMOVE_NODE`). */
export interface RemoveRequest {
  readonly id: string;
}

/** Transfer leadership (rqlite `STEPDOWN`); no `id` = to any suitable node. */
export interface StepdownRequest {
  readonly id?: string;
  readonly wait: boolean;
}

/** Request body per type. */
export interface RequestBodies {
  nodeMeta: Record<string, never>;
  execute: { readonly command: Command; readonly options: ExecuteOptions };
  query: { readonly command: Command; readonly options: ReadOptions };
  request: { readonly command: Command; readonly options: ReadOptions };
  join: JoinRequest;
  notify: NotifyRequest;
  remove: RemoveRequest;
  stepdown: StepdownRequest;
}

/** Successful response body per type (`null` = plain acknowledgement). */
export interface ResponseBodies {
  nodeMeta: NodeMeta;
  execute: CommandResult;
  query: CommandResult;
  request: CommandResult;
  join: null;
  notify: null;
  remove: null;
  stepdown: null;
}

/** One request as it travels. */
export interface RequestMessage<T extends RequestType = RequestType> {
  /** Chosen by the client, unique among its requests in flight on one connection. */
  readonly id: number;
  readonly type: T;
  /** How long the client waits; the server gives up on the request after it. */
  readonly timeoutMs: number;
  readonly credentials?: Credentials;
  readonly body: RequestBodies[T];
}

/** Any request, discriminated by `type`. */
export type AnyRequest = { [K in RequestType]: RequestMessage<K> }[RequestType];

/**
 * Error classes a response can carry, so the caller can react without
 * parsing text. `message` always holds the handler's text unchanged.
 */
export type RemoteErrorCode =
  | "not_leader"
  | "leader_not_found"
  | "stale_read"
  | "timeout"
  | "busy"
  | "unauthorized"
  | "bad_request"
  | "too_large"
  | "unavailable"
  | "error";

const ERROR_CODES = new Set<RemoteErrorCode>([
  "not_leader",
  "leader_not_found",
  "stale_read",
  "timeout",
  "busy",
  "unauthorized",
  "bad_request",
  "too_large",
  "unavailable",
  "error",
]);

/** The error part of a response. */
export interface RemoteErrorBody {
  readonly message: string;
  readonly code: RemoteErrorCode;
  /** With `not_leader`: the leader's Raft address when known (join follows it). */
  readonly leaderAddr?: string;
}

/** A decoded response: `body` is still unchecked until {@link checkResponseBody}. */
export type ResponseMessage =
  | { readonly id: number; readonly ok: true; readonly body: unknown }
  | { readonly id: number; readonly ok: false; readonly error: RemoteErrorBody };

/** Malformed bytes from a peer. The connection that carried them must be closed. */
export class ProtocolError extends Error {
  override readonly name = "ProtocolError";
  constructor(message: string, options?: ErrorOptions) {
    super(`cluster protocol: ${message}`, options);
  }
}

/** A message that would exceed the transport's frame limit; nothing was sent. */
export class PayloadTooLargeError extends Error {
  override readonly name = "PayloadTooLargeError";
  constructor(readonly what: string, readonly bytes: number, readonly maxBytes: number) {
    super(`${what} is ${bytes} bytes, more than the ${maxBytes}-byte cluster frame limit`);
  }
}

const FLAG_CREDENTIALS = 0x01;
const FLAG_ALL = 0x01;
const REQUEST_HEADER_BYTES = 11;
const RESPONSE_HEADER_BYTES = 6;
const STATUS_OK = 0;
const STATUS_ERROR = 1;
/** u32 ceiling for ids and timeouts. */
export const U32_MAX = 0xffff_ffff;
const CREDENTIAL_MAX_BYTES = 0xffff;

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

// ---------------------------------------------------------------------------
// Encoding

function bodyOf(req: AnyRequest): unknown {
  switch (req.type) {
    case "execute":
    case "query":
    case "request":
      return { command: encodeCommand(req.body.command), options: req.body.options };
    default:
      return req.body;
  }
}

function checkU32(v: number, what: string): void {
  if (!Number.isInteger(v) || v < 0 || v > U32_MAX) {
    throw new RangeError(`${what} must be an integer in [0, ${U32_MAX}], got ${v}`);
  }
}

function credentialBytes(s: string, what: string): Uint8Array {
  const b = encoder.encode(s);
  if (b.length > CREDENTIAL_MAX_BYTES) {
    throw new RangeError(`${what} is ${b.length} bytes, more than ${CREDENTIAL_MAX_BYTES}`);
  }
  return b;
}

/**
 * Encodes a request into one frame payload of at most `maxBytes` bytes.
 * Throws {@link PayloadTooLargeError} when it would not fit, `RangeError`
 * for an id or timeout outside u32, and lib/db's `CommandEncodeError` for a
 * command that cannot be encoded.
 */
export function encodeRequest(req: AnyRequest, maxBytes: number): Uint8Array {
  checkU32(req.id, "request id");
  checkU32(req.timeoutMs, "request timeoutMs");
  const code = REQUEST_TYPE_CODES[req.type];
  if (code === undefined) throw new TypeError(`unknown request type ${String(req.type)}`);
  let user: Uint8Array | undefined;
  let password: Uint8Array | undefined;
  if (req.credentials !== undefined) {
    user = credentialBytes(req.credentials.username, "username");
    password = credentialBytes(req.credentials.password, "password");
  }
  const credLen = user === undefined ? 0 : 4 + user.length + password!.length;
  const out = encodeValue(bodyOf(req), REQUEST_HEADER_BYTES + credLen);
  if (out.length > maxBytes) {
    throw new PayloadTooLargeError(`${req.type} request`, out.length, maxBytes);
  }
  const view = new DataView(out.buffer);
  out[0] = PROTOCOL_VERSION;
  out[1] = code;
  view.setUint32(2, req.id, true);
  view.setUint32(6, req.timeoutMs, true);
  out[10] = user === undefined ? 0 : FLAG_CREDENTIALS;
  let pos = REQUEST_HEADER_BYTES;
  if (user !== undefined) {
    view.setUint16(pos, user.length, true);
    out.set(user, pos + 2);
    pos += 2 + user.length;
    view.setUint16(pos, password!.length, true);
    out.set(password!, pos + 2);
  }
  return out;
}

/**
 * Rewrites the id of an encoded request in place (the client encodes before
 * it knows which connection, hence which id, the request will use).
 */
export function setRequestId(payload: Uint8Array, id: number): void {
  checkU32(id, "request id");
  new DataView(payload.buffer, payload.byteOffset, payload.byteLength).setUint32(2, id, true);
}

function responseFrame(id: number, status: number, body: unknown): Uint8Array {
  const out = encodeValue(body, RESPONSE_HEADER_BYTES);
  out[0] = PROTOCOL_VERSION;
  out[1] = status;
  new DataView(out.buffer).setUint32(2, id, true);
  return out;
}

/**
 * Encodes a successful response. When the result does not fit in
 * `maxBytes`, the response becomes a `too_large` error instead, so the
 * caller always gets an answer. A value the codec cannot carry (a function,
 * a class instance) throws `ValueEncodeError`: that is a handler bug.
 */
export function encodeOkResponse(id: number, body: unknown, maxBytes: number): Uint8Array {
  checkU32(id, "response id");
  const out = responseFrame(id, STATUS_OK, body);
  if (out.length > maxBytes) {
    const err = new PayloadTooLargeError("response", out.length, maxBytes);
    return encodeErrorResponse(id, { message: err.message, code: "too_large" });
  }
  return out;
}

/** Encodes an error response (a message longer than 64 KiB is cut). */
export function encodeErrorResponse(id: number, error: RemoteErrorBody): Uint8Array {
  checkU32(id, "response id");
  const message = error.message.length > 65_536
    ? `${error.message.slice(0, 65_536)}…`
    : error.message;
  const body: RemoteErrorBody = error.leaderAddr === undefined
    ? { message, code: error.code }
    : { message, code: error.code, leaderAddr: error.leaderAddr };
  return responseFrame(id, STATUS_ERROR, body);
}

// ---------------------------------------------------------------------------
// Decoding

function readBody(bytes: Uint8Array, what: string): unknown {
  if (bytes.length === 0) throw new ProtocolError(`empty ${what} body`);
  try {
    return decodeValue(bytes);
  } catch (err) {
    if (!(err instanceof ValueDecodeError)) throw err;
    throw new ProtocolError(`undecodable ${what} body: ${err.message}`, { cause: err });
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

function record(v: unknown, what: string): Record<string, unknown> {
  if (!isRecord(v)) throw new ProtocolError(`${what} is not an object`);
  return v;
}

function str(o: Record<string, unknown>, key: string, what: string): string {
  const v = o[key];
  if (typeof v !== "string") throw new ProtocolError(`${what}.${key} is not a string`);
  return v;
}

function optStr(o: Record<string, unknown>, key: string, what: string): string | undefined {
  return o[key] === undefined ? undefined : str(o, key, what);
}

function bool(o: Record<string, unknown>, key: string, what: string): boolean {
  const v = o[key];
  if (typeof v !== "boolean") throw new ProtocolError(`${what}.${key} is not a boolean`);
  return v;
}

function optBool(o: Record<string, unknown>, key: string, what: string): boolean | undefined {
  return o[key] === undefined ? undefined : bool(o, key, what);
}

/** A finite number >= 0 (durations may be fractional milliseconds). */
function nonNegative(o: Record<string, unknown>, key: string, what: string): number {
  const v = o[key];
  if (typeof v !== "number" || !Number.isFinite(v) || v < 0) {
    throw new ProtocolError(`${what}.${key} is not a finite non-negative number`);
  }
  return v;
}

function optNonNegative(o: Record<string, unknown>, key: string, what: string) {
  return o[key] === undefined ? undefined : nonNegative(o, key, what);
}

const LEVELS = new Set<string>(["none", "weak", "strong", "linearizable", "auto"]);

function commandOf(o: Record<string, unknown>, what: string): Command {
  const bytes = o.command;
  if (!(bytes instanceof Uint8Array)) throw new ProtocolError(`${what}.command is not bytes`);
  try {
    return decodeCommand(bytes);
  } catch (err) {
    if (err instanceof CommandDecodeError) {
      throw new ProtocolError(`${what}.command: ${err.message}`, { cause: err });
    }
    throw err;
  }
}

function readOptionsOf(v: unknown, what: string): ReadOptions {
  const o = record(v, what);
  const level = o.level;
  if (typeof level !== "string" || !LEVELS.has(level)) {
    throw new ProtocolError(`${what}.level is not a consistency level`);
  }
  const out: {
    level: ConsistencyLevel;
    freshnessMs?: number;
    freshnessStrict?: boolean;
    linearizableTimeoutMs?: number;
    timeoutMs?: number;
  } = { level: level as ConsistencyLevel };
  const freshnessMs = optNonNegative(o, "freshnessMs", what);
  if (freshnessMs !== undefined) out.freshnessMs = freshnessMs;
  const freshnessStrict = optBool(o, "freshnessStrict", what);
  if (freshnessStrict !== undefined) out.freshnessStrict = freshnessStrict;
  const lin = optNonNegative(o, "linearizableTimeoutMs", what);
  if (lin !== undefined) out.linearizableTimeoutMs = lin;
  const timeoutMs = optNonNegative(o, "timeoutMs", what);
  if (timeoutMs !== undefined) out.timeoutMs = timeoutMs;
  return out;
}

function requestBody(type: RequestType, raw: unknown): RequestBodies[RequestType] {
  const what = `${type} request`;
  const o = record(raw, what);
  switch (type) {
    case "nodeMeta":
      return {};
    case "execute": {
      const opts = record(o.options, `${what}.options`);
      const timeoutMs = optNonNegative(opts, "timeoutMs", `${what}.options`);
      return {
        command: commandOf(o, what),
        options: timeoutMs === undefined ? {} : { timeoutMs },
      };
    }
    case "query":
    case "request":
      return { command: commandOf(o, what), options: readOptionsOf(o.options, `${what}.options`) };
    case "join":
      return {
        id: str(o, "id", what),
        raftAddr: str(o, "raftAddr", what),
        voter: bool(o, "voter", what),
        ...(o.fresh === true ? { fresh: true } : {}),
      };
    case "notify":
      return { id: str(o, "id", what), raftAddr: str(o, "raftAddr", what) };
    case "remove":
      return { id: str(o, "id", what) };
    case "stepdown": {
      const id = optStr(o, "id", what);
      const wait = bool(o, "wait", what);
      return id === undefined ? { wait } : { id, wait };
    }
  }
}

/** What {@link decodeRequest} found. */
export type DecodedRequest =
  | { readonly known: true; readonly request: AnyRequest }
  /** Well-formed header, type this node does not know: answer `id` with an error. */
  | { readonly known: false; readonly id: number; readonly typeCode: number };

/**
 * Decodes one request frame payload. Throws {@link ProtocolError} for
 * anything malformed (the caller closes the connection).
 */
export function decodeRequest(bytes: Uint8Array): DecodedRequest {
  if (bytes.length < REQUEST_HEADER_BYTES) {
    throw new ProtocolError(`request of ${bytes.length} bytes is shorter than its header`);
  }
  if (bytes[0] !== PROTOCOL_VERSION) throw new ProtocolError(`unknown version ${bytes[0]}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const typeCode = bytes[1]!;
  const id = view.getUint32(2, true);
  const timeoutMs = view.getUint32(6, true);
  const flags = bytes[10]!;
  if ((flags & ~FLAG_ALL) !== 0) throw new ProtocolError(`bad flags 0x${flags.toString(16)}`);
  let pos = REQUEST_HEADER_BYTES;
  let credentials: Credentials | undefined;
  if ((flags & FLAG_CREDENTIALS) !== 0) {
    const readString = (what: string): string => {
      if (pos + 2 > bytes.length) throw new ProtocolError(`truncated ${what}`);
      const n = view.getUint16(pos, true);
      if (pos + 2 + n > bytes.length) throw new ProtocolError(`truncated ${what}`);
      const s = bytes.subarray(pos + 2, pos + 2 + n);
      pos += 2 + n;
      try {
        return decoder.decode(s);
      } catch {
        throw new ProtocolError(`invalid UTF-8 in ${what}`);
      }
    };
    const username = readString("username");
    const password = readString("password");
    credentials = { username, password };
  }
  const type = TYPE_BY_CODE.get(typeCode);
  if (type === undefined) return { known: false, id, typeCode };
  const body = requestBody(type, readBody(bytes.subarray(pos), `${type} request`));
  const request = credentials === undefined
    ? { id, type, timeoutMs, body }
    : { id, type, timeoutMs, credentials, body };
  return { known: true, request: request as AnyRequest };
}

/**
 * Decodes one response frame payload. The success body is returned
 * unchecked: pass it to {@link checkResponseBody} with the request's type.
 * Throws {@link ProtocolError} for anything malformed.
 */
export function decodeResponse(bytes: Uint8Array): ResponseMessage {
  if (bytes.length < RESPONSE_HEADER_BYTES) {
    throw new ProtocolError(`response of ${bytes.length} bytes is shorter than its header`);
  }
  if (bytes[0] !== PROTOCOL_VERSION) throw new ProtocolError(`unknown version ${bytes[0]}`);
  const status = bytes[1];
  const id = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(2, true);
  const raw = readBody(bytes.subarray(RESPONSE_HEADER_BYTES), "response");
  if (status === STATUS_OK) return { id, ok: true, body: raw };
  if (status !== STATUS_ERROR) throw new ProtocolError(`unknown response status ${status}`);
  const o = record(raw, "error response");
  const message = str(o, "message", "error response");
  const code = str(o, "code", "error response");
  const leaderAddr = optStr(o, "leaderAddr", "error response");
  // An unknown code from a newer peer is still an error: keep its message.
  const known = ERROR_CODES.has(code as RemoteErrorCode) ? code as RemoteErrorCode : "error";
  const error: RemoteErrorBody = leaderAddr === undefined
    ? { message, code: known }
    : { message, code: known, leaderAddr };
  return { id, ok: false, error };
}

function checkOutcome(v: unknown): CommandOutcome {
  const o = record(v, "outcome");
  if (!Array.isArray(o.results)) throw new ProtocolError("outcome.results is not an array");
  for (const r of o.results) {
    const res = record(r, "outcome result");
    if (res.error !== undefined && typeof res.error !== "string") {
      throw new ProtocolError("outcome result error is not a string");
    }
    if (res.columns !== undefined && !Array.isArray(res.columns)) {
      throw new ProtocolError("outcome result columns is not an array");
    }
    if (res.values !== undefined && !Array.isArray(res.values)) {
      throw new ProtocolError("outcome result values is not an array");
    }
  }
  if (o.error !== undefined && typeof o.error !== "string") {
    throw new ProtocolError("outcome.error is not a string");
  }
  return o as unknown as CommandOutcome;
}

/**
 * Checks a success body against the request type it answers; throws
 * {@link ProtocolError} on a mismatch.
 */
export function checkResponseBody<T extends RequestType>(
  type: T,
  body: unknown,
): ResponseBodies[T] {
  const what = `${type} response`;
  switch (type) {
    case "nodeMeta": {
      const o = record(body, what);
      const meta: NodeMeta = {
        apiUrl: str(o, "apiUrl", what),
        commitIndex: nonNegative(o, "commitIndex", what),
        version: str(o, "version", what),
        nodeId: str(o, "nodeId", what),
      };
      return meta as ResponseBodies[T];
    }
    case "execute":
    case "query":
    case "request": {
      const o = record(body, what);
      const result: CommandResult = {
        outcome: checkOutcome(o.outcome),
        raftIndex: nonNegative(o, "raftIndex", what),
      };
      return result as ResponseBodies[T];
    }
    default:
      if (body !== null) throw new ProtocolError(`${what} is not empty`);
      return null as ResponseBodies[T];
  }
}
