import assert from "node:assert/strict";
import {
  BackupConfigError,
  expandEnv,
  parseBackupConfig,
  parseRestoreConfig,
} from "../../lib/backup/config.ts";
import { FlagError, parseFlags } from "../../lib/config/flags.ts";
import { configFromFlags } from "../../lib/server/config.ts";

const env = (vars: Record<string, string>) => (name: string) => vars[name];

Deno.test("auto-backup config: rqlite's S3 example with $VARIABLES from the environment", () => {
  const cfg = parseBackupConfig(
    JSON.stringify({
      version: 1,
      type: "s3",
      interval: "5m",
      no_compress: false,
      timestamp: true,
      vacuum: true,
      sub: {
        access_key_id: "$KEY_ID",
        secret_access_key: "${SECRET}",
        endpoint: "http://127.0.0.1:9000",
        region: "eu-west-1",
        bucket: "b1",
        path: "/backups/db.sqlite.gz",
        force_path_style: true,
      },
    }),
    env({ KEY_ID: "AKID", SECRET: "s3cr$t" }),
  );
  assert.equal(cfg.intervalMs, 300_000);
  assert.equal(cfg.compress, true);
  assert.equal(cfg.timestamp, true);
  assert.equal(cfg.vacuum, true);
  assert.deepEqual(cfg.storage, {
    type: "s3",
    endpoint: "http://127.0.0.1:9000",
    region: "eu-west-1",
    bucket: "b1",
    path: "backups/db.sqlite.gz",
    accessKeyId: "AKID",
    secretAccessKey: "s3cr$t",
    forcePathStyle: true,
  });
});

Deno.test("auto-backup config: type file, defaults, and compression switches", () => {
  const base = { version: 1, type: "file", interval: "1h", sub: { dir: "/var/b/", name: "db.gz" } };
  const cfg = parseBackupConfig(JSON.stringify(base), env({}));
  assert.deepEqual(cfg, {
    intervalMs: 3_600_000,
    compress: true,
    timestamp: false,
    vacuum: false,
    storage: { type: "file", dir: "/var/b", name: "db.gz" },
  });
  assert.equal(
    parseBackupConfig(JSON.stringify({ ...base, no_compress: true }), env({})).compress,
    false,
  );
  assert.equal(
    parseBackupConfig(JSON.stringify({ ...base, compress: false }), env({})).compress,
    false,
  );
  // "file" is accepted for the name too.
  const alt = { ...base, sub: { dir: "/b", file: "x.sqlite" } };
  assert.deepEqual(parseBackupConfig(JSON.stringify(alt), env({})).storage, {
    type: "file",
    dir: "/b",
    name: "x.sqlite",
  });
});

Deno.test("auto-backup config: every mistake is refused with the field and the fix", () => {
  const file = { dir: "/b", name: "db" };
  const cases: [unknown, RegExp][] = [
    ["not json", /not valid JSON/],
    [[1], /must be a JSON object/],
    [{ version: 2, type: "file", interval: "1m", sub: file }, /"version" must be 1/],
    [{ type: "file", sub: file }, /"interval" must be a duration/],
    [{ type: "file", interval: "soon", sub: file }, /"interval" must be a duration/],
    [{ type: "file", interval: "10ms", sub: file }, /at least 1s/],
    [{ type: "ftp", interval: "1m", sub: file }, /"type" must be "s3" or "file"/],
    [{ type: "gcs", interval: "1m", sub: {} }, /"gcs" is not supported/],
    [{ type: "file", interval: "1m" }, /"sub" must be an object/],
    [{ type: "file", interval: "1m", sub: { dir: "rel", name: "x" } }, /absolute path/],
    [{ type: "file", interval: "1m", sub: { dir: "/b", name: "a/b" } }, /without "\/"/],
    [{ type: "file", interval: "1m", sub: file, vacum: true }, /unknown field "vacum"/],
    [{ type: "file", interval: "1m", sub: file, timestamp: "yes" }, /true or false/],
    [
      { type: "file", interval: "1m", sub: file, compress: true, no_compress: true },
      /contradict/,
    ],
    [
      { type: "s3", interval: "1m", sub: { bucket: "b", path: "p", secret_access_key: "s" } },
      /"access_key_id" must be a non-empty string \(required/,
    ],
    [
      {
        type: "s3",
        interval: "1m",
        sub: { access_key_id: "$UNSET", secret_access_key: "s", bucket: "b", path: "p" },
      },
      /"access_key_id".*unset \$VARIABLE/,
    ],
    [
      {
        type: "s3",
        interval: "1m",
        sub: { access_key_id: "a", secret_access_key: "s", bucket: "b", path: "dir/" },
      },
      /"path" must name an object/,
    ],
  ];
  for (const [raw, re] of cases) {
    const text = typeof raw === "string" ? raw : JSON.stringify(raw);
    assert.throws(() => parseBackupConfig(text, env({})), (err: Error) => {
      assert.ok(err instanceof BackupConfigError, String(err));
      assert.match(err.message, re, text);
      assert.match(err.message, /^-auto-backup/);
      return true;
    });
  }
});

Deno.test("auto-restore config: timeout and continue_on_failure", () => {
  const sub = { dir: "/b", name: "db.gz" };
  const cfg = parseRestoreConfig(JSON.stringify({ version: 1, type: "file", sub }), env({}));
  assert.deepEqual(cfg, {
    timeoutMs: 60_000,
    continueOnFailure: false,
    storage: { type: "file", dir: "/b", name: "db.gz" },
  });
  const set = parseRestoreConfig(
    JSON.stringify({ type: "file", timeout: "5s", continue_on_failure: true, sub }),
    env({}),
  );
  assert.equal(set.timeoutMs, 5_000);
  assert.equal(set.continueOnFailure, true);
  assert.throws(
    () => parseRestoreConfig(JSON.stringify({ type: "file", interval: "1m", sub }), env({})),
    /unknown field "interval"/,
  );
  assert.throws(
    () => parseRestoreConfig(JSON.stringify({ type: "file", timeout: "0s", sub }), env({})),
    /"timeout" must be above 0/,
  );
});

Deno.test("expandEnv: $NAME, ${NAME}, unset as empty, $$ as a dollar", () => {
  const e = env({ A: "1", B_2: "two" });
  assert.equal(expandEnv("$A-${B_2}-$C-$$A-x$", e), "1-two--$A-x$");
});

Deno.test("-auto-backup / -auto-restore flags read their files; mistakes stop the start", async () => {
  const dir = await Deno.makeTempDir({ prefix: "raftlite-backup-cfg-" });
  try {
    const good = `${dir}/backup.json`;
    await Deno.writeTextFile(
      good,
      JSON.stringify({ version: 1, type: "file", interval: "30s", sub: { dir, name: "$NAME" } }),
    );
    const restore = `${dir}/restore.json`;
    await Deno.writeTextFile(restore, JSON.stringify({ type: "file", sub: { dir, name: "db" } }));
    const cfg = configFromFlags(
      parseFlags(["-auto-backup", good, "-auto-restore", restore, `${dir}/data`]),
      env({ NAME: "from-env.gz" }),
    );
    assert.equal(cfg.autoBackup?.intervalMs, 30_000);
    assert.deepEqual(cfg.autoBackup?.storage, { type: "file", dir, name: "from-env.gz" });
    assert.equal(cfg.autoRestore?.timeoutMs, 60_000);

    assert.throws(
      () => configFromFlags(parseFlags(["-auto-backup", `${dir}/missing.json`, "d"]), env({})),
      (err: Error) => err instanceof FlagError && /missing\.json: cannot read it/.test(err.message),
    );
    const bad = `${dir}/bad.json`;
    await Deno.writeTextFile(bad, `{"type": "file", "interval": "1m"}`);
    assert.throws(
      () => configFromFlags(parseFlags(["-auto-backup", bad, "d"]), env({})),
      (err: Error) =>
        err instanceof FlagError && /bad\.json: "sub" must be an object/.test(err.message),
    );
    assert.throws(
      () =>
        configFromFlags(
          parseFlags(["-auto-restore", restore, "-join", "127.0.0.1:4002", "d"]),
          env({}),
        ),
      /-auto-restore cannot be used with -join/,
    );
    // With -bootstrap-expect every new node may restore (the leader loads).
    const expect = configFromFlags(
      parseFlags([
        "-auto-restore",
        restore,
        "-join",
        "127.0.0.1:4002,127.0.0.1:4004",
        "-bootstrap-expect",
        "2",
        "d",
      ]),
      env({}),
    );
    assert.equal(expect.autoRestore?.continueOnFailure, false);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
