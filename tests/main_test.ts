/** main.ts and lib/config/flags.ts: rqlited's flag syntax, errors as `fatal: ...` exit 1. */

import assert from "node:assert/strict";
import { runCli } from "../main.ts";
import { envVariable, FLAGS, parseDurationMs, parseFlags } from "../lib/config/flags.ts";
import { configFromFlags } from "../lib/server/config.ts";
import { VERSION } from "../lib/version.ts";
import { runBounded } from "./util/run_bounded.ts";

Deno.test("runCli: -version and --version print the version line", () => {
  for (const flag of ["-version", "--version", "-version=true"]) {
    const out = runCli([flag]);
    assert.equal(out?.code, 0);
    assert.match(out?.stdout[0] ?? "", new RegExp(`^raftlite v${VERSION.replaceAll(".", "\\.")} `));
  }
});

Deno.test("runCli: a valid command line starts the server (no immediate outcome)", () => {
  assert.equal(
    runCli(["-http-addr", "127.0.0.1:4101", "-raft-addr=127.0.0.1:4102", "d"]),
    undefined,
  );
});

Deno.test("runCli: errors are 'fatal: ...' with exit 1", () => {
  const cases: [string[], RegExp][] = [
    [[], /^fatal: no data directory set$/],
    [["-nope", "d"], /^fatal: flag provided but not defined: -nope$/],
    [["d", "extra"], /^fatal: arguments after data directory \(extra\) are not accepted$/],
    [["-disco-mode", "dns", "d"], /^fatal: -disco-mode dns\/dns-srv needs -disco-config$/],
    [["-disco-key", "k", "d"], /^fatal: flag -disco-key is not supported yet$/],
    [["-bootstrap-expect", "3", "d"], /^fatal: -bootstrap-expect requires -join/],
    [["-join", "http://x:1", "d"], /^fatal: -join address "http:\/\/x:1" must be a Raft address/],
    [["-cdc-config=/f", "d"], /^fatal: flag -cdc-config is not supported yet$/],
    [["-join-as", "u", "d"], /^fatal: -join-as needs -auth/],
    [["-raft-snap", "many", "d"], /^fatal: invalid value "many" for -raft-snap/],
    [["-fk=maybe", "d"], /^fatal: invalid boolean value "maybe" for -fk$/],
    [["-raft-apply-timeout", "10", "d"], /^fatal: invalid value "10" for -raft-apply-timeout/],
    [["-http-addr", "http://x:1", "d"], /^fatal: HTTP bind address should not include protocol/],
    [
      ["-http-addr", "a:1", "-raft-addr", "a:1", "d"],
      /^fatal: HTTP and Raft addresses must differ$/,
    ],
    [["-raft-addr"], /^fatal: flag needs an argument: -raft-addr$/],
    [["-raft-log-level", "loud", "d"], /^fatal: -raft-log-level "loud": use ERROR, WARN/],
    [["-log-level=trace", "d"], /^fatal: -log-level "trace": use ERROR, WARN, INFO or DEBUG$/],
    [["-http-cert", "c.pem", "d"], /^fatal: -http-cert and -http-key must be given together$/],
    [["-node-verify-client", "d"], /^fatal: -node-verify-client requires internode TLS/],
    [["-node-cert=/nope.pem", "-node-key=/nope.key", "d"], /^fatal: cannot read -node-cert/],
  ];
  for (const [args, expected] of cases) {
    const out = runCli(args);
    assert.equal(out?.code, 1, args.join(" "));
    assert.match(out?.stderr[0] ?? "", expected, args.join(" "));
  }
});

Deno.test("flags: every rqlited flag is known and either implemented or refused when given", () => {
  const rqlited = [
    "version",
    "extensions-path",
    "cdc-config",
    "node-id",
    "http-addr",
    "http-adv-addr",
    "http-allow-origin",
    "http-ca-cert",
    "http-cert",
    "http-key",
    "http-verify-client",
    "http-verify-common-name",
    "auth",
    "join-as",
    "node-ca-cert",
    "node-cert",
    "node-key",
    "node-no-verify",
    "node-verify-client",
    "node-verify-server-name",
    "node-verify-common-name",
    "raft-addr",
    "raft-adv-addr",
    "compress-snap-transport",
    "cluster-connect-timeout",
    "join",
    "join-attempts",
    "join-interval",
    "bootstrap-expect",
    "bootstrap-expect-timeout",
    "disco-mode",
    "disco-key",
    "disco-config",
    "raft-log-level",
    "raft-non-voter",
    "raft-snap",
    "raft-snap-wal-size",
    "raft-snap-int",
    "raft-leader-lease-timeout",
    "raft-heartbeat-timeout",
    "raft-election-timeout",
    "raft-commit-timeout",
    "raft-apply-timeout",
    "raft-remove-shutdown",
    "raft-cluster-remove-shutdown",
    "raft-shutdown-stepdown",
    "raft-reap-node-timeout",
    "raft-reap-read-only-node-timeout",
    "fk",
    "db-max-ro-conns",
    "auto-vacuum-int",
    "auto-optimize-int",
    "write-queue-capacity",
    "write-queue-batch-size",
    "write-queue-timeout",
    "write-queue-tx",
    "auto-backup",
    "auto-restore",
    "otlp-endpoint",
    "otlp-interval",
    "otlp-insecure",
    "otlp-no-verify",
    "otlp-ca-cert",
    "otlp-cert",
    "otlp-key",
    "cpu-profile",
    "mem-profile",
    "trace-profile",
  ];
  for (const name of rqlited) {
    const spec = FLAGS[name];
    assert.ok(spec, `-${name} is unknown`);
    const value = spec.kind === "bool" ? `-${name}=${spec.default}` : `-${name}=${spec.default}`;
    if (spec.supported) parseFlags([value, "d"]);
    else {assert.throws(() =>
        parseFlags([value, "d"]), new RegExp(`flag -${name} is not supported yet`));}
  }
});

Deno.test("flags: Go syntax forms and defaults", () => {
  const f = parseFlags(["--fk", "-raft-snap=10", "-node-id", "n1", "-on-disk=false", "dir"]);
  assert.equal(f.values.get("fk"), "true");
  assert.equal(f.values.get("raft-snap"), "10");
  assert.equal(f.values.get("node-id"), "n1");
  assert.equal(f.values.get("on-disk"), "false");
  assert.equal(f.values.get("http-addr"), "localhost:4001");
  assert.equal(f.dataDir, "dir");
  const c = configFromFlags(f);
  assert.equal(c.snapshotThreshold, 10);
  assert.equal(c.trailingEntries, 12);
  assert.equal(c.foreignKeys, true);
  assert.ok(c.dataDir.startsWith("/") && c.dataDir.endsWith("/dir"));
  assert.equal(parseDurationMs("1m30s"), 90_000);
  assert.equal(parseDurationMs("1.5ms"), 1.5);
  assert.equal(parseDurationMs("10"), undefined);
  assert.equal(parseDurationMs("0"), 0);
});

Deno.test("flags: -raft-log-level (rqlite's) and -log-level (raftlite's) in any case", () => {
  const defaults = configFromFlags(parseFlags(["d"]));
  assert.equal(defaults.raftLogLevel, "WARN");
  assert.equal(defaults.logLevel, "INFO");
  const set = configFromFlags(parseFlags(["-raft-log-level=debug", "-log-level", "Warn", "d"]));
  assert.equal(set.raftLogLevel, "DEBUG");
  assert.equal(set.logLevel, "WARN");
  assert.equal(FLAGS["log-level"]?.supported, true);
});

Deno.test("runCli: the limit flags (raftlite) are listed and invalid values are fatal", () => {
  const limitFlags = [
    "max-body-bytes",
    "max-statements",
    "max-concurrent-requests",
    "http-read-timeout",
    "raft-max-frame-bytes",
    "raft-max-conns",
    "raft-idle-timeout",
  ];
  for (const name of limitFlags) assert.equal(FLAGS[name]?.supported, true, `-${name}`);
  const cases: [string[], RegExp][] = [
    [["-max-concurrent-requests", "0", "d"], /^fatal: -max-concurrent-requests must be/],
    [["-http-read-timeout", "0s", "d"], /^fatal: -http-read-timeout must be a duration > 0/],
    [["-raft-max-frame-bytes", "10", "d"], /^fatal: -raft-max-frame-bytes must be 0/],
    [["-raft-max-conns", "1", "d"], /^fatal: -raft-max-conns must be at least 8$/],
    [["-raft-idle-timeout", "1ms", "d"], /^fatal: -raft-idle-timeout must be at least 1s$/],
  ];
  for (const [args, expected] of cases) {
    const out = runCli(args);
    assert.equal(out?.code, 1, args.join(" "));
    assert.match(out?.stderr[0] ?? "", expected, args.join(" "));
  }
});

Deno.test("main.ts as a process: -version and a fatal error", async () => {
  const main = new URL("../main.ts", import.meta.url).pathname;
  const version = await runBounded(Deno.execPath(), ["run", "-A", main, "-version"], {
    timeoutMs: 30_000,
  });
  assert.equal(version.code, 0, version.stderr);
  assert.match(version.stdout, /^raftlite v\d+\.\d+\.\d+ /);
  const bad = await runBounded(Deno.execPath(), ["run", "-A", main, "-cdc-config", "x", "d"], {
    timeoutMs: 30_000,
  });
  assert.equal(bad.code, 1);
  assert.equal(bad.stderr, "fatal: flag -cdc-config is not supported yet\n");
});

Deno.test("lib/version.ts: VERSION is semver", () => {
  assert.match(VERSION, /^\d+\.\d+\.\d+$/);
});

Deno.test("environment: RAFTLITE_<FLAG> sets flags the command line does not; checked the same way", () => {
  const env = (vars: Record<string, string>) => (v: string) => vars[v];
  const flags = parseFlags(
    ["-http-addr", "127.0.0.1:5001", "d"],
    env({
      RAFTLITE_HTTP_ADDR: "127.0.0.1:9999",
      RAFTLITE_RAFT_ADDR: "127.0.0.1:5002",
      RAFTLITE_ON_DISK: "true",
      RAFTLITE_RAFT_SNAP_INT: "30s",
      RAFTLITE_NODE_ID: "",
    }),
  );
  assert.equal(flags.values.get("http-addr"), "127.0.0.1:5001", "the command line wins");
  assert.equal(flags.values.get("raft-addr"), "127.0.0.1:5002");
  assert.equal(flags.values.get("on-disk"), "true");
  assert.equal(flags.values.get("raft-snap-int"), "30s");
  assert.equal(flags.values.get("node-id"), "", "an empty variable counts as unset");
  assert.equal(
    envVariable("raft-cluster-remove-shutdown"),
    "RAFTLITE_RAFT_CLUSTER_REMOVE_SHUTDOWN",
  );
  assert.equal(
    parseFlags([], env({ RAFTLITE_DATA_DIR: "/var/lib/raftlite" })).dataDir,
    "/var/lib/raftlite",
  );
  const bad = runCli(["d"], env({ RAFTLITE_RAFT_SNAP: "many" }));
  assert.equal(bad?.code, 1);
  assert.match(bad!.stderr[0]!, /^fatal: RAFTLITE_RAFT_SNAP: invalid value "many" for -raft-snap/);
  const unsupported = runCli(["d"], env({ RAFTLITE_CDC_CONFIG: "x" }));
  assert.match(unsupported!.stderr[0]!, /^fatal: flag -cdc-config is not supported yet$/);
});
