/**
 * A raftlite cluster of real processes on 127.0.0.1 for end-to-end tests.
 *
 * - Nodes are `main.ts` child processes named n1..nN (`-node-id`), each on
 *   fixed free ports chosen once, so a restart keeps its addresses and id.
 * - With `proxied` (default) every node's Raft port sits behind a fault
 *   proxy (proxy.ts) and the node advertises the proxy (`-raft-adv-addr`),
 *   so `cluster.net` can cut links; without, it advertises its bind address.
 * - Formation `join`: n1 bootstraps alone, each other node starts with
 *   `-join <n1's advertised Raft address>` once the previous one is ready.
 *   Formation `bootstrap-expect`: every voter starts at once with
 *   `-bootstrap-expect <voters> -join <all voters' advertised addresses>`.
 *   Non-voters (`-raft-non-voter`) join the voters afterwards.
 * - A restart passes the same flags again, as a service manager would.
 * - Everything is bounded, and {@link withCluster} always ends with every
 *   process SIGKILLed by pid, every proxy closed and the data removed; when
 *   the body fails it prints the tail of each node's stderr.
 *
 * @module
 */

import assert from "node:assert/strict";
import { freePort, type NodeProcess, spawnNode } from "../../util/node.ts";
import { get, post, type Stmt } from "../helpers.ts";
import { pidHoldsSocket, socketsTo } from "./procnet.ts";
import { Network, splitHostPort } from "./proxy.ts";

/** How the cluster is formed. */
export type Formation = "join" | "bootstrap-expect";

/** Options of {@link Cluster.start}. */
export interface ClusterOptions {
  /** Voting members (default 3). */
  voters?: number;
  /** Read-only members started with `-raft-non-voter` after the voters (default 0). */
  nonVoters?: number;
  /** Default "join" (or the environment variable RAFTLITE_CLUSTER_FORMATION). */
  formation?: Formation;
  /** Raft ports behind fault proxies (default true). */
  proxied?: boolean;
  /** Extra flags for every node. */
  flags?: string[];
  /** Temp dir name prefix. */
  prefix?: string;
  /** Bound on forming the cluster and electing a leader (default 60 s). */
  startTimeoutMs?: number;
}

/** One member. */
export class ClusterNode {
  proc: NodeProcess | undefined;
  /** True while the process is stopped with SIGSTOP. */
  paused = false;
  /** stderr of earlier incarnations of this node. */
  readonly pastLogs: string[] = [];

  constructor(
    /** Node id and name: n1, n2, ... */
    readonly name: string,
    readonly voter: boolean,
    readonly httpAddr: string,
    /** The address the node binds for Raft. */
    readonly raftAddr: string,
    /** The address it advertises for Raft (its proxy's when proxied). */
    readonly advAddr: string,
    readonly dataDir: string,
    /** Flags after -http-addr/-raft-addr, identical at every start. */
    readonly flags: readonly string[],
  ) {}

  /** http://host:port */
  get url(): string {
    return `http://${this.httpAddr}`;
  }

  /** True while a process of this node runs. */
  get alive(): boolean {
    return this.proc !== undefined;
  }

  /** stderr of all incarnations, oldest first. */
  logs(): string {
    return [...this.pastLogs, this.proc?.stderr() ?? ""].join("\n--- restart ---\n");
  }
}

/** What a node's /status says about the leader. */
export interface LeaderView {
  nodeId: string;
  addr: string;
  state: string;
}

/** A running cluster. Use {@link withCluster} so it is always torn down. */
export class Cluster {
  readonly nodes: ClusterNode[];
  readonly net: Network | undefined;
  readonly dir: string;

  private constructor(dir: string, nodes: ClusterNode[], net: Network | undefined) {
    this.dir = dir;
    this.nodes = nodes;
    this.net = net;
  }

  /**
   * Starts the cluster and waits until every node reports the same leader
   * and answers /readyz with 200. On failure everything started is torn
   * down before the error propagates.
   */
  static async start(options: ClusterOptions = {}): Promise<Cluster> {
    const voters = options.voters ?? 3;
    const nonVoters = options.nonVoters ?? 0;
    const formation = options.formation ??
      (Deno.env.get("RAFTLITE_CLUSTER_FORMATION") as Formation | undefined) ?? "join";
    const proxied = options.proxied ?? true;
    const timeoutMs = options.startTimeoutMs ?? 60_000;
    if (!(voters >= 1)) throw new RangeError("a cluster needs at least one voter");
    const dir = await Deno.makeTempDir({ prefix: `raftlite-cluster-${options.prefix ?? "t"}-` });
    const net = proxied ? new Network() : undefined;
    const specs = Array.from({ length: voters + nonVoters }, (_, i) => {
      const name = `n${i + 1}`;
      const raftAddr = `127.0.0.1:${freePort()}`;
      const advAddr = net === undefined ? raftAddr : net.addNode(name, raftAddr).addr;
      return { name, voter: i < voters, httpAddr: `127.0.0.1:${freePort()}`, raftAddr, advAddr };
    });
    const voterAddrs = specs.filter((s) => s.voter).map((s) => s.advAddr);
    const first = specs[0]!;
    const nodes = specs.map((s, i) => {
      const flags = ["-node-id", s.name, "-http-adv-addr", s.httpAddr, "-raft-adv-addr", s.advAddr];
      if (!s.voter) flags.push("-raft-non-voter", "-join", voterAddrs.join(","));
      else if (formation === "bootstrap-expect") {
        flags.push("-bootstrap-expect", String(voters), "-join", voterAddrs.join(","));
      } else if (i > 0) flags.push("-join", first.advAddr);
      flags.push(...(options.flags ?? []));
      return new ClusterNode(
        s.name,
        s.voter,
        s.httpAddr,
        s.raftAddr,
        s.advAddr,
        `${dir}/${s.name}`,
        flags,
      );
    });
    const cluster = new Cluster(dir, nodes, net);
    try {
      const deadline = performance.now() + timeoutMs;
      const left = () => Math.max(1, deadline - performance.now());
      const voterNodes = nodes.filter((n) => n.voter);
      if (formation === "bootstrap-expect") {
        for (const n of voterNodes) await cluster.spawn(n);
        await cluster.waitForLeader({ timeoutMs: left() });
      } else {
        for (const n of voterNodes) {
          await cluster.spawn(n);
          await cluster.waitReady(n, left());
        }
      }
      for (const n of nodes.filter((n) => !n.voter)) {
        await cluster.spawn(n);
        await cluster.waitReady(n, left());
      }
      await cluster.waitForLeader({ timeoutMs: left() });
      return cluster;
    } catch (err) {
      console.error(cluster.describe());
      await cluster.close();
      throw err;
    }
  }

  /** The node named `name` (n1...). */
  node(name: string): ClusterNode {
    const n = this.nodes.find((x) => x.name === name);
    if (n === undefined) throw new Error(`no node ${name}`);
    return n;
  }

  /** Nodes with a running process. */
  live(): ClusterNode[] {
    return this.nodes.filter((n) => n.alive);
  }

  /** Starts a process for `n` (which must not be running) on its data dir and addresses. */
  async spawn(n: ClusterNode): Promise<ClusterNode> {
    if (n.proc !== undefined) throw new Error(`${n.name} is already running (pid ${n.proc.pid})`);
    await Deno.mkdir(n.dataDir, { recursive: true });
    n.proc = spawnNode(n.dataDir, [...n.flags], { httpAddr: n.httpAddr, raftAddr: n.raftAddr });
    this.net?.setPid(n.name, n.proc.pid);
    return n;
  }

  /** Stops `n`'s process with `signal` (SIGKILL default) and waits for it to exit. */
  async kill(n: ClusterNode, signal: Deno.Signal = "SIGKILL"): Promise<Deno.CommandStatus> {
    const proc = n.proc;
    if (proc === undefined) throw new Error(`${n.name} is not running`);
    // A stopped process would not handle SIGTERM until continued.
    if (n.paused && signal !== "SIGKILL") proc.child.kill("SIGCONT");
    const status = await boundedKill(proc, signal);
    n.paused = false;
    n.pastLogs.push(proc.stderr());
    n.proc = undefined;
    this.net?.setPid(n.name, undefined);
    return status;
  }

  /** Freezes `n`'s process (SIGSTOP), like a long GC pause or a stalled VM. */
  pause(n: ClusterNode): void {
    if (n.proc === undefined) throw new Error(`${n.name} is not running`);
    n.proc.child.kill("SIGSTOP");
    n.paused = true;
  }

  /** Lets a paused process run again (SIGCONT). */
  resume(n: ClusterNode): void {
    if (n.proc !== undefined && n.paused) n.proc.child.kill("SIGCONT");
    n.paused = false;
  }

  /** Starts `n` again and (unless `wait` is false) waits until it answers /readyz 200. */
  async restart(n: ClusterNode, wait = true, timeoutMs = 30_000): Promise<ClusterNode> {
    await this.spawn(n);
    if (wait) await this.waitReady(n, timeoutMs);
    return n;
  }

  /** Waits until `n` answers /readyz with 200 (shows its stderr if it does not). */
  async waitReady(n: ClusterNode, timeoutMs = 30_000): Promise<void> {
    const proc = n.proc;
    if (proc === undefined) throw new Error(`${n.name} is not running`);
    let exited: Deno.CommandStatus | undefined;
    void proc.child.status.then((s) => (exited = s));
    const deadline = performance.now() + timeoutMs;
    let last = "no answer";
    for (;;) {
      if (exited !== undefined) {
        throw new Error(
          `${n.name} exited (code ${exited.code}) before it was ready\n${tail(n.logs(), 40)}`,
        );
      }
      try {
        const a = await get(n.url, "/readyz", 2_000);
        if (a.status === 200) return;
        last = `${a.status} ${a.text.trim().replaceAll("\n", " ")}`;
      } catch (err) {
        last = (err as Error).message;
      }
      if (performance.now() > deadline) {
        throw new Error(
          `${n.name} not ready within ${timeoutMs} ms (last /readyz: ${last})\n` +
            tail(n.logs(), 40),
        );
      }
      await sleep(50);
    }
  }

  /** What node `n`'s /status says about the leader (throws on HTTP failure). */
  async leaderSeenBy(n: ClusterNode, timeoutMs = 2_000): Promise<LeaderView> {
    const a = await get(n.url, "/status", timeoutMs);
    if (a.status !== 200) throw new Error(`${n.name} /status: ${a.status}`);
    const store = (JSON.parse(a.text) as {
      store?: { leader?: { node_id?: string; addr?: string }; raft?: { state?: string } };
    }).store;
    return {
      nodeId: store?.leader?.node_id ?? "",
      addr: store?.leader?.addr ?? "",
      state: store?.raft?.state ?? "",
    };
  }

  /**
   * Waits until every node of `among` (default: all running nodes) reports
   * the same non-empty leader, that leader is in `among` and not in
   * `exclude`, and each of them answers /readyz with 200. Returns the leader.
   */
  async waitForLeader(
    options: { among?: ClusterNode[]; exclude?: ClusterNode[]; timeoutMs?: number } = {},
  ): Promise<ClusterNode> {
    const timeoutMs = options.timeoutMs ?? 30_000;
    const deadline = performance.now() + timeoutMs;
    let last = "";
    for (;;) {
      const among = options.among ?? this.live();
      try {
        const views = await Promise.all(among.map((n) => this.leaderSeenBy(n)));
        const ids = new Set(views.map((v) => v.nodeId));
        const [id] = ids;
        last = among.map((n, i) => `${n.name}->${views[i]?.nodeId || "none"}`).join(" ");
        const leader = this.nodes.find((n) => n.name === id);
        if (
          ids.size === 1 && id !== undefined && id !== "" && leader !== undefined &&
          among.includes(leader) && !(options.exclude ?? []).includes(leader)
        ) {
          const ready = await Promise.all(among.map(async (n) => {
            const a = await get(n.url, "/readyz", 2_000);
            return a.status === 200;
          }));
          if (ready.every((x) => x)) return leader;
          last += " (not all ready)";
        }
      } catch (err) {
        last = `error: ${(err as Error).message}`;
      }
      if (performance.now() > deadline) {
        throw new Error(`no agreed leader within ${timeoutMs} ms; last view: ${last}`);
      }
      await sleep(100);
    }
  }

  /** The current leader (as all running nodes agree), after waiting for one. */
  leader(timeoutMs = 30_000): Promise<ClusterNode> {
    return this.waitForLeader({ timeoutMs });
  }

  /** Running voters other than `leader`. */
  followersOf(leader: ClusterNode): ClusterNode[] {
    return this.live().filter((n) => n.voter && n !== leader);
  }

  /** Stops every running node with `signal` (in parallel); returns their exit statuses. */
  stopAll(signal: Deno.Signal = "SIGTERM"): Promise<Deno.CommandStatus[]> {
    return Promise.all(this.live().map((n) => this.kill(n, signal)));
  }

  /**
   * Connections from one node's process straight to another node's bound
   * Raft port, bypassing its proxy (e.g. "n1->n2"). With proxies this must
   * be empty, or link cuts would not cut everything.
   */
  async bypassingConnections(): Promise<string[]> {
    const found: string[] = [];
    for (const target of this.nodes) {
      for (const inode of await socketsTo(splitHostPort(target.raftAddr))) {
        for (const source of this.live()) {
          if (source !== target && await pidHoldsSocket(source.proc!.pid, inode)) {
            found.push(`${source.name}->${target.name}`);
          }
        }
      }
    }
    return found;
  }

  /** Node table with pids and each node's stderr tail, for failure reports. */
  describe(lines = 25): string {
    const out = [`cluster ${this.dir}${this.net ? `, cut links: [${this.net.describe()}]` : ""}`];
    for (const n of this.nodes) {
      const proxy = this.net?.proxies.get(n.name);
      out.push(
        `--- ${n.name} ${n.voter ? "voter" : "non-voter"} http ${n.httpAddr} raft ${n.raftAddr}` +
          ` adv ${n.advAddr} ${n.proc ? `pid ${n.proc.pid}` : "down"}` +
          (proxy ? ` proxy ${JSON.stringify(proxy.stats)}` : ""),
      );
      out.push(tail(n.logs(), lines));
    }
    return out.join("\n");
  }

  /** SIGKILLs every process, closes the proxies, removes the data. Idempotent. */
  async close(): Promise<void> {
    await Promise.all(this.nodes.map(async (n) => {
      if (n.proc !== undefined) await this.kill(n, "SIGKILL").catch(() => {});
    }));
    await this.net?.close();
    await Deno.remove(this.dir, { recursive: true }).catch(() => {});
  }
}

/**
 * Starts a cluster, runs `body`, and always tears it down; when `body`
 * throws, prints the cluster's state and the nodes' stderr tails first.
 */
export async function withCluster(
  options: ClusterOptions,
  body: (cluster: Cluster) => Promise<void>,
): Promise<void> {
  const cluster = await Cluster.start(options);
  try {
    await body(cluster);
  } catch (err) {
    console.error(cluster.describe());
    throw err;
  } finally {
    await cluster.close();
  }
}

/**
 * A node that is not part of the cluster's formation, registered in
 * `c.nodes` (so withCluster kills it and removes its data) in place of a
 * stopped node of the same name, or appended.
 */
export function joiningNode(
  c: Cluster,
  name: string,
  joinAddr: string,
  raftAddr = `127.0.0.1:${freePort()}`,
  extraFlags: string[] = [],
): ClusterNode {
  const httpAddr = `127.0.0.1:${freePort()}`;
  const n = new ClusterNode(
    name,
    true,
    httpAddr,
    raftAddr,
    raftAddr,
    `${c.dir}/${name}`,
    [
      "-node-id",
      name,
      "-http-adv-addr",
      httpAddr,
      "-raft-adv-addr",
      raftAddr,
      "-join",
      joinAddr,
      ...extraFlags,
    ],
  );
  const i = c.nodes.findIndex((x) => x.name === name);
  if (i >= 0) {
    assert.equal(c.nodes[i]!.alive, false, `${name} must be stopped before it is replaced`);
    c.nodes[i] = n;
  } else c.nodes.push(n);
  return n;
}

// ---------------------------------------------------------------------------
// Reading nodes' local state.

/** Rows of `sql` read on `n` itself at `level` (default none); throws on any error. */
export async function rowsOn(
  n: ClusterNode,
  sql: Stmt,
  level = "none",
  timeoutMs = 5_000,
): Promise<unknown[][]> {
  const a = await post(n.url, `/db/query?level=${level}`, [sql], timeoutMs);
  const r = a.json?.results?.[0];
  if (a.status !== 200 || a.json?.error !== undefined || r === undefined || r.error !== undefined) {
    throw new Error(
      `${n.name} query at level ${level} failed (${a.status}): ${a.text.slice(0, 300)}`,
    );
  }
  return r.values ?? [];
}

/**
 * A SHA-256 over node `n`'s own copy of the database (level=none reads:
 * schema, then every table ordered by its first column), to compare nodes.
 */
export async function localHash(n: ClusterNode): Promise<string> {
  const schema = await rowsOn(
    n,
    "SELECT type, name, tbl_name, sql FROM sqlite_schema ORDER BY type, name",
  );
  const parts = [JSON.stringify(schema)];
  for (const [type, name] of schema) {
    if (type !== "table" || String(name).startsWith("sqlite_")) continue;
    parts.push(`${name}\n${JSON.stringify(await rowsOn(n, `SELECT * FROM "${name}" ORDER BY 1`))}`);
  }
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(parts.join("\n")));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Waits until every node of `nodes` has the same {@link localHash} and
 * `check` (if given) holds for one of them; returns the hash.
 */
export async function waitConverged(
  nodes: ClusterNode[],
  timeoutMs = 20_000,
  check?: (n: ClusterNode) => Promise<boolean>,
): Promise<string> {
  const deadline = performance.now() + timeoutMs;
  let last = "";
  for (;;) {
    try {
      const hashes = await Promise.all(nodes.map((n) => localHash(n)));
      last = nodes.map((n, i) => `${n.name}:${hashes[i]?.slice(0, 12)}`).join(" ");
      if (new Set(hashes).size === 1 && (check === undefined || await check(nodes[0]!))) {
        return hashes[0]!;
      }
    } catch (err) {
      last = `error: ${(err as Error).message}`;
    }
    if (performance.now() > deadline) {
      throw new Error(`nodes did not converge within ${timeoutMs} ms; last: ${last}`);
    }
    await sleep(200);
  }
}

/** An HTTP exchange without following redirects: status, headers, body text. */
export async function rawRequest(
  url: string,
  init: RequestInit & { timeoutMs?: number } = {},
): Promise<{ status: number; headers: Headers; text: string }> {
  const res = await fetch(url, {
    ...init,
    redirect: "manual",
    signal: AbortSignal.timeout(init.timeoutMs ?? 10_000),
  });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

/** Resolves after `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls `check` every 100 ms until true; throws with `what` after `timeoutMs`. */
export async function eventually(
  what: string,
  check: () => Promise<boolean>,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  let lastErr = "";
  for (;;) {
    try {
      if (await check()) return;
    } catch (err) {
      lastErr = ` (last error: ${(err as Error).message})`;
    }
    if (performance.now() > deadline) {
      throw new Error(`${what}: not within ${timeoutMs} ms${lastErr}`);
    }
    await sleep(100);
  }
}

function tail(text: string, lines: number): string {
  const all = text.trimEnd().split("\n");
  return all.slice(-lines).join("\n");
}

/** Kills with `signal`; if the process has not exited 20 s later, SIGKILLs it. */
async function boundedKill(proc: NodeProcess, signal: Deno.Signal): Promise<Deno.CommandStatus> {
  if (signal === "SIGKILL") return await proc.kill("SIGKILL");
  let timer: ReturnType<typeof setTimeout> | undefined;
  const escalate = new Promise<void>((r) => (timer = setTimeout(r, 20_000)));
  const status = proc.kill(signal);
  const first = await Promise.race([status, escalate.then(() => undefined)]);
  clearTimeout(timer);
  if (first !== undefined) return first;
  return await proc.kill("SIGKILL");
}
