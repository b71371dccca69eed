/**
 * Persistent command history: `~/.raftlite_history`, one entry per line,
 * oldest first, at most {@link HISTORY_MAX} entries (the oldest drop off).
 * `RAFTLITE_HISTFILE` moves it; set to the empty string it turns history
 * off. A statement typed over several lines is one entry (its lines joined
 * by spaces) so Up brings back the whole statement.
 *
 * The file is rewritten after every entry (small, bounded), readable by its
 * owner only (statements may hold secrets). Failing to read or write it is
 * never fatal: the shell works without history and says so once.
 *
 * @module
 */

import { join } from "node:path";
import type { EnvLookup } from "./args.ts";

/** Most entries kept. */
export const HISTORY_MAX = 1000;

/** The history file for this environment, or undefined when history is off. */
export function historyPath(env: EnvLookup): string | undefined {
  const explicit = env("RAFTLITE_HISTFILE");
  if (explicit !== undefined) return explicit === "" ? undefined : explicit;
  const home = env("HOME") ?? env("USERPROFILE");
  return home === undefined || home === "" ? undefined : join(home, ".raftlite_history");
}

/** The history in `path`, oldest first (empty when the file does not exist). */
export async function loadHistory(path: string, max = HISTORY_MAX): Promise<string[]> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return [];
    throw err;
  }
  const lines = text.split("\n").filter((l) => l.trim() !== "");
  return lines.slice(-max);
}

/** Writes `entries` (oldest first), keeping the newest `max`. */
export async function saveHistory(
  path: string,
  entries: readonly string[],
  max = HISTORY_MAX,
): Promise<void> {
  const kept = entries.slice(-max).map(oneLine);
  await Deno.writeTextFile(path, kept.length === 0 ? "" : kept.join("\n") + "\n", { mode: 0o600 });
}

/** An entry as one line (a multi-line statement's lines joined by spaces). */
export function oneLine(entry: string): string {
  return entry.split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== "").join(" ");
}
