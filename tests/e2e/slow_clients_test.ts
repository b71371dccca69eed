/**
 * Slow clients against a real node process: 200 connections that send half
 * a request header, upload a body one byte per second, never read their
 * response, or sit idle after one request must not slow a normal client
 * down; a slow upload is answered 408 at -http-read-timeout; beyond
 * -max-concurrent-requests requests get 503 with Retry-After at once
 * (probes still answer), and the node recovers as soon as the slow clients
 * go. (Deno.serve itself keeps idle and half-sent connections open: they
 * cost a socket, not a request slot; README "Limits".)
 */

import assert from "node:assert/strict";
import { spawnNode } from "../util/node.ts";
import { mustExecute, sleep, startTracked, withNodes } from "./helpers.ts";

const MAX_CONCURRENT = 100;
const READ_TIMEOUT_MS = 4_000;
/** A normal request must be answered within this while the slow clients hold on. */
const ANSWER_BOUND_MS = 2_000;

const enc = new TextEncoder();
const dec = new TextDecoder();

/** A raw connection that records what the node sends back. */
class RawClient {
  readonly #conn: Deno.Conn;
  #text = "";
  #closed = false;
  #timer: ReturnType<typeof setInterval> | undefined;
  readonly done: Promise<void>;

  private constructor(conn: Deno.Conn, read: boolean) {
    this.#conn = conn;
    this.done = read ? this.#readLoop() : Promise.resolve();
  }

  static async open(addr: string, read = true): Promise<RawClient> {
    const [hostname, port] = addr.split(":");
    return new RawClient(await Deno.connect({ hostname, port: Number(port) }), read);
  }

  /** The first status line received ("" before any). */
  get status(): string {
    return this.#text.split("\r\n")[0] ?? "";
  }

  get text(): string {
    return this.#text;
  }

  async send(text: string): Promise<void> {
    if (!this.#closed) await this.#conn.write(enc.encode(text)).catch(() => 0);
  }

  /** Sends `byte` every `everyMs` until closed (a slow upload). */
  trickle(byte: string, everyMs: number): void {
    this.#timer = setInterval(() => void this.send(byte), everyMs);
  }

  close(): void {
    clearInterval(this.#timer);
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#conn.close();
    } catch {
      // already closed
    }
  }

  async #readLoop(): Promise<void> {
    const buf = new Uint8Array(16_384);
    try {
      for (;;) {
        const n = await this.#conn.read(buf);
        if (n === null) return;
        if (this.#text.length < 4096) this.#text += dec.decode(buf.subarray(0, n));
      }
    } catch {
      // closed by us
    }
  }
}

/** `n` raw connections, opened one after the other. */
async function openMany(addr: string, n: number, read = true): Promise<RawClient[]> {
  const out: RawClient[] = [];
  for (let i = 0; i < n; i++) out.push(await RawClient.open(addr, read));
  return out;
}

const SLOW_UPLOAD_HEAD =
  "POST /db/execute HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" +
  "Content-Length: 1000\r\n\r\n[";

/** A normal client's request: answered 200 within the bound. */
async function normalRequest(url: string, i: number): Promise<number> {
  const t0 = performance.now();
  const res = i % 2 === 0
    ? await fetch(`${url}/db/query?q=SELECT%20count(*)%20FROM%20scratch`, {
      signal: AbortSignal.timeout(10_000),
    })
    : await fetch(`${url}/db/execute`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify([["INSERT INTO scratch(a) VALUES(?)", i]]),
      signal: AbortSignal.timeout(10_000),
    });
  const text = await res.text();
  assert.equal(res.status, 200, `normal request ${i}: ${text}`);
  return performance.now() - t0;
}

async function waitUntil(check: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = performance.now() + ms;
  while (!check()) {
    if (performance.now() > deadline) throw new Error(`${what} within ${ms} ms`);
    await sleep(50);
  }
}

Deno.test({
  name:
    "slow clients: 200 slow connections do not block others; 503 beyond the limit, then recovery",
  fn: () =>
    withNodes("slow-clients", async (dir, track) => {
      const node = await startTracked(track, () =>
        spawnNode(`${dir}/n`, [
          "-max-concurrent-requests",
          String(MAX_CONCURRENT),
          "-http-read-timeout",
          `${READ_TIMEOUT_MS}ms`,
        ]));
      await mustExecute(node.url, ["CREATE TABLE scratch(a)"]);
      const clients: RawClient[] = [];
      try {
        // 80 half-sent headers, 40 slow uploads, 40 that never read a large answer, 40 idle.
        const partial = await openMany(node.httpAddr, 80);
        for (const c of partial) await c.send("GET /status HTTP/1.1\r\nHost: x\r\nX-Slow: ");
        const uploads = await openMany(node.httpAddr, 40);
        for (const c of uploads) {
          await c.send(SLOW_UPLOAD_HEAD);
          c.trickle(" ", 1_000);
        }
        const unread = await openMany(node.httpAddr, 40, false);
        const bigQuery = encodeURIComponent("SELECT hex(zeroblob(131072))");
        for (const c of unread) {
          await c.send(`GET /db/query?q=${bigQuery} HTTP/1.1\r\nHost: x\r\n\r\n`);
        }
        const idle = await openMany(node.httpAddr, 40);
        for (const c of idle) await c.send("GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n");
        clients.push(...partial, ...uploads, ...unread, ...idle);
        assert.equal(clients.length, 200);

        // A normal client is served promptly throughout.
        const took: number[] = [];
        for (let i = 0; i < 40; i++) took.push(await normalRequest(node.url, i));
        took.sort((a, b) => a - b);
        assert.ok(took.at(-1)! < ANSWER_BOUND_MS, `slowest normal request ${took.at(-1)} ms`);
        await waitUntil(
          () => idle.every((c) => c.status === "HTTP/1.1 200 OK"),
          5_000,
          "idle got 200",
        );
        assert.ok(partial.every((c) => c.status === ""), "half-sent headers get no answer");

        // The slow uploads are cut off at the read timeout with 408.
        await waitUntil(
          () => uploads.every((c) => c.status !== ""),
          READ_TIMEOUT_MS + 5_000,
          "every slow upload answered",
        );
        for (const c of uploads) {
          assert.equal(c.status, "HTTP/1.1 408 Request Timeout", c.text.slice(0, 300));
          assert.match(c.text, /request body not received within 4000 ms/);
        }

        // Saturate the request slots with slow uploads: beyond the limit 503 at once.
        const flood = await openMany(node.httpAddr, MAX_CONCURRENT + 20);
        clients.push(...flood);
        for (const c of flood) await c.send(SLOW_UPLOAD_HEAD);
        await waitUntil(
          () => flood.filter((c) => c.status.startsWith("HTTP/1.1 503")).length >= 20,
          5_000,
          "20 uploads refused",
        );
        for (const c of flood.filter((c) => c.status !== "")) {
          assert.equal(c.status, "HTTP/1.1 503 Service Unavailable", c.text.slice(0, 300));
          assert.match(c.text, /retry-after: 1\r\n/i);
          assert.match(c.text, /too many concurrent requests: the limit is 100/);
        }
        const t0 = performance.now();
        const refused = await fetch(`${node.url}/db/query?q=SELECT%201`, {
          signal: AbortSignal.timeout(5_000),
        });
        assert.equal(refused.status, 503, await refused.text());
        assert.equal(refused.headers.get("retry-after"), "1");
        assert.ok(performance.now() - t0 < 1_000, "refused at once");
        const probe = await fetch(`${node.url}/readyz`, { signal: AbortSignal.timeout(5_000) });
        assert.equal(probe.status, 200, `probes use the reserve: ${await probe.text()}`);

        // The slow clients go: the node serves again at once.
        for (const c of flood) c.close();
        const deadline = performance.now() + 5_000;
        for (;;) {
          const res = await fetch(`${node.url}/db/query?q=SELECT%201`, {
            signal: AbortSignal.timeout(5_000),
          });
          await res.body?.cancel();
          if (res.status === 200) break;
          assert.ok(performance.now() < deadline, `still ${res.status} after the flood went`);
          await sleep(50);
        }
        assert.ok((await normalRequest(node.url, 1)) < ANSWER_BOUND_MS);
      } finally {
        for (const c of clients) c.close();
        await Promise.all(clients.map((c) => c.done));
      }
    }),
});
