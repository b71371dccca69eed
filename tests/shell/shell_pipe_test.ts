/**
 * The shell without a terminal (`echo ... | raftlite shell`): no prompts,
 * no progress meters, exactly rqlite's lines on stdout, `ERR!` on stderr;
 * and `main.ts shell -h/-v` plus argument errors.
 */

import assert from "node:assert/strict";
import { VERSION } from "../../lib/version.ts";
import { spawnNode } from "../util/node.ts";
import { runBounded } from "../util/run_bounded.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;

/** Runs `main.ts shell args` with `input` on stdin; bounded. */
async function shell(
  args: string[],
  input: string,
): Promise<{ code: number; out: string; err: string }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, "shell", ...args],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1", RUST_BACKTRACE: "0", RAFTLITE_HISTFILE: "" },
  }).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
  try {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(input));
    await w.close();
    const r = await child.output();
    const d = new TextDecoder();
    return { code: r.code, out: d.decode(r.stdout), err: d.decode(r.stderr) };
  } finally {
    clearTimeout(timer);
  }
}

Deno.test("piped input: rqlite's output lines, no prompts or progress, errors on stderr", async () => {
  const dir = await Deno.makeTempDir({ prefix: "raftlite-shell-pipe-" });
  await Deno.mkdir(`${dir}/data`);
  const node = spawnNode(`${dir}/data`);
  try {
    await node.ready();
    const [host, port] = node.httpAddr.split(":") as [string, string];
    const r = await shell(
      ["--host", host, "--port", port],
      [
        "CREATE TABLE t (x);",
        "INSERT INTO t VALUES (1), (2);",
        "SELECT x FROM t",
        "  ORDER BY x;",
        "SELECT nope;",
        `.backup ${dir}/b.db`,
        `.dump ${dir}/d.sql`,
        ".ready",
        ".quit",
        "SELECT 'not run after .quit';",
        "",
      ].join("\n"),
    );
    assert.equal(r.code, 0, r.err);
    assert.equal(
      r.out,
      [
        "Welcome to the rqlite CLI.",
        'Enter ".help" for usage hints.',
        `Connected to http://${node.httpAddr} running version v${VERSION}`,
        "0 rows affected",
        "2 rows affected",
        "+---+",
        "| x |",
        "+---+",
        "| 1 |",
        "| 2 |",
        "+---+",
        "backup file written successfully",
        "SQL text file written successfully",
        "ready",
        "bye~",
        "",
      ].join("\n"),
    );
    assert.equal(r.err, "ERR! no such column: nope\n");
    assert.ok((await Deno.stat(`${dir}/b.db`)).size > 0);
    assert.match(await Deno.readTextFile(`${dir}/d.sql`), /INSERT INTO "?t"? VALUES\(2\);/);
  } finally {
    await node.kill();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});

Deno.test("main.ts shell -h, -v, bad flags, unreachable node", async () => {
  const help = await runBounded(Deno.execPath(), ["run", "-A", MAIN, "shell", "-h"], {
    timeoutMs: 30_000,
  });
  assert.equal(help.code, 0);
  assert.match(help.stdout, /^Usage: raftlite shell \[options\]/);
  assert.match(help.stdout, /-a, --alternatives/);
  const version = await runBounded(Deno.execPath(), ["run", "-A", MAIN, "shell", "-v"], {
    timeoutMs: 30_000,
  });
  assert.equal(version.stdout, `raftlite shell v${VERSION} (deno ${Deno.version.deno})\n`);
  const bad = await runBounded(Deno.execPath(), ["run", "-A", MAIN, "shell", "-p", "x"], {
    timeoutMs: 30_000,
  });
  assert.equal(bad.code, 1);
  assert.equal(bad.stderr, '-p: port must be a number from 1 to 65535, not "x"\n');
  const down = await shell(["-p", "1"], "SELECT 1;\n");
  assert.equal(down.code, 0);
  assert.match(down.err, /^ERR! could not reach the node: 127\.0\.0\.1:1: .*\(is it running\?/m);
  assert.match(down.out, /bye~\n$/);
});
