/**
 * Bounded subprocesses for the benchmarks: every command gets a deadline
 * after which it is killed (SIGTERM, then SIGKILL), and long-running
 * children keep only the tail of their output so a chatty child can never
 * block on a full pipe.
 *
 * @module
 */

/** What a finished command produced. */
export interface CommandOutput {
  /** Exit code (-1 when killed by a signal). */
  code: number;
  /** Signal that ended it, if any. */
  signal: Deno.Signal | null;
  /** Everything written to stdout, decoded as UTF-8. */
  stdout: string;
  /** Everything written to stderr, decoded as UTF-8. */
  stderr: string;
  /** True when the deadline passed and the command was killed. */
  timedOut: boolean;
}

/** Options for {@link runCommand}. */
export interface RunOptions {
  /** Kill the command after this many milliseconds. */
  timeoutMs: number;
  /** Working directory. */
  cwd?: string;
  /** Extra environment variables. */
  env?: Record<string, string>;
}

/** Grace period between SIGTERM and SIGKILL. */
const KILL_GRACE_MS = 3000;

function trySignal(child: Deno.ChildProcess, signal: Deno.Signal): void {
  try {
    child.kill(signal);
  } catch {
    // Already exited.
  }
}

/**
 * Waits for `child` to exit; after `timeoutMs` sends it SIGTERM and, if it is
 * still there {@link KILL_GRACE_MS} later, SIGKILL.
 */
export async function waitOrKill(
  child: Deno.ChildProcess,
  timeoutMs: number,
): Promise<{ status: Deno.CommandStatus; timedOut: boolean }> {
  let timedOut = false;
  let killTimer: ReturnType<typeof setTimeout> | undefined;
  const termTimer = setTimeout(() => {
    timedOut = true;
    trySignal(child, "SIGTERM");
    killTimer = setTimeout(() => trySignal(child, "SIGKILL"), KILL_GRACE_MS);
  }, timeoutMs);
  try {
    const status = await child.status;
    return { status, timedOut };
  } finally {
    clearTimeout(termTimer);
    clearTimeout(killTimer);
  }
}

async function readAll(stream: ReadableStream<Uint8Array>): Promise<string> {
  return await new Response(stream).text();
}

/** Runs `cmd args` to completion (or its deadline) and returns its output. */
export async function runCommand(
  cmd: string,
  args: readonly string[],
  opts: RunOptions,
): Promise<CommandOutput> {
  const child = new Deno.Command(cmd, {
    args: [...args],
    cwd: opts.cwd,
    env: { RUST_BACKTRACE: "0", ...opts.env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const [stdout, stderr, done] = await Promise.all([
    readAll(child.stdout),
    readAll(child.stderr),
    waitOrKill(child, opts.timeoutMs),
  ]);
  return {
    code: done.status.code,
    signal: done.status.signal,
    stdout,
    stderr,
    timedOut: done.timedOut,
  };
}

/** Keeps the last `limit` characters written to a stream, draining it fully. */
export class OutputTail {
  #text = "";
  readonly #limit: number;
  /** Resolves when the stream has ended. */
  readonly done: Promise<void>;

  constructor(stream: ReadableStream<Uint8Array>, limit = 16_384) {
    this.#limit = limit;
    this.done = this.#drain(stream);
  }

  async #drain(stream: ReadableStream<Uint8Array>): Promise<void> {
    try {
      for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
        this.#text = (this.#text + chunk).slice(-this.#limit);
      }
    } catch {
      // The child was killed mid-write; what we have is enough.
    }
  }

  /** The output kept so far. */
  text(): string {
    return this.#text;
  }
}

/** Whether an executable named `name` is on PATH; returns its path or null. */
export async function findOnPath(name: string): Promise<string | null> {
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    if (dir === "") continue;
    const path = `${dir}/${name}`;
    try {
      const info = await Deno.stat(path);
      if (info.isFile && info.mode !== null && (info.mode & 0o111) !== 0) return path;
    } catch {
      // Not in this directory.
    }
  }
  return null;
}
