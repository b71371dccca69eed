/**
 * Limits that protect a node: concurrent requests (-max-concurrent-requests,
 * 503 + Retry-After, probes keep a reserve), slow bodies
 * (-http-read-timeout, 408), and slow clients holding many connections
 * while others are served. Raw TCP clients, so the slowness is exact.
 */

import assert from "node:assert/strict";
import { runCli } from "../../main.ts";
import { startTestNode, type TestNode } from "../util/node.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** A connection that sent a POST's headers and `sent` bytes of a `declared`-byte body. */
async function slowPost(node: TestNode, path: string, declared: number, sent: string) {
  const { hostname, port } = new URL(node.url);
  const conn = await Deno.connect({ hostname, port: Number(port) });
  await conn.write(enc.encode(
    `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n` +
      `Content-Length: ${declared}\r\n\r\n${sent}`,
  ));
  return conn;
}

/** Reads until the connection closes or `timeoutMs` passes; returns what came. */
async function readAll(conn: Deno.Conn, timeoutMs: number): Promise<string> {
  const buf = new Uint8Array(4096);
  let text = "";
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const left = deadline - performance.now();
    if (left <= 0) return text;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const n = await Promise.race([
      conn.read(buf),
      new Promise<"timeout">((r) => (timer = setTimeout(() => r("timeout"), left))),
    ]);
    clearTimeout(timer);
    if (n === "timeout" || n === null) return text;
    text += dec.decode(buf.subarray(0, n));
    if (/\r\n\r\n/.test(text) && /content-length: 0\r\n|\r\n\r\n[^]+/i.test(text)) return text;
  }
}

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // already closed by the server
  }
}

Deno.test("limits: beyond -max-concurrent-requests 503 + Retry-After; probes keep a reserve; a trickled body times out with 408", async () => {
  const node = await startTestNode([
    "-max-concurrent-requests",
    "4",
    "-http-read-timeout",
    "1500ms",
  ]);
  const slow: Deno.Conn[] = [];
  try {
    // Four requests whose bodies never finish hold every slot.
    for (let i = 0; i < 4; i++) slow.push(await slowPost(node, "/db/execute", 100, "["));
    await new Promise((r) => setTimeout(r, 200));
    const refused = await node.fetchSocket("/db/query?q=SELECT%201");
    const text = await refused.text();
    assert.equal(refused.status, 503, text);
    assert.equal(refused.headers.get("Retry-After"), "1");
    assert.match(text, /too many concurrent requests: the limit is 4 \(-max-concurrent-requests\)/);
    const probe = await node.fetchSocket("/status");
    await probe.body?.cancel();
    assert.equal(probe.status, 200, "a health probe is still answered");
    // The slow bodies run out of time: 408 each, and the slots free up.
    for (const c of slow) {
      const answer = await readAll(c, 5_000);
      assert.match(answer, /^HTTP\/1\.1 408 /, answer);
      assert.match(answer, /request body read timeout: not received within 1500 ms/);
    }
    const ok = await node.fetchSocket("/db/query?q=SELECT%201");
    assert.equal(ok.status, 200, await ok.text());
  } finally {
    slow.forEach(closeQuietly);
    await node.close();
  }
});

Deno.test("limits: 200 slow clients holding connections do not block a normal client", async () => {
  const node = await startTestNode(["-http-read-timeout", "10s"]);
  const { hostname, port } = new URL(node.url);
  const held: Deno.Conn[] = [];
  try {
    for (let i = 0; i < 200; i++) {
      const conn = await Deno.connect({ hostname, port: Number(port) });
      held.push(conn);
      // A third send nothing, a third half a header, a third a POST whose body never ends.
      if (i % 3 === 1) await conn.write(enc.encode("GET /status HTTP/1.1\r\nHost: x\r\n"));
      if (i % 3 === 2) {
        await conn.write(enc.encode(
          "POST /db/execute HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\n[",
        ));
      }
    }
    const worst: number[] = [];
    for (let i = 0; i < 50; i++) {
      const t0 = performance.now();
      const res = await node.fetchSocket("/db/query?q=SELECT%20" + i);
      assert.equal(res.status, 200);
      assert.match(await res.text(), new RegExp(`\\[\\[${i}\\]\\]`));
      worst.push(performance.now() - t0);
    }
    worst.sort((a, b) => b - a);
    assert.ok(worst[0]! < 2_000, `slowest answer ${worst[0]!.toFixed(0)} ms`);
  } finally {
    held.forEach(closeQuietly);
    await node.close();
  }
});

Deno.test("limits: the new flags refuse bad values", () => {
  const cases: [string[], RegExp][] = [
    [
      ["-max-concurrent-requests", "0", "d"],
      /^fatal: -max-concurrent-requests must be at least 1$/,
    ],
    [["-http-read-timeout", "-1s", "d"], /^fatal: .*-http-read-timeout/],
    [
      ["-max-body-bytes", "2000000", "-raft-max-frame-bytes", "2000000", "d"],
      /^fatal: -raft-max-frame-bytes must be at least -max-body-bytes \+ 1 MiB \(3048576\)/,
    ],
    [["-log-level", "chatty", "d"], /^fatal: -log-level "chatty": use ERROR, WARN, INFO or DEBUG$/],
  ];
  for (const [args, message] of cases) {
    const out = runCli(args);
    assert.equal(out?.code, 1, args.join(" "));
    assert.match(out!.stderr.join("\n"), message);
  }
  assert.equal(
    runCli(["-raft-max-frame-bytes", "0", "-max-body-bytes", "1048576", "d"]),
    undefined,
  );
});
