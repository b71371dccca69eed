/**
 * One seed = one run: build the seed's world, run the workload under the
 * nemesis, stop the faults, then check liveness, convergence, durability of
 * acknowledged writes and linearizability of the client history.
 *
 * Everything is scheduled by one {@link EventQueue} and every random choice
 * comes from streams derived from the seed, so `runSeed(s)` is a pure
 * function of `s` (and its options): a failing seed replays exactly, with a
 * trace when asked.
 *
 * @module
 */

import { SafetyViolation } from "./checker.ts";
import { Checker } from "./checker.ts";
import { Cluster } from "./cluster.ts";
import { describeConfig, type SimConfig, type SimOverrides, swarmConfig } from "./config.ts";
import { EventQueue } from "./events.ts";
import { Nemesis } from "./nemesis.ts";
import { Prng } from "./prng.ts";
import { Tracer } from "./trace.ts";
import { type OpOutcome, type OpRequest, Workload } from "./workload.ts";

/** Options of {@link runSeed}. */
export interface RunOptions {
  overrides?: SimOverrides;
  /** Record a trace (lines go to `traceSink`, else are kept in the result). */
  trace?: boolean;
  traceSink?: (line: string) => void;
  traceCapLines?: number;
  /** Broken world: disks lose the last completed append on a crash. */
  brokenDisk?: boolean;
}

/** The outcome of one seed. */
export interface SeedResult {
  seed: number;
  ok: boolean;
  /** What broke, when not ok. */
  violation?: string;
  /** Simulated time in Raft ticks and milliseconds. */
  ticks: number;
  simMs: number;
  /** Events the queue ran. */
  events: number;
  faults: Record<string, number>;
  /** Highest committed index any node learned. */
  committed: number;
  ops: { invoked: number; ok: number; failed: number; unknown: number; history: number };
  /** Verdict of the linearizability check ("unknown": search budget exhausted). */
  linearizability: "ok" | "unknown" | "violated" | "not run";
  config: string;
  /** Hash of the trace (only when traced). */
  traceHash?: string;
  traceLines?: string[];
}

/** A failure the run itself detects (beyond the checker's invariants). */
export class SimFailure extends Error {
  override readonly name = "SimFailure";
  constructor(readonly kind: string, message: string) {
    super(`${kind}: ${message}`);
  }
}

const FINAL_CLIENT = 1000;

/** Runs seed `seed` and reports what happened. */
export function runSeed(seed: number, options: RunOptions = {}): SeedResult {
  const config = swarmConfig(seed, options.overrides);
  const queue = new EventQueue();
  const root = new Prng(seed);
  const tracer = new Tracer(options.trace === true, () => queue.nowMs, {
    capLines: options.traceCapLines ?? 200_000,
    sink: options.traceSink,
  });
  const checker = new Checker({ strict: true });
  const cluster = new Cluster(config, queue, root, checker, tracer, options.brokenDisk === true);
  const workload = new Workload(cluster, root.derive("workload"), config, tracer);
  const nemesis = new Nemesis(cluster, root.derive("nemesis"), config, tracer);
  tracer.line(`seed ${seed} ${describeConfig(config)}`);

  let violation: string | undefined;
  let linearizability: SeedResult["linearizability"] = "not run";
  try {
    const world = new World(config, queue, cluster, workload);
    cluster.bootstrap();
    workload.start();
    nemesis.start();
    const faultsEndMs = config.ticks * config.tickMs;
    world.runTo(faultsEndMs);
    workload.stop();
    nemesis.stop();
    world.finalChecks(faultsEndMs);
    workload.abandonAll();
    const verdict = checker.checkHistory(workload.history);
    linearizability = verdict.ok === true
      ? "ok"
      : verdict.ok === "unknown"
      ? "unknown"
      : "violated";
    const first = checker.violations[0];
    if (first !== undefined) throw new SafetyViolation(first);
  } catch (err) {
    violation = describeError(err);
    if (err instanceof SafetyViolation && err.violation.invariant === "Linearizability") {
      linearizability = "violated";
    }
    tracer.line(`VIOLATION ${violation}`);
  }
  if (violation === undefined && checker.violations[0] !== undefined) {
    violation = describeError(new SafetyViolation(checker.violations[0]));
  }
  const result: SeedResult = {
    seed,
    ok: violation === undefined,
    ticks: Math.floor(queue.nowMs / config.tickMs),
    simMs: Math.round(queue.nowMs),
    events: queue.executed,
    faults: faultCounts(cluster, nemesis),
    committed: cluster.maxCommit,
    ops: {
      invoked: workload.stats.invoked,
      ok: workload.stats.ok,
      failed: workload.stats.failed,
      unknown: workload.stats.unknown,
      history: workload.history.length,
    },
    linearizability,
    config: describeConfig(config),
  };
  if (violation !== undefined) result.violation = violation;
  if (tracer.enabled) {
    result.traceHash = tracer.hash;
    if (options.traceSink === undefined) result.traceLines = tracer.lines;
  }
  return result;
}

/** Running helpers and the end-of-run checks. */
class World {
  constructor(
    readonly config: SimConfig,
    readonly queue: EventQueue,
    readonly cluster: Cluster,
    readonly workload: Workload,
  ) {}

  #checkBudget(): void {
    if (this.queue.executed >= this.config.maxEvents) {
      throw new SimFailure(
        "EventBudget",
        `${this.config.maxEvents} events run by ${this.queue.nowMs.toFixed(1)} ms (a livelock?)`,
      );
    }
  }

  runTo(untilMs: number): void {
    this.queue.run(untilMs, this.config.maxEvents - this.queue.executed);
    this.#checkBudget();
  }

  runUntil(predicate: () => boolean, untilMs: number): boolean {
    const held = this.queue.runUntil(
      predicate,
      untilMs,
      this.config.maxEvents - this.queue.executed,
    );
    this.#checkBudget();
    return held;
  }

  /** Runs `request` for the final client until it succeeds or `deadlineMs` passes. */
  retry(request: (attempt: number) => OpRequest, deadlineMs: number): () => OpOutcome | undefined {
    let result: OpOutcome | undefined;
    let attempt = 0;
    const go = () => {
      attempt++;
      this.workload.execute(FINAL_CLIENT, request(attempt), (outcome) => {
        if (outcome.status === "ok") result = outcome;
        else if (this.queue.nowMs < deadlineMs) this.queue.after(20, go);
      });
    };
    go();
    return () => result;
  }

  finalChecks(faultsEndMs: number): void {
    const bound = this.config.livenessBoundMs;
    const cluster = this.cluster;
    // Liveness: a write commits within the bound once faults stopped.
    const deadline = faultsEndMs + bound;
    const write = this.retry((n) => ({ kind: "write", key: "k0", value: `final-${n}` }), deadline);
    const wrote = this.runUntil(() => write() !== undefined, deadline);
    cluster.checker.checkLiveness(faultsEndMs, cluster.lastProgressMs, bound);
    if (!wrote) {
      throw new SimFailure(
        "Liveness",
        `no write committed within ${bound} ms after faults stopped at ${faultsEndMs} ms ` +
          `(leader: ${cluster.leader()?.id ?? "none"}, running: ${
            cluster.runningNodes().map((n) => n.id).join(",")
          })`,
      );
    }
    // Final linearizable reads of every key.
    for (const key of this.workload.keys) {
      const readDeadline = this.queue.nowMs + bound;
      const read = this.retry(() => ({ kind: "read", key, level: "linearizable" }), readDeadline);
      if (!this.runUntil(() => read() !== undefined, readDeadline)) {
        throw new SimFailure("Liveness", `final linearizable read of ${key} did not succeed`);
      }
    }
    // Convergence: every member applies everything the leader committed.
    const convergeDeadline = this.queue.nowMs + bound;
    if (!this.runUntil(() => this.#converged() !== undefined, convergeDeadline)) {
      throw new SimFailure("Convergence", `members did not converge: ${this.#describeMembers()}`);
    }
    const members = this.#converged() ?? [];
    const hashes = new Set(members.map((n) => n.live?.kv.stateHash()));
    if (hashes.size !== 1) {
      throw new SimFailure("Convergence", `state hashes differ: ${this.#describeMembers()}`);
    }
    for (const node of members) {
      const applied = node.live?.kv.appliedIndex ?? 0;
      cluster.checker.checkAckedDurable(
        node.id,
        applied,
        (index) => cluster.storedDigest(node, index),
      );
    }
  }

  /** The members when all of them applied exactly the leader's commit index. */
  #converged() {
    const leader = this.cluster.leader();
    const live = leader?.live;
    if (leader === undefined || live === undefined) return undefined;
    const status = live.driver.status();
    if (status.lastIndex !== status.commit) return undefined;
    const members = [];
    for (const id of [...status.conf.voters, ...status.conf.learners]) {
      const node = this.cluster.nodes.get(id);
      const kv = node?.live?.kv;
      if (node === undefined || node.live?.started !== true || kv === undefined) return undefined;
      if (kv.appliedIndex !== status.commit) return undefined;
      members.push(node);
    }
    return members;
  }

  #describeMembers(): string {
    const leader = this.cluster.leader();
    const parts = [`leader ${leader?.id ?? "none"}`];
    if (leader?.live) {
      const s = leader.live.driver.status();
      parts.push(
        `commit ${s.commit} last ${s.lastIndex} voters ${s.conf.voters.join(",")} learners ${
          s.conf.learners.join(",") || "-"
        } progress ${
          [...s.progress].map(([id, p]) =>
            `${id}:${p.state}/m${p.match}/n${p.next}${p.recentActive ? "" : "/inactive"}`
          ).join(",")
        }`,
      );
    }
    for (const node of this.cluster.activeNodes()) {
      const kv = node.live?.kv;
      parts.push(
        `${node.id}: ${
          kv ? `applied ${kv.appliedIndex} hash ${kv.stateHash()} role ${node.view.role}` : "down"
        }`,
      );
    }
    return parts.join("; ");
  }
}

function faultCounts(cluster: Cluster, nemesis: Nemesis): Record<string, number> {
  const net = cluster.network.stats;
  let tornWrites = 0;
  let lostWrites = 0;
  let diskSpikes = 0;
  for (const node of cluster.nodes.values()) {
    tornWrites += node.disk.stats.tornWrites;
    lostWrites += node.disk.stats.lostWrites;
    diskSpikes += node.disk.stats.spikes;
  }
  return {
    drops: net.drops,
    dups: net.dups,
    partitionDrops: net.partitionDrops,
    queueDrops: net.queueDrops,
    netSpikes: net.spikes,
    snapshotsLost: net.snapshotsLost,
    partitions: nemesis.stats.partitions,
    storms: nemesis.stats.storms,
    crashes: cluster.stats.crashes,
    tornWrites,
    lostWrites,
    diskSpikes,
    transfers: nemesis.stats.transfers,
    confChanges: nemesis.stats.confChangesOk,
    snapshotsSent: net.snapshotsDelivered,
  };
}

function describeError(err: unknown): string {
  if (err instanceof SafetyViolation || err instanceof SimFailure) return err.message;
  if (err instanceof Error) {
    const stack = (err.stack ?? "").split("\n").slice(1, 6).map((l) => l.trim()).join(" | ");
    return `${err.name}: ${err.message}${stack ? ` [${stack}]` : ""}`;
  }
  return `thrown: ${String(err)}`;
}
