/**
 * A real S3-compatible server for tests: the npm package s3rver (3.7.1,
 * unmodified), run in a child process with its own config and lock
 * (tests/s3/deno.json, tests/s3/deno.lock) by tests/s3/s3rver_main.ts, on
 * 127.0.0.1 with a port the OS picks, storing objects in a temp dir.
 * s3rver verifies SigV4 signatures with access key `S3RVER` / secret
 * `S3RVER`.
 *
 * The first run may install s3rver into tests/s3/node_modules (hence the
 * 60 s bound). When that is impossible because npm cannot be reached,
 * {@link s3Unavailable} says so and the tests skip with that reason
 * instead of failing. Set RAFTLITE_S3_TESTS=1 to fail instead of skipping,
 * or =0 to always skip.
 *
 * @module
 */

const S3_DIR = new URL("../s3/", import.meta.url).pathname;
const START_TIMEOUT_MS = 60_000;

/** A running s3rver; `close()` kills it and removes its directory. */
export interface S3Server {
  /** `http://127.0.0.1:<port>` */
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** Where s3rver keeps the buckets' objects. */
  dir: string;
  close(): Promise<void>;
}

/** Thrown by {@link startS3Server} when the child did not come up; `stderr` is its tail. */
export class S3ServerStartError extends Error {
  constructor(message: string, readonly stderr: string) {
    super(message);
    this.name = "S3ServerStartError";
  }
}

/** Starts s3rver with the given buckets (default `["b1"]`); resolves once it listens. */
export async function startS3Server(opts?: { buckets?: string[] }): Promise<S3Server> {
  const buckets = opts?.buckets ?? ["b1"];
  const dir = await Deno.makeTempDir({ prefix: "raftlite-s3rver-" });
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--config",
      `${S3_DIR}deno.json`,
      "--lock",
      `${S3_DIR}deno.lock`,
      "--frozen",
      `${S3_DIR}s3rver_main.ts`,
      dir,
      ...buckets,
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();

  // stderr is drained the whole time (a full pipe would block the child); its tail is kept.
  let stderr = "";
  const stderrDone = child.stderr.pipeThrough(new TextDecoderStream()).pipeTo(
    new WritableStream({
      write(s) {
        stderr = (stderr + s).slice(-8192);
      },
    }),
  ).catch(() => {});

  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let port = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`s3rver did not start within ${START_TIMEOUT_MS} ms`)),
        START_TIMEOUT_MS,
      );
    });
    let out = "";
    while (port === 0) {
      const r = await Promise.race([reader.read(), timeout]);
      if (r.done) throw new Error("s3rver exited before printing its port");
      out = (out + r.value).slice(-4096);
      const m = /S3RVER_PORT (\d+)\n/.exec(out);
      if (m) port = Number(m[1]);
    }
  } catch (e) {
    clearTimeout(timer);
    await reader.cancel().catch(() => {});
    try {
      child.kill("SIGKILL");
    } catch { /* already exited */ }
    await child.status;
    await stderrDone;
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    throw new S3ServerStartError(
      `${(e as Error).message}; its stderr:\n${stderr.trim() || "(empty)"}`,
      stderr,
    );
  }
  clearTimeout(timer);
  // Keep draining stdout (s3rver is silent, but a full pipe must never block it).
  const stdoutDone = (async () => {
    try {
      while (!(await reader.read()).done) { /* discard */ }
    } catch { /* cancelled */ }
  })();

  let closed: Promise<void> | undefined;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    accessKeyId: "S3RVER",
    secretAccessKey: "S3RVER",
    dir,
    close() {
      closed ??= (async () => {
        try {
          child.kill("SIGKILL");
        } catch { /* already exited */ }
        await child.status;
        await stdoutDone;
        await stderrDone;
        await Deno.remove(dir, { recursive: true }).catch(() => {});
      })();
      return closed;
    },
  };
}

/** stderr of a failed start that means "the npm package could not be fetched". */
const NPM_UNREACHABLE =
  /error sending request|failed to fetch|dns error|connection refused|network|registry\.npmjs|could not find npm package|tarball|timed out|certificate/i;

async function probe(): Promise<string | undefined> {
  const env = Deno.env.get("RAFTLITE_S3_TESTS");
  if (env === "0") return "RAFTLITE_S3_TESTS=0";
  try {
    const s = await startS3Server({ buckets: [] });
    await s.close();
    return undefined;
  } catch (e) {
    if (env === "1" || !(e instanceof S3ServerStartError) || !NPM_UNREACHABLE.test(e.stderr)) {
      throw e;
    }
    // deno-lint-ignore no-control-regex
    const lines = e.stderr.replace(/\x1b\[[0-9;]*m/g, "").split("\n");
    const line = (lines.find((l) => /error/i.test(l) && NPM_UNREACHABLE.test(l)) ??
      lines.find((l) => NPM_UNREACHABLE.test(l)) ?? "").trim();
    return `s3rver (npm) cannot be installed, npm looks unreachable: ${line}`;
  }
}

let probed: Promise<string | undefined> | undefined;

/**
 * Undefined when s3rver can be started here, else why not (npm unreachable
 * on a first run). Probed once per process by starting and stopping a
 * server; a start failure that is not about npm throws instead, so a
 * broken setup fails the tests rather than skipping them.
 */
export function s3Unavailable(): Promise<string | undefined> {
  probed ??= probe();
  return probed;
}
