/**
 * The read-eval-print loop on node:readline: line editing, persistent
 * history (history.ts), the `host:port>` prompt and a `...>` continuation
 * prompt while a statement is open, dot-commands, and Ctrl-C.
 *
 * Input rules: a line starting with `.` (when no statement is open) is a
 * dot-command; `quit`/`exit` alone leave; anything else is SQL, read until
 * the text is complete (statements.ts: a `;` outside strings, comments and
 * trigger bodies), then sent as one request.
 *
 * Ctrl-C, as in sqlite3 and node's REPL:
 * - while a request runs: cancels it (the shell stays; the node may still
 *   finish the work, which the message says);
 * - with text typed or a statement open: discards it, fresh prompt;
 * - at an empty prompt: a hint; a second Ctrl-C in a row exits (as does
 *   Ctrl-D or `.exit`), always with `bye~`.
 * When stdin is not a terminal (piped input) there are no prompts, SIGINT
 * cancels a running request or else ends the shell.
 *
 * @module
 */

import process from "node:process";
import * as readline from "node:readline";
import { hostPort } from "./args.ts";
import { CommandError, runDotCommand } from "./commands.ts";
import { CancelledError } from "./connection.ts";
import { HISTORY_MAX, loadHistory, oneLine, saveHistory } from "./history.ts";
import { stdoutOutput, writeAllSync, writeError } from "./output.ts";
import type { Session } from "./session.ts";
import { runStatements } from "./sql.ts";
import { StatementReader } from "./statements.ts";

/** Options of {@link runRepl}. */
export interface ReplOptions {
  /** History file, or undefined for no persistent history. */
  historyFile?: string;
}

/** The readline members the loop touches that the type declarations mark read-only. */
interface MutableInterface {
  line: string;
  cursor: number;
  history: string[];
}

/** Runs and prints what `fn` does; errors become `ERR! ...` lines, never exits the shell. */
async function guarded<T>(session: Session, fn: () => Promise<T>): Promise<T | undefined> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof CancelledError) {
      session.error("interrupted: request cancelled (the node may still complete it)");
    } else if (err instanceof CommandError || err instanceof Error) session.error(err.message);
    else session.error(String(err));
    return undefined;
  }
}

/** Runs the loop until `.exit`, EOF or a second Ctrl-C; prints `bye~`. */
export async function runRepl(session: Session, options: ReplOptions = {}): Promise<void> {
  const tty = Deno.stdin.isTerminal();
  const entries = await initialHistory(options.historyFile);
  const rl = readline.createInterface({
    input: process.stdin,
    output: process.stdout,
    terminal: tty,
    history: [...entries].reverse(),
    historySize: HISTORY_MAX,
  });
  const mrl = rl as unknown as MutableInterface;
  const reader = new StatementReader();
  const queue: string[] = [];
  let waiter: ((line: string | null) => void) | undefined;
  let closed = false;
  let ctrlC = false;
  let entryLines: string[] = [];

  rl.on("line", (line: string) => {
    if (waiter !== undefined) {
      const w = waiter;
      waiter = undefined;
      w(line);
    } else queue.push(line);
  });
  rl.on("close", () => {
    closed = true;
    waiter?.(null);
  });
  rl.on("SIGINT", () => {
    writeAllSync(Deno.stdout, "^C\n");
    if (session.cancel()) return;
    const hadText = mrl.line !== "" || reader.pending;
    mrl.line = "";
    mrl.cursor = 0;
    reader.take();
    entryLines = [];
    if (!hadText && ctrlC) {
      rl.close();
      return;
    }
    if (!hadText) {
      ctrlC = true;
      writeAllSync(Deno.stdout, "(To exit, press Ctrl-C again or Ctrl-D, or type .exit)\n");
    }
    rl.setPrompt(prompt(false));
    rl.prompt();
  });
  const onSignal = () => {
    if (!session.cancel() && !tty) rl.close();
  };
  Deno.addSignalListener("SIGINT", onSignal);

  function prompt(continuation: boolean): string {
    const hp = hostPort(session.conn.host);
    return continuation ? `${" ".repeat(Math.max(0, hp.length - 3))}...> ` : `${hp}> `;
  }

  function nextLine(): Promise<string | null> {
    const queued = queue.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    if (closed) return Promise.resolve(null);
    if (tty) {
      rl.setPrompt(prompt(reader.pending));
      rl.prompt();
    }
    return new Promise((resolve) => (waiter = resolve));
  }

  let warned = false;
  async function remember(entry: string): Promise<void> {
    const e = oneLine(entry);
    if (e === "") return;
    if (entries[entries.length - 1] !== e) entries.push(e);
    if (entries.length > HISTORY_MAX) entries.splice(0, entries.length - HISTORY_MAX);
    mrl.history = [...entries].reverse();
    if (options.historyFile === undefined) return;
    try {
      await saveHistory(options.historyFile, entries);
    } catch (err) {
      if (!warned) {
        writeError(`cannot save history to ${options.historyFile}: ${(err as Error).message}\n`);
      }
      warned = true;
    }
  }

  try {
    for (;;) {
      const line = await nextLine();
      if (line === null) break;
      ctrlC = false;
      if (!reader.pending) {
        const t = line.trim();
        if (t === "") continue;
        if (/^(quit|exit);?$/i.test(t)) {
          await remember(t);
          break;
        }
        if (t.startsWith(".")) {
          await remember(t);
          if (await guarded(session, () => runDotCommand(session, t)) === "exit") break;
          continue;
        }
      }
      entryLines.push(line);
      let statements: string[];
      try {
        statements = reader.push(line);
      } catch (err) {
        session.error((err as Error).message);
        entryLines = [];
        continue;
      }
      if (reader.pending) continue;
      await remember(entryLines.join("\n"));
      entryLines = [];
      if (statements.length > 0) await guarded(session, () => runStatements(session, statements));
    }
  } finally {
    Deno.removeSignalListener("SIGINT", onSignal);
    rl.close();
  }
  session.setOutput(stdoutOutput);
  writeAllSync(Deno.stdout, "bye~\n");
}

async function initialHistory(path: string | undefined): Promise<string[]> {
  if (path === undefined) return [];
  try {
    return await loadHistory(path);
  } catch (err) {
    writeError(`cannot read history from ${path}: ${(err as Error).message}\n`);
    return [];
  }
}
