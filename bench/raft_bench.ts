/**
 * Raft core throughput: a 3-node cluster of pure cores in one process, with
 * no I/O at all. Persisting is an array push and messages are delivered
 * synchronously, so the figure is the core's own cost per entry: the
 * ceiling above which the core is never the bottleneck (target >= 200,000
 * entries/s of 100 bytes). Also reports idle ticks/s (heartbeat traffic
 * included).
 *
 * Run: `deno task bench` (all benches) or `deno run -A bench/raft_bench.ts`.
 */

import {
  bootstrapEntries,
  EMPTY_CONF,
  type Entry,
  type HardState,
  type LogReader,
  type Message,
  Raft,
  type SnapshotMeta,
} from "../lib/raft/mod.ts";

class BenchStorage implements LogReader {
  log: Entry[] = [];
  hardState: HardState = { term: 0, vote: "", commit: 0 };
  firstIndex(): number {
    return 1;
  }
  lastIndex(): number {
    return this.log.length;
  }
  term(index: number): number {
    return index === 0 ? 0 : (this.log[index - 1]?.term ?? 0);
  }
  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    const out: Entry[] = [];
    let bytes = 0;
    for (let i = lo; i < hi; i++) {
      const e = this.log[i - 1];
      if (e === undefined) break;
      bytes += e.data.byteLength;
      if (out.length > 0 && bytes > maxBytes) break;
      out.push(e);
    }
    return out;
  }
  snapshotMeta(): SnapshotMeta {
    return { index: 0, term: 0, conf: EMPTY_CONF };
  }
  append(entries: readonly Entry[]): void {
    const first = entries[0];
    if (first === undefined) return;
    this.log.length = first.index - 1;
    for (const e of entries) this.log.push(e);
  }
}

interface BenchNode {
  raft: Raft;
  storage: BenchStorage;
  applied: number;
}

function makeCluster(ids: string[]): Map<string, BenchNode> {
  const nodes = new Map<string, BenchNode>();
  let seed = 7;
  for (const id of ids) {
    const storage = new BenchStorage();
    storage.append(bootstrapEntries(ids));
    storage.hardState = { term: 1, vote: "", commit: ids.length };
    let x = seed++;
    const raft = new Raft({
      id,
      storage,
      hardState: storage.hardState,
      random: { nextInt: (n) => (x = (x * 1103515245 + 12345) >>> 0) % n },
      maxEntriesPerMsg: 512,
    });
    nodes.set(id, { raft, storage, applied: 0 });
  }
  return nodes;
}

/** Drives every Ready and delivers messages until the cluster is quiet. */
function pump(nodes: Map<string, BenchNode>): number {
  const queue: Message[] = [];
  let delivered = 0;
  for (let rounds = 0; rounds < 1_000_000; rounds++) {
    for (const node of nodes.values()) {
      while (node.raft.hasReady()) {
        const rd = node.raft.ready();
        if (rd.hardState) node.storage.hardState = rd.hardState;
        node.storage.append(rd.entries);
        for (const m of rd.messages) queue.push(m);
        node.applied += rd.committedEntries.length;
        node.raft.advance(rd);
      }
    }
    if (queue.length === 0) return delivered;
    for (const m of queue.splice(0)) {
      nodes.get(m.to)?.raft.step(m);
      delivered++;
    }
  }
  throw new Error("cluster did not quiesce");
}

/** Commits `total` entries of `sizeBytes` proposed in batches of `batch`. */
function commitThroughput(total: number, batch: number, sizeBytes: number) {
  const ids = ["n1", "n2", "n3"];
  const nodes = makeCluster(ids);
  const leader = nodes.get("n1");
  if (leader === undefined) throw new Error("no n1");
  leader.raft.campaign();
  pump(nodes);
  if (leader.raft.role !== "leader") throw new Error("n1 did not become leader");
  const payload = new Uint8Array(sizeBytes).fill(120);
  const batchData = new Array<Uint8Array>(batch).fill(payload);
  const startApplied = Math.min(...[...nodes.values()].map((n) => n.applied));
  let messages = 0;
  const t0 = performance.now();
  for (let sent = 0; sent < total; sent += batch) {
    leader.raft.propose(batchData);
    messages += pump(nodes);
  }
  // Followers learn the final commit index with the next heartbeat.
  leader.raft.tick();
  messages += pump(nodes);
  const seconds = (performance.now() - t0) / 1000;
  const applied = Math.min(...[...nodes.values()].map((n) => n.applied)) - startApplied;
  if (applied < total) throw new Error(`only ${applied} of ${total} applied on every node`);
  return { entriesPerSec: total / seconds, messages, seconds };
}

/** Idle cluster: ticks/s including heartbeats and their responses. */
function tickThroughput(ticks: number) {
  const nodes = makeCluster(["n1", "n2", "n3"]);
  nodes.get("n1")?.raft.campaign();
  pump(nodes);
  const t0 = performance.now();
  for (let i = 0; i < ticks; i++) {
    for (const node of nodes.values()) node.raft.tick();
    pump(nodes);
  }
  const seconds = (performance.now() - t0) / 1000;
  return { ticksPerSec: (ticks * nodes.size) / seconds };
}

const TARGET_ENTRIES_PER_SEC = 200_000;

/** Runs the benchmark and prints its figures. */
export function run(): void {
  commitThroughput(20_000, 64, 100); // warm up the JIT
  console.log("raft core, 3 nodes in one process, no I/O, 100-byte entries");
  for (const batch of [1, 16, 64, 256]) {
    const total = batch === 1 ? 50_000 : 300_000;
    const r = commitThroughput(total, batch, 100);
    console.log(
      `  proposals of ${String(batch).padStart(3)}: ${
        Math.round(r.entriesPerSec).toLocaleString("en-US").padStart(10)
      } entries/s committed+applied on all 3  (${
        (r.entriesPerSec / TARGET_ENTRIES_PER_SEC).toFixed(2)
      }x target ${TARGET_ENTRIES_PER_SEC.toLocaleString("en-US")}), ${r.messages} messages`,
    );
  }
  const t = tickThroughput(20_000);
  console.log(
    `  idle ticks: ${
      Math.round(t.ticksPerSec).toLocaleString("en-US")
    } node-ticks/s (with heartbeats)`,
  );
}

if (import.meta.main) run();
