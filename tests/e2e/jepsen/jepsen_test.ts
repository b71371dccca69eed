/**
 * Jepsen-style register tests (ARCHITECTURE §9; issue [3/8]):
 *
 * - a 3-node cluster under kills, pauses and partitions for ~25 s (skipped, with a
 *   SKIP line, until clustering exists);
 * - a single node under SIGKILL + restart: must be linearizable too;
 * - the checker integration: a real recorded history passes, and the same
 *   history with one injected stale read (or a phantom value) is caught.
 *
 * The seed comes from JEPSEN_SEED or the clock and is printed, so a failure
 * can be replayed as closely as real processes allow:
 * `deno task jepsen --seed <seed> --duration 25s`.
 */

import assert from "node:assert/strict";
import { checkLinearizable, type Operation } from "../../../lib/sim/linearizability.ts";
import { skipUnlessClustering } from "../cluster/available.ts";
import { runJepsen } from "./run.ts";

const ignoreCluster = skipUnlessClustering("Jepsen cluster test (tests/e2e/jepsen/jepsen_test.ts)");

function seed(): number {
  const env = Deno.env.get("JEPSEN_SEED");
  return env !== undefined ? Number(env) : Date.now() % 1_000_000_000;
}

function assertLinearizable(summary: string, ok: boolean | "unknown"): void {
  console.log(summary);
  assert.equal(ok, true, summary);
}

Deno.test({
  name: "jepsen: 3 nodes, 5 clients, kills, pauses and partitions for 25 s: linearizable",
  ignore: ignoreCluster,
  fn: async () => {
    const report = await runJepsen({
      seed: seed(),
      durationMs: 25_000,
      nodes: 3,
      clients: 5,
      keys: 3,
      faults: ["kill", "partition", "pause"],
      calmMs: [1_000, 2_500],
      faultMs: [1_000, 3_500],
      historyFile: await Deno.makeTempFile({ prefix: "raftlite-jepsen-", suffix: ".json" }),
    });
    assert.ok(report.nemesis.length >= 4, `the nemesis acted: ${report.nemesis.join("; ")}`);
    assert.ok(report.counts.write.ok > 20, report.summary);
    assert.ok(report.counts.read.ok > 20, report.summary);
    assert.ok(report.counts.cas.ok > 0, report.summary);
    assertLinearizable(report.summary, report.result.ok);
  },
});

Deno.test("jepsen: one node, 5 clients, SIGKILL + restart for 8 s: linearizable", async () => {
  const report = await runJepsen({
    seed: seed(),
    durationMs: 8_000,
    nodes: 1,
    clients: 5,
    keys: 3,
    faults: ["kill"],
    calmMs: [1_000, 2_000],
    faultMs: [300, 800],
  });
  assert.ok(report.nemesis.some((l) => l.includes("SIGKILL")), report.nemesis.join("; "));
  assert.ok(report.counts.write.ok > 20 && report.counts.read.ok > 20, report.summary);
  assertLinearizable(report.summary, report.result.ok);
});

Deno.test("jepsen: the checker catches a stale read or a phantom value injected into a real history", async () => {
  const report = await runJepsen({
    seed: 1,
    durationMs: 3_000,
    nodes: 1,
    clients: 4,
    keys: 2,
    faults: [],
    log: () => {},
  });
  const ops = report.history;
  assertLinearizable(report.summary, report.result.ok);

  // Stale read: a write w0 that returned before an acknowledged write w1 of the same key was
  // called; a read starting after w1 returned that sees w0's value cannot be linearized.
  const acked = ops.filter((o) => o.kind === "write" && o.returnMs !== Infinity);
  let pair: [Operation, Operation] | undefined;
  for (const w1 of acked) {
    const w0 = acked.find((w) => w.key === w1.key && w.returnMs < w1.callMs);
    if (w0 !== undefined) {
      pair = [w0, w1];
      break;
    }
  }
  assert.ok(
    pair !== undefined,
    `the history has two sequential writes of one key: ${report.summary}`,
  );
  const [w0, w1] = pair;
  const maxId = Math.max(...ops.map((o) => o.id));
  const stale: Operation = {
    id: maxId + 1,
    client: 99,
    key: w1.key,
    kind: "read",
    output: w0.value,
    callMs: w1.returnMs + 0.5,
    returnMs: w1.returnMs + 1,
  };
  const withStale = checkLinearizable([...ops, stale]);
  assert.equal(withStale.ok, false, "a stale read is a violation");
  if (withStale.ok === false) {
    assert.equal(withStale.key, w1.key);
    assert.ok(withStale.ops.some((o) => o.id === stale.id), withStale.reason);
  }

  // Phantom: a read of a value nobody wrote.
  const phantom: Operation = { ...stale, id: maxId + 2, output: "never-written" };
  assert.equal(checkLinearizable([...ops, phantom]).ok, false, "a phantom read is a violation");

  // A lost acknowledged write: a final read (after everything) claims the key is absent.
  const final = ops.find((o) =>
    o.client === 4 && o.kind === "read" && o.key === w1.key && o.output !== null
  );
  assert.ok(final !== undefined, "the final reads were recorded");
  const lost = ops.map((o) => (o === final ? { ...o, output: null } : o));
  assert.equal(checkLinearizable(lost).ok, false, "a lost acknowledged write is a violation");
});
