/**
 * An HTTP client for fault tests that sends each request exactly once.
 *
 * Deno's fetch pools keep-alive connections, and when a pooled connection
 * turns out closed it silently re-sends the request on a new one (seen in
 * tests/e2e/kill9_test.ts). For a write that may already have been applied
 * that is a second, invisible write: a compare-and-set could be applied and
 * then reported failed. This client never reuses a connection, so a request
 * is sent once and any transport failure is an unknown outcome.
 *
 * @module
 */

import type { Answer, RqliteResponse, Stmt } from "../helpers.ts";

/** A fetch client with no connection reuse; close() it when done. */
export class OnceClient {
  #client = Deno.createHttpClient({ poolMaxIdlePerHost: 0 });

  /** POSTs JSON statements; throws on transport errors and when `timeoutMs` passes. */
  async post(url: string, path: string, statements: Stmt[], timeoutMs: number): Promise<Answer> {
    const t0 = performance.now();
    const res = await fetch(url + path, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(statements),
      signal: AbortSignal.timeout(timeoutMs),
      client: this.#client,
    });
    const text = await res.text();
    let json: RqliteResponse | undefined;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: res.status, text, json, ms: performance.now() - t0 };
  }

  close(): void {
    this.#client.close();
  }
}
