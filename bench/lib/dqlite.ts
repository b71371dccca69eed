/**
 * The dqlite peer: `dqlite-demo` from Debian's `go-dqlite` package (Go on
 * libdqlite: Raft-replicated SQLite in C), installed with apt when missing
 * (bench/lib/apt.ts; never fatal: without it the caller reports dqlite as
 * not available).
 *
 * dqlite-demo serves `PUT /<key>` (body = value) doing
 * `INSERT OR REPLACE INTO model(key, value) VALUES(?, ?)` and `GET /<key>`,
 * both answering status 200 with `done`, the value, or `Error: <message>`.
 * Each node is `dqlite-demo --api <http addr> --db <raft addr> --dir <dir>`
 * (it keeps its data in `<dir>/<raft addr>`); the first node bootstraps and
 * the others start with `--join <first node's raft addr>`. The leader is
 * asked of the cluster with the `dqlite` shell from the same package
 * (`dqlite -s <addrs> demo .leader`), after `.cluster` shows every node as
 * a voter (go-dqlite promotes joined nodes itself).
 *
 * Every process is stopped by pid (SIGTERM, SIGKILL 3 s later) and the data
 * removed when the cluster stops, also when starting it fails.
 *
 * @module
 */

import { type Availability, ensureProgram } from "./apt.ts";
import { findOnPath, runCommand } from "./proc.ts";
import { freePorts, type ServerHandle, spawnServer } from "./server.ts";

/** Debian package that ships dqlite-demo and the dqlite shell. */
export const DQLITE_PACKAGE = "go-dqlite";

/** Finds dqlite-demo, installing go-dqlite when missing (see bench/lib/apt.ts). */
export function ensureDqlite(): Promise<Availability> {
  return ensureProgram("dqlite-demo", DQLITE_PACKAGE);
}

/** One dqlite-demo process. */
export interface DqliteNode {
  /** n1, n2, ... */
  readonly name: string;
  /** Its Raft (database) address, host:port. */
  readonly dbAddr: string;
  /** Its HTTP API server (`baseUrl`, pid, peak RSS, stop). */
  readonly server: ServerHandle;
}

/** A running dqlite-demo cluster. */
export interface DqliteCluster {
  readonly nodes: readonly DqliteNode[];
  /** The node the cluster reports as leader (the bootstrapped one when it cannot be asked). */
  readonly leader: DqliteNode;
  /** How the leader was found, for notes. */
  readonly leaderFoundBy: string;
  /** Asks the cluster for its leader's Raft address again (null when it cannot be asked). */
  currentLeaderAddr(): Promise<string | null>;
  /** Stops every process by pid and removes the data. Idempotent. */
  stop(): Promise<void>;
}

/** Options for {@link startDqlite}. */
export interface DqliteOptions {
  /** Path of dqlite-demo (from {@link ensureDqlite}). */
  program: string;
  /** Nodes (1 or more). */
  nodes: number;
  /** Bound on starting every node and agreeing on voters (default 60 s). */
  timeoutMs?: number;
}

/** Starts `opts.nodes` dqlite-demo processes on 127.0.0.1 and waits until they form a cluster. */
export async function startDqlite(opts: DqliteOptions): Promise<DqliteCluster> {
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const deadline = Date.now() + timeoutMs;
  const dir = await Deno.makeTempDir({ prefix: "dqlite-bench-" });
  const nodes: DqliteNode[] = [];
  let stopped: Promise<void> | null = null;
  const stop = () =>
    stopped ??= (async () => {
      await Promise.all(nodes.map((n) => n.server.stop()));
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    })();
  try {
    for (let i = 0; i < opts.nodes; i++) {
      const name = `n${i + 1}`;
      const [apiPort, dbPort] = freePorts(2) as [number, number];
      const dbAddr = `127.0.0.1:${dbPort}`;
      const join = nodes[0] === undefined ? [] : ["--join", nodes[0].dbAddr];
      const server = await spawnServer({
        name: `dqlite-demo ${name}`,
        cmd: opts.program,
        args: ["--api", `127.0.0.1:${apiPort}`, "--db", dbAddr, "--dir", `${dir}/${name}`, ...join],
        port: apiPort,
        // A missing key: 200 with "Error: sql: no rows in result set" once the API serves.
        readyPath: "/bench-ready-probe",
        readyTimeoutMs: Math.max(1_000, deadline - Date.now()),
      });
      nodes.push({ name, dbAddr, server });
    }
    const addrs = nodes.map((n) => n.dbAddr);
    const shell = await findOnPath("dqlite");
    let leader = nodes[0]!;
    let leaderFoundBy = "the bootstrapped node (a one-node cluster)";
    if (nodes.length > 1 && shell === null) {
      leaderFoundBy = "assumed to be the bootstrapped node: the dqlite shell is not on PATH";
    } else if (nodes.length > 1 && shell !== null) {
      await waitForVoters(shell, addrs, nodes.length, deadline);
      const addr = await askLeader(shell, addrs);
      const found = nodes.find((n) => n.dbAddr === addr);
      if (found === undefined) {
        throw new Error(`dqlite reports leader ${addr ?? "none"}, not one of ${addrs.join(", ")}`);
      }
      leader = found;
      leaderFoundBy = `\`dqlite -s <addrs> demo .leader\` (after ${nodes.length} voters)`;
    }
    return {
      nodes,
      leader,
      leaderFoundBy,
      currentLeaderAddr: () => shell === null ? Promise.resolve(null) : askLeader(shell, addrs),
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}

async function dqliteShell(shell: string, addrs: string[], args: string[]): Promise<string> {
  const out = await runCommand(shell, ["-s", addrs.join(","), ...args], { timeoutMs: 10_000 });
  if (out.code !== 0 || out.timedOut) {
    throw new Error(
      `dqlite ${args.join(" ")}: ${out.timedOut ? "timed out" : `exit code ${out.code}`}: ` +
        (out.stderr.trim() || out.stdout.trim()),
    );
  }
  return out.stdout;
}

/** The leader's Raft address as the cluster reports it, or null if none. */
async function askLeader(shell: string, addrs: string[]): Promise<string | null> {
  const out = (await dqliteShell(shell, addrs, ["demo", ".leader"])).trim();
  return addrs.find((a) => out.includes(a)) ?? null;
}

/** Waits until `.cluster` lists `count` voters (role 0). */
async function waitForVoters(
  shell: string,
  addrs: string[],
  count: number,
  deadline: number,
): Promise<void> {
  let last = "";
  while (Date.now() < deadline) {
    try {
      const out = await dqliteShell(shell, addrs, ["-f", "json", "demo", ".cluster"]);
      const members = JSON.parse(out) as { Address: string; Role: number }[];
      const voters = members.filter((m) => m.Role === 0).length;
      if (voters >= count) return;
      last = members.map((m) => `${m.Address} role ${m.Role}`).join(", ");
    } catch (e) {
      last = e instanceof Error ? e.message : String(e);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`dqlite-demo: not ${count} voters in time; last .cluster: ${last}`);
}
