/**
 * # lib/shell — the raftlite shell (`deno task shell`, `raftlite shell`)
 *
 * An interactive client for any raftlite (or rqlite) node that looks and
 * answers like rqlite's `rqlite` CLI (rqlite-api.md §14): the same flags,
 * welcome lines, `host:port>` prompt, dot-commands and output strings.
 *
 * - `args.ts` — the command line and `RQLITE_HOST`.
 * - `connection.ts` — HTTP with failover across `-a` hosts, redirects
 *   (max 21), Basic auth, TLS client, `-t` timeouts, Ctrl-C cancellation.
 * - `statements.ts` — where a statement ends (SQLite's sqlite3_complete).
 * - `format.ts`, `text_width.ts` — results as column/csv/json/line text,
 *   tables aligned by terminal width (CJK, emoji, combining marks).
 * - `sql.ts` — plain SQL to /db/request (or /db/execute), results printed.
 * - `commands.ts`, `cluster_commands.ts`, `transfer.ts` — the dot-commands;
 *   transfers stream with a progress meter (`progress.ts`).
 * - `session.ts`, `output.ts` — settings, the request in flight, `.output`.
 * - `history.ts`, `repl.ts` — persistent history and the readline loop.
 * - `insecure.ts` — what `-i` can and cannot do under Deno.
 *
 * {@link main} is the entry point: main.ts dispatches `raftlite shell ...`
 * to it.
 *
 * @module
 */

import { VERSION } from "../version.ts";
import {
  baseUrl,
  hostPort,
  parseShellArgs,
  ShellArgError,
  type ShellOptions,
  shellUsage,
} from "./args.ts";
import { Connection, createTlsClient, httpErrorMessage } from "./connection.ts";
import { historyPath } from "./history.ts";
import { INSECURE_MARK, planInsecure, reexec } from "./insecure.ts";
import { writeError } from "./output.ts";
import { runRepl } from "./repl.ts";
import { Session } from "./session.ts";

export { type HostAddr, parseShellArgs, type ShellArgs, type ShellOptions } from "./args.ts";
export { formatResult, type Mode, MODES } from "./format.ts";
export { isComplete, splitStatements, StatementReader } from "./statements.ts";
export { displayWidth } from "./text_width.ts";

/** Runs the shell with `args` (the words after `shell`); resolves to the exit status. */
export async function main(args: readonly string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseShellArgs(args, (name) => Deno.env.get(name));
  } catch (err) {
    if (!(err instanceof ShellArgError)) throw err;
    writeError(`${err.message}\n`);
    return 1;
  }
  if (parsed.kind === "help") {
    console.log(shellUsage());
    return 0;
  }
  if (parsed.kind === "version") {
    console.log(`raftlite shell v${VERSION} (deno ${Deno.version.deno})`);
    return 0;
  }
  const options = parsed.options;
  if (options.insecure) {
    const plan = planInsecure(options, {
      mark: Deno.env.get(INSECURE_MARK),
      execPath: Deno.execPath(),
      mainModule: Deno.mainModule,
      args: Deno.args,
    });
    if (plan.kind === "refuse") {
      writeError(`${plan.message}\n`);
      return 1;
    }
    if (plan.kind === "reexec") return await reexec(plan.cmd, plan.args);
  }
  return await interactive(options);
}

async function interactive(options: ShellOptions): Promise<number> {
  let client;
  try {
    client = await createTlsClient(options);
  } catch (err) {
    writeError(`${(err as Error).message}\n`);
    return 1;
  }
  const conn = new Connection(options, client, (from, to, reason) => {
    writeError(`${hostPort(from)} is unreachable (${reason}); now connected to ${hostPort(to)}\n`);
  });
  const session = new Session(conn);
  try {
    console.log("Welcome to the rqlite CLI.");
    console.log('Enter ".help" for usage hints.');
    const version = await serverVersion(session);
    if (version !== undefined) {
      console.log(`Connected to ${baseUrl(conn.host)} running version ${version}`);
    }
    await runRepl(session, { historyFile: historyPath((name) => Deno.env.get(name)) });
    return 0;
  } finally {
    conn.close();
  }
}

/** The node's version from `X-RQLITE-VERSION` of GET /status, or undefined (error printed). */
async function serverVersion(session: Session): Promise<string | undefined> {
  try {
    const r = await session.run((signal) => session.conn.fetchText("/status", { signal }));
    if (r.status !== 200) {
      session.error(httpErrorMessage(r));
      return undefined;
    }
    return r.headers.get("X-RQLITE-VERSION") ?? "unknown";
  } catch (err) {
    session.error((err as Error).message);
    return undefined;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
