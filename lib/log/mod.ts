/**
 * Structured one-line logs with levels, to stderr:
 *
 * ```
 * 2026-11-22T10:00:00.000Z WARN [storage] cut a torn tail: file=... offset=...
 * ```
 *
 * ISO-8601 UTC time, level, component in brackets, message. A message is
 * always one line: newlines and carriage returns are escaped (`\n`, `\r`),
 * so a log shipper never splits an event. Two thresholds, as rqlite has:
 * `-raft-log-level` (default WARN) for the consensus machinery (components
 * `raft` and `transport`) and `-log-level` (raftlite's; default INFO) for
 * everything else, including `storage`, whose events (torn tails cut,
 * corrupt snapshots, recoveries and their end) an operator should see. A disabled level costs one comparison: the
 * line is not formatted.
 *
 * The node's modules log free text through `(line) => void` callbacks with
 * a `[component] ` prefix; {@link Logger.lineLogger} turns those into
 * events. Their level is explicit when the text starts with `ERROR `,
 * `WARN `, `INFO ` or `DEBUG `; otherwise `fatal:` is ERROR, text saying
 * something failed, could not be done or is corrupt is WARN, and the rest
 * INFO.
 *
 * @module
 */

/** Log levels, most severe first. */
export const LOG_LEVELS = ["ERROR", "WARN", "INFO", "DEBUG"] as const;

/** A log level. */
export type LogLevel = typeof LOG_LEVELS[number];

const RANK: Record<LogLevel, number> = { ERROR: 0, WARN: 1, INFO: 2, DEBUG: 3 };

/** Components whose threshold is `-raft-log-level`. */
export const RAFT_COMPONENTS: ReadonlySet<string> = new Set(["raft", "transport"]);

/** The level named by `text` (any case), or undefined. */
export function parseLogLevel(text: string): LogLevel | undefined {
  const up = text.trim().toUpperCase();
  return (LOG_LEVELS as readonly string[]).includes(up) ? up as LogLevel : undefined;
}

/** Options of {@link Logger}. */
export interface LoggerOptions {
  /** Threshold for components outside {@link RAFT_COMPONENTS} (default INFO). */
  readonly level?: LogLevel;
  /** Threshold for {@link RAFT_COMPONENTS} (default WARN, as rqlite's -raft-log-level). */
  readonly raftLevel?: LogLevel;
  /** Where lines go (default stderr). */
  readonly sink?: (line: string) => void;
  /** Clock, ms since the epoch (default Date.now). */
  readonly nowMs?: () => number;
}

/** Writes levelled one-line events. */
export class Logger {
  readonly #level: number;
  readonly #raftLevel: number;
  readonly #sink: (line: string) => void;
  readonly #nowMs: () => number;

  constructor(options: LoggerOptions = {}) {
    this.#level = RANK[options.level ?? "INFO"];
    this.#raftLevel = RANK[options.raftLevel ?? "WARN"];
    this.#sink = options.sink ?? ((line) => console.error(line));
    this.#nowMs = options.nowMs ?? Date.now;
  }

  /** Whether `level` events of `component` are written. */
  enabled(level: LogLevel, component: string): boolean {
    const threshold = RAFT_COMPONENTS.has(component) ? this.#raftLevel : this.#level;
    return RANK[level] <= threshold;
  }

  /** Writes one event if its level is enabled. */
  log(level: LogLevel, component: string, message: string): void {
    if (!this.enabled(level, component)) return;
    const time = new Date(this.#nowMs()).toISOString();
    this.#sink(`${time} ${level} [${component}] ${oneLine(message)}`);
  }

  /**
   * A `(line) => void` for modules that log free text: a leading
   * `[component] ` names the component (else `fallback`), the level is
   * taken from the text (see the module note).
   */
  lineLogger(fallback = "node"): (line: string) => void {
    return (line) => {
      let component = fallback;
      let text = line;
      const m = /^\[([a-z][a-z0-9_-]*)\] /.exec(line);
      if (m !== null) {
        component = m[1]!;
        text = line.slice(m[0].length);
      }
      const explicit = /^(ERROR|WARN|INFO|DEBUG) /.exec(text);
      if (explicit !== null) {
        this.log(explicit[1] as LogLevel, component, text.slice(explicit[0].length));
      } else {
        this.log(levelOf(text), component, text);
      }
    };
  }
}

/** The level of a free-text message without an explicit one. */
export function levelOf(text: string): LogLevel {
  if (/^fatal:/i.test(text)) return "ERROR";
  if (/\b(failed|fails|could not|cannot|corrupt|damaged|error|refused|timed out)\b/i.test(text)) {
    return "WARN";
  }
  return "INFO";
}

function oneLine(message: string): string {
  return message.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/\r/g, "\\r");
}
