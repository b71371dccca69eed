/**
 * The register workload of the Jepsen-style test: clients doing reads,
 * writes and compare-and-sets on a few keys of a table `reg(k, v)`, each
 * operation recorded with monotonic call/return times for the
 * linearizability checker (lib/sim/linearizability.ts).
 *
 * Operations (values are unique strings, so a read names the write it saw):
 * - write:  `INSERT OR REPLACE INTO reg(k, v) VALUES(?, ?)`; acknowledged
 *   iff 200, no error and rows_affected 1.
 * - cas(expected -> value): `UPDATE reg SET v = ? WHERE k = ? AND v = ?`,
 *   or for an absent key `INSERT INTO reg(k, v) VALUES(?, ?) ON CONFLICT(k)
 *   DO NOTHING`; succeeded iff rows_affected is 1, failed iff 0.
 * - read: `SELECT v FROM reg WHERE k = ?` at level linearizable or strong
 *   (the levels rqlite promises are linearizable); no row = absent (null).
 *
 * Outcomes: anything but a clean answer (timeout, connection error, non-200,
 * an error in the body) is an unknown outcome for a write or cas (returnMs
 * = Infinity: it may take effect at any later time, or never) and makes a
 * read say nothing (it is dropped). Every request is sent exactly once
 * (client.ts): a silently re-sent cas would corrupt the history.
 *
 * @module
 */

import type { Operation } from "../../../lib/sim/linearizability.ts";
import type { Prng } from "../../../lib/sim/prng.ts";
import { OnceClient } from "../cluster/client.ts";
import type { Answer } from "../helpers.ts";

/** DDL of the register table. */
export const CREATE_TABLE = "CREATE TABLE IF NOT EXISTS reg(k TEXT PRIMARY KEY, v TEXT)";

/** Pause after a failed operation before the next one. */
const FAILURE_BACKOFF_MS = 100;

/** Read levels that must be linearizable. */
export const READ_LEVELS = ["linearizable", "strong"] as const;

/** Mutable counts of what happened, for the report. */
export interface Counts {
  read: { ok: number; failed: number };
  write: { ok: number; unknown: number };
  cas: { ok: number; failed: number; unknown: number };
  /** Requests that never reached a server (connection refused): not in the history. */
  refused: number;
  /** Why requests failed, e.g. "timeout", "503 leader not found" (counts). */
  failures: Record<string, number>;
}

/** A fresh zeroed {@link Counts}. */
export function emptyCounts(): Counts {
  return {
    read: { ok: 0, failed: 0 },
    write: { ok: 0, unknown: 0 },
    cas: { ok: 0, failed: 0, unknown: 0 },
    refused: 0,
    failures: {},
  };
}

/** The history being recorded: ops in completion order plus counts. */
export class History {
  readonly ops: Operation[] = [];
  readonly counts: Counts = emptyCounts();
  #nextId = 0;
  readonly #t0 = performance.now();

  /** Milliseconds since the history started (monotonic). */
  now(): number {
    return performance.now() - this.#t0;
  }

  /** A new operation id. */
  id(): number {
    return this.#nextId++;
  }

  add(op: Operation): void {
    this.ops.push(op);
  }
}

/** Where a client sends requests. */
export interface Target {
  name: string;
  url: string;
}

/** Options of one client's loop. */
export interface ClientOptions {
  index: number;
  /** The keys in use now (they rotate over time; see run.ts). */
  keys: () => readonly string[];
  targets: () => readonly Target[];
  rng: Prng;
  history: History;
  http: OnceClient;
  opTimeoutMs: number;
  /** Pause between operations: uniform in [0, thinkMs]. */
  thinkMs: number;
  stop: () => boolean;
}

/** Runs one client until `stop()`; after a failed request it moves to the next node. */
export async function runClient(o: ClientOptions): Promise<void> {
  let at = o.index;
  let seq = 0;
  /** Last value this client saw per key (cas expects it); forgotten when a cas fails. */
  const seen = new Map<string, string | null>();
  while (!o.stop()) {
    const targets = o.targets();
    const target = targets[at % targets.length]!;
    const key = o.rng.pick(o.keys());
    let kind = o.rng.weighted([["read", 4], ["write", 3], ["cas", 3]] as const);
    // A cas expects the value this client last saw; with none known, read first.
    if (kind === "cas" && !seen.has(key)) kind = "read";
    let ok: boolean;
    if (kind === "read") {
      const level = o.rng.pick(READ_LEVELS);
      const out = await readOp(o, target, key, level);
      ok = out !== undefined;
      if (out !== undefined) seen.set(key, out);
    } else if (kind === "write") {
      const value = `c${o.index}-${seq++}`;
      ok = await writeOp(o, target, key, value);
      if (ok) seen.set(key, value);
    } else {
      const value = `c${o.index}-${seq++}`;
      const expected = seen.get(key) ?? null;
      const res = await casOp(o, target, key, expected, value);
      ok = res !== undefined;
      if (res === true) seen.set(key, value);
      else seen.delete(key);
    }
    if (!ok) {
      // Next node, after a pause (a down node answers at once; do not spin).
      at++;
      await sleep(FAILURE_BACKOFF_MS);
    } else if (o.thinkMs > 0) await sleep(o.rng.nextInt(o.thinkMs + 1));
  }
}

/** Outcome of sending one request. */
type Sent = { answer: Answer } | { refused: true } | { failure: string };

async function send(
  o: Pick<ClientOptions, "http" | "opTimeoutMs">,
  target: Target,
  path: string,
  stmt: [string, ...unknown[]],
): Promise<Sent> {
  try {
    return { answer: await o.http.post(target.url, path, [stmt], o.opTimeoutMs) };
  } catch (err) {
    const e = err as Error;
    const cause = String(e.cause ?? "");
    // Refused at connect: the request never left this process, so it cannot take effect.
    if (cause.includes("client error (Connect)") && cause.includes("Connection refused")) {
      return { refused: true };
    }
    if (e.name === "TimeoutError") return { failure: "timeout" };
    // The last clause of hyper's message, without per-request ports and URLs.
    const text = (cause || e.message).split("\n")[0]!;
    return { failure: `${e.name}: ${text.slice(text.lastIndexOf("): ") + 1).trim().slice(0, 80)}` };
  }
}

/**
 * The single result of a clean answer (status 200, no top-level error,
 * exactly one result without error); otherwise records why and returns
 * undefined (or "refused" when the request was never sent).
 */
function cleanResult(h: History, sent: Sent) {
  if ("refused" in sent) {
    h.counts.refused++;
    return "refused" as const;
  }
  let why: string | undefined;
  if ("failure" in sent) why = sent.failure;
  else {
    const a = sent.answer;
    const results = a.json?.results ?? [];
    if (a.status !== 200 || a.json === undefined) why = `${a.status} ${a.text.trim().slice(0, 60)}`;
    else if (a.json.error !== undefined) why = `error ${a.json.error.slice(0, 60)}`;
    else if (results.length !== 1) why = `${results.length} results`;
    else if (results[0]!.error !== undefined) {
      why = `result error ${results[0]!.error.slice(0, 60)}`;
    } else return results[0]!;
  }
  h.counts.failures[why] = (h.counts.failures[why] ?? 0) + 1;
  return undefined;
}

/** Performs and records a read; returns the value read, or undefined if it failed. */
export async function readOp(
  o: Pick<ClientOptions, "index" | "history" | "http" | "opTimeoutMs">,
  target: Target,
  key: string,
  level: string,
): Promise<string | null | undefined> {
  const h = o.history;
  const id = h.id();
  const callMs = h.now();
  const sent = await send(o, target, `/db/query?level=${level}`, [
    "SELECT v FROM reg WHERE k = ?",
    key,
  ]);
  const returnMs = h.now();
  const r = cleanResult(h, sent);
  if (r === "refused") return undefined;
  // rqlite omits "values" when there are no rows.
  const values = r?.values ?? [];
  if (r === undefined || !Array.isArray(values) || values.length > 1) {
    h.counts.read.failed++;
    return undefined;
  }
  const v = values.length === 0 ? null : values[0]![0];
  if (v !== null && typeof v !== "string") {
    h.counts.read.failed++;
    return undefined;
  }
  h.counts.read.ok++;
  h.add({ id, client: o.index, key, kind: "read", output: v, callMs, returnMs });
  return v;
}

async function writeOp(o: ClientOptions, target: Target, key: string, value: string) {
  const h = o.history;
  const id = h.id();
  const callMs = h.now();
  const sent = await send(o, target, "/db/execute", [
    "INSERT OR REPLACE INTO reg(k, v) VALUES(?, ?)",
    key,
    value,
  ]);
  const returnMs = h.now();
  const r = cleanResult(h, sent);
  if (r === "refused") return false;
  const ok = r !== undefined && r.rows_affected === 1;
  if (ok) h.counts.write.ok++;
  else h.counts.write.unknown++;
  h.add({
    id,
    client: o.index,
    key,
    kind: "write",
    value,
    callMs,
    returnMs: ok ? returnMs : Infinity,
  });
  return ok;
}

/** Returns true/false for a definite outcome, undefined when unknown. */
async function casOp(
  o: ClientOptions,
  target: Target,
  key: string,
  expected: string | null,
  value: string,
): Promise<boolean | undefined> {
  const h = o.history;
  const id = h.id();
  const callMs = h.now();
  const stmt: [string, ...unknown[]] = expected === null
    ? ["INSERT INTO reg(k, v) VALUES(?, ?) ON CONFLICT(k) DO NOTHING", key, value]
    : ["UPDATE reg SET v = ? WHERE k = ? AND v = ?", value, key, expected];
  const sent = await send(o, target, "/db/execute", stmt);
  const returnMs = h.now();
  const r = cleanResult(h, sent);
  if (r === "refused") return undefined;
  const affected = r?.rows_affected ?? (r !== undefined ? 0 : undefined);
  let ok: boolean | undefined;
  if (affected === 1) ok = true;
  else if (affected === 0) ok = false;
  if (ok === true) h.counts.cas.ok++;
  else if (ok === false) h.counts.cas.failed++;
  else h.counts.cas.unknown++;
  h.add({
    id,
    client: o.index,
    key,
    kind: "cas",
    value,
    expected: expected ?? undefined,
    ok,
    callMs,
    returnMs: ok === undefined ? Infinity : returnMs,
  });
  return ok;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
