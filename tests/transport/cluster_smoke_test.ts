/**
 * Three RaftDrivers (in-memory stores, real clock) over TcpTransport on
 * 127.0.0.1: they elect a leader, replicate proposals, and a node that
 * starts late catches up through a snapshot streamed over TCP.
 */

import assert from "node:assert/strict";
import { RaftDriver } from "../../lib/node/driver.ts";
import {
  MemoryLogStore,
  MemorySnapshotStore,
  MemoryStableStore,
  SystemClock,
} from "../../lib/node/memory.ts";
import type { NodeId } from "../../lib/raft/types.ts";
import { Mux } from "../../lib/transport/mux.ts";
import { TcpTransport } from "../../lib/transport/raft_transport.ts";
import { KvMachine, setCmd, testRandom } from "../node/helpers.ts";
import { waitFor } from "./helpers.ts";

interface Node {
  readonly id: NodeId;
  readonly mux: Mux;
  readonly transport: TcpTransport;
  readonly sm: KvMachine;
  readonly driver: RaftDriver;
}

const IDS = ["n1", "n2", "n3"];

async function startNode(id: NodeId, book: Map<NodeId, string>, port: number): Promise<Node> {
  const mux = Mux.listen({ hostname: "127.0.0.1", port });
  book.set(id, mux.address);
  const transport = new TcpTransport({
    self: id,
    resolve: (peer) => book.get(peer),
    mux,
    backoff: { initialMs: 10, maxMs: 100 },
  });
  const sm = new KvMachine();
  const driver = new RaftDriver({
    id,
    clock: new SystemClock(),
    logStore: new MemoryLogStore(),
    stableStore: new MemoryStableStore(),
    snapshotStore: new MemorySnapshotStore(),
    stateMachine: sm,
    transport,
    random: testRandom(IDS.indexOf(id) + 17),
    tickMs: 20,
    raft: { electionTicks: 10, heartbeatTicks: 1 },
    bootstrap: IDS,
    snapshotThreshold: 20,
    trailingEntries: 0,
  });
  await new Promise<void>((resolve, reject) =>
    driver.start((err) => (err ? reject(err) : resolve()))
  );
  return { id, mux, transport, sm, driver };
}

async function stopNode(node: Node): Promise<void> {
  node.driver.stop(); // closes the transport
  await node.transport.shutdown();
  await node.mux.close();
}

function leaderOf(nodes: readonly Node[]): Node | undefined {
  const leaders = nodes.filter((n) => n.driver.status().role === "leader");
  return leaders.length === 1 ? leaders[0] : undefined;
}

function propose(node: Node, key: string, value: string): Promise<number> {
  return new Promise((resolve, reject) =>
    node.driver.propose(setCmd(key, value), (err, _result, index) => {
      if (err) reject(err);
      else resolve(index);
    })
  );
}

Deno.test("three drivers over TCP elect a leader, replicate, and catch up a late node by snapshot", async () => {
  // Reserve three ports; n3's stays unused until it starts.
  const ports = IDS.map(() => {
    const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = l.addr.port;
    l.close();
    return port;
  });
  const book = new Map<NodeId, string>(IDS.map((id, i) => [id, `127.0.0.1:${ports[i]}`]));
  const nodes: Node[] = [];
  try {
    nodes.push(await startNode("n1", book, ports[0]!), await startNode("n2", book, ports[1]!));
    await waitFor(() => leaderOf(nodes) !== undefined, 8000, "a leader among n1, n2");
    const leader = leaderOf(nodes)!;
    for (let i = 0; i < 60; i++) await propose(leader, `k${i % 25}`, `v${i}`);
    const idx = await propose(leader, "last", "yes");
    await waitFor(
      () => nodes.every((n) => n.driver.status().appliedIndex >= idx),
      5000,
      "n1 and n2 applied everything",
    );
    assert.ok(leader.driver.status().snapshotIndex >= 40, "leader compacted its log");
    assert.ok(leader.driver.status().firstIndex > 4, "log prefix dropped");

    // n3 starts with an empty log behind the leader's compaction point.
    const n3 = await startNode("n3", book, ports[2]!);
    nodes.push(n3);
    await waitFor(() => n3.driver.status().appliedIndex >= idx, 8000, "n3 caught up");
    assert.ok(n3.sm.restores >= 1, "n3 was restored from a snapshot");
    assert.ok(leader.transport.stats().snapshotsSent >= 1);
    assert.equal(n3.sm.dump(), leader.sm.dump());

    // Proposals keep replicating to all three.
    const idx2 = await propose(leader, "after", "snapshot");
    await waitFor(
      () => nodes.every((n) => n.driver.status().appliedIndex >= idx2),
      5000,
      "all applied",
    );
    for (const n of nodes) assert.equal(n.sm.dump(), leader.sm.dump());
    assert.equal(leaderOf(nodes), leader);
    const stats = leader.transport.stats();
    assert.ok(stats.sent > 0 && stats.framesSent <= stats.sent + stats.snapshotsSent * 10);
  } finally {
    for (const n of nodes) await stopNode(n);
  }
});
