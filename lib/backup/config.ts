/**
 * The `-auto-backup` and `-auto-restore` configuration files (rqlite's
 * format, rqlite-api.md §8): JSON with `$VAR` / `${VAR}` references to
 * environment variables expanded first (so secrets stay out of the file),
 * then checked field by field with errors that name the field and say
 * what to write instead.
 *
 * ```json
 * {"version": 1, "type": "s3", "interval": "5m", "vacuum": false,
 *  "no_compress": false, "timestamp": false,
 *  "sub": {"access_key_id": "$AWS_ACCESS_KEY_ID", "secret_access_key": "$AWS_SECRET_ACCESS_KEY",
 *          "region": "us-east-1", "bucket": "my-bucket", "path": "backups/db.sqlite.gz",
 *          "endpoint": "", "force_path_style": false}}
 * {"version": 1, "type": "file", "interval": "1h",
 *  "sub": {"dir": "/var/backups/raftlite", "name": "db.sqlite.gz"}}
 * ```
 *
 * A restore file has the same `type` and `sub`, plus `timeout` (default
 * 60s) and `continue_on_failure` (default false) instead of the backup
 * fields. Compression is on unless `"no_compress": true` (rqlite's name);
 * `"compress": false` says the same.
 *
 * @module
 */

import { parseDurationMs } from "../config/flags.ts";

/** A configuration file that cannot be used; the message says what to fix. */
export class BackupConfigError extends Error {
  override name = "BackupConfigError";
}

/** Where backups go (and restores come from). */
export type StorageConfig =
  | {
    readonly type: "file";
    /** Absolute directory. */
    readonly dir: string;
    /** File name inside `dir`. */
    readonly name: string;
  }
  | {
    readonly type: "s3";
    /** "" = AWS; else a URL or host[:port]. */
    readonly endpoint: string;
    readonly region: string;
    readonly bucket: string;
    /** The object key. */
    readonly path: string;
    readonly accessKeyId: string;
    readonly secretAccessKey: string;
    readonly sessionToken?: string;
    readonly forcePathStyle: boolean;
  };

/** A parsed `-auto-backup` file. */
export interface BackupConfig {
  readonly intervalMs: number;
  /** gzip the uploaded file. */
  readonly compress: boolean;
  /** Prefix each upload's name with its UTC time (`20060102150405_`), keeping every one. */
  readonly timestamp: boolean;
  /** Upload a compacted copy (`VACUUM INTO`). */
  readonly vacuum: boolean;
  readonly storage: StorageConfig;
}

/** A parsed `-auto-restore` file. */
export interface RestoreConfig {
  /** Bound on the whole download. */
  readonly timeoutMs: number;
  /** Start as an empty node when the download fails, instead of exiting. */
  readonly continueOnFailure: boolean;
  readonly storage: StorageConfig;
}

/** Shortest backup interval: a backup reads the whole database. */
export const MIN_INTERVAL_MS = 1_000;
/** Default restore download bound (rqlite's). */
const DEFAULT_RESTORE_TIMEOUT_MS = 60_000;

type Env = (name: string) => string | undefined;
type Json = Record<string, unknown>;

/** Parses the text of an `-auto-backup` file. `what` names it in errors. */
export function parseBackupConfig(text: string, env: Env, what = "-auto-backup"): BackupConfig {
  const raw = parseJson(text, env, what);
  const allowed = ["version", "type", "interval", "no_compress", "compress", "timestamp"];
  checkKeys(raw, [...allowed, "vacuum", "sub"], what);
  const intervalMs = duration(raw, "interval", undefined, what);
  if (intervalMs < MIN_INTERVAL_MS) {
    throw new BackupConfigError(`${what}: "interval" must be at least 1s, such as "5m" or "1h"`);
  }
  const noCompress = bool(raw, "no_compress", false, what);
  const compress = bool(raw, "compress", !noCompress, what);
  if (noCompress && compress) {
    throw new BackupConfigError(`${what}: "no_compress": true and "compress": true contradict`);
  }
  return {
    intervalMs,
    compress,
    timestamp: bool(raw, "timestamp", false, what),
    vacuum: bool(raw, "vacuum", false, what),
    storage: storage(raw, what),
  };
}

/** Parses the text of an `-auto-restore` file. */
export function parseRestoreConfig(text: string, env: Env, what = "-auto-restore"): RestoreConfig {
  const raw = parseJson(text, env, what);
  checkKeys(raw, ["version", "type", "timeout", "continue_on_failure", "sub"], what);
  const timeoutMs = duration(raw, "timeout", DEFAULT_RESTORE_TIMEOUT_MS, what);
  if (!(timeoutMs > 0)) throw new BackupConfigError(`${what}: "timeout" must be above 0`);
  return {
    timeoutMs,
    continueOnFailure: bool(raw, "continue_on_failure", false, what),
    storage: storage(raw, what),
  };
}

/**
 * `$NAME` and `${NAME}` replaced by the variable's value ("" when unset),
 * as Go's os.ExpandEnv does for rqlite; `$$` stays a literal `$`.
 */
export function expandEnv(text: string, env: Env): string {
  return text.replace(
    /\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)/g,
    (all, braced?: string, bare?: string) => {
      if (all === "$$") return "$";
      return env(braced ?? bare ?? "") ?? "";
    },
  );
}

function parseJson(text: string, env: Env, what: string): Json {
  let raw: unknown;
  try {
    raw = JSON.parse(expandEnv(text, env));
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    throw new BackupConfigError(`${what}: not valid JSON (${why})`);
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new BackupConfigError(`${what}: must be a JSON object such as {"version": 1, ...}`);
  }
  const obj = raw as Json;
  if (obj.version !== undefined && obj.version !== 1) {
    throw new BackupConfigError(`${what}: "version" must be 1`);
  }
  return obj;
}

function storage(raw: Json, what: string): StorageConfig {
  const type = raw.type;
  const sub = raw.sub;
  if (typeof sub !== "object" || sub === null || Array.isArray(sub)) {
    throw new BackupConfigError(`${what}: "sub" must be an object with the storage's settings`);
  }
  const s = sub as Json;
  if (type === "file") return fileStorage(s, `${what} "sub"`);
  if (type === "s3") return s3Storage(s, `${what} "sub"`);
  if (type === "gcs") {
    throw new BackupConfigError(`${what}: type "gcs" is not supported; use "s3" or "file"`);
  }
  throw new BackupConfigError(`${what}: "type" must be "s3" or "file"`);
}

function fileStorage(s: Json, what: string): StorageConfig {
  checkKeys(s, ["dir", "name", "file"], what);
  const dir = text(s, "dir", undefined, what);
  if (!dir.startsWith("/")) {
    throw new BackupConfigError(`${what}: "dir" must be an absolute path, got "${dir}"`);
  }
  const name = s.file !== undefined && s.name === undefined
    ? text(s, "file", undefined, what)
    : text(s, "name", undefined, what);
  if (name.includes("/") || name === "." || name === "..") {
    throw new BackupConfigError(`${what}: "name" must be a file name without "/", got "${name}"`);
  }
  return { type: "file", dir: dir.replace(/\/+$/, "") || "/", name };
}

function s3Storage(s: Json, what: string): StorageConfig {
  checkKeys(s, [
    "access_key_id",
    "secret_access_key",
    "session_token",
    "endpoint",
    "region",
    "bucket",
    "path",
    "force_path_style",
  ], what);
  const path = text(s, "path", undefined, what).replace(/^\/+/, "");
  if (path === "" || path.endsWith("/")) {
    throw new BackupConfigError(`${what}: "path" must name an object, such as "backups/db.gz"`);
  }
  const sessionToken = text(s, "session_token", "", what);
  return {
    type: "s3",
    endpoint: text(s, "endpoint", "", what),
    region: text(s, "region", "us-east-1", what) || "us-east-1",
    bucket: text(s, "bucket", undefined, what),
    path,
    accessKeyId: text(s, "access_key_id", undefined, what),
    secretAccessKey: text(s, "secret_access_key", undefined, what),
    ...(sessionToken === "" ? {} : { sessionToken }),
    forcePathStyle: bool(s, "force_path_style", false, what),
  };
}

function checkKeys(obj: Json, allowed: readonly string[], what: string): void {
  for (const key of Object.keys(obj)) {
    if (!allowed.includes(key)) {
      throw new BackupConfigError(
        `${what}: unknown field "${key}" (known: ${allowed.join(", ")})`,
      );
    }
  }
}

function text(obj: Json, key: string, fallback: string | undefined, what: string): string {
  const v = obj[key];
  if (v === undefined && fallback !== undefined) return fallback;
  if (typeof v !== "string" || (fallback === undefined && v === "")) {
    const hint = fallback === undefined ? ' (required; an unset $VARIABLE expands to "")' : "";
    throw new BackupConfigError(`${what}: "${key}" must be a non-empty string${hint}`);
  }
  return v;
}

function bool(obj: Json, key: string, fallback: boolean, what: string): boolean {
  const v = obj[key];
  if (v === undefined) return fallback;
  if (typeof v !== "boolean") {
    throw new BackupConfigError(`${what}: "${key}" must be true or false`);
  }
  return v;
}

function duration(obj: Json, key: string, fallback: number | undefined, what: string): number {
  const v = obj[key];
  if (v === undefined && fallback !== undefined) return fallback;
  const ms = typeof v === "string" ? parseDurationMs(v) : undefined;
  if (ms === undefined) {
    throw new BackupConfigError(`${what}: "${key}" must be a duration such as "30s", "5m" or "1h"`);
  }
  return ms;
}
