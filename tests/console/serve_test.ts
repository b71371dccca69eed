/**
 * Serving the web console: the embedded files with their types, ETags and
 * security headers, 304/404/405, no way out of the embedded table, and the
 * embedded module equal to the source files (so no stale page ships).
 */

import assert from "node:assert/strict";
import { consoleFileNames, handleConsole } from "../../lib/console/mod.ts";
import {
  CONTENT_TYPES,
  contentTypeOf,
  GENERATED_FILE,
  readAssets,
  renderModule,
} from "../../lib/console/gen_assets.ts";
import { ASSETS } from "../../lib/console/assets.gen.ts";
import { startTestNode } from "../util/node.ts";

const BASE = "http://127.0.0.1:4001";

function get(path: string, init?: RequestInit): Response {
  return handleConsole(new Request(BASE + path, init));
}

Deno.test("assets.gen.ts is up to date with lib/console/assets/ (run: deno task console-assets)", async () => {
  const expected = renderModule(await readAssets());
  const actual = await Deno.readTextFile(GENERATED_FILE);
  assert.ok(
    actual === expected,
    "lib/console/assets.gen.ts differs from lib/console/assets/: run `deno task console-assets`",
  );
});

Deno.test("every source file is embedded with the bytes on disk", async () => {
  const source = await readAssets();
  assert.deepEqual(consoleFileNames().sort(), source.map((a) => a.name));
  for (const a of source) {
    const res = get(`/console/${a.name}`);
    assert.equal(res.status, 200, a.name);
    assert.equal(await res.text(), a.text, a.name);
  }
});

Deno.test("/console/ is index.html; files carry their content types", async () => {
  const index = get("/console/");
  assert.equal(index.status, 200);
  assert.equal(index.headers.get("content-type"), "text/html; charset=utf-8");
  const html = await index.text();
  assert.match(html, /<title>raftlite console<\/title>/);
  assert.equal(html, ASSETS["index.html"]!.text);
  const types: Record<string, string> = {
    "console.js": "text/javascript; charset=utf-8",
    "console.css": "text/css; charset=utf-8",
    "favicon.svg": "image/svg+xml",
    "index.html": "text/html; charset=utf-8",
  };
  for (const [name, type] of Object.entries(types)) {
    const res = get(`/console/${name}`);
    await res.body?.cancel();
    assert.equal(res.headers.get("content-type"), type, name);
    assert.equal(res.headers.get("x-content-type-options"), "nosniff", name);
  }
});

Deno.test("every file the page references is embedded (no network, no CDN)", () => {
  const html = ASSETS["index.html"]!.text;
  const refs = [...html.matchAll(/(?:src|href)="([^"#]+)"/g)].map((m) => m[1]!);
  assert.ok(refs.length >= 3, `too few references found: ${refs}`);
  for (const js of Object.keys(ASSETS).filter((n) => n.endsWith(".js"))) {
    const text = ASSETS[js]!.text;
    refs.push(...[...text.matchAll(/from "\.\/([^"]+)"/g)].map((m) => m[1]!));
  }
  for (const ref of refs) {
    assert.ok(!/^[a-z]+:|^\/\//i.test(ref), `external reference ${ref}`);
    assert.ok(ref in ASSETS, `${ref} is referenced but not embedded`);
  }
  const all = Object.values(ASSETS).map((a) => a.text).join("\n");
  assert.doesNotMatch(
    all,
    /https?:\/\/(?!www\.w3\.org\/2000\/svg)/,
    "an absolute URL in the assets",
  );
});

Deno.test("ETag and Cache-Control; If-None-Match gives 304, weak tags too", async () => {
  const res = get("/console/console.css");
  await res.body?.cancel();
  const etag = res.headers.get("etag");
  assert.match(etag ?? "", /^"[0-9a-f]{32}"$/);
  assert.equal(res.headers.get("cache-control"), "no-cache");
  for (const tag of [etag!, `W/${etag}`, `"nope", ${etag}`, "*"]) {
    const again = get("/console/console.css", { headers: { "If-None-Match": tag } });
    assert.equal(again.status, 304, tag);
    assert.equal(await again.text(), "");
    assert.equal(again.headers.get("etag"), etag);
  }
  const stale = get("/console/console.css", { headers: { "If-None-Match": '"0000"' } });
  assert.equal(stale.status, 200);
  await stale.body?.cancel();
});

Deno.test("the page may only talk to its own origin (CSP), and not be framed", async () => {
  const res = get("/console/");
  await res.body?.cancel();
  const csp = res.headers.get("content-security-policy") ?? "";
  assert.match(csp, /default-src 'self'/);
  assert.match(csp, /script-src 'self'/);
  assert.match(csp, /connect-src 'self'/);
  assert.match(csp, /frame-ancestors 'none'/);
  assert.equal(res.headers.get("x-frame-options"), "DENY");
});

Deno.test("HEAD has the headers and no body; other methods are 405", async () => {
  const head = get("/console/console.js", { method: "HEAD" });
  assert.equal(head.status, 200);
  assert.equal(head.headers.get("content-type"), "text/javascript; charset=utf-8");
  assert.equal(await head.text(), "");
  for (const method of ["POST", "PUT", "DELETE"]) {
    const res = get("/console/", { method });
    assert.equal(res.status, 405, method);
    assert.equal(await res.text(), "");
  }
});

Deno.test("unknown files and anything outside the embedded table are 404", async () => {
  const paths = [
    "/console/nope.js",
    "/console/index.htm",
    "/console/INDEX.HTML",
    "/console/assets/index.html",
    "/console//etc/passwd",
    "/console/%2e%2e%2fdeno.json",
    "/console/..%2f..%2fdeno.json",
    "/console/%2Fetc%2Fpasswd",
    "/console/index.html/",
    "/console/index.html%00",
    "/console/gen_assets.ts",
    "/console/../main.ts",
  ];
  for (const path of paths) {
    const res = get(path);
    const text = await res.text();
    assert.equal(res.status, 404, path);
    assert.equal(text, "404 page not found\n", path);
  }
});

Deno.test("only known text types can be embedded", () => {
  assert.equal(contentTypeOf("a.JS"), CONTENT_TYPES[".js"]);
  assert.throws(() => contentTypeOf("logo.png"), /cannot embed this file type; use one of \.html/);
  assert.throws(() => contentTypeOf("Makefile"), /cannot embed/);
});

Deno.test("through a node: /console/ is served with rqlite's headers, redirects stay", async () => {
  const n = await startTestNode();
  try {
    const page = await n.fetchSocket("/console/");
    assert.equal(page.status, 200);
    assert.equal(page.headers.get("content-type"), "text/html; charset=utf-8");
    assert.ok(page.headers.get("x-rqlite-version"));
    assert.match(await page.text(), /raftlite console/);
    const js = await n.fetchSocket("/console/query.js");
    assert.equal(js.headers.get("content-type"), "text/javascript; charset=utf-8");
    assert.match(await js.text(), /db\/request/);
    const root = await n.fetchSocket("/", { redirect: "manual" });
    await root.body?.cancel();
    assert.equal(root.status, 302);
    assert.equal(root.headers.get("location"), "/console/");
    const bare = await n.fetchSocket("/console", { redirect: "manual" });
    await bare.body?.cancel();
    assert.equal(bare.status, 301);
    const missing = await n.fetchSocket("/console/missing.css");
    assert.equal(missing.status, 404);
    await missing.body?.cancel();
    // A raw request line with dot segments cannot leave the table either.
    const raw = await rawGet(n.url, "/console/../../../../etc/passwd");
    assert.match(raw, /^HTTP\/1\.1 404/);
    assert.doesNotMatch(raw, /root:/);
  } finally {
    await n.close();
  }
});

/** Sends a request line as is (fetch would normalise the path) and returns the reply head and body. */
async function rawGet(url: string, path: string): Promise<string> {
  const { hostname, port } = new URL(url);
  const conn = await Deno.connect({ hostname, port: Number(port) });
  try {
    await conn.write(
      new TextEncoder().encode(
        `GET ${path} HTTP/1.1\r\nHost: ${hostname}\r\nConnection: close\r\n\r\n`,
      ),
    );
    let out = "";
    const buf = new Uint8Array(16 * 1024);
    const decoder = new TextDecoder();
    for (let reads = 0; reads < 64; reads++) {
      const n = await conn.read(buf);
      if (n === null) break;
      out += decoder.decode(buf.subarray(0, n), { stream: true });
    }
    return out;
  } finally {
    conn.close();
  }
}
