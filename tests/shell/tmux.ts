/**
 * Drives the raftlite shell through a real pseudo-terminal, as a person
 * would: tmux (Debian package, installed here with apt when missing)
 * runs `deno run -A main.ts shell ...` in a detached session of fixed
 * size on a private socket; tests type with `send-keys` and read the
 * screen with `capture-pane`, polling with a bound on time for expected
 * text.
 *
 * Everything is bounded and cleaned up: each tmux call has a deadline, the
 * tmux server lives on this harness's own socket and is killed at close,
 * and the shell process is then SIGKILLed by pid if it is still there.
 *
 * @module
 */

import { runBounded } from "../util/run_bounded.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;
const TMUX_CALL_MS = 10_000;
const POLL_MS = 50;

/**
 * Makes sure tmux is installed (apt-get, bounded); returns undefined when
 * it is usable, else the reason to skip.
 */
export async function ensureTmux(): Promise<string | undefined> {
  const have = async () => {
    try {
      return (await runBounded("tmux", ["-V"], { timeoutMs: 5_000 })).code === 0;
    } catch {
      return false;
    }
  };
  if (await have()) return undefined;
  const apt = async (args: string[]) => {
    try {
      return await runBounded("apt-get", args, {
        timeoutMs: 180_000,
        env: { DEBIAN_FRONTEND: "noninteractive" },
      });
    } catch (err) {
      return { code: -1, stdout: "", stderr: (err as Error).message, timedOut: false };
    }
  };
  let r = await apt(["install", "-y", "-q", "tmux"]);
  if (r.code !== 0) {
    await apt(["update", "-q"]);
    r = await apt(["install", "-y", "-q", "tmux"]);
  }
  if (await have()) return undefined;
  return `tmux is not installed and 'apt-get install -y tmux' failed (${
    r.stderr.trim().split("\n").pop() ?? `exit ${r.code}`
  }); install tmux to run the shell's terminal tests`;
}

/** Options of {@link TmuxShell.start}. */
export interface StartOptions {
  /** Extra environment for the shell (merged over this process's). */
  env?: Record<string, string>;
  width?: number;
  height?: number;
}

/** A shell running in a tmux pane. */
export class TmuxShell {
  private constructor(
    readonly dir: string,
    readonly socket: string,
    readonly pid: number,
  ) {}

  /** Starts `main.ts shell <args>` in a new tmux server and waits for its first prompt. */
  static async start(args: string[], options: StartOptions = {}): Promise<TmuxShell> {
    const dir = await Deno.makeTempDir({ prefix: "raftlite-tmux-" });
    const socket = `${dir}/tmux.sock`;
    const conf = `${dir}/tmux.conf`;
    await Deno.writeTextFile(
      conf,
      "set -g remain-on-exit on\nset -g history-limit 50000\nset -g status off\n",
    );
    const r = await runBounded("tmux", [
      "-S",
      socket,
      "-f",
      conf,
      "new-session",
      "-d",
      "-s",
      "shell",
      "-x",
      String(options.width ?? 160),
      "-y",
      String(options.height ?? 50),
      Deno.execPath(),
      "run",
      "-A",
      MAIN,
      "shell",
      ...args,
    ], { timeoutMs: TMUX_CALL_MS, env: { NO_COLOR: "1", ...options.env } });
    if (r.code !== 0) throw new Error(`tmux new-session failed: ${r.stderr}`);
    const pidText = await tmuxOut(socket, ["display-message", "-p", "-t", "shell", "#{pane_pid}"]);
    return new TmuxShell(dir, socket, Number(pidText.trim()));
  }

  /** Runs a tmux command against this session's server. */
  tmux(args: string[]): Promise<string> {
    return tmuxOut(this.socket, args);
  }

  /** Types `text` literally (a trailing `;` would be read by tmux as a command separator). */
  async type(text: string): Promise<void> {
    const body = text.endsWith(";") ? text.slice(0, -1) : text;
    if (body !== "") await this.tmux(["send-keys", "-t", "shell", "-l", "--", body]);
    if (body !== text) await this.tmux(["send-keys", "-t", "shell", "-H", "3b"]);
  }

  /** Presses keys by tmux name: Enter, C-c, C-d, Up, ... */
  async keys(...names: string[]): Promise<void> {
    await this.tmux(["send-keys", "-t", "shell", ...names]);
  }

  /** Types `text` and presses Enter. */
  async line(text: string): Promise<void> {
    await this.type(text);
    await this.keys("Enter");
  }

  /** Every line of the pane and its scrollback, wrapped lines joined, trailing blanks cut. */
  async lines(): Promise<string[]> {
    const text = await this.tmux(["capture-pane", "-p", "-J", "-S", "-", "-E", "-", "-t", "shell"]);
    const lines = text.split("\n").map((l) => l.trimEnd());
    while (lines.length > 0 && lines[lines.length - 1] === "") lines.pop();
    return lines;
  }

  /** The screen as one string (for failure messages). */
  async screen(): Promise<string> {
    return (await this.lines()).join("\n");
  }

  /** Index of the last line, for {@link waitFor} `from`. */
  async mark(): Promise<number> {
    return Math.max(0, (await this.lines()).length - 1);
  }

  /**
   * Polls until `check` holds for the text from line `from` on; returns
   * that text. Throws with the screen when `timeoutMs` passes.
   */
  async waitFor(
    check: string | RegExp | ((text: string) => boolean),
    options: { from?: number; timeoutMs?: number } = {},
  ): Promise<string> {
    const deadline = performance.now() + (options.timeoutMs ?? 15_000);
    const test = typeof check === "function"
      ? check
      : (t: string) => (typeof check === "string" ? t.includes(check) : check.test(t));
    let text = "";
    for (;;) {
      text = (await this.lines()).slice(options.from ?? 0).join("\n");
      if (test(text)) return text;
      if (performance.now() > deadline) {
        throw new Error(
          `timed out after ${options.timeoutMs ?? 15_000} ms waiting for ${String(check)}; ` +
            `screen:\n${await this.screen()}`,
        );
      }
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  }

  /**
   * Types each of `lines` (Enter after each) and waits until the prompt
   * `prompt` (e.g. `127.0.0.1:4001>`) is back on the last line; returns the
   * output between the typed lines and that prompt.
   */
  async run(prompt: string, lines: string | string[], timeoutMs = 15_000): Promise<string> {
    const input = typeof lines === "string" ? [lines] : lines;
    const from = await this.mark();
    for (const l of input) await this.line(l);
    const text = await this.waitFor((t) => {
      const ls = t.split("\n");
      return ls.length > input.length && ls[ls.length - 1] === prompt;
    }, { from, timeoutMs });
    const ls = text.split("\n");
    return ls.slice(input.length, -1).join("\n");
  }

  /** Waits until `prompt` is the last line again, at least one line after line `from`. */
  async waitPrompt(prompt: string, from: number, timeoutMs = 15_000): Promise<string> {
    return await this.waitFor((t) => {
      const ls = t.split("\n");
      return ls.length >= 2 && ls[ls.length - 1] === prompt;
    }, { from, timeoutMs });
  }

  /** Waits (bounded) until the shell process has exited. */
  async waitExited(timeoutMs = 10_000): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    while (!(await this.exited())) {
      if (performance.now() > deadline) {
        throw new Error(`the shell did not exit within ${timeoutMs} ms:\n${await this.screen()}`);
      }
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  }

  /** True once the shell process has exited (the pane is dead). */
  async exited(): Promise<boolean> {
    const s = await this.tmux(["display-message", "-p", "-t", "shell", "#{pane_dead}"]);
    return s.trim() === "1";
  }

  /** Kills the tmux server and, if still alive, the shell by pid; removes the temp dir. */
  async close(): Promise<void> {
    await runBounded("tmux", ["-S", this.socket, "kill-server"], { timeoutMs: TMUX_CALL_MS })
      .catch(() => {});
    await killIfShell(this.pid);
    await Deno.remove(this.dir, { recursive: true }).catch(() => {});
  }
}

async function tmuxOut(socket: string, args: string[]): Promise<string> {
  const r = await runBounded("tmux", ["-S", socket, ...args], { timeoutMs: TMUX_CALL_MS });
  if (r.code !== 0) throw new Error(`tmux ${args[0]} failed (${r.code}): ${r.stderr.trim()}`);
  return r.stdout;
}

/** SIGKILLs `pid` if it is still our shell (its command line names main.ts shell). */
async function killIfShell(pid: number): Promise<void> {
  for (let i = 0; i < 50; i++) {
    let cmdline: string;
    try {
      cmdline = await Deno.readTextFile(`/proc/${pid}/cmdline`);
    } catch {
      return; // gone
    }
    if (!cmdline.includes(MAIN) || !cmdline.includes("shell")) return; // not ours any more
    try {
      Deno.kill(pid, "SIGKILL");
    } catch {
      return;
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}
