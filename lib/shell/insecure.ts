/**
 * `-i/--insecure`, honestly. Deno's fetch has no per-request "skip
 * certificate verification"; the only switch is the runtime flag
 * `--unsafely-ignore-certificate-errors[=hosts]`. So:
 *
 * - Under `deno run` the shell starts itself again with that flag, scoped
 *   to the shell's hosts, and waits for the child (Deno prints its own
 *   DANGER warning). An environment marker stops a second re-exec.
 * - A compiled binary cannot take runtime flags, so it refuses `-i` with
 *   what to do instead: trust the server's CA with `-c`, or run the shell
 *   through `deno run` where `-i` works.
 *
 * @module
 */

import { basename } from "node:path";
import type { ShellOptions } from "./args.ts";

/** Set in the re-executed child's environment. */
export const INSECURE_MARK = "RAFTLITE_SHELL_INSECURE";

/** The plan for `-i`: go on (already unverified), re-exec, or refuse. */
export type InsecurePlan =
  | { readonly kind: "continue" }
  | { readonly kind: "reexec"; readonly cmd: string; readonly args: string[] }
  | { readonly kind: "refuse"; readonly message: string };

/** Decides what `-i` needs in this process (pure: inputs passed in). */
export function planInsecure(
  options: ShellOptions,
  env: { mark: string | undefined; execPath: string; mainModule: string; args: readonly string[] },
): InsecurePlan {
  if (env.mark === "1") return { kind: "continue" };
  if (!/^deno(\.exe)?$/.test(basename(env.execPath))) {
    return {
      kind: "refuse",
      message: "-i/--insecure: this compiled program cannot turn off TLS certificate " +
        "verification (Deno allows that only as a runtime flag). Trust the server's " +
        "certificate with -c <CA certificate file>, or run the shell with Deno, where -i " +
        "works: deno run -A main.ts shell -i ...",
    };
  }
  const hosts = [...new Set(options.hosts.map((h) => h.host))].join(",");
  return {
    kind: "reexec",
    cmd: env.execPath,
    args: [
      "run",
      "-A",
      `--unsafely-ignore-certificate-errors=${hosts}`,
      env.mainModule,
      ...env.args,
    ],
  };
}

/** Carries out a re-exec plan: runs the child with inherited stdio and returns its exit code. */
export async function reexec(cmd: string, args: readonly string[]): Promise<number> {
  const child = new Deno.Command(cmd, {
    args: [...args],
    stdin: "inherit",
    stdout: "inherit",
    stderr: "inherit",
    env: { [INSECURE_MARK]: "1" },
  }).spawn();
  // The child owns the terminal; a SIGINT meant for it must not end this parent.
  const ignore = () => {};
  Deno.addSignalListener("SIGINT", ignore);
  try {
    return (await child.status).code;
  } finally {
    Deno.removeSignalListener("SIGINT", ignore);
  }
}
