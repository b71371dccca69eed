/**
 * Helpers shared by the end-to-end tests: HTTP calls with a time bound,
 * rqlite response checks, a node lifecycle that always ends in SIGKILL by
 * pid, and a database hash computed through the API.
 */

import type { NodeProcess } from "../util/node.ts";

/** One rqlite statement: SQL text, or `[sql, ...params]`. */
export type Stmt = string | [string, ...unknown[]];

/** A parsed rqlite response (only what the tests read). */
export interface RqliteResponse {
  results?: {
    error?: string;
    rows_affected?: number;
    last_insert_id?: number;
    columns?: string[];
    types?: string[];
    values?: unknown[][];
  }[];
  error?: string;
}

/** An HTTP answer: status, raw body text and, when it is JSON, its parse. */
export interface Answer {
  status: number;
  text: string;
  json: RqliteResponse | undefined;
  ms: number;
}

/** POSTs JSON statements to `url + path`; bounded by `timeoutMs`. Throws on network errors. */
export async function post(
  url: string,
  path: string,
  statements: Stmt[],
  timeoutMs = 10_000,
): Promise<Answer> {
  const t0 = performance.now();
  const res = await fetch(url + path, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(statements),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await res.text();
  return { status: res.status, text, json: parseJson(text), ms: performance.now() - t0 };
}

/** GETs `url + path`; bounded by `timeoutMs`. Throws on network errors. */
export async function get(url: string, path: string, timeoutMs = 10_000): Promise<Answer> {
  const t0 = performance.now();
  const res = await fetch(url + path, { signal: AbortSignal.timeout(timeoutMs) });
  const text = await res.text();
  return { status: res.status, text, json: parseJson(text), ms: performance.now() - t0 };
}

function parseJson(text: string): RqliteResponse | undefined {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** True when every statement of a write succeeded with `rows_affected` 1 (an acknowledged write). */
export function acknowledged(a: Answer, statements: number): boolean {
  const r = a.json;
  if (a.status !== 200 || r === undefined || r.error !== undefined) return false;
  const results = r.results ?? [];
  return results.length === statements &&
    results.every((x) => x.error === undefined && x.rows_affected === 1);
}

/** Executes and throws unless every statement succeeded. */
export async function mustExecute(url: string, statements: Stmt[], query = ""): Promise<Answer> {
  const a = await post(url, `/db/execute${query}`, statements);
  const errs = (a.json?.results ?? []).filter((x) => x.error !== undefined);
  if (a.status !== 200 || a.json === undefined || a.json.error !== undefined || errs.length > 0) {
    throw new Error(`execute failed (${a.status}): ${a.text.slice(0, 500)}`);
  }
  return a;
}

/** The `uploader` counters of /debug/vars (-auto-backup). */
export interface UploaderVars {
  num_uploads_ok: number;
  num_uploads_fail: number;
  num_uploads_skipped: number;
  num_uploads_skipped_id: number;
}

/** Reads the `uploader` counters of a node's /debug/vars. */
export async function uploaderVars(url: string): Promise<UploaderVars> {
  const a = await get(url, "/debug/vars");
  if (a.status !== 200) throw new Error(`/debug/vars answered ${a.status}`);
  return (JSON.parse(a.text) as { uploader: UploaderVars }).uploader;
}

/**
 * Like {@link mustExecute}, but a 503 (no leader known at that moment, e.g. a
 * follower between heartbeats on a loaded machine; nothing was proposed) is
 * retried every 200 ms for up to `withinMs`.
 */
export async function mustExecuteOnceLed(
  url: string,
  statements: Stmt[],
  withinMs = 10_000,
): Promise<Answer> {
  const deadline = performance.now() + withinMs;
  for (;;) {
    const a = await post(url, "/db/execute", statements);
    if (a.status !== 503 || performance.now() > deadline) {
      const errs = (a.json?.results ?? []).filter((x) => x.error !== undefined);
      if (a.status !== 200 || a.json?.error !== undefined || errs.length > 0) {
        throw new Error(`execute failed (${a.status}): ${a.text.slice(0, 500)}`);
      }
      return a;
    }
    await sleep(200);
  }
}

/** Runs one query at `level` and returns its rows; throws on any error. */
export async function queryRows(
  url: string,
  sql: string,
  level = "strong",
  timeoutMs = 15_000,
): Promise<unknown[][]> {
  const a = await post(url, `/db/query?level=${level}`, [sql], timeoutMs);
  const r = a.json?.results?.[0];
  if (a.status !== 200 || r === undefined || r.error !== undefined || a.json?.error) {
    throw new Error(`query failed (${a.status}): ${a.text.slice(0, 500)}`);
  }
  return r.values ?? [];
}

/** The node's /status `store.raft` section. */
export async function raftStatus(url: string, timeoutMs = 5_000): Promise<Record<string, unknown>> {
  const a = await get(url, "/status", timeoutMs);
  const store = (JSON.parse(a.text) as { store?: { raft?: Record<string, unknown> } }).store;
  if (store?.raft === undefined) {
    throw new Error(`no store.raft in /status: ${a.text.slice(0, 300)}`);
  }
  return store.raft;
}

/**
 * A hash of the whole database as the API shows it: the schema, then every
 * table's rows ordered by rowid, each query's raw JSON body (so big integers
 * and BLOBs count byte for byte), SHA-256 over it all.
 */
export async function databaseHash(url: string): Promise<{ hash: string; text: string }> {
  const schema = await post(url, "/db/query?level=strong", [
    "SELECT type, name, tbl_name, sql FROM sqlite_schema ORDER BY type, name",
  ]);
  if (schema.status !== 200) throw new Error(`schema query failed: ${schema.text}`);
  const tables = await queryRows(
    url,
    "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
  );
  const parts = [schema.text];
  for (const [name] of tables) {
    const rows = await post(url, "/db/query?level=strong", [`SELECT * FROM "${name}" ORDER BY 1`]);
    if (rows.status !== 200 || rows.json?.results?.[0]?.error !== undefined) {
      throw new Error(`dump of ${name} failed: ${rows.text.slice(0, 300)}`);
    }
    parts.push(`${name}\n${rows.text}`);
  }
  const text = parts.join("\n");
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  const hash = [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
  return { hash, text };
}

/**
 * Runs `body` with a temp data dir and a list of started processes; every
 * process is SIGKILLed by pid (no-op when it already exited) and the dir is
 * removed, whatever `body` does.
 */
export async function withNodes(
  prefix: string,
  body: (dir: string, track: (n: NodeProcess) => NodeProcess) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: `raftlite-e2e-${prefix}-` });
  const procs: NodeProcess[] = [];
  try {
    await body(dir, (n) => {
      procs.push(n);
      return n;
    });
  } finally {
    await Promise.all(procs.map((p) => p.kill("SIGKILL")));
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** Spawns and tracks a node, then waits until it is ready (showing its stderr if it is not). */
export async function startTracked(
  track: (n: NodeProcess) => NodeProcess,
  make: () => NodeProcess,
  timeoutMs = 20_000,
): Promise<NodeProcess> {
  const n = track(make());
  try {
    await n.ready(timeoutMs);
  } catch (err) {
    throw new Error(`node did not become ready: ${(err as Error).message}\n${n.stderr()}`);
  }
  return n;
}

/** Resolves after `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
