/**
 * Structured one-line logs with levels, to stderr. One event is one line:
 *
 * ```
 * 2026-11-22T10:00:00.000Z WARN [storage] torn tail cut file=log-1.seg offset=4096
 * 2026-11-22T10:00:01.000Z INFO [raft] leader changed leader=n2 term=3
 * ```
 *
 * ISO-8601 UTC time, level, component in brackets, the message, then
 * optional `key=value` fields (logfmt style: a value with spaces, quotes,
 * `=` or control characters is written as a JSON string). Nothing an event
 * carries can break the line: in the message, backslashes and control
 * characters are escaped (`\\`, `\n`, `\r`, `\t`, `\u0085`...), so a log
 * shipper never splits an event and a reader can undo the escaping.
 *
 * Two thresholds, as rqlite has: `-raft-log-level` (default WARN) for the
 * consensus machinery ({@link RAFT_COMPONENTS}: `raft`, `cluster`,
 * `transport`, `storage`) and raftlite's `-log-level` (default INFO) for
 * every other component (`node`, `http`, `store`, `recovery`, `boot`...).
 *
 * Cost: a disabled level is one comparison; the time, the escaping and the
 * fields are formatted only for events that are written. A message that is
 * itself costly to build can be passed as a function, which runs only when
 * the level is enabled.
 *
 * @module
 */

/** Log levels, most severe first. */
export const LOG_LEVELS = ["ERROR", "WARN", "INFO", "DEBUG"] as const;

/** A log level. */
export type LogLevel = typeof LOG_LEVELS[number];

const RANK: Readonly<Record<LogLevel, number>> = { ERROR: 0, WARN: 1, INFO: 2, DEBUG: 3 };

/** Components whose threshold is `-raft-log-level`; all others follow `-log-level`. */
export const RAFT_COMPONENTS: ReadonlySet<string> = new Set([
  "raft",
  "cluster",
  "transport",
  "storage",
]);

/** The level named by `text` (any case, as rqlite accepts it), or undefined. */
export function parseLogLevel(text: string): LogLevel | undefined {
  const up = text.trim().toUpperCase();
  return (LOG_LEVELS as readonly string[]).includes(up) ? up as LogLevel : undefined;
}

/** Extra facts of an event, written as `key=value` after the message. */
export type LogFields = Readonly<Record<string, unknown>>;

/** A message, or a function building it (run only when the level is enabled). */
export type LogMessage = string | (() => string);

/** Where formatted lines go (without the trailing newline). */
export type LogSink = (line: string) => void;

/** What a component logs through. */
export interface Log {
  error(message: LogMessage, fields?: LogFields): void;
  warn(message: LogMessage, fields?: LogFields): void;
  info(message: LogMessage, fields?: LogFields): void;
  debug(message: LogMessage, fields?: LogFields): void;
  /** Whether events of `level` are written (guards work beyond building the message). */
  enabled(level: LogLevel): boolean;
}

/** Options of {@link Logger}. */
export interface LoggerOptions {
  /** Threshold of components outside {@link RAFT_COMPONENTS} (default INFO). */
  readonly level?: LogLevel;
  /** Threshold of {@link RAFT_COMPONENTS} (default WARN, as rqlite's -raft-log-level). */
  readonly raftLevel?: LogLevel;
  /** Where lines go (default: stderr). */
  readonly sink?: LogSink;
  /** Clock in ms since the epoch (default Date.now). */
  readonly nowMs?: () => number;
}

/** Writes one line to stderr. */
export const stderrSink: LogSink = (line) => console.error(line);

/** The node's logging: one {@link Log} per component, sharing the thresholds and the sink. */
export class Logger {
  readonly #level: number;
  readonly #raftLevel: number;
  readonly #sink: LogSink;
  readonly #nowMs: () => number;

  constructor(options: LoggerOptions = {}) {
    this.#level = RANK[options.level ?? "INFO"];
    this.#raftLevel = RANK[options.raftLevel ?? "WARN"];
    this.#sink = options.sink ?? stderrSink;
    this.#nowMs = options.nowMs ?? Date.now;
  }

  /** The log of `component` (lower case, e.g. `raft`, `http`). */
  for(component: string): Log {
    if (!/^[a-z][a-z0-9_-]*$/.test(component)) {
      throw new TypeError(`log component "${component}": use lower-case letters, digits, - or _`);
    }
    const threshold = RAFT_COMPONENTS.has(component) ? this.#raftLevel : this.#level;
    return new ComponentLog(component, threshold, this.#sink, this.#nowMs);
  }
}

/** A {@link Log} that writes nothing (tests and tools that do not log). */
export const NO_LOG: Log = {
  error() {},
  warn() {},
  info() {},
  debug() {},
  enabled: () => false,
};

class ComponentLog implements Log {
  constructor(
    private readonly component: string,
    private readonly threshold: number,
    private readonly sink: LogSink,
    private readonly nowMs: () => number,
  ) {}

  error(message: LogMessage, fields?: LogFields): void {
    this.#write("ERROR", message, fields);
  }

  warn(message: LogMessage, fields?: LogFields): void {
    if (this.threshold >= RANK.WARN) this.#write("WARN", message, fields);
  }

  info(message: LogMessage, fields?: LogFields): void {
    if (this.threshold >= RANK.INFO) this.#write("INFO", message, fields);
  }

  debug(message: LogMessage, fields?: LogFields): void {
    if (this.threshold >= RANK.DEBUG) this.#write("DEBUG", message, fields);
  }

  enabled(level: LogLevel): boolean {
    return RANK[level] <= this.threshold;
  }

  #write(level: LogLevel, message: LogMessage, fields: LogFields | undefined): void {
    const text = typeof message === "string" ? message : message();
    this.sink(formatEvent(this.nowMs(), level, this.component, text, fields));
  }
}

/** One event as one line (see the module note for the format). */
export function formatEvent(
  timeMs: number,
  level: LogLevel,
  component: string,
  message: string,
  fields?: LogFields,
): string {
  let line = `${new Date(timeMs).toISOString()} ${level} [${component}] ${escapeText(message)}`;
  if (fields !== undefined) {
    for (const key in fields) {
      const value = fields[key];
      if (value === undefined) continue;
      line += ` ${FIELD_KEY.test(key) ? key : JSON.stringify(key)}=${fieldValue(value)}`;
    }
  }
  return line;
}

const FIELD_KEY = /^[A-Za-z0-9_.-]+$/;
/** Characters that would break a line or make escaping ambiguous (controls on purpose). */
// deno-lint-ignore no-control-regex
const UNSAFE = /[\\\u0000-\u001f\u007f\u0085\u2028\u2029]/;
// deno-lint-ignore no-control-regex
const UNSAFE_ALL = /[\\\u0000-\u001f\u007f\u0085\u2028\u2029]/g;
const SHORT_ESCAPES: Readonly<Record<string, string>> = {
  "\\": "\\\\",
  "\n": "\\n",
  "\r": "\\r",
  "\t": "\\t",
};

/** The message with backslashes and control characters escaped: always one line. */
export function escapeText(text: string): string {
  if (!UNSAFE.test(text)) return text;
  return text.replace(
    UNSAFE_ALL,
    (c) => SHORT_ESCAPES[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

/** A field value: bare when it is a plain token, else a JSON string (also one line). */
function fieldValue(value: unknown): string {
  let text: string;
  if (typeof value === "string") text = value;
  else if (typeof value === "number" || typeof value === "boolean" || typeof value === "bigint") {
    return String(value);
  } else if (value instanceof Error) text = value.message;
  else if (value === null) return "null";
  else {
    try {
      text = JSON.stringify(value) ?? String(value);
    } catch {
      text = String(value);
    }
  }
  if (text !== "" && !/[\s"=]/.test(text) && !UNSAFE.test(text)) return text;
  // JSON escapes quotes, backslashes and C0 controls; the rest of UNSAFE by hand.
  return JSON.stringify(text).replace(
    /[\u007f\u0085\u2028\u2029]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}
