/** main.ts: the placeholder CLI answers -version and refuses to start otherwise. */

import assert from "node:assert/strict";
import { runCli } from "../main.ts";
import { VERSION } from "../lib/version.ts";
import { runBounded } from "./util/run_bounded.ts";

Deno.test("runCli: -version and --version print the version", () => {
  for (const flag of ["-version", "--version"]) {
    assert.deepEqual(runCli([flag]), { code: 0, stdout: [`raftlite ${VERSION}`], stderr: [] });
  }
});

Deno.test("runCli: anything else fails with a message that says why", () => {
  const outcome = runCli(["./data"]);
  assert.equal(outcome.code, 1);
  assert.deepEqual(outcome.stdout, []);
  assert.deepEqual(outcome.stderr, [
    "fatal: the raftlite server is not implemented yet; " +
    "this build contains the Raft core and simulator (deno task sim)",
  ]);
});

Deno.test("main.ts as a process: exit codes and streams", async () => {
  const main = new URL("../main.ts", import.meta.url).pathname;
  const version = await runBounded(Deno.execPath(), ["run", main, "-version"], {
    timeoutMs: 30_000,
  });
  assert.equal(version.code, 0, version.stderr);
  assert.equal(version.stdout, `raftlite ${VERSION}\n`);
  const start = await runBounded(Deno.execPath(), ["run", main, "./data"], { timeoutMs: 30_000 });
  assert.equal(start.code, 1);
  assert.equal(start.stdout, "");
  assert.match(start.stderr, /^fatal: the raftlite server is not implemented yet;/);
});

Deno.test("lib/version.ts: VERSION is semver", () => {
  assert.match(VERSION, /^\d+\.\d+\.\d+$/);
});
