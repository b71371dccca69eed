/**
 * lib/http/listen.ts: the node's real handler served by `Deno.serve` (plain
 * HTTP) and by the `node:https` mutual-TLS adapter answers a matrix of
 * requests identically — status, headers (framing headers aside) and body
 * bytes — including streamed request bodies, a body over the limit and a
 * streamed download; and the adapter refuses clients without an acceptable
 * certificate.
 */

import assert from "node:assert/strict";
import { type HttpListener, serveHttp } from "../../lib/http/listen.ts";
import { type CertFiles, type TestPki, withPki } from "../util/certs.ts";
import { startTestNode } from "../util/node.ts";

/** Headers that describe the connection or the encoding, not the answer. */
const FRAMING = new Set([
  "date",
  "content-length",
  "transfer-encoding",
  "connection",
  "keep-alive",
  "vary",
  "content-encoding",
]);

interface Case {
  readonly name: string;
  readonly path: string;
  readonly init?: () => RequestInit;
}

const json = (body: unknown): RequestInit => ({
  method: "POST",
  headers: { "Content-Type": "application/json" },
  body: JSON.stringify(body),
});

/** A body sent as a stream (chunked, no Content-Length), in pieces of `piece` bytes. */
function streamed(text: string, piece = 1000): RequestInit {
  const bytes = new TextEncoder().encode(text);
  let off = 0;
  return {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: new ReadableStream<Uint8Array>({
      pull(controller) {
        if (off >= bytes.byteLength) return controller.close();
        controller.enqueue(bytes.slice(off, off + piece));
        off += piece;
      },
    }),
  };
}

const MAX_BODY = 64 * 1024;
const inserts = Array.from(
  { length: 300 },
  (_, i) => [`INSERT OR REPLACE INTO t(id, v) VALUES(?, ?)`, i, `value ${i} ${"x".repeat(40)}`],
);

const CASES: Case[] = [
  { name: "OPTIONS", path: "/db/query", init: () => ({ method: "OPTIONS" }) },
  { name: "unknown path", path: "/nope" },
  { name: "wrong method", path: "/db/execute" },
  { name: "bad query string", path: "/db/query?timeout=abc&q=SELECT%201" },
  { name: "redirect to the console", path: "/" },
  {
    name: "create",
    path: "/db/execute",
    init: () => json(["CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, v TEXT)"]),
  },
  {
    name: "write",
    path: "/db/execute",
    init: () => json([["INSERT OR REPLACE INTO t(id, v) VALUES(?, ?)", 1, "one"]]),
  },
  {
    name: "streamed write",
    path: "/db/execute",
    init: () => streamed(JSON.stringify(inserts)),
  },
  { name: "bad JSON", path: "/db/execute", init: () => ({ method: "POST", body: "[not json" }) },
  { name: "empty POST", path: "/db/execute", init: () => ({ method: "POST" }) },
  {
    name: "body over the limit",
    path: "/db/execute",
    init: () => json([["SELECT ?", "y".repeat(MAX_BODY)]]),
  },
  {
    name: "streamed body over the limit",
    path: "/db/execute",
    init: () => streamed(JSON.stringify([["SELECT ?", "z".repeat(MAX_BODY)]]), 4096),
  },
  {
    name: "query GET",
    path: `/db/query?q=${encodeURIComponent("SELECT id, v FROM t WHERE id < 3 ORDER BY id")}`,
  },
  {
    name: "query POST pretty",
    path: "/db/query?pretty&associative",
    init: () => json(["SELECT COUNT(*) AS n FROM t"]),
  },
  {
    name: "request",
    path: "/db/request",
    init: () =>
      json(["SELECT v FROM t WHERE id = 1", [
        "INSERT OR REPLACE INTO t(id, v) VALUES(?, ?)",
        2,
        "two",
      ]]),
  },
  { name: "SQL dump (streamed)", path: "/db/backup?fmt=sql" },
  { name: "readyz", path: "/readyz" },
  { name: "HEAD", path: "/readyz", init: () => ({ method: "HEAD" }) },
];

interface Answer {
  status: number;
  headers: [string, string][];
  body: string;
}

async function answer(res: Response): Promise<Answer> {
  const headers = [...res.headers].filter(([name]) => !FRAMING.has(name));
  return { status: res.status, headers, body: await res.text() };
}

function clientFor(pki: TestPki, files: CertFiles | undefined): Deno.HttpClient {
  const read = (p: string) => Deno.readTextFileSync(p);
  return Deno.createHttpClient({
    caCerts: [read(pki.caCert)],
    ...(files === undefined ? {} : { cert: read(files.cert), key: read(files.key) }),
  });
}

async function mutualTlsServer(
  pki: TestPki,
  handler: (req: Request) => Promise<Response>,
  logs: string[],
  commonName?: string,
): Promise<HttpListener> {
  const server = await pki.issue("server");
  const read = (p: string) => Deno.readTextFileSync(p);
  return serveHttp({
    hostname: "127.0.0.1",
    port: 0,
    tls: {
      cert: read(server.cert),
      key: read(server.key),
      caCert: read(pki.caCert),
      verifyClient: true,
      ...(commonName === undefined ? {} : { commonName }),
    },
    handler,
    log: (line) => logs.push(line),
  });
}

Deno.test("the mutual-TLS adapter answers exactly as Deno.serve", async () => {
  await withPki(async (pki) => {
    const node = await startTestNode(["-max-body-bytes", String(MAX_BODY)]);
    const handler = (req: Request) => node.node.handler(req);
    const plain = serveHttp({ hostname: "127.0.0.1", port: 0, handler, log: () => {} });
    const logs: string[] = [];
    const mtls = await mutualTlsServer(pki, handler, logs);
    const client = clientFor(pki, await pki.issue("client"));
    try {
      for (const c of CASES) {
        const viaDeno = await answer(
          await fetch(`http://127.0.0.1:${plain.addr.port}${c.path}`, {
            ...c.init?.(),
            redirect: "manual",
          }),
        );
        const viaNode = await answer(
          await fetch(`https://127.0.0.1:${mtls.addr.port}${c.path}`, {
            ...c.init?.(),
            redirect: "manual",
            client,
          }),
        );
        assert.deepEqual(viaNode, viaDeno, c.name);
      }
      assert.deepEqual(logs, []);
    } finally {
      client.close();
      await plain.shutdown();
      await mtls.shutdown();
      await node.close();
    }
  });
});

Deno.test("the mutual-TLS adapter: certificates from the CA only, common name checked", async () => {
  await withPki(async (pki) => {
    const handler = () => Promise.resolve(new Response("ok\n"));
    const logs: string[] = [];
    const server = await mutualTlsServer(pki, handler, logs, "client1");
    const url = `https://127.0.0.1:${server.addr.port}/status`;
    const clients: Deno.HttpClient[] = [];
    const client = (files?: CertFiles) => {
      const c = clientFor(pki, files);
      clients.push(c);
      return c;
    };
    try {
      const good = client(await pki.issue("client1"));
      const r = await fetch(url, { client: good });
      assert.equal(r.status, 200);
      assert.equal(await r.text(), "ok\n");

      await assert.rejects(() => fetch(url), "the server's CA not trusted");
      await assert.rejects(
        async () => await fetch(url, { client: client() }),
        "no client cert",
      );
      const rogue = client(await pki.selfSigned("rogue", { cn: "client1" }));
      await assert.rejects(async () => await fetch(url, { client: rogue }), "self-signed");

      const other = client(await pki.issue("other", { cn: "client2" }));
      const refused = await fetch(url, { client: other });
      assert.equal(refused.status, 401);
      assert.match(await refused.text(), /common name "client2" is not accepted/);
    } finally {
      for (const c of clients) c.close();
      await server.shutdown();
    }
    assert.ok(logs.some((l) => /TLS handshake from 127\.0\.0\.1 failed/.test(l)), logs.join("\n"));
  });
});
