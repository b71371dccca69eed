/**
 * One shell session: the connection, the settings the dot-commands change
 * (`.mode`, `.timer`, `.consistency`, `.changes`, `.blobarray`,
 * `.forcewrites`, `.output`), and the request in flight.
 *
 * Every server call runs through {@link Session.run}, which gives it an
 * AbortSignal; {@link Session.cancel} (Ctrl-C) aborts it, the call rejects
 * with CancelledError and the prompt comes back while the shell lives on.
 * One request at a time: the REPL awaits each command before the next.
 *
 * @module
 */

import { CancelledError, type Connection } from "./connection.ts";
import type { Mode } from "./format.ts";
import { type Output, stdoutOutput, writeAllSync, writeError } from "./output.ts";
import type { ProgressSink } from "./progress.ts";

/** Read consistency levels `.consistency` accepts (rqlite-api.md §5). */
export const LEVELS = ["none", "weak", "linearizable", "strong", "auto"] as const;

/** One of {@link LEVELS}. */
export type Level = (typeof LEVELS)[number];

/** What the settings dot-commands change. */
export interface Settings {
  mode: Mode;
  timer: boolean;
  consistency: Level;
  changes: boolean;
  blobArray: boolean;
  forceWrites: boolean;
}

/** The settings a new session starts with (rqlite's defaults). */
export function defaultSettings(): Settings {
  return {
    mode: "column",
    timer: false,
    consistency: "weak",
    changes: false,
    blobArray: false,
    forceWrites: false,
  };
}

/** State shared by the REPL and the commands. */
export class Session {
  readonly settings: Settings = defaultSettings();
  out: Output = stdoutOutput;
  #active: AbortController | undefined;

  constructor(
    readonly conn: Connection,
    /** Progress meters go here (enabled only when stdout is a terminal). */
    readonly progressSink: ProgressSink = {
      enabled: Deno.stdout.isTerminal(),
      write: (t) => writeAllSync(Deno.stdout, t),
    },
  ) {}

  /** True while a request runs. */
  get busy(): boolean {
    return this.#active !== undefined;
  }

  /** Runs `fn` with a signal that {@link cancel} aborts. */
  async run<T>(fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const ac = new AbortController();
    this.#active = ac;
    try {
      return await fn(ac.signal);
    } catch (err) {
      if (ac.signal.aborted) throw new CancelledError();
      throw err;
    } finally {
      this.#active = undefined;
    }
  }

  /** Aborts the running request; false when nothing runs. */
  cancel(): boolean {
    if (this.#active === undefined) return false;
    this.#active.abort();
    return true;
  }

  /** Writes `text` plus a newline to the current output. */
  print(text: string): void {
    this.out.write(text.endsWith("\n") ? text : `${text}\n`);
  }

  /** Writes raw text to the current output. */
  write(text: string): void {
    this.out.write(text);
  }

  /** Prints `ERR! message` on stderr, as rqlite's CLI does. */
  error(message: string): void {
    writeError(`ERR! ${message}\n`);
  }

  /** Switches output to `next`, closing a previous file. */
  setOutput(next: Output): void {
    if (this.out !== stdoutOutput) this.out.close();
    this.out = next;
  }
}
