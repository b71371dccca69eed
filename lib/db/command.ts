/**
 * The command that travels in the Raft log and over the cluster service, and
 * its binary codec.
 *
 * Wire format (version 1), all integers little-endian, `uv` = unsigned
 * LEB128 varint (at most 2^53 - 1):
 *
 * ```
 * u8 version=1 | u8 kind | u8 flags | [uv dbTimeoutMs] | uv statementCount
 * statement: u8 flags | uv sqlBytes | sql (UTF-8) | uv paramCount | param*
 * param:     u8 tag (low nibble = type, 0x10 = named) | [uv nameBytes | name] | value
 * value:     null | int32 (4 bytes) | int64 (8 bytes) | float64 (8 bytes)
 *            | text (uv len + UTF-8) | blob (uv len + bytes) | false | true
 * [uv dataBytes | data]   (load)
 * ```
 *
 * Integers are exact over the full int64 range, reals are float64 bit for
 * bit (including -0 and NaN payloads), strings are UTF-8 (a JavaScript
 * string holding a lone surrogate encodes as U+FFFD, as everywhere in
 * SQLite), blobs are raw. Decoding checks every length against the bytes
 * left and rejects unknown versions, kinds, tags, flag bits and trailing
 * bytes with a {@link CommandDecodeError}; it never allocates more than the
 * input could describe. Decoded blobs and load data are views into the input
 * buffer (no copy): the input must not be modified afterwards.
 *
 * @module
 */

import { ByteReader, ByteWriter } from "../wire/mod.ts";

/** What the command asks the state machine to do. */
export type CommandKind = "execute" | "query" | "request" | "load" | "noop";

/**
 * A bound parameter value. `bigint` is an SQLite INTEGER, `number` a REAL,
 * `boolean` binds as INTEGER 1/0, `Uint8Array` a BLOB.
 */
export type ParamValue = null | bigint | number | string | boolean | Uint8Array;

/** One parameter: positional when `name` is absent, else named (`:name`, `@name`, `$name`). */
export interface Param {
  name?: string;
  value: ParamValue;
}

/** One SQL statement with its parameters. */
export interface Statement {
  sql: string;
  params: Param[];
  /** Run as a query even through /db/execute (statements with RETURNING). */
  forceQuery?: boolean;
  /** The statement is an EXPLAIN (always read-only for /db/request). */
  explain?: boolean;
}

/** A state machine command. */
export interface Command {
  kind: CommandKind;
  statements: Statement[];
  /** Wrap the statements in BEGIN…COMMIT; the first error rolls back and stops. */
  transaction: boolean;
  /** On a statement error, roll back a transaction the SQL itself opened (SQL-text /db/load). */
  rollbackOnError?: boolean;
  /** Per-statement time limit in milliseconds for reads (see engine.ts). 0/absent = none. */
  dbTimeoutMs?: number;
  /** Prefix result columns with their table name (`qualify_columns`). */
  qualifyColumns?: boolean;
  /** Record per-statement execution time (`timings`). */
  timings?: boolean;
  /** The SQLite database image for `kind: "load"`. */
  data?: Uint8Array;
}

/** The version byte this codec writes and reads. */
export const COMMAND_VERSION = 1;

/** Thrown by {@link decodeCommand} for any input that is not a valid encoded command. */
export class CommandDecodeError extends Error {
  override name = "CommandDecodeError";
  constructor(message: string) {
    super(`command decode: ${message}`);
  }
}

/** Thrown by {@link encodeCommand} for a command that cannot be encoded. */
export class CommandEncodeError extends Error {
  override name = "CommandEncodeError";
  constructor(message: string) {
    super(`command encode: ${message}`);
  }
}

const KINDS: readonly CommandKind[] = ["execute", "query", "request", "load", "noop"];

const F_TRANSACTION = 0x01;
const F_ROLLBACK_ON_ERROR = 0x02;
const F_DB_TIMEOUT = 0x04;
const F_QUALIFY = 0x08;
const F_TIMINGS = 0x10;
const F_DATA = 0x20;
const F_ALL = 0x3f;

const S_FORCE_QUERY = 0x01;
const S_EXPLAIN = 0x02;
const S_ALL = 0x03;

const T_NULL = 0;
const T_INT32 = 1;
const T_INT64 = 2;
const T_REAL = 3;
const T_TEXT = 4;
const T_BLOB = 5;
const T_FALSE = 6;
const T_TRUE = 7;
const T_NAMED = 0x10;

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const INT32_MIN = -(2n ** 31n);
const INT32_MAX = 2n ** 31n - 1n;

class Writer extends ByteWriter {
  constructor(capacity: number) {
    super(capacity, (message) => new CommandEncodeError(message));
  }
}

function writeParam(w: Writer, p: Param): void {
  const named = p.name !== undefined ? T_NAMED : 0;
  const v = p.value;
  let tag: number;
  if (v === null) tag = T_NULL;
  else if (typeof v === "bigint") {
    if (v < INT64_MIN || v > INT64_MAX) {
      throw new CommandEncodeError(`integer parameter out of int64 range: ${v}`);
    }
    tag = v >= INT32_MIN && v <= INT32_MAX ? T_INT32 : T_INT64;
  } else if (typeof v === "number") tag = T_REAL;
  else if (typeof v === "string") tag = T_TEXT;
  else if (typeof v === "boolean") tag = v ? T_TRUE : T_FALSE;
  else if (v instanceof Uint8Array) tag = T_BLOB;
  else throw new CommandEncodeError(`unsupported parameter value type: ${typeof v}`);
  w.u8(tag | named);
  if (p.name !== undefined) w.string(p.name);
  switch (tag) {
    case T_INT32:
      w.ensure(4);
      w.view.setInt32(w.pos, Number(v as bigint), true);
      w.pos += 4;
      break;
    case T_INT64:
      w.ensure(8);
      w.view.setBigInt64(w.pos, v as bigint, true);
      w.pos += 8;
      break;
    case T_REAL:
      w.ensure(8);
      w.view.setFloat64(w.pos, v as number, true);
      w.pos += 8;
      break;
    case T_TEXT:
      w.string(v as string);
      break;
    case T_BLOB:
      w.bytes(v as Uint8Array);
      break;
  }
}

/**
 * The kind of an encoded command, read from its first two bytes without
 * decoding it; undefined when they are not a valid version and kind. (A
 * command whose kind reads "load" may still fail to decode; callers use this
 * only to prepare for a possible load.)
 */
export function peekCommandKind(bytes: Uint8Array): CommandKind | undefined {
  if (bytes.length < 2 || bytes[0] !== COMMAND_VERSION) return undefined;
  return KINDS[bytes[1]!];
}

/** Encodes a command into a fresh byte array (exact-length copy). */
export function encodeCommand(cmd: Command): Uint8Array {
  const kind = KINDS.indexOf(cmd.kind);
  if (kind < 0) throw new CommandEncodeError(`unknown kind: ${String(cmd.kind)}`);
  const w = new Writer(64 + (cmd.data?.length ?? 0));
  let flags = 0;
  if (cmd.transaction) flags |= F_TRANSACTION;
  if (cmd.rollbackOnError) flags |= F_ROLLBACK_ON_ERROR;
  const timeout = cmd.dbTimeoutMs ?? 0;
  if (timeout !== 0) flags |= F_DB_TIMEOUT;
  if (cmd.qualifyColumns) flags |= F_QUALIFY;
  if (cmd.timings) flags |= F_TIMINGS;
  if (cmd.data !== undefined) flags |= F_DATA;
  w.u8(COMMAND_VERSION);
  w.u8(kind);
  w.u8(flags);
  if (timeout !== 0) w.uv(timeout);
  w.uv(cmd.statements.length);
  for (const s of cmd.statements) {
    w.u8((s.forceQuery ? S_FORCE_QUERY : 0) | (s.explain ? S_EXPLAIN : 0));
    w.string(s.sql);
    w.uv(s.params.length);
    for (const p of s.params) writeParam(w, p);
  }
  if (cmd.data !== undefined) w.bytes(cmd.data);
  return w.buf.slice(0, w.pos);
}

class Reader extends ByteReader {
  constructor(buf: Uint8Array) {
    super(buf, (message) => new CommandDecodeError(message));
  }
}

function readParam(r: Reader): Param {
  const tag = r.u8("parameter tag");
  if ((tag & ~(T_NAMED | 0x0f)) !== 0) {
    throw new CommandDecodeError(`bad parameter tag 0x${tag.toString(16)}`);
  }
  const name = (tag & T_NAMED) !== 0 ? r.string("parameter name") : undefined;
  let value: ParamValue;
  switch (tag & 0x0f) {
    case T_NULL:
      value = null;
      break;
    case T_INT32:
      r.need(4, "int32 parameter");
      value = BigInt(r.view.getInt32(r.pos, true));
      r.pos += 4;
      break;
    case T_INT64:
      r.need(8, "int64 parameter");
      value = r.view.getBigInt64(r.pos, true);
      r.pos += 8;
      break;
    case T_REAL:
      r.need(8, "real parameter");
      value = r.view.getFloat64(r.pos, true);
      r.pos += 8;
      break;
    case T_TEXT:
      value = r.string("text parameter");
      break;
    case T_BLOB:
      value = r.bytes("blob parameter");
      break;
    case T_FALSE:
      value = false;
      break;
    case T_TRUE:
      value = true;
      break;
    default:
      throw new CommandDecodeError(`bad parameter type ${tag & 0x0f}`);
  }
  return name === undefined ? { value } : { name, value };
}

/**
 * Decodes bytes produced by {@link encodeCommand}. Throws
 * {@link CommandDecodeError} for anything else; never throws another error
 * type for bad input.
 */
export function decodeCommand(bytes: Uint8Array): Command {
  if (!(bytes instanceof Uint8Array)) throw new CommandDecodeError("input is not a Uint8Array");
  const r = new Reader(bytes);
  const version = r.u8("version");
  if (version !== COMMAND_VERSION) throw new CommandDecodeError(`unknown version ${version}`);
  const kindIndex = r.u8("kind");
  const kind = KINDS[kindIndex];
  if (kind === undefined) throw new CommandDecodeError(`unknown kind ${kindIndex}`);
  const flags = r.u8("flags");
  if ((flags & ~F_ALL) !== 0) throw new CommandDecodeError(`bad flags 0x${flags.toString(16)}`);
  const cmd: Command = { kind, statements: [], transaction: (flags & F_TRANSACTION) !== 0 };
  if ((flags & F_ROLLBACK_ON_ERROR) !== 0) cmd.rollbackOnError = true;
  if ((flags & F_DB_TIMEOUT) !== 0) cmd.dbTimeoutMs = r.uv("dbTimeoutMs");
  if ((flags & F_QUALIFY) !== 0) cmd.qualifyColumns = true;
  if ((flags & F_TIMINGS) !== 0) cmd.timings = true;
  const count = r.uv("statement count");
  // Every statement takes at least 3 bytes: never allocate beyond the input.
  if (count * 3 > r.left) throw new CommandDecodeError(`statement count ${count} exceeds input`);
  for (let i = 0; i < count; i++) {
    const sflags = r.u8("statement flags");
    if ((sflags & ~S_ALL) !== 0) {
      throw new CommandDecodeError(`bad statement flags 0x${sflags.toString(16)}`);
    }
    const sql = r.string("sql");
    const n = r.uv("parameter count");
    if (n > r.left) throw new CommandDecodeError(`parameter count ${n} exceeds input`);
    const params: Param[] = new Array(n);
    for (let j = 0; j < n; j++) params[j] = readParam(r);
    const st: Statement = { sql, params };
    if ((sflags & S_FORCE_QUERY) !== 0) st.forceQuery = true;
    if ((sflags & S_EXPLAIN) !== 0) st.explain = true;
    cmd.statements.push(st);
  }
  if ((flags & F_DATA) !== 0) cmd.data = r.bytes("load data");
  if (r.left !== 0) throw new CommandDecodeError(`${r.left} trailing bytes`);
  return cmd;
}
