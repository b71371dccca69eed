/**
 * raftlite command-line entry point: `raftlite [flags] <data-dir>` with
 * rqlited's flag syntax (rqlite-api.md §8). Prints where it listens and
 * where data lives; SIGINT/SIGTERM stop it gracefully.
 *
 * @module
 */

import { FlagError, parseFlags, usage } from "./lib/config/flags.ts";
import { configFromFlags } from "./lib/server/config.ts";
import { Logger } from "./lib/log/mod.ts";
import { startNode } from "./lib/server/start.ts";
import { v8FlagsNote } from "./lib/server/v8_flags.ts";
import { VERSION } from "./lib/version.ts";

/** Exit status and output lines for an invocation that ends at once (version, help, errors). */
export interface CliOutcome {
  code: number;
  stdout: string[];
  stderr: string[];
}

/** What the CLI prints and returns without starting a server, or undefined to start one. */
export function runCli(
  args: readonly string[],
  env: (variable: string) => string | undefined = () => undefined,
): CliOutcome | undefined {
  if (args.includes("-h") || args.includes("-help") || args.includes("--help")) {
    return { code: 0, stdout: [usage()], stderr: [] };
  }
  try {
    const flags = parseFlags(args, env);
    if (flags.values.get("version") === "true") {
      return {
        code: 0,
        stdout: [
          `raftlite v${VERSION} ${Deno.build.os} ${Deno.build.arch} deno${Deno.version.deno} sqlite3.53.2`,
        ],
        stderr: [],
      };
    }
    configFromFlags(flags);
    return undefined;
  } catch (err) {
    if (err instanceof FlagError) return { code: 1, stdout: [], stderr: [`fatal: ${err.message}`] };
    throw err;
  }
}

async function main(args: string[]): Promise<number> {
  // Every flag can also come from RAFTLITE_<FLAG> (e.g. RAFTLITE_HTTP_ADDR), for VMs and containers.
  const env = (variable: string) => Deno.env.get(variable);
  const outcome = runCli(args, env);
  if (outcome !== undefined) {
    for (const line of outcome.stdout) console.log(line);
    for (const line of outcome.stderr) console.error(line);
    return outcome.code;
  }
  const config = configFromFlags(parseFlags(args, env));
  let node;
  try {
    node = startNode(config);
  } catch (err) {
    console.error(`fatal: ${err instanceof Error ? err.message : String(err)}`);
    return 1;
  }
  console.log(`raftlite v${VERSION}`);
  const scheme = config.httpTls === undefined ? "http" : "https";
  console.log(
    `node ${node.config.nodeId}: HTTP on ${scheme}://${node.httpAddr}, Raft on ${node.raftAddr}` +
      (config.nodeTls === undefined ? "" : " (TLS)"),
  );
  console.log(
    `data directory ${config.dataDir} (SQLite ${config.onDisk ? config.dbPath : "in memory"})`,
  );
  const note = v8FlagsNote();
  if (note !== undefined) console.log(note);
  try {
    await node.ready;
  } catch (err) {
    console.error(`fatal: ${err instanceof Error ? err.message : String(err)}`);
    await node.close();
    return 1;
  }
  console.log(
    `ready: try  curl -XPOST '${scheme}://${node.httpAddr}/db/execute' -H 'Content-Type: application/json' -d '["CREATE TABLE foo (id INTEGER PRIMARY KEY, name TEXT)"]'`,
  );
  const stop = new Promise<void>((resolve) => {
    for (const sig of ["SIGINT", "SIGTERM"] as const) Deno.addSignalListener(sig, () => resolve());
  });
  await stop;
  new Logger({ level: config.logLevel, raftLevel: config.raftLogLevel }).for("node")
    .info("shutting down");
  await node.leave();
  await node.close();
  return 0;
}

if (import.meta.main) {
  // `raftlite shell ...` is the interactive shell (lib/shell), loaded only when asked for.
  if (Deno.args[0] === "shell") {
    const shell = await import("./lib/shell/mod.ts");
    Deno.exit(await shell.main(Deno.args.slice(1)));
  }
  Deno.exit(await main(Deno.args));
}
