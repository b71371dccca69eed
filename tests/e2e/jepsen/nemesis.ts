/**
 * The nemesis of the Jepsen-style test: one fault at a time against a
 * {@link Cluster}, chosen by a seeded generator, each undone before the
 * next (so a majority is always only one fault away from healthy):
 *
 * - kill: SIGKILL a node (half the time the current leader), wait, restart
 *   it on the same data directory;
 * - pause: SIGSTOP a node (half the time the leader), then SIGCONT it: a
 *   leader frozen like in a long GC pause wakes up still believing it leads;
 * - partition (needs the fault proxies and 3+ nodes): isolate a node (half
 *   the time the leader), or cut a single link (a partial partition: the
 *   third node still hears both), in "stall" or "reset" mode; then heal.
 *
 * Every step is logged with its time so a failing history can be read
 * against the faults.
 *
 * @module
 */

import type { Prng } from "../../../lib/sim/prng.ts";
import type { Cluster, ClusterNode } from "../cluster/harness.ts";
import type { CutMode } from "../cluster/proxy.ts";

/** Faults the nemesis may use. */
export type Fault = "kill" | "partition" | "pause";

/** Every fault, in the order the CLI lists them. */
export const FAULTS: readonly Fault[] = ["kill", "partition", "pause"];

/** Options of {@link runNemesis}. */
export interface NemesisOptions {
  cluster: Cluster;
  rng: Prng;
  faults: readonly Fault[];
  /** Calm between faults, uniform in [min, max] ms. */
  calmMs: readonly [number, number];
  /** How long a fault lasts, uniform in [min, max] ms. */
  faultMs: readonly [number, number];
  stop: () => boolean;
  /** Milliseconds on the history's clock. */
  now: () => number;
  log: (line: string) => void;
}

/** Runs faults until `stop()`; returns with everything healed and every node running. */
export async function runNemesis(o: NemesisOptions): Promise<void> {
  const c = o.cluster;
  const faults = o.faults.filter((f) => f !== "partition" || (c.net && c.nodes.length >= 3));
  try {
    while (!o.stop()) {
      await interruptibleSleep(o.rng.range(o.calmMs[0], o.calmMs[1]), o.stop);
      if (o.stop() || faults.length === 0) break;
      const fault = o.rng.pick(faults);
      const holdMs = o.rng.range(o.faultMs[0], o.faultMs[1]);
      if (fault === "kill") await killOne(o, holdMs);
      else if (fault === "pause") await pauseOne(o, holdMs);
      else await partitionOnce(o, holdMs);
    }
  } finally {
    await recover(o);
  }
}

async function pickTarget(o: NemesisOptions): Promise<ClusterNode> {
  const c = o.cluster;
  const live = c.live();
  if (o.rng.chance(0.5)) {
    // The leader as the first running node sees it (quick; no waiting for agreement).
    for (const n of live) {
      try {
        const view = await c.leaderSeenBy(n, 1_000);
        const leader = c.nodes.find((x) => x.name === view.nodeId);
        if (leader !== undefined && leader.alive) return leader;
      } catch {
        // try the next one
      }
    }
  }
  return o.rng.pick(live.length > 0 ? live : c.nodes);
}

async function killOne(o: NemesisOptions, holdMs: number): Promise<void> {
  const c = o.cluster;
  const target = await pickTarget(o);
  if (!target.alive) return;
  o.log(`${o.now().toFixed(0)} nemesis: SIGKILL ${target.name} (pid ${target.proc?.pid})`);
  await c.kill(target, "SIGKILL");
  await interruptibleSleep(holdMs, o.stop);
  await restart(o, target);
}

async function pauseOne(o: NemesisOptions, holdMs: number): Promise<void> {
  const target = await pickTarget(o);
  if (!target.alive) return;
  o.log(`${o.now().toFixed(0)} nemesis: SIGSTOP ${target.name}`);
  o.cluster.pause(target);
  await interruptibleSleep(holdMs, o.stop);
  o.log(`${o.now().toFixed(0)} nemesis: SIGCONT ${target.name}`);
  o.cluster.resume(target);
}

async function restart(o: NemesisOptions, n: ClusterNode): Promise<void> {
  o.log(`${o.now().toFixed(0)} nemesis: restart ${n.name}`);
  await o.cluster.spawn(n);
  try {
    await o.cluster.waitReady(n, 30_000);
    o.log(`${o.now().toFixed(0)} nemesis: ${n.name} ready`);
  } catch (err) {
    // Not fatal for the run (it may need the others); the final recovery waits again.
    o.log(
      `${o.now().toFixed(0)} nemesis: ${n.name} not ready: ${
        (err as Error).message.split("\n")[0]
      }`,
    );
  }
}

async function partitionOnce(o: NemesisOptions, holdMs: number): Promise<void> {
  const c = o.cluster;
  const net = c.net!;
  const mode: CutMode = o.rng.chance(0.5) ? "stall" : "reset";
  if (o.rng.chance(0.7)) {
    const target = await pickTarget(o);
    o.log(`${o.now().toFixed(0)} nemesis: isolate ${target.name} (${mode})`);
    net.isolate(target.name, mode);
  } else {
    const [a, b] = o.rng.shuffle(c.nodes.map((n) => n.name));
    o.log(`${o.now().toFixed(0)} nemesis: cut link ${a}-${b} (${mode})`);
    net.cut(a!, b!, mode);
  }
  await interruptibleSleep(holdMs, o.stop);
  o.log(`${o.now().toFixed(0)} nemesis: heal`);
  net.heal();
}

/** Heals the network and restarts any node that is down. */
async function recover(o: NemesisOptions): Promise<void> {
  const c = o.cluster;
  for (const n of c.nodes) {
    if (n.paused) {
      o.log(`${o.now().toFixed(0)} nemesis: SIGCONT ${n.name}`);
      c.resume(n);
    }
  }
  if (c.net && c.net.describe() !== "") {
    o.log(`${o.now().toFixed(0)} nemesis: heal`);
    c.net.heal();
  }
  for (const n of c.nodes) {
    if (!n.alive) await restart(o, n);
  }
}

async function interruptibleSleep(ms: number, stop: () => boolean): Promise<void> {
  const end = performance.now() + ms;
  while (!stop() && performance.now() < end) {
    await new Promise((r) => setTimeout(r, Math.min(100, end - performance.now())));
  }
}
