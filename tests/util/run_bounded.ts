/**
 * Runs a subprocess with a hard time bound, for tests that must never hang:
 * SIGTERM at the deadline, SIGKILL shortly after if it is still there.
 *
 * @module
 */

/** Outcome of {@link runBounded}. */
export interface BoundedResult {
  /** Exit code (128 + signal number when killed by a signal). */
  code: number;
  /** Decoded stdout. */
  stdout: string;
  /** Decoded stderr. */
  stderr: string;
  /** True when the deadline passed and the process was killed. */
  timedOut: boolean;
}

/** Options for {@link runBounded}. */
export interface BoundedOptions {
  /** Deadline after which the process gets SIGTERM. */
  timeoutMs: number;
  /** Extra environment variables (merged over the inherited environment). */
  env?: Record<string, string>;
  /** Working directory; defaults to the current one. */
  cwd?: string | URL;
}

/** Grace period between SIGTERM and SIGKILL. */
const KILL_GRACE_MS = 5_000;

/** Runs `cmd args...` with stdin closed, capturing output, killed if it outlives `timeoutMs`. */
export async function runBounded(
  cmd: string,
  args: readonly string[],
  options: BoundedOptions,
): Promise<BoundedResult> {
  const child = new Deno.Command(cmd, {
    args: [...args],
    env: { RUST_BACKTRACE: "0", NO_COLOR: "1", ...options.env },
    ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let timedOut = false;
  let killTimer: ReturnType<typeof setTimeout> | undefined;
  const termTimer = setTimeout(() => {
    timedOut = true;
    kill(child, "SIGTERM");
    killTimer = setTimeout(() => kill(child, "SIGKILL"), KILL_GRACE_MS);
  }, options.timeoutMs);
  try {
    const out = await child.output();
    const decoder = new TextDecoder();
    return {
      code: out.code,
      stdout: decoder.decode(out.stdout),
      stderr: decoder.decode(out.stderr),
      timedOut,
    };
  } finally {
    clearTimeout(termTimer);
    clearTimeout(killTimer);
  }
}

function kill(child: Deno.ChildProcess, signal: Deno.Signal): void {
  try {
    child.kill(signal);
  } catch {
    // Already exited between the deadline and the signal: nothing to kill.
  }
}
