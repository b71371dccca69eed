/**
 * The limit flags (README "Limits"): their defaults, and invalid values
 * refused with a FlagError that says what to fix.
 */

import assert from "node:assert/strict";
import { FlagError, parseFlags } from "../../lib/config/flags.ts";
import { configFromFlags } from "../../lib/server/config.ts";

const MiB = 1024 * 1024;

function config(...flags: string[]) {
  return configFromFlags(parseFlags([...flags, "d"]));
}

Deno.test("limit flags: defaults", () => {
  const c = config();
  assert.equal(c.maxBodyBytes, 64 * MiB);
  assert.equal(c.maxStatements, 100_000);
  assert.equal(c.maxConcurrentRequests, 1024);
  assert.equal(c.httpReadTimeoutMs, 60_000);
  assert.equal(c.raftMaxFrameBytes, 80 * MiB);
  assert.equal(c.raftMaxConns, 512);
  assert.equal(c.raftIdleTimeoutMs, 30_000);
});

Deno.test("limit flags: given values", () => {
  const c = config(
    "-max-concurrent-requests",
    "7",
    "-http-read-timeout",
    "1500ms",
    "-raft-max-frame-bytes",
    String(3 * MiB),
    "-max-body-bytes",
    String(2 * MiB),
    "-raft-max-conns=16",
    "-raft-idle-timeout",
    "2m",
  );
  assert.equal(c.maxConcurrentRequests, 7);
  assert.equal(c.httpReadTimeoutMs, 1500);
  assert.equal(c.raftMaxFrameBytes, 3 * MiB);
  assert.equal(c.maxBodyBytes, 2 * MiB);
  assert.equal(c.raftMaxConns, 16);
  assert.equal(c.raftIdleTimeoutMs, 120_000);
});

Deno.test("limit flags: the automatic frame size follows -max-body-bytes", () => {
  assert.equal(config("-max-body-bytes", String(100 * MiB)).raftMaxFrameBytes, 101 * MiB);
  assert.equal(config("-max-body-bytes", String(10 * MiB)).raftMaxFrameBytes, 80 * MiB);
});

Deno.test("limit flags: invalid values are refused with what to fix", () => {
  const cases: [string[], RegExp][] = [
    [["-max-concurrent-requests", "0"], /^-max-concurrent-requests must be at least 1$/],
    [["-max-concurrent-requests", "-5"], /^-max-concurrent-requests must be at least 1$/],
    [["-max-concurrent-requests", "1e3"], /not an integer/],
    [["-max-concurrent-requests", "99999999999999999999"], /at least 1/],
    [["-http-read-timeout", "0s"], /^-http-read-timeout must be a duration > 0/],
    [["-http-read-timeout", "60"], /not a duration/],
    [
      ["-raft-max-frame-bytes", "1000"],
      /^-raft-max-frame-bytes must be 0 \(automatic\) or between/,
    ],
    [
      ["-max-body-bytes", String(8 * MiB), "-raft-max-frame-bytes", String(8 * MiB)],
      /between -max-body-bytes \+ 1 MiB \(9437184, so a forwarded request fits\)/,
    ],
    [["-raft-max-frame-bytes", String(2 ** 32)], /-raft-max-frame-bytes must be/],
    [["-raft-max-frame-bytes", "-1"], /-raft-max-frame-bytes must be/],
    [["-max-body-bytes", "100"], /^-max-body-bytes must be between 1024 and 268435456$/],
    [["-max-body-bytes", String(512 * MiB)], /^-max-body-bytes must be between/],
    [["-raft-max-conns", "2"], /^-raft-max-conns must be at least 8$/],
    [["-raft-idle-timeout", "100ms"], /^-raft-idle-timeout must be at least 1s$/],
    [["-raft-idle-timeout", "soon"], /not a duration/],
  ];
  for (const [flags, expected] of cases) {
    assert.throws(() => config(...flags), (err: unknown) => {
      assert.ok(err instanceof FlagError, `${flags.join(" ")}: ${err}`);
      assert.match(err.message, expected, flags.join(" "));
      return true;
    });
  }
});
