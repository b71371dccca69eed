/**
 * One Jepsen-style run: start a cluster (harness.ts), create the register
 * table, let K clients run the register workload (workload.ts) while the
 * nemesis (nemesis.ts) kills, pauses and partitions nodes, then heal, restart
 * everything, read every key from every node at level linearizable (part of
 * the history too), tear the cluster down and check the history with
 * checkLinearizable. Used by jepsen_test.ts (short) and main.ts (long).
 *
 * @module
 */

import {
  checkLinearizable,
  type CheckResult,
  describeOperation,
  type Operation,
} from "../../../lib/sim/linearizability.ts";
import { Prng } from "../../../lib/sim/prng.ts";
import { OnceClient } from "../cluster/client.ts";
import { Cluster } from "../cluster/harness.ts";
import { type Fault, runNemesis } from "./nemesis.ts";
import { type Counts, CREATE_TABLE, History, readOp, runClient } from "./workload.ts";

/** Options of {@link runJepsen}. */
export interface JepsenOptions {
  seed: number;
  /** How long clients run. */
  durationMs: number;
  /** Voters in the cluster (1 = a single node). */
  nodes: number;
  clients: number;
  /** Keys in use at any time. */
  keys: number;
  /**
   * Keys are replaced by fresh ones this often (default 10 s), as Jepsen's
   * independent keys: each key's history stays short, so checking it stays
   * cheap however long the run (linearizability is per key anyway).
   */
  keyLifetimeMs?: number;
  /** Checker budget per key (default 50,000,000 steps). */
  maxCheckStepsPerKey?: number;
  faults: readonly Fault[];
  /** Per-operation client timeout (default 5 s). */
  opTimeoutMs?: number;
  /** Pause between one client's operations, uniform in [0, thinkMs] (default 10). */
  thinkMs?: number;
  calmMs?: readonly [number, number];
  faultMs?: readonly [number, number];
  /** Extra node flags. */
  flags?: string[];
  log?: (line: string) => void;
  /** Write the history as JSON here (for analysis). */
  historyFile?: string;
}

/** What a run found. */
export interface JepsenReport {
  seed: number;
  history: Operation[];
  counts: Counts;
  nemesis: string[];
  result: CheckResult;
  checkMs: number;
  /** One-paragraph summary (seed, sizes, counts, verdict). */
  summary: string;
}

/** Runs the workload against a fresh cluster and checks the history. */
export async function runJepsen(o: JepsenOptions): Promise<JepsenReport> {
  const log = o.log ?? ((line: string) => console.log(line));
  const rng = new Prng(o.seed);
  const history = new History();
  const lifetimeMs = o.keyLifetimeMs ?? 10_000;
  const generation = () => Math.floor(history.now() / lifetimeMs);
  const keysOf = (g: number) => Array.from({ length: o.keys }, (_, i) => `g${g}k${i}`);
  let keysNow = keysOf(0);
  let keysGen = 0;
  const keys = () => {
    const g = generation();
    if (g !== keysGen) {
      keysGen = g;
      keysNow = keysOf(g);
    }
    return keysNow;
  };
  const nemesisLog: string[] = [];
  const nemesisLine = (line: string) => {
    nemesisLog.push(line);
    log(line);
  };
  const http = new OnceClient();
  const cluster = await Cluster.start({ voters: o.nodes, prefix: "jepsen", flags: o.flags });
  try {
    const targets = () => cluster.nodes.map((n) => ({ name: n.name, url: n.url }));
    const leader = await cluster.leader();
    await createTable(http, leader.url);
    let stopped = false;
    const stop = () => stopped;
    const clients = Array.from({ length: o.clients }, (_, index) =>
      runClient({
        index,
        keys,
        targets,
        rng: rng.derive(`client-${index}`),
        history,
        http,
        opTimeoutMs: o.opTimeoutMs ?? 5_000,
        thinkMs: o.thinkMs ?? 10,
        stop,
      }));
    const nemesis = runNemesis({
      cluster,
      rng: rng.derive("nemesis"),
      faults: o.faults,
      calmMs: o.calmMs ?? [1_000, 3_000],
      faultMs: o.faultMs ?? [1_000, 4_000],
      stop,
      now: () => history.now(),
      log: nemesisLine,
    });
    const timer = setTimeout(() => (stopped = true), o.durationMs);
    try {
      await Promise.all(clients);
    } finally {
      stopped = true;
      clearTimeout(timer);
      await nemesis;
    }
    // Everything healed and running: every key from every node, linearizable.
    await cluster.leader(60_000);
    const final = { index: o.clients, history, http, opTimeoutMs: 10_000 };
    const allKeys = Array.from({ length: keysGen + 1 }, (_, g) => keysOf(g)).flat();
    for (const n of cluster.nodes) {
      for (const key of allKeys) {
        if (await readOp(final, n, key, "linearizable") === undefined) {
          log(`final read of ${key} on ${n.name} failed`);
        }
      }
    }
  } catch (err) {
    console.error(cluster.describe());
    throw err;
  } finally {
    http.close();
    await cluster.close();
  }

  if (o.historyFile !== undefined) {
    await Deno.writeTextFile(o.historyFile, JSON.stringify(history.ops, jsonInfinity, 1));
  }
  const t0 = performance.now();
  const result = checkLinearizable(history.ops, {
    maxStepsPerKey: o.maxCheckStepsPerKey ?? 50_000_000,
  });
  const checkMs = performance.now() - t0;
  const c = history.counts;
  const verdict = result.ok === true
    ? "linearizable"
    : result.ok === false
    ? `NOT LINEARIZABLE: ${result.reason}\n  ${result.ops.map(describeOperation).join("\n  ")}`
    : `UNKNOWN (checker budget): ${result.reason}`;
  const summary = `jepsen seed ${o.seed}: ${o.nodes} node(s), ${o.clients} clients, ` +
    `${o.keys} keys per ${(lifetimeMs / 1000).toFixed(0)} s, faults [${o.faults.join(",")}], ${
      (o.durationMs / 1000).toFixed(0)
    } s; ` +
    `history ${history.ops.length} ops (reads ok ${c.read.ok} failed ${c.read.failed}; ` +
    `writes ok ${c.write.ok} unknown ${c.write.unknown}; cas ok ${c.cas.ok} ` +
    `failed ${c.cas.failed} unknown ${c.cas.unknown}; refused, not sent ${c.refused}); ` +
    `failures: ${topFailures(c.failures)}; nemesis events ${nemesisLog.length}; ` +
    `check ${checkMs.toFixed(0)} ms: ${verdict}`;
  return {
    seed: o.seed,
    history: history.ops,
    counts: history.counts,
    nemesis: nemesisLog,
    result,
    checkMs,
    summary,
  };
}

async function createTable(http: OnceClient, url: string): Promise<void> {
  let last = "";
  for (let attempt = 0; attempt < 50; attempt++) {
    try {
      const a = await http.post(url, "/db/execute", [CREATE_TABLE], 10_000);
      if (a.status === 200 && a.json?.results?.[0]?.error === undefined && !a.json?.error) return;
      last = `${a.status} ${a.text}`;
    } catch (err) {
      last = (err as Error).message;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`could not create the register table: ${last}`);
}

function topFailures(failures: Record<string, number>): string {
  const sorted = Object.entries(failures).sort((a, b) => b[1] - a[1]);
  if (sorted.length === 0) return "none";
  return sorted.slice(0, 5).map(([why, n]) => `${n}x ${JSON.stringify(why)}`).join(", ");
}

/** JSON has no Infinity: pending ops get `"returnMs": "Infinity"`. */
function jsonInfinity(_key: string, value: unknown): unknown {
  return value === Infinity ? "Infinity" : value;
}

/** Reads a history written with `historyFile`. */
export async function readHistory(path: string): Promise<Operation[]> {
  return JSON.parse(
    await Deno.readTextFile(path),
    (_k, v) => (v === "Infinity" ? Infinity : v),
  ) as Operation[];
}
