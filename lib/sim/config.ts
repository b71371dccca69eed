/**
 * Swarm testing: each seed picks its own world.
 *
 * Instead of one fixed fault mix, every seed draws the cluster size, network
 * and disk fault rates, crash and partition frequencies, whether membership
 * changes and leadership transfers happen, Raft tuning (pre-vote,
 * check-quorum, message and flight limits) and a small snapshot threshold.
 * Runs that disable a fault explore deeper along the others (Groce et al.,
 * "Swarm Testing", ISSTA 2012).
 *
 * @module
 */

import type { DiskOptions } from "./disk.ts";
import type { NetworkOptions } from "./network.ts";
import { Prng } from "./prng.ts";

/** Raft options of every node in a run. */
export interface RaftTuning {
  electionTicks: number;
  heartbeatTicks: number;
  preVote: boolean;
  checkQuorum: boolean;
  maxEntriesPerMsg: number;
  maxBytesPerMsg: number;
  maxInflightMsgs: number;
  maxUncommittedBytes: number;
}

/** Everything that defines one run; a pure function of the seed (plus overrides). */
export interface SimConfig {
  seed: number;
  /** Founding voters. */
  nodes: number;
  tickMs: number;
  /** Simulated time with faults and client load, in ticks. */
  ticks: number;
  raft: RaftTuning;
  snapshotThreshold: number;
  trailingEntries: number;
  network: NetworkOptions;
  disk: DiskOptions;
  /** State machine latency bound. */
  applyLatencyMaxMs: number;
  /** Mean time between nemesis actions; Infinity disables the nemesis. */
  nemesisMeanMs: number;
  crashes: boolean;
  partitions: boolean;
  storms: boolean;
  membership: boolean;
  transfers: boolean;
  clients: number;
  keys: number;
  /** Mean think time between a client's operations. */
  thinkMeanMs: number;
  /** A client gives up on an operation (outcome unknown) after this long. */
  clientTimeoutMs: number;
  /** Faults stop, then this long without faults before the liveness checks. */
  quietMs: number;
  /** After faults stop, a write must commit within this bound. */
  livenessBoundMs: number;
  /** Event budget; exceeding it fails the seed (a livelock). */
  maxEvents: number;
  /** Each node's clock rate is drawn from [1 - clockSkew, 1 + clockSkew]. */
  clockSkew: number;
}

/** Overrides applied on top of the swarm's choices. */
export type SimOverrides = Partial<Omit<SimConfig, "seed">>;

/** Draws the configuration of `seed`. */
export function swarmConfig(seed: number, overrides: SimOverrides = {}): SimConfig {
  const rng = new Prng(seed).derive("config");
  const nodes = rng.weighted<number>([[1, 1], [3, 5], [5, 3]]);
  const lossy = rng.chance(0.6);
  const tickMs = 10;
  const config: SimConfig = {
    seed,
    nodes,
    tickMs,
    ticks: rng.range(400, 1500),
    raft: {
      electionTicks: rng.pick([5, 10, 10, 15]),
      heartbeatTicks: rng.pick([1, 1, 2]),
      preVote: rng.chance(0.8),
      checkQuorum: rng.chance(0.8),
      maxEntriesPerMsg: rng.pick([1, 3, 16, 256]),
      maxBytesPerMsg: rng.pick([64, 1024, 1 << 20]),
      maxInflightMsgs: rng.pick([1, 2, 8, 64]),
      maxUncommittedBytes: rng.pick([2048, 64 << 20, 64 << 20]),
    },
    snapshotThreshold: rng.range(20, 200),
    trailingEntries: 0,
    network: {
      delayMinMs: rng.pick([0.2, 1, 2]),
      delayMeanMs: rng.pick([0.5, 2, 5]),
      dropRate: lossy ? rng.pick([0.01, 0.05, 0.15]) : 0,
      dupRate: lossy ? rng.pick([0, 0.01, 0.05]) : 0,
      spikeRate: rng.pick([0, 0.001, 0.01]),
      spikeMs: rng.pick([50, 300, 1000]),
      linkQueueMax: rng.pick([16, 64, 1024]),
      snapshotBytesPerMs: rng.pick([10, 100, 10_000]),
      snapshotDropRate: lossy ? rng.pick([0, 0.1, 0.3]) : 0,
    },
    disk: {
      latencyMinMs: rng.pick([0.05, 0.5, 2]),
      latencyMeanMs: rng.pick([0.1, 1, 5]),
      spikeRate: rng.pick([0, 0.001, 0.01]),
      spikeMs: rng.pick([20, 200]),
      tornRate: rng.pick([0, 0.3, 0.8]),
    },
    applyLatencyMaxMs: rng.pick([0, 0.5, 3]),
    nemesisMeanMs: rng.pick([150, 400, 1000, 3000]),
    crashes: rng.chance(0.75),
    partitions: rng.chance(0.6),
    storms: rng.chance(0.3),
    membership: rng.chance(0.4),
    transfers: rng.chance(0.4),
    clients: rng.range(1, 5),
    keys: rng.range(1, 5),
    thinkMeanMs: rng.pick([2, 10, 40]),
    clientTimeoutMs: rng.pick([300, 1000, 3000]),
    quietMs: 0,
    livenessBoundMs: 0,
    maxEvents: 20_000_000,
    clockSkew: 0,
  };
  const merged: SimConfig = { ...config, ...overrides, seed };
  merged.trailingEntries = overrides.trailingEntries ??
    Math.floor(merged.snapshotThreshold / rng.pick([2, 4, 100]));
  merged.clockSkew = overrides.clockSkew ?? (rng.chance(0.3) ? rng.pick([0.05, 0.2]) : 0);
  const electionMs = merged.raft.electionTicks * merged.tickMs * 2;
  merged.quietMs = overrides.quietMs ?? Math.max(2000, 10 * electionMs);
  merged.livenessBoundMs = overrides.livenessBoundMs ?? Math.max(5000, 20 * electionMs);
  return merged;
}

/** One line describing a configuration, for results and failure reports. */
export function describeConfig(c: SimConfig): string {
  const faults = [
    c.crashes ? "crash" : "",
    c.partitions ? "partition" : "",
    c.storms ? "storm" : "",
    c.membership ? "membership" : "",
    c.transfers ? "transfer" : "",
  ].filter((f) => f !== "").join("+") || "none";
  const n = c.network;
  return `nodes=${c.nodes} ticks=${c.ticks} faults=${faults} nemesis~${c.nemesisMeanMs}ms ` +
    `drop=${n.dropRate} dup=${n.dupRate} delay=${n.delayMinMs}+${n.delayMeanMs}ms ` +
    `torn=${c.disk.tornRate} snap=${c.snapshotThreshold}/${c.trailingEntries} ` +
    `election=${c.raft.electionTicks} hb=${c.raft.heartbeatTicks} prevote=${c.raft.preVote} ` +
    `cq=${c.raft.checkQuorum} maxEnt=${c.raft.maxEntriesPerMsg} inflight=${c.raft.maxInflightMsgs} ` +
    `clients=${c.clients} keys=${c.keys} skew=${c.clockSkew}`;
}
