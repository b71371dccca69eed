/**
 * The nemesis: faults injected at random times while the workload runs.
 *
 * Actions (each enabled or not by the seed's swarm configuration): crash a
 * node and restart it later; partition the network (a random split,
 * isolating the leader, or one-way links) and heal it later; a storm of
 * message loss and duplication; a leadership transfer; a membership change
 * (add a fresh node as learner, promote a learner, remove a voter, sometimes
 * the leader itself), one at a time through the leader. {@link stop} ends
 * all faults: partitions heal, the network turns reliable, crashed nodes
 * restart.
 *
 * @module
 */

import { ConfChangeError, NotLeaderError, ProposalDroppedError } from "../raft/errors.ts";
import type { ConfChange, NodeId } from "../raft/types.ts";
import type { Cluster, SimNode } from "./cluster.ts";
import type { SimConfig } from "./config.ts";
import type { Cancel } from "./events.ts";
import type { Prng } from "./prng.ts";
import type { Tracer } from "./trace.ts";

/** Counters of injected faults. */
export interface NemesisStats {
  crashes: number;
  partitions: number;
  storms: number;
  transfers: number;
  confChanges: number;
  confChangesOk: number;
}

type Action = "crash" | "partition" | "storm" | "transfer" | "membership";

/** Injects faults into a {@link Cluster} until stopped. */
export class Nemesis {
  readonly stats: NemesisStats = {
    crashes: 0,
    partitions: 0,
    storms: 0,
    transfers: 0,
    confChanges: 0,
    confChangesOk: 0,
  };
  #running = false;
  #timers: Cancel[] = [];
  #confBusy = false;
  #maxMembers: number;

  constructor(
    readonly cluster: Cluster,
    readonly rng: Prng,
    readonly config: SimConfig,
    readonly tracer: Tracer,
  ) {
    this.#maxMembers = Math.max(config.nodes + 1, 5);
  }

  start(): void {
    this.#running = true;
    this.#schedule(300 + this.rng.exponential(this.config.nemesisMeanMs));
  }

  #schedule(delayMs: number): void {
    if (!Number.isFinite(this.config.nemesisMeanMs)) return;
    this.#timers.push(this.cluster.queue.after(delayMs, () => {
      if (!this.#running) return;
      this.#act();
      this.#schedule(this.rng.exponential(this.config.nemesisMeanMs));
    }));
  }

  #later(delayMs: number, fn: () => void): void {
    this.#timers.push(this.cluster.queue.after(delayMs, () => {
      if (this.#running) fn();
    }));
  }

  #trace(line: () => string): void {
    if (this.tracer.enabled) this.tracer.line(`nemesis ${line()}`);
  }

  #act(): void {
    const c = this.config;
    const choices: [Action, number][] = [
      ["crash", c.crashes ? 3 : 0],
      ["partition", c.partitions ? 3 : 0],
      ["storm", c.storms ? 1 : 0],
      ["transfer", c.transfers ? 2 : 0],
      ["membership", c.membership ? 2 : 0],
    ];
    if (choices.every(([, w]) => w === 0)) return;
    const action = this.rng.weighted(choices);
    if (action === "crash") this.#crash();
    else if (action === "partition") this.#partition();
    else if (action === "storm") this.#storm();
    else if (action === "transfer") this.#transfer();
    else this.#membership();
  }

  #crash(): void {
    const running = this.cluster.activeNodes().filter((n) => n.live !== undefined);
    if (running.length === 0) return;
    if (running.length > 1 && this.rng.chance(0.1)) {
      // Correlated failure (a power cut): several or all nodes at once.
      const victims = this.rng.shuffle(running).slice(0, this.rng.range(2, running.length));
      this.#trace(() => `crash together ${victims.map((n) => n.id).join(",")}`);
      for (const victim of victims) this.#crashOne(victim);
      return;
    }
    const leader = this.cluster.leader();
    const victim = leader !== undefined && this.rng.chance(0.3) ? leader : this.rng.pick(running);
    if (this.rng.chance(0.4)) {
      this.#crashMidWrite(victim);
      return;
    }
    this.#trace(() => `crash ${victim.id}`);
    this.#crashOne(victim);
  }

  /**
   * Crashes `victim` while its next log append is in flight (other writes of
   * the same Ready, such as the hard state, may complete first): the window
   * where durability bugs live. Gives up waiting after a while.
   */
  #crashMidWrite(victim: SimNode): void {
    const incarnation = victim.live;
    let fired = false;
    const fire = () => {
      if (fired) return;
      fired = true;
      victim.disk.onNextAppend = undefined;
      if (victim.live !== incarnation || incarnation === undefined || !this.#running) return;
      this.#trace(() => `crash ${victim.id} mid-write`);
      this.#crashOne(victim);
    };
    victim.disk.onNextAppend = (latencyMs) => {
      this.cluster.queue.after(this.rng.float() * latencyMs, fire);
    };
    this.#later(1000, fire);
  }

  #crashOne(victim: SimNode): void {
    this.stats.crashes++;
    this.cluster.crash(victim.id);
    const downMs = this.rng.pick([50, 300, 1000, 3000]) * this.rng.floatRange(0.5, 1.5);
    this.#later(downMs, () => {
      if (victim.removed || victim.live !== undefined) return;
      this.#trace(() => `restart ${victim.id}`);
      this.cluster.start(victim.id);
    });
  }

  #partition(): void {
    const ids = this.cluster.activeNodes().map((n) => n.id);
    if (ids.length < 2) return;
    const net = this.cluster.network;
    const kind = this.rng.weighted<string>([["split", 3], ["isolateLeader", 2], ["oneWay", 1]]);
    this.stats.partitions++;
    if (kind === "isolateLeader") {
      const leader = this.cluster.leader()?.id ?? this.rng.pick(ids);
      const others = ids.filter((id) => id !== leader);
      net.split([leader], others);
      this.#trace(() => `partition isolate ${leader} | ${others.join(",")}`);
    } else if (kind === "split") {
      const shuffled = this.rng.shuffle(ids);
      const cut = this.rng.range(1, shuffled.length - 1);
      const a = shuffled.slice(0, cut);
      const b = shuffled.slice(cut);
      net.split(a, b);
      this.#trace(() => `partition ${a.join(",")} | ${b.join(",")}`);
    } else {
      const links = this.rng.range(1, ids.length);
      const blocked: string[] = [];
      for (let i = 0; i < links; i++) {
        const from = this.rng.pick(ids);
        const to = this.rng.pick(ids);
        if (from === to) continue;
        net.block(from, to);
        blocked.push(`${from}->${to}`);
      }
      this.#trace(() => `partition one-way ${blocked.join(" ")}`);
    }
    const healMs = this.rng.pick([100, 500, 1500, 4000]) * this.rng.floatRange(0.5, 1.5);
    this.#later(healMs, () => {
      this.#trace(() => `heal`);
      net.heal();
    });
  }

  #storm(): void {
    const net = this.cluster.network;
    const base = this.config.network;
    this.stats.storms++;
    const drop = this.rng.pick([0.2, 0.4, 0.7]);
    const dup = this.rng.pick([0, 0.1, 0.3]);
    net.options = { ...net.options, dropRate: drop, dupRate: dup, spikeRate: 0.05 };
    this.#trace(() => `storm drop=${drop} dup=${dup}`);
    this.#later(this.rng.pick([200, 1000, 2000]), () => {
      net.options = { ...net.options, dropRate: base.dropRate, dupRate: base.dupRate };
      net.options.spikeRate = base.spikeRate;
      this.#trace(() => `storm over`);
    });
  }

  #transfer(): void {
    const leader = this.cluster.leader();
    const live = leader?.live;
    if (leader === undefined || live === undefined) return;
    const voters = live.driver.status().conf.voters.filter((id) => id !== leader.id);
    if (voters.length === 0) return;
    const to = this.rng.pick(voters);
    this.stats.transfers++;
    this.#trace(() => `transfer leadership ${leader.id} -> ${to}`);
    try {
      live.driver.transferLeadership(to);
    } catch (err) {
      if (!(err instanceof NotLeaderError)) throw err;
    }
  }

  #membership(): void {
    if (this.#confBusy) return;
    const leader = this.cluster.leader();
    const live = leader?.live;
    if (leader === undefined || live === undefined) return;
    const conf = live.driver.status().conf;
    const members = conf.voters.length + conf.learners.length;
    let cc: ConfChange;
    const learner = conf.learners[0];
    if (learner !== undefined && this.rng.chance(0.7)) {
      cc = { kind: "addVoter", node: learner };
    } else if (members < this.#maxMembers && this.rng.chance(0.5)) {
      const id = this.cluster.join();
      cc = { kind: "addLearner", node: id, context: `addr-${id}` };
    } else if (conf.voters.length > 1) {
      const victim = this.rng.chance(0.3) ? leader.id : this.rng.pick(conf.voters);
      cc = { kind: "remove", node: victim };
    } else {
      return;
    }
    this.#propose(leader.id, cc);
  }

  #propose(via: NodeId, cc: ConfChange): void {
    const live = this.cluster.node(via).live;
    if (live === undefined) return;
    this.#confBusy = true;
    this.stats.confChanges++;
    this.#trace(() => `conf change ${cc.kind} ${cc.node} via ${via}`);
    let settled = false;
    const settle = () => {
      if (settled) return false;
      settled = true;
      this.#confBusy = false;
      return true;
    };
    // Give up waiting eventually: the outcome stays unknown (the leader may have crashed).
    this.cluster.queue.after(5000, () => {
      if (settle()) this.#trace(() => `conf change ${cc.kind} ${cc.node}: no answer`);
    });
    const onDone = (err: Error | undefined, index: number) => {
      if (!settle()) return;
      if (err !== undefined) {
        this.#trace(() => `conf change ${cc.kind} ${cc.node} failed: ${err.message}`);
        // A fresh node whose addition was refused would idle forever: retire it.
        if (cc.kind === "addLearner" && isDefiniteFailure(err)) this.cluster.remove(cc.node);
        return;
      }
      this.stats.confChangesOk++;
      this.#trace(() => `conf change ${cc.kind} ${cc.node} applied at ${index}`);
      if (cc.kind === "remove") {
        // The removal is committed: the node may go (after it had a chance to hear it).
        this.cluster.queue.after(this.rng.range(10, 500), () => this.cluster.remove(cc.node));
      }
    };
    try {
      live.driver.proposeConfChange(cc, onDone);
    } catch (err) {
      onDone(err instanceof Error ? err : new Error(String(err)), 0);
    }
  }

  /** Ends every fault: heals partitions, calms the network and disks, restarts crashed nodes. */
  stop(): void {
    this.#running = false;
    for (const cancel of this.#timers) cancel();
    this.#timers = [];
    const net = this.cluster.network;
    net.heal();
    net.options = {
      ...net.options,
      dropRate: 0,
      dupRate: 0,
      spikeRate: 0,
      snapshotDropRate: 0,
    };
    for (const node of this.cluster.nodes.values()) {
      node.disk.options = { ...node.disk.options, spikeRate: 0 };
      if (!node.removed && node.live === undefined) {
        this.#trace(() => `restart ${node.id} (faults over)`);
        this.cluster.start(node.id);
      }
    }
    this.#trace(() => `faults stopped`);
  }
}

function isDefiniteFailure(err: Error): boolean {
  return err instanceof NotLeaderError || err instanceof ConfChangeError ||
    err instanceof ProposalDroppedError;
}
