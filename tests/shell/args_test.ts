import assert from "node:assert/strict";
import {
  parseHostSpec,
  parseShellArgs,
  ShellArgError,
  type ShellOptions,
} from "../../lib/shell/args.ts";
import { planInsecure } from "../../lib/shell/insecure.ts";
import { historyPath } from "../../lib/shell/history.ts";

const noEnv = () => undefined;

function run(args: string[], env: Record<string, string> = {}): ShellOptions {
  const r = parseShellArgs(args, (n) => env[n]);
  assert.equal(r.kind, "run");
  return (r as { options: ShellOptions }).options;
}

Deno.test("defaults are rqlite's: http://127.0.0.1:4001, prefix /, 30s timeout", () => {
  const o = run([]);
  assert.deepEqual(o.hosts, [{ scheme: "http", host: "127.0.0.1", port: 4001 }]);
  assert.equal(o.prefix, "");
  assert.equal(o.insecure, false);
  assert.equal(o.httpTimeoutMs, 30_000);
  assert.equal(o.user, undefined);
});

Deno.test("short and long flags, with and without =", () => {
  for (
    const args of [
      ["-H", "10.0.0.1", "-p", "4011", "-s", "https"],
      ["--host", "10.0.0.1", "--port", "4011", "--scheme", "https"],
      ["--host=10.0.0.1", "--port=4011", "--scheme=https"],
      ["-H=10.0.0.1", "-p=4011", "-s=https"],
      ["-H10.0.0.1", "-p4011", "-shttps"],
    ]
  ) {
    assert.deepEqual(
      run(args).hosts[0],
      { scheme: "https", host: "10.0.0.1", port: 4011 },
      args.join(" "),
    );
  }
});

Deno.test("-u user:pass, -P prefix, -t duration, -i, certificates", () => {
  const o = run([
    "-u",
    "bob:se:cret",
    "-P",
    "/rq/",
    "-t",
    "1m30s",
    "-i",
    "-c",
    "ca.pem",
    "-d",
    "c.pem",
    "-k",
    "k.pem",
  ]);
  assert.deepEqual(o.user, { username: "bob", password: "se:cret" });
  assert.equal(o.prefix, "/rq");
  assert.equal(o.httpTimeoutMs, 90_000);
  assert.equal(o.insecure, true);
  assert.equal(o.caCert, "ca.pem");
  assert.equal(o.clientCert, "c.pem");
  assert.equal(o.clientKey, "k.pem");
});

Deno.test("-a alternatives follow the first host, in order, with its scheme", () => {
  const o = run(["-s", "https", "-a", "h2:4011, h3 ,[::1]:4021,http://h4:5"]);
  assert.deepEqual(o.hosts, [
    { scheme: "https", host: "127.0.0.1", port: 4001 },
    { scheme: "https", host: "h2", port: 4011 },
    { scheme: "https", host: "h3", port: 4001 },
    { scheme: "https", host: "::1", port: 4021 },
    { scheme: "http", host: "h4", port: 5 },
  ]);
});

Deno.test("RQLITE_HOST is used only when none of -H, -p, -s is given", () => {
  const env = { RQLITE_HOST: "https://db.example:4443" };
  assert.deepEqual(run([], env).hosts[0], { scheme: "https", host: "db.example", port: 4443 });
  assert.deepEqual(run([], { RQLITE_HOST: "db2" }).hosts[0], {
    scheme: "http",
    host: "db2",
    port: 4001,
  });
  assert.deepEqual(run(["-p", "5000"], env).hosts[0], {
    scheme: "http",
    host: "127.0.0.1",
    port: 5000,
  });
  assert.deepEqual(run(["-H", "x"], env).hosts[0]?.host, "x");
  assert.deepEqual(run(["-s", "https"], env).hosts[0]?.host, "127.0.0.1");
  assert.deepEqual(run([], { RQLITE_HOST: "" }).hosts[0]?.host, "127.0.0.1");
});

Deno.test("help and version", () => {
  assert.equal(parseShellArgs(["-h"], noEnv).kind, "help");
  assert.equal(parseShellArgs(["--help"], noEnv).kind, "help");
  assert.equal(parseShellArgs(["-v"], noEnv).kind, "version");
  assert.equal(parseShellArgs(["--version"], noEnv).kind, "version");
});

Deno.test("mistakes say which flag and what it expects", () => {
  const cases: [string[], RegExp][] = [
    [["-p", "http"], /-p: port must be a number/],
    [["-p", "70000"], /port must be a number from 1 to 65535/],
    [["-s", "ftp"], /scheme must be http or https/],
    [["-u", "nopassword"], /username:password/],
    [["-t", "10"], /http-timeout: time: missing unit.*write e\.g\. 10s/],
    [["--nope"], /Unknown option '--nope'.*--help/],
    [["extra"], /--help/],
    [["-d", "c.pem"], /must be given together/],
    [["-a", "h:x"], /-a\/--alternatives: port must be a number/],
  ];
  for (const [args, re] of cases) {
    assert.throws(() => parseShellArgs(args, noEnv), (err: unknown) => {
      assert.ok(err instanceof ShellArgError, String(err));
      assert.match(err.message, re);
      return true;
    });
  }
  assert.throws(() => parseShellArgs([], () => "ftp://x"), /RQLITE_HOST: scheme/);
});

Deno.test("host specs: IPv6 in brackets, trailing slash, bare host", () => {
  assert.deepEqual(parseHostSpec("[fe80::1]", "http", "x"), {
    scheme: "http",
    host: "fe80::1",
    port: 4001,
  });
  assert.deepEqual(parseHostSpec("https://h:1/", "http", "x"), {
    scheme: "https",
    host: "h",
    port: 1,
  });
  assert.throws(() => parseHostSpec("a b", "http", "x"), /not \[scheme/);
});

Deno.test("history file: ~/.raftlite_history, RAFTLITE_HISTFILE moves it, empty turns it off", () => {
  assert.equal(
    historyPath((n) => ({ HOME: "/home/u" } as Record<string, string>)[n]),
    "/home/u/.raftlite_history",
  );
  assert.equal(
    historyPath((n) => ({ HOME: "/h", RAFTLITE_HISTFILE: "/tmp/x" } as Record<string, string>)[n]),
    "/tmp/x",
  );
  assert.equal(
    historyPath((n) => ({ HOME: "/h", RAFTLITE_HISTFILE: "" } as Record<string, string>)[n]),
    undefined,
  );
  assert.equal(historyPath(noEnv), undefined);
});

Deno.test("-i: re-exec under deno with the hosts scoped, refusal with advice in a compiled binary", () => {
  const o = run(["-i", "-H", "a", "-a", "b:1,a:2"]);
  const plan = planInsecure(o, {
    mark: undefined,
    execPath: "/usr/local/bin/deno",
    mainModule: "file:///w/main.ts",
    args: ["shell", "-i", "-H", "a", "-a", "b:1,a:2"],
  });
  assert.deepEqual(plan, {
    kind: "reexec",
    cmd: "/usr/local/bin/deno",
    args: [
      "run",
      "-A",
      "--unsafely-ignore-certificate-errors=a,b",
      "file:///w/main.ts",
      "shell",
      "-i",
      "-H",
      "a",
      "-a",
      "b:1,a:2",
    ],
  });
  const env = { execPath: "/opt/raftlite", mainModule: "file:///x", args: [] };
  const refused = planInsecure(o, { ...env, mark: undefined });
  assert.equal(refused.kind, "refuse");
  assert.match((refused as { message: string }).message, /-c <CA certificate file>/);
  assert.deepEqual(planInsecure(o, { ...env, mark: "1" }), { kind: "continue" });
});
