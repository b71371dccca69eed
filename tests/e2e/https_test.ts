/**
 * HTTPS on a real node process (`main.ts` with -http-cert/-http-key, and
 * with -http-ca-cert/-http-verify-client/-http-verify-common-name), with
 * certificates made by openssl for the test: clients trusting the CA are
 * served, plain HTTP to the HTTPS port fails, the advertised API URL is
 * https; with client verification only certificates from the CA with the
 * required common name get answers, and refused handshakes are logged once
 * per client and reason, not once per attempt.
 */

import assert from "node:assert/strict";
import { type CertFiles, withPki } from "../util/certs.ts";
import { httpsClient, spawnNode } from "../util/node.ts";
import { withNodes } from "./helpers.ts";

const CREATE = ["CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)"];

function executeInit(statements: unknown[], client?: Deno.HttpClient): RequestInit {
  return {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(statements),
    signal: AbortSignal.timeout(10_000),
    ...(client === undefined ? {} : { client }),
  };
}

Deno.test("HTTPS: served to clients trusting the CA, not over plain HTTP; API URL is https", async () => {
  await withPki(async (pki) => {
    const server = await pki.issue("server");
    await withNodes("https", async (dir, track) => {
      const flags = ["-http-cert", server.cert, "-http-key", server.key];
      const n = track(spawnNode(`${dir}/n1`, flags, { https: { caCert: pki.caCert } }));
      await n.ready();
      assert.ok(n.url.startsWith("https://"));
      const client = httpsClient({ caCert: pki.caCert });
      try {
        const created = await fetch(`${n.url}/db/execute`, executeInit(CREATE, client));
        assert.equal(created.status, 200);
        assert.equal(await created.text(), '{"results":[{}]}');
        const inserted = await fetch(
          `${n.url}/db/execute`,
          executeInit([["INSERT INTO t(v) VALUES(?)", "over tls"]], client),
        );
        assert.match(await inserted.text(), /"rows_affected":1/);
        const q = await fetch(`${n.url}/db/query?q=SELECT%20v%20FROM%20t`, { client });
        assert.match(await q.text(), /"values":\[\["over tls"\]\]/);

        const status = await (await fetch(`${n.url}/status`, { client })).json();
        assert.equal(status.cluster.api_addr, n.url);
        assert.equal(status.cluster.https, "true");

        // Without the CA the certificate is not trusted; plain HTTP gets no HTTP answer.
        await assert.rejects(() =>
          fetch(`${n.url}/status`, { signal: AbortSignal.timeout(5_000) })
        );
        await assert.rejects(async () => {
          const res = await fetch(`http://${n.httpAddr}/status`, {
            signal: AbortSignal.timeout(5_000),
          });
          await res.body?.cancel();
        });
      } finally {
        client.close();
      }
    });
  });
});

Deno.test("HTTPS with -http-verify-client: only CA-signed client certificates with the right name", async () => {
  await withPki(async (pki) => {
    const server = await pki.issue("server");
    const client1 = await pki.issue("client1");
    const other = await pki.issue("other", { cn: "client2" });
    const rogue = await pki.selfSigned("rogue", { cn: "client1" });
    await withNodes("mtls-http", async (dir, track) => {
      const flags = [
        "-http-cert",
        server.cert,
        "-http-key",
        server.key,
        "-http-ca-cert",
        pki.caCert,
        "-http-verify-client",
        "-http-verify-common-name",
        "client1",
      ];
      const tls = { caCert: pki.caCert, cert: client1.cert, key: client1.key };
      const n = track(spawnNode(`${dir}/n1`, flags, { https: tls }));
      await n.ready();
      const clients: Deno.HttpClient[] = [];
      const clientWith = (files?: CertFiles) => {
        const c = httpsClient({ caCert: pki.caCert, ...files });
        clients.push(c);
        return c;
      };
      try {
        const good = clientWith(client1);
        const created = await fetch(`${n.url}/db/execute`, executeInit(CREATE, good));
        assert.equal(created.status, 200, await created.clone().text());
        assert.equal(await created.text(), '{"results":[{}]}');

        for (let i = 0; i < 3; i++) {
          await assert.rejects(
            () => fetch(`${n.url}/db/execute`, executeInit(CREATE, clientWith())),
            "no client certificate",
          );
          await assert.rejects(
            () => fetch(`${n.url}/db/execute`, executeInit(CREATE, clientWith(rogue))),
            "a self-signed client certificate",
          );
        }
        const wrongName = await fetch(`${n.url}/status`, { client: clientWith(other) });
        assert.equal(wrongName.status, 401);
        assert.match(await wrongName.text(), /common name "client2" is not accepted/);

        // Nothing the refused clients sent was executed: the table holds no rows and
        // the one CREATE succeeded once.
        const rows = await fetch(`${n.url}/db/query?q=SELECT%20COUNT(*)%20FROM%20t`, {
          client: good,
        });
        assert.match(await rows.text(), /"values":\[\[0\]\]/);
        const handshakeLines = n.stderr().split("\n").filter((l) => /TLS handshake from/.test(l));
        assert.ok(handshakeLines.length >= 1, n.stderr());
        assert.ok(handshakeLines.length <= 2, `one line per reason:\n${handshakeLines.join("\n")}`);
      } finally {
        for (const c of clients) c.close();
      }
    });
  });
});

Deno.test("HTTPS cluster: a follower streams the leader's backup over mutual TLS; URLs are https", async () => {
  await withPki(async (pki) => {
    const n1Cert = await pki.issue("n1", { cn: "node" });
    const n2Cert = await pki.issue("n2", { cn: "node" });
    const client1 = await pki.issue("client1", { cn: "node" });
    await withNodes("https-cluster", async (dir, track) => {
      const httpFlags = (files: CertFiles) => [
        "-http-cert",
        files.cert,
        "-http-key",
        files.key,
        "-http-ca-cert",
        pki.caCert,
        "-http-verify-client",
      ];
      const tls = { caCert: pki.caCert, cert: client1.cert, key: client1.key };
      const n1 = track(
        spawnNode(`${dir}/n1`, ["-node-id", "n1", ...httpFlags(n1Cert)], { https: tls }),
      );
      await n1.ready();
      const n2 = track(spawnNode(`${dir}/n2`, [
        "-node-id",
        "n2",
        "-join",
        n1.raftAddr,
        ...httpFlags(n2Cert),
      ], { https: tls }));
      await n2.ready();
      const client = httpsClient(tls);
      try {
        const created = await fetch(`${n1.url}/db/execute`, executeInit(CREATE, client));
        assert.equal(created.status, 200, await created.clone().text());
        await created.body?.cancel();
        const inserted = await fetch(
          `${n1.url}/db/execute`,
          executeInit([["INSERT INTO t(v) VALUES(?)", "from the leader"]], client),
        );
        assert.equal(inserted.status, 200);
        await inserted.body?.cancel();

        // n2 is the follower: its backup comes from n1's HTTPS API (trusting
        // -http-ca-cert, presenting n2's certificate since n1 requires one).
        const backup = await fetch(`${n2.url}/db/backup?fmt=sql`, { client });
        const dump = await backup.text();
        assert.equal(backup.status, 200, dump);
        assert.match(dump, /INSERT INTO "t" VALUES\(1,'from the leader'\);/);
        const vars = await (await fetch(`${n2.url}/debug/vars`, { client })).json();
        assert.equal(vars.http.forwarded, 1, "the backup came from the leader");
        assert.equal(vars.http.backups, undefined, "not produced by the follower itself");

        const redirected = await fetch(`${n2.url}/db/query?redirect&q=SELECT%201`, {
          client,
          redirect: "manual",
        });
        await redirected.body?.cancel();
        assert.equal(redirected.status, 301);
        assert.equal(
          redirected.headers.get("Location"),
          `${n1.url}/db/query?redirect&q=SELECT%201`,
        );

        const nodes = await (await fetch(`${n2.url}/nodes`, { client })).json();
        assert.equal(nodes.n1.api_addr, n1.url);
        assert.equal(nodes.n2.api_addr, n2.url);
      } finally {
        client.close();
      }
    });
  });
});
