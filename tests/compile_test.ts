/**
 * compile.sh: the executable build. Building needs Deno's denort runtime,
 * which machines without dl.deno.land lack, so the build-and-run test is
 * skipped (visibly, in the summary) when `compile.sh --check` finds none;
 * the checks of compile.sh's own error handling always run.
 */

import assert from "node:assert/strict";
import { VERSION } from "../lib/version.ts";
import { runBounded } from "./util/run_bounded.ts";

const ROOT = new URL("../", import.meta.url);
/** Use the deno running these tests, not whatever is on PATH (it may be absent under npx). */
const ENV = { DENO: Deno.execPath() };

const check = await runBounded("bash", ["compile.sh", "--check"], {
  timeoutMs: 60_000,
  env: ENV,
  cwd: ROOT,
});
const runtimeAvailable = check.code === 0;
if (!runtimeAvailable) {
  console.log("SKIP compile: no denort runtime (set DENORT_BIN or seed the cache; see compile.sh)");
}

Deno.test("compile.sh --check names a runtime source or says what to provide", () => {
  assert.equal(check.timedOut, false, "compile.sh --check timed out");
  if (runtimeAvailable) {
    assert.match(check.stdout, /^runtime: (DENORT_BIN=|cached zip )/m);
  } else {
    assert.equal(check.code, 2, `unexpected exit ${check.code}: ${check.stderr}`);
    assert.match(check.stderr, /DENORT_BIN=\/path\/to\/denort/);
    assert.match(check.stderr, /dl\/release\/v2\.9\.6\/denort-x86_64-unknown-linux-gnu\.zip/);
  }
});

Deno.test("compile.sh rejects a DENORT_BIN that is not an executable file", async () => {
  const missing = await Deno.makeTempFile({ prefix: "no-denort-" });
  try {
    const r = await runBounded("bash", ["compile.sh", "--check"], {
      timeoutMs: 60_000,
      env: { ...ENV, DENORT_BIN: missing }, // exists but is not executable
      cwd: ROOT,
    });
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /DENORT_BIN=.* is not an existing executable file/);
  } finally {
    await Deno.remove(missing);
  }
});

Deno.test({
  name: "compile: dist/raftlite -version prints the version",
  ignore: !runtimeAvailable,
  async fn() {
    const build = await runBounded("bash", ["compile.sh"], {
      timeoutMs: 300_000,
      // compile.sh's own bound fires first, so its deno is never left orphaned.
      env: { ...ENV, RAFTLITE_COMPILE_TIMEOUT_S: "240" },
      cwd: ROOT,
    });
    assert.equal(build.code, 0, `compile.sh failed:\n${build.stdout}\n${build.stderr}`);
    const exe = new URL("dist/raftlite", ROOT).pathname;
    const version = await runBounded(exe, ["-version"], { timeoutMs: 30_000 });
    assert.equal(version.code, 0, version.stderr);
    assert.equal(version.stdout, `raftlite ${VERSION}\n`);
    const bare = await runBounded(exe, [], { timeoutMs: 30_000 });
    assert.equal(bare.code, 1);
    assert.match(bare.stderr, /not implemented yet/);
  },
});
