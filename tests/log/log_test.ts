/** lib/log: levelled one-line events, two thresholds, free-text lines. */

import assert from "node:assert/strict";
import { levelOf, Logger, parseLogLevel } from "../../lib/log/mod.ts";

function capture(options: ConstructorParameters<typeof Logger>[0] = {}) {
  const lines: string[] = [];
  const logger = new Logger({ ...options, sink: (l) => lines.push(l), nowMs: () => 0 });
  return { logger, lines };
}

Deno.test("log: one line per event: time, level, component, message; newlines escaped", () => {
  const { logger, lines } = capture();
  logger.log("WARN", "http", "two\nlines\r and a \\ backslash");
  assert.deepEqual(lines, [
    "1970-01-01T00:00:00.000Z WARN [http] two\\nlines\\r and a \\\\ backslash",
  ]);
});

Deno.test("log: -log-level for most components, -raft-log-level for raft/transport", () => {
  const { logger, lines } = capture({ level: "INFO", raftLevel: "WARN" });
  logger.log("DEBUG", "http", "no");
  logger.log("INFO", "http", "yes 1");
  logger.log("INFO", "transport", "no");
  logger.log("WARN", "transport", "yes 2");
  logger.log("ERROR", "raft", "yes 3");
  assert.deepEqual(lines.map((l) => l.split(" ").slice(1).join(" ")), [
    "INFO [http] yes 1",
    "WARN [transport] yes 2",
    "ERROR [raft] yes 3",
  ]);
  const quiet = capture({ level: "ERROR", raftLevel: "DEBUG" });
  quiet.logger.log("WARN", "cluster", "no");
  quiet.logger.log("DEBUG", "transport", "yes");
  assert.equal(quiet.lines.length, 1);
  assert.equal(quiet.logger.enabled("DEBUG", "cluster"), false);
});

Deno.test("log: free-text lines get their component and a level", () => {
  const { logger, lines } = capture({ level: "DEBUG", raftLevel: "DEBUG" });
  const line = logger.lineLogger("node");
  line("[cluster] joined the cluster via 127.0.0.1:4002");
  line("[cluster] join via x failed: refused");
  line("[storage] WARN cut a torn tail");
  line("fatal: no leader");
  line("[http] DEBUG detail");
  assert.deepEqual(lines.map((l) => l.split(" ").slice(1, 3).join(" ")), [
    "INFO [cluster]",
    "WARN [cluster]",
    "WARN [storage]",
    "ERROR [node]",
    "DEBUG [http]",
  ]);
  assert.ok(lines[2]!.endsWith("[storage] cut a torn tail"));
});

Deno.test("log: levels parse in any case; free-text classification", () => {
  assert.equal(parseLogLevel("warn"), "WARN");
  assert.equal(parseLogLevel(" Debug "), "DEBUG");
  assert.equal(parseLogLevel("verbose"), undefined);
  assert.equal(levelOf("snapshot 3-10 is corrupt and will not be loaded"), "WARN");
  assert.equal(levelOf("could not remove x"), "WARN");
  assert.equal(levelOf("bootstrapping with n1, n2"), "INFO");
});
