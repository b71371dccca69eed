/** FailureLog: once per key, again after the repeat interval with a count, bounded keys. */

import assert from "node:assert/strict";
import { FailureLog } from "../../lib/transport/failure_log.ts";

Deno.test("FailureLog logs a key once, then at most every repeatMs with the count", () => {
  const lines: string[] = [];
  let now = 0;
  const log = new FailureLog((l) => lines.push(l), { repeatMs: 1_000, nowMs: () => now });
  for (let i = 0; i < 5; i++) log.note("10.0.0.1", "refused 10.0.0.1");
  log.note("10.0.0.2", "refused 10.0.0.2");
  assert.deepEqual(lines, ["refused 10.0.0.1", "refused 10.0.0.2"]);
  now = 999;
  log.note("10.0.0.1", "refused 10.0.0.1");
  assert.equal(lines.length, 2);
  now = 1_000;
  log.note("10.0.0.1", "refused 10.0.0.1");
  assert.equal(lines[2], "refused 10.0.0.1 (5 more like it since the last report)");
  now = 5_000;
  log.note("10.0.0.1", "refused 10.0.0.1");
  assert.equal(lines[3], "refused 10.0.0.1", "nothing suppressed since the last line");
});

Deno.test("FailureLog remembers at most maxKeys keys, forgetting the one logged longest ago", () => {
  const lines: string[] = [];
  const log = new FailureLog((l) => lines.push(l), { maxKeys: 3, nowMs: () => 0 });
  for (const key of ["a", "b", "c", "d"]) log.note(key, key);
  assert.equal(log.size, 3);
  log.note("b", "b"); // still remembered: suppressed
  log.note("a", "a"); // forgotten: logged again
  assert.deepEqual(lines, ["a", "b", "c", "d", "a"]);
  assert.throws(() => new FailureLog(() => {}, { maxKeys: 0 }), /maxKeys must be a positive/);
});
