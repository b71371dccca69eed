/**
 * TLS flags into Config (lib/server/tls_config.ts): combinations that make
 * no sense and unusable files are FlagErrors (`fatal: ...`) that say what
 * to fix; good files end up in the Config as PEM text.
 */

import assert from "node:assert/strict";
import { FlagError, parseFlags } from "../../lib/config/flags.ts";
import { type Config, configFromFlags } from "../../lib/server/config.ts";
import { withPki } from "../util/certs.ts";

function config(flags: string[]): Config {
  return configFromFlags(parseFlags([...flags, "data"]));
}

function refused(flags: string[], message: RegExp): void {
  assert.throws(() => config(flags), (err: unknown) => {
    assert.ok(err instanceof FlagError, `${flags.join(" ")}: ${err}`);
    assert.match(err.message, message, flags.join(" "));
    return true;
  });
}

Deno.test("TLS flags: no TLS flags, no TLS", () => {
  const c = config([]);
  assert.equal(c.httpTls, undefined);
  assert.equal(c.httpCaCert, undefined);
  assert.equal(c.nodeTls, undefined);
});

Deno.test("TLS flags: combinations that need another flag are refused", () => {
  refused(["-http-cert", "c.pem"], /^-http-cert and -http-key must be given together$/);
  refused(["-http-key", "k.pem"], /^-http-cert and -http-key must be given together$/);
  refused(["-node-cert", "c.pem"], /^-node-cert and -node-key must be given together$/);
  refused(["-http-verify-client"], /^-http-verify-client requires HTTPS: pass -http-cert/);
  refused(["-http-verify-common-name", "x"], /requires -http-verify-client$/);
  for (const flag of ["-node-ca-cert=ca.pem", "-node-no-verify", "-node-verify-client"]) {
    refused([flag], /requires internode TLS: pass -node-cert and -node-key$/);
  }
  refused(["-node-verify-server-name=a"], /^-node-verify-server-name requires internode TLS/);
  refused(["-node-verify-common-name=a"], /^-node-verify-common-name requires internode TLS/);
});

Deno.test("TLS flags: files are read and checked at start", async () => {
  await withPki(async (pki) => {
    const a = await pki.issue("a");
    const b = await pki.issue("b");
    const missing = `${pki.dir}/missing.pem`;
    refused(
      ["-http-cert", missing, "-http-key", a.key],
      /^cannot read -http-cert ".*missing\.pem": /,
    );
    refused(
      ["-node-cert", a.key, "-node-key", a.key],
      /^-node-cert ".*" holds no valid certificate/,
    );
    const notPem = `${pki.dir}/not.pem`;
    await Deno.writeTextFile(notPem, "hello\n");
    refused(
      ["-http-cert", a.cert, "-http-key", notPem],
      /^-http-key ".*not\.pem" is not a PEM file/,
    );
    refused(
      ["-node-cert", a.cert, "-node-key", b.key],
      /^-node-key ".*b\.key" is not the key of the certificate in -node-cert ".*a\.pem"$/,
    );
    refused(["-http-ca-cert", missing], /^cannot read -http-ca-cert/);
  });
});

Deno.test("TLS flags: verification options need their CA and agree with each other", async () => {
  await withPki(async (pki) => {
    const a = await pki.issue("a");
    const http = ["-http-cert", a.cert, "-http-key", a.key];
    const node = ["-node-cert", a.cert, "-node-key", a.key];
    refused([...http, "-http-verify-client"], /^-http-verify-client requires -http-ca-cert/);
    refused([...node, "-node-verify-client"], /^-node-verify-client requires -node-ca-cert/);
    refused(
      [...node, "-node-ca-cert", pki.caCert, "-node-verify-common-name", "x"],
      /^-node-verify-common-name requires -node-verify-client$/,
    );
    refused(
      [...node, "-node-no-verify", "-node-verify-server-name", "raft.internal"],
      /^-node-no-verify and -node-verify-server-name contradict each other/,
    );
  });
});

Deno.test("TLS flags: a full HTTPS and internode mTLS setup", async () => {
  await withPki(async (pki) => {
    const a = await pki.issue("a");
    const c = config([
      "-http-cert",
      a.cert,
      "-http-key",
      a.key,
      "-http-ca-cert",
      pki.caCert,
      "-http-verify-client",
      "-http-verify-common-name",
      "client1",
      "-node-cert",
      a.cert,
      "-node-key",
      a.key,
      "-node-ca-cert",
      pki.caCert,
      "-node-verify-client",
      "-node-verify-server-name",
      "raft.internal",
      "-node-verify-common-name",
      "a",
    ]);
    const pem = (path: string) => Deno.readTextFileSync(path);
    assert.deepEqual(c.httpTls, {
      cert: pem(a.cert),
      key: pem(a.key),
      caCert: pem(pki.caCert),
      verifyClient: true,
      commonName: "client1",
    });
    assert.equal(c.httpCaCert, pem(pki.caCert));
    assert.deepEqual(c.nodeTls, {
      cert: pem(a.cert),
      key: pem(a.key),
      caCert: pem(pki.caCert),
      verifyClient: true,
      noVerify: false,
      serverName: "raft.internal",
      commonName: "a",
    });
    // -http-ca-cert alone: plain HTTP that trusts the CA for other nodes' HTTPS APIs.
    const caOnly = config(["-http-ca-cert", pki.caCert]);
    assert.equal(caOnly.httpTls, undefined);
    assert.equal(caOnly.httpCaCert, pem(pki.caCert));
  });
});
