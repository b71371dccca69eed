/**
 * The simulator itself: a seed replays exactly, tracing does not perturb a
 * run, and a deliberately broken world is caught (the simulator can fail).
 */

import assert from "node:assert/strict";
import { runSeed, type SeedResult } from "../../lib/sim/run.ts";

function withoutTrace(r: SeedResult): Omit<SeedResult, "traceHash" | "traceLines"> {
  const { traceHash: _hash, traceLines: _lines, ...rest } = r;
  return rest;
}

Deno.test("simulator: a seed replays exactly (same trace hash, same result)", () => {
  for (const seed of [3, 17, 41]) {
    const a = runSeed(seed, { trace: true });
    const b = runSeed(seed, { trace: true });
    assert.ok(a.traceHash !== undefined && a.traceLines !== undefined);
    assert.ok(a.traceLines.length > 100, `seed ${seed} traced only ${a.traceLines.length} lines`);
    assert.equal(a.traceHash, b.traceHash, `seed ${seed} trace differs between runs`);
    assert.deepEqual(a, b);
    // Tracing consumes no randomness and schedules nothing: the untraced run is the same run.
    assert.deepEqual(withoutTrace(a), runSeed(seed));
  }
  assert.notEqual(runSeed(3, { trace: true }).traceHash, runSeed(4, { trace: true }).traceHash);
});

Deno.test("simulator: the trace cap bounds the lines kept, not the hash", () => {
  const full = runSeed(5, { trace: true });
  const capped = runSeed(5, { trace: true, traceCapLines: 50 });
  assert.equal(capped.traceLines?.length, 51);
  assert.match(capped.traceLines?.[50] ?? "", /capped at 50 lines/);
  assert.equal(capped.traceHash, full.traceHash);
});

Deno.test("simulator: a disk that loses completed writes on crash is caught", () => {
  const invariants =
    /^(LeaderCompleteness|AckedWriteDurability|LogMatching|CommittedAgreement|StateMachineSafety|ApplyOrder|StateHashAgreement|Linearizability|Convergence)/;
  let caught: SeedResult | undefined;
  for (let seed = 1; seed <= 60 && caught === undefined; seed++) {
    const broken = runSeed(seed, { brokenDisk: true });
    if (!broken.ok && invariants.test(broken.violation ?? "")) caught = broken;
  }
  assert.ok(caught !== undefined, "no seed in 1..60 caught a disk losing acknowledged writes");
  // The same seed in a sound world passes: the bug, not the seed, failed it.
  const sound = runSeed(caught.seed);
  assert.equal(
    sound.ok,
    true,
    `seed ${caught.seed} fails even without the bug: ${sound.violation}`,
  );
});

Deno.test("simulator: the CLI reports a clean soak and replays a failing seed", async () => {
  const run = async (...args: string[]) => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", new URL("../../lib/sim/main.ts", import.meta.url).pathname, ...args],
      stdout: "piped",
      stderr: "piped",
      env: { RUST_BACKTRACE: "0", NO_COLOR: "1" },
    }).output();
    return { code: out.code, text: new TextDecoder().decode(out.stdout) };
  };
  const clean = await run("--seeds", "3", "--from", "10");
  assert.equal(clean.code, 0, clean.text);
  assert.match(clean.text, /seeds run: 3 /);
  assert.match(clean.text, /violations: 0/);
  assert.match(clean.text, /faults injected: drops=\d+/);

  let failingSeed = 0;
  for (let seed = 1; seed <= 60 && failingSeed === 0; seed++) {
    if (!runSeed(seed, { brokenDisk: true }).ok) failingSeed = seed;
  }
  assert.ok(failingSeed > 0);
  const failing = await run("--seed", String(failingSeed), "--broken-disk", "--trace-cap", "20");
  assert.equal(failing.code, 1, failing.text);
  assert.match(failing.text, new RegExp(`FAIL seed ${failingSeed}: `));
  assert.match(
    failing.text,
    new RegExp(`replay: deno task sim --seed ${failingSeed} --trace --broken-disk`),
  );
});
