/**
 * Seeded randomized runs of five drivers: isolations, heals, restarts,
 * bursts of proposals and reads, small snapshot thresholds, synchronous or
 * deferred stores and state machines. After the faults stop the cluster must
 * converge, every node must apply the same entry at each index, and every
 * proposal outcome must be true: success means our command is at our index,
 * a definite failure means it was applied nowhere. (lib/sim does this at
 * scale with crashes, torn writes and a lossy network.)
 */

import assert from "node:assert/strict";
import { NotLeaderError, ProposalDroppedError } from "../../lib/raft/errors.ts";
import { Cluster, type ProposalHandle, testRandom } from "./helpers.ts";

const SEEDS = 20;
const STEPS = 300;
const IDS = ["a", "b", "c", "d", "e"];
const decoder = new TextDecoder();

function runSeed(seed: number): void {
  const rnd = testRandom(seed * 31 + 7);
  const appliedAt = new Map<number, string>();
  const c = new Cluster(rnd.nextInt(4), {
    bootstrap: IDS,
    snapshotThreshold: 5 + rnd.nextInt(20),
    trailingEntries: rnd.nextInt(5),
    observer: {
      onApplied: (id, entries) => {
        for (const e of entries) {
          const v = `${e.kind}:${decoder.decode(e.data)}`;
          const old = appliedAt.get(e.index);
          assert.ok(old === undefined || old === v, `${id} applied ${v} at ${e.index}, not ${old}`);
          appliedAt.set(e.index, v);
        }
      },
    },
  });
  if (seed % 3 === 0) c.smDefer = (fn) => void c.clock.after(rnd.nextInt(4), fn);
  for (const id of IDS) c.add(id, {}, seed % 2 === 0 ? (fn) => fn() : c.storeDefer);
  const proposals: { h: ProposalHandle; cmd: string }[] = [];
  let readsServed = 0;
  try {
    for (let step = 0; step < STEPS; step++) {
      const r = rnd.nextInt(100);
      if (r < 5) {
        c.heal();
        c.isolate(IDS[rnd.nextInt(IDS.length)]!);
      } else if (r < 10) {
        c.heal();
      } else if (r < 13) {
        c.restart(IDS[rnd.nextInt(IDS.length)]!);
      } else if (r < 60) {
        const node = c.leaders()[0] ?? c.node(IDS[rnd.nextInt(IDS.length)]!);
        for (let i = 0, n = 1 + rnd.nextInt(5); i < n; i++) {
          const key = `k${rnd.nextInt(10)}`;
          const value = `${seed}-${step}-${i}`;
          proposals.push({
            h: c.propose(node, key, value),
            cmd: `normal:${JSON.stringify({ key, value })}`,
          });
        }
      } else if (r < 70) {
        const node = c.leaders()[0];
        node?.driver.readIndex((err, index) => {
          if (err) return;
          readsServed++;
          assert.ok(node.driver.status().appliedIndex >= index, "read served before its index");
        });
      }
      c.run(rnd.nextInt(60));
    }
    c.heal();
    const leader = c.waitLeader(undefined, 20_000);
    c.put(leader, "final", "x");
    c.runUntil(
      () => [...c.nodes.values()].every((n) => n.sm.map.get("final") === "x"),
      20_000,
      "convergence",
    );
    assert.equal(new Set([...c.nodes.values()].map((n) => n.sm.dump())).size, 1, "diverged");
    const everApplied = new Set(appliedAt.values());
    let acked = 0;
    for (const { h, cmd } of proposals) {
      assert.ok(h.done, `proposal ${cmd} still open after convergence`);
      if (h.err === undefined) {
        acked++;
        assert.equal(appliedAt.get(h.index), cmd, `acknowledged ${cmd} not at ${h.index}`);
      } else if (h.err instanceof ProposalDroppedError || h.err instanceof NotLeaderError) {
        assert.ok(!everApplied.has(cmd), `${cmd} failed with ${h.err.name} but was applied`);
      }
    }
    assert.ok(acked > proposals.length / 2, `only ${acked} of ${proposals.length} acknowledged`);
    assert.ok(readsServed > 0, "no read served");
  } finally {
    c.stopAll();
  }
}

for (let seed = 1; seed <= SEEDS; seed++) {
  Deno.test(`randomized drivers: seed ${seed}`, () => runSeed(seed));
}
