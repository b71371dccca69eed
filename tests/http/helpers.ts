/**
 * Helpers for the HTTP tests: every request goes over a real socket to a
 * node started with {@link startTestNode}, and every reply is read whole
 * (status, exact body text, headers) so tests compare bytes.
 *
 * @module
 */

import assert from "node:assert/strict";
import { startTestNode, type TestNode } from "../util/node.ts";

export type { TestNode };

/** A whole HTTP reply. */
export interface Reply {
  readonly status: number;
  readonly text: string;
  readonly headers: Headers;
}

/** Sends a request and reads the whole body. */
export async function send(node: TestNode, path: string, init?: RequestInit): Promise<Reply> {
  const res = await node.fetch(path, init);
  const text = await res.text();
  return { status: res.status, text, headers: res.headers };
}

/** GET `path`. */
export function get(node: TestNode, path: string): Promise<Reply> {
  return send(node, path);
}

/**
 * POST a JSON body. A string is sent as is (so tests control the exact bytes,
 * e.g. `1.0` or integers beyond 2^53); anything else is `JSON.stringify`-ed.
 */
export function post(node: TestNode, path: string, body: unknown): Promise<Reply> {
  return send(node, path, {
    method: "POST",
    body: typeof body === "string" ? body : JSON.stringify(body),
    headers: { "Content-Type": "application/json" },
  });
}

/** POST a `text/plain` body. */
export function postText(node: TestNode, path: string, body: string): Promise<Reply> {
  return send(node, path, {
    method: "POST",
    body,
    headers: { "Content-Type": "text/plain" },
  });
}

/** `/db/query?q=<sql>` with extra query-string flags (`"level=strong&associative"`). */
export function queryPath(sql: string, flags = ""): string {
  return `/db/query?${flags === "" ? "" : `${flags}&`}q=${encodeURIComponent(sql)}`;
}

/** Asserts a 200 JSON reply with exactly `body`. */
export function assertJson(r: Reply, body: string): void {
  assert.equal(r.text, body);
  assert.equal(r.status, 200, `status ${r.status}: ${r.text}`);
  assert.equal(r.headers.get("content-type"), "application/json; charset=utf-8");
}

/** Asserts a Go `http.Error` reply: plain text, trailing newline, nosniff. */
export function assertTextError(r: Reply, status: number, message: string): void {
  assert.equal(r.text, `${message}\n`);
  assert.equal(r.status, status);
  assert.equal(r.headers.get("content-type"), "text/plain; charset=utf-8");
  assert.equal(r.headers.get("x-content-type-options"), "nosniff");
}

/** Asserts a status with an empty body. */
export function assertEmpty(r: Reply, status: number): void {
  assert.equal(r.status, status);
  assert.equal(r.text, "");
}

/**
 * One node for a whole test; it is closed even when the test fails. The
 * node's temp data dir is removed by `close()` unless `dataDir` is given.
 */
export async function withNode(
  flags: string[],
  fn: (node: TestNode) => Promise<void>,
  dataDir?: string,
): Promise<void> {
  const node = await startTestNode(flags, dataDir);
  try {
    await fn(node);
  } finally {
    await node.close();
  }
}

/** The value of `JSON.parse` for assertions on shape rather than bytes. */
// deno-lint-ignore no-explicit-any
export function parse(r: Reply): any {
  assert.equal(r.status, 200, `status ${r.status}: ${r.text}`);
  return JSON.parse(r.text);
}
