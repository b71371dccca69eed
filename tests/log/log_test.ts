/** lib/log: levelled one-line events, two thresholds, fields, escaping, lazy messages. */

import assert from "node:assert/strict";
import {
  escapeText,
  formatEvent,
  Logger,
  type LoggerOptions,
  type LogLevel,
  NO_LOG,
  parseLogLevel,
  RAFT_COMPONENTS,
} from "../../lib/log/mod.ts";

function capture(options: LoggerOptions = {}) {
  const lines: string[] = [];
  const logger = new Logger({ ...options, sink: (l) => lines.push(l), nowMs: () => 0 });
  return { logger, lines };
}

Deno.test("log: one line per event: time, level, [component], message, fields", () => {
  const { logger, lines } = capture();
  logger.for("http").warn("write queue full", { depth: 1024, addr: "127.0.0.1:4001" });
  logger.for("node").error("fatal: disk full");
  assert.deepEqual(lines, [
    "1970-01-01T00:00:00.000Z WARN [http] write queue full depth=1024 addr=127.0.0.1:4001",
    "1970-01-01T00:00:00.000Z ERROR [node] fatal: disk full",
  ]);
  assert.equal(
    formatEvent(Date.UTC(2026, 10, 22, 9), "INFO", "raft", "leader changed", { term: 3 }),
    "2026-11-22T09:00:00.000Z INFO [raft] leader changed term=3",
  );
});

Deno.test("log: a multi-line message or field stays one line, and the escaping is reversible", () => {
  const { logger, lines } = capture();
  const message = "two\nlines\r\n\tand a \\ backslash, \u2028 \u0085 \u0000 end";
  logger.for("store").info(message, {
    sql: 'SELECT "x"\nFROM t',
    empty: "",
    spaced: "a b",
    eq: "a=b",
    err: new Error("bad\nthing"),
    n: 1.5,
    big: 12345678901234567890n,
    flag: true,
    none: null,
    skipped: undefined,
    obj: { a: [1, 2] },
  });
  assert.equal(lines.length, 1);
  const line = lines[0]!;
  // deno-lint-ignore no-control-regex
  assert.ok(!/[\n\r\u2028\u2029\u0085\u0000]/.test(line), JSON.stringify(line));
  assert.equal(
    line,
    "1970-01-01T00:00:00.000Z INFO [store] " +
      "two\\nlines\\r\\n\\tand a \\\\ backslash, \\u2028 \\u0085 \\u0000 end" +
      ' sql="SELECT \\"x\\"\\nFROM t" empty="" spaced="a b" eq="a=b" err="bad\\nthing"' +
      ' n=1.5 big=12345678901234567890 flag=true none=null obj="{\\"a\\":[1,2]}"',
  );
  // Undo the message's escaping: JSON string escapes are a superset of it.
  const escaped = escapeText(message);
  assert.equal(JSON.parse(`"${escaped}"`), message);
  assert.equal(escapeText("plain text"), "plain text");
});

Deno.test("log: -log-level for most components, -raft-log-level for raft/cluster/transport/storage", () => {
  assert.deepEqual([...RAFT_COMPONENTS].sort(), ["cluster", "raft", "storage", "transport"]);
  const { logger, lines } = capture({ level: "INFO", raftLevel: "WARN" });
  const http = logger.for("http");
  const storage = logger.for("storage");
  const cluster = logger.for("cluster");
  http.debug("no");
  http.info("yes 1");
  storage.info("no");
  cluster.info("no");
  storage.warn("yes 2");
  logger.for("raft").error("yes 3");
  assert.deepEqual(lines.map((l) => l.split(" ").slice(1).join(" ")), [
    "INFO [http] yes 1",
    "WARN [storage] yes 2",
    "ERROR [raft] yes 3",
  ]);
  const quiet = capture({ level: "ERROR", raftLevel: "DEBUG" });
  quiet.logger.for("node").warn("no");
  quiet.logger.for("transport").debug("yes");
  assert.equal(quiet.lines.length, 1);
  assert.equal(quiet.logger.for("node").enabled("WARN"), false);
  assert.equal(quiet.logger.for("node").enabled("ERROR"), true);
  assert.equal(quiet.logger.for("transport").enabled("DEBUG"), true);
});

Deno.test("log: every level filters exactly the less severe ones", () => {
  const levels: LogLevel[] = ["ERROR", "WARN", "INFO", "DEBUG"];
  for (const [rank, threshold] of levels.entries()) {
    const { logger, lines } = capture({ level: threshold });
    const log = logger.for("node");
    log.error("e");
    log.warn("w");
    log.info("i");
    log.debug("d");
    assert.deepEqual(
      lines.map((l) => l.split(" ")[1]),
      levels.slice(0, rank + 1),
      `threshold ${threshold}`,
    );
  }
});

Deno.test("log: a disabled level builds nothing; an enabled one builds the message once", () => {
  const { logger, lines } = capture({ level: "INFO" });
  const log = logger.for("http");
  let built = 0;
  const costly = () => {
    built++;
    return "costly";
  };
  log.debug(costly);
  assert.equal(built, 0);
  log.info(costly);
  assert.equal(built, 1);
  assert.match(lines[0]!, / INFO \[http\] costly$/);
  // NO_LOG writes nothing and says so.
  NO_LOG.error(costly);
  assert.equal(built, 1);
  assert.equal(NO_LOG.enabled("ERROR"), false);
});

Deno.test("log: levels parse in any case; component names are checked", () => {
  assert.equal(parseLogLevel("warn"), "WARN");
  assert.equal(parseLogLevel(" Debug "), "DEBUG");
  assert.equal(parseLogLevel("verbose"), undefined);
  assert.equal(parseLogLevel(""), undefined);
  const { logger } = capture();
  assert.throws(() => logger.for("Bad Name"), /log component "Bad Name"/);
  assert.throws(() => logger.for(""), /log component ""/);
});
