/**
 * raftlite command-line entry point.
 *
 * Placeholder CLI for the first landing (Raft core + simulator): it answers
 * rqlited's `-version` flag and otherwise refuses to start, saying why, so
 * nobody mistakes this build for a working server. The rqlited-compatible CLI
 * replaces it when the HTTP server lands.
 *
 * @module
 */

import { VERSION } from "./lib/version.ts";

/** Exit status and output lines for one invocation; pure so tests need no subprocess. */
export interface CliOutcome {
  /** Process exit code. */
  code: number;
  /** Lines for stdout. */
  stdout: string[];
  /** Lines for stderr. */
  stderr: string[];
}

/**
 * Decides what the CLI does for `args`. Go's flag package (which rqlited uses)
 * accepts both `-version` and `--version`, so both are honoured here.
 */
export function runCli(args: readonly string[]): CliOutcome {
  if (args.includes("-version") || args.includes("--version")) {
    return { code: 0, stdout: [`raftlite ${VERSION}`], stderr: [] };
  }
  return {
    code: 1,
    stdout: [],
    stderr: [
      "fatal: the raftlite server is not implemented yet; " +
      "this build contains the Raft core and simulator (deno task sim)",
    ],
  };
}

if (import.meta.main) {
  const outcome = runCli(Deno.args);
  for (const line of outcome.stdout) console.log(line);
  for (const line of outcome.stderr) console.error(line);
  Deno.exit(outcome.code);
}
