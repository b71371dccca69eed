/**
 * The dot-commands of rqlite's CLI (rqlite-api.md §14), one table: name,
 * usage, help line, argument bounds and handler. Names are matched
 * case-insensitively; `.help` prints the table. Settings commands print the
 * current value when called without an argument (`.mode`, `.timer`, ...).
 *
 * `.read FILE` streams the file line by line through the same statement
 * reader as the prompt, sending statements in batches and running dot-
 * commands found on their own lines (nested `.read` bounded by
 * {@link MAX_READ_DEPTH}).
 *
 * @module
 */

import {
  expvarCommand,
  extensionsCommand,
  leaderCommand,
  nodesCommand,
  readyCommand,
  reapCommand,
  removeCommand,
  snapshotCommand,
  statusCommand,
  stepdownCommand,
  sysdumpCommand,
} from "./cluster_commands.ts";
import { type Mode, MODES } from "./format.ts";
import { fileOutput, stdoutOutput } from "./output.ts";
import { type Level, LEVELS, type Session } from "./session.ts";
import { runQuery, runStatements } from "./sql.ts";
import { StatementReader } from "./statements.ts";
import { backupCommand, bootCommand, dumpCommand, restoreCommand } from "./transfer.ts";

/** What the REPL does after a command. */
export type CommandResult = "continue" | "exit";

/** How deep `.read` may nest. */
export const MAX_READ_DEPTH = 16;

/** `.read` sends at most this many statements per request. */
const READ_BATCH_STATEMENTS = 256;
/** ... and at most about this many characters. */
const READ_BATCH_CHARS = 1 << 20;

interface CommandSpec {
  readonly name: string;
  readonly usage: string;
  readonly help: string;
  readonly minArgs: number;
  readonly maxArgs: number;
  run(session: Session, args: string[], depth: number): Promise<CommandResult | void> | void;
}

/** A user mistake in a command line; printed as `ERR! message`. */
export class CommandError extends Error {
  override name = "CommandError";
}

function onOff(key: "timer" | "changes" | "blobArray" | "forceWrites", label: string) {
  return (session: Session, args: string[]) => {
    const v = args[0]?.toLowerCase();
    if (v === undefined) {
      session.print(`${label}: ${session.settings[key] ? "on" : "off"}`);
      return;
    }
    if (v !== "on" && v !== "off") throw new CommandError(`.${label} takes on or off, not "${v}"`);
    session.settings[key] = v === "on";
  };
}

const COMMANDS: readonly CommandSpec[] = [
  {
    name: "backup",
    usage: ".backup <file>",
    help: "Write database backup to SQLite file",
    minArgs: 1,
    maxArgs: 1,
    run: (s, a) => backupCommand(s, expandHome(a[0]!)),
  },
  {
    name: "blobarray",
    usage: ".blobarray on|off",
    help: "Show BLOB data as byte arrays",
    minArgs: 0,
    maxArgs: 1,
    run: onOff("blobArray", "blobarray"),
  },
  {
    name: "boot",
    usage: ".boot <file>",
    help: "Boot the node using a SQLite file",
    minArgs: 1,
    maxArgs: 1,
    run: (s, a) => bootCommand(s, expandHome(a[0]!)),
  },
  {
    name: "changes",
    usage: ".changes on|off",
    help: "Show last insert ID after INSERT statements",
    minArgs: 0,
    maxArgs: 1,
    run: onOff("changes", "changes"),
  },
  {
    name: "consistency",
    usage: ".consistency [none|weak|linearizable|strong|auto]",
    help: "Show or set read consistency level",
    minArgs: 0,
    maxArgs: 1,
    run: (s, a) => setConsistency(s, a[0]),
  },
  {
    name: "dump",
    usage: ".dump <file> [table1,table2,...]",
    help: "Dump the database in SQL text format to a file",
    minArgs: 1,
    maxArgs: 2,
    run: (s, a) => dumpCommand(s, expandHome(a[0]!), a[1]),
  },
  {
    name: "exit",
    usage: ".exit",
    help: "Exit this program",
    minArgs: 0,
    maxArgs: 0,
    run: () => "exit",
  },
  {
    name: "expvar",
    usage: ".expvar [name]",
    help: "Show expvar (runtime) information for connected node",
    minArgs: 0,
    maxArgs: 1,
    run: (s, a) => expvarCommand(s, a[0]),
  },
  {
    name: "extensions",
    usage: ".extensions",
    help: "Show loaded SQLite extensions",
    minArgs: 0,
    maxArgs: 0,
    run: (s) => extensionsCommand(s),
  },
  {
    name: "forcewrites",
    usage: ".forcewrites on|off",
    help: "Send all SQL to the write endpoint (/db/execute)",
    minArgs: 0,
    maxArgs: 1,
    run: onOff("forceWrites", "forcewrites"),
  },
  {
    name: "help",
    usage: ".help",
    help: "Show this message",
    minArgs: 0,
    maxArgs: 0,
    run: (s) => s.print(helpText()),
  },
  {
    name: "indexes",
    usage: ".indexes",
    help: "Show names of all indexes",
    minArgs: 0,
    maxArgs: 0,
    run: (s) => runQuery(s, `SELECT sql FROM sqlite_master WHERE type='index'`),
  },
  {
    name: "leader",
    usage: ".leader",
    help: "Show the current cluster leader",
    minArgs: 0,
    maxArgs: 0,
    run: (s) => leaderCommand(s),
  },
  {
    name: "mode",
    usage: ".mode [column|csv|json|line]",
    help: "Show or set the output mode",
    minArgs: 0,
    maxArgs: 1,
    run: (s, a) => setMode(s, a[0]),
  },
  {
    name: "nodes",
    usage: ".nodes [all]",
    help: "Show connection status of voting nodes. 'all' to show all nodes",
    minArgs: 0,
    maxArgs: 1,
    run: (s, a) => {
      if (a[0] !== undefined && a[0].toLowerCase() !== "all") {
        throw new CommandError(`.nodes takes nothing or "all", not "${a[0]}"`);
      }
      return nodesCommand(s, a[0] !== undefined);
    },
  },
  {
    name: "output",
    usage: ".output [<file>]",
    help: "Send output to FILE, or stdout if FILE is omitted",
    minArgs: 0,
    maxArgs: 1,
    run: (s, a) => s.setOutput(a[0] === undefined ? stdoutOutput : fileOutput(expandHome(a[0]))),
  },
  {
    name: "quit",
    usage: ".quit",
    help: "Exit this program",
    minArgs: 0,
    maxArgs: 0,
    run: () => "exit",
  },
  {
    name: "read",
    usage: ".read <file>",
    help: "Execute SQL statements in file",
    minArgs: 1,
    maxArgs: 1,
    run: (s, a, depth) => readCommand(s, expandHome(a[0]!), depth),
  },
  {
    name: "ready",
    usage: ".ready",
    help: "Show ready status for connected node",
    minArgs: 0,
    maxArgs: 0,
    run: (s) => readyCommand(s),
  },
  {
    name: "reap",
    usage: ".reap",
    help: "Request a snapshot store reap on connected node",
    minArgs: 0,
    maxArgs: 0,
    run: (s) => reapCommand(s),
  },
  {
    name: "remove",
    usage: ".remove <node ID>",
    help: "Remove a node from the cluster",
    minArgs: 1,
    maxArgs: 1,
    run: (s, a) => removeCommand(s, a[0]!),
  },
  {
    name: "restore",
    usage: ".restore <file>",
    help: "Load using SQLite file or SQL dump contained in file",
    minArgs: 1,
    maxArgs: 1,
    run: (s, a) => restoreCommand(s, expandHome(a[0]!)),
  },
  {
    name: "schema",
    usage: ".schema",
    help: "Show CREATE statements for all tables",
    minArgs: 0,
    maxArgs: 0,
    run: (s) =>
      runQuery(s, "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY rowid ASC"),
  },
  {
    name: "show",
    usage: ".show",
    help: "Show the current values for various settings",
    minArgs: 0,
    maxArgs: 0,
    run: (s) => s.print(showText(s)),
  },
  {
    name: "snapshot",
    usage: ".snapshot [trailing logs]",
    help: "Request a Raft snapshot and log truncation on connected node",
    minArgs: 0,
    maxArgs: 1,
    run: (s, a) => snapshotCommand(s, a[0]),
  },
  {
    name: "status",
    usage: ".status [key]",
    help: "Show status and diagnostic information for connected node",
    minArgs: 0,
    maxArgs: 1,
    run: (s, a) => statusCommand(s, a[0]),
  },
  {
    name: "stepdown",
    usage: ".stepdown [node ID]",
    help: "Instruct the leader to stepdown, optionally specifying new Leader node",
    minArgs: 0,
    maxArgs: 1,
    run: (s, a) => stepdownCommand(s, a[0]),
  },
  {
    name: "sysdump",
    usage: ".sysdump <file>",
    help: "Dump system diagnostics of every node to a file for offline analysis",
    minArgs: 1,
    maxArgs: 1,
    run: (s, a) => sysdumpCommand(s, expandHome(a[0]!)),
  },
  {
    name: "tables",
    usage: ".tables",
    help: "List names of tables",
    minArgs: 0,
    maxArgs: 0,
    run: (s) => runQuery(s, `SELECT name FROM sqlite_master WHERE type='table' ORDER BY name ASC`),
  },
  {
    name: "timer",
    usage: ".timer on|off",
    help: "Turn query timings on or off",
    minArgs: 0,
    maxArgs: 1,
    run: onOff("timer", "timer"),
  },
];

/** Every dot-command name, without the dot. */
export const COMMAND_NAMES: readonly string[] = COMMANDS.map((c) => c.name);

/** The `.help` text: usage and help of every command, aligned. */
export function helpText(): string {
  const width = Math.max(...COMMANDS.map((c) => c.usage.length)) + 2;
  return COMMANDS.map((c) => c.usage.padEnd(width) + c.help).join("\n");
}

function showText(s: Session): string {
  const rows: [string, string][] = [
    ["blobarray", s.settings.blobArray ? "on" : "off"],
    ["changes", s.settings.changes ? "on" : "off"],
    ["consistency", s.settings.consistency],
    ["forcewrites", s.settings.forceWrites ? "on" : "off"],
    ["host", s.conn.url("")],
    ["mode", s.settings.mode],
    ["output", s.out.name],
    ["timer", s.settings.timer ? "on" : "off"],
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${k.padStart(width)}: ${v}`).join("\n");
}

function setMode(s: Session, mode?: string): void {
  if (mode === undefined) {
    s.print(`mode: ${s.settings.mode}`);
    return;
  }
  const m = mode.toLowerCase();
  if (!(MODES as readonly string[]).includes(m)) {
    throw new CommandError(`invalid mode "${mode}": use ${MODES.join(", ")}`);
  }
  s.settings.mode = m as Mode;
}

function setConsistency(s: Session, level?: string): void {
  if (level === undefined) {
    s.print(s.settings.consistency);
    return;
  }
  const l = level.toLowerCase();
  if (!(LEVELS as readonly string[]).includes(l)) {
    throw new CommandError(`invalid consistency level "${level}": use ${LEVELS.join(", ")}`);
  }
  s.settings.consistency = l as Level;
}

/**
 * Splits a command line into words: whitespace separates, '...' and "..."
 * quote (for file names with spaces).
 */
export function splitWords(line: string): string[] {
  const words: string[] = [];
  const re = /"([^"]*)"|'([^']*)'|(\S+)/g;
  for (const m of line.matchAll(re)) words.push(m[1] ?? m[2] ?? m[3]!);
  return words;
}

/** `~/x` → `$HOME/x`. */
function expandHome(path: string): string {
  const home = Deno.env.get("HOME");
  return path.startsWith("~/") && home !== undefined ? home + path.slice(1) : path;
}

/** Runs one dot-command line (starting with "."). Errors propagate to the caller. */
export async function runDotCommand(
  session: Session,
  line: string,
  depth = 0,
): Promise<CommandResult> {
  const [word, ...args] = splitWords(line.trim());
  const name = (word ?? ".").slice(1).toLowerCase();
  const spec = COMMANDS.find((c) => c.name === name);
  if (spec === undefined) {
    throw new CommandError(`unknown command "${word}"; .help lists the commands`);
  }
  if (args.length < spec.minArgs || args.length > spec.maxArgs) {
    throw new CommandError(`usage: ${spec.usage}`);
  }
  return (await spec.run(session, args, depth)) ?? "continue";
}

/** `.read FILE`: statements and dot-commands from a file, streamed. */
async function readCommand(session: Session, path: string, depth: number): Promise<CommandResult> {
  if (depth >= MAX_READ_DEPTH) {
    throw new CommandError(
      `.read nested more than ${MAX_READ_DEPTH} deep; is a file reading itself?`,
    );
  }
  const reader = new StatementReader();
  let batch: string[] = [];
  let chars = 0;
  const flush = async () => {
    if (batch.length === 0) return;
    const sending = batch;
    batch = [];
    chars = 0;
    await runStatements(session, sending);
  };
  for await (const line of readLines(path)) {
    if (!reader.pending && line.trim().startsWith(".")) {
      await flush();
      if (await runDotCommand(session, line, depth + 1) === "exit") return "exit";
      continue;
    }
    for (const stmt of reader.push(line)) {
      batch.push(stmt);
      chars += stmt.length;
      if (batch.length >= READ_BATCH_STATEMENTS || chars >= READ_BATCH_CHARS) await flush();
    }
  }
  if (reader.pending) batch.push(reader.take().trim());
  await flush();
  return "continue";
}

/** Lines of a text file, streamed (no whole file in memory). */
async function* readLines(path: string): AsyncGenerator<string> {
  const file = await Deno.open(path);
  let rest = "";
  for await (const chunk of file.readable.pipeThrough(new TextDecoderStream())) {
    rest += chunk;
    const lines = rest.split("\n");
    rest = lines.pop()!;
    for (const l of lines) yield l.endsWith("\r") ? l.slice(0, -1) : l;
  }
  if (rest !== "") yield rest;
}
