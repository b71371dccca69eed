/**
 * # lib/sim — the deterministic simulator (TigerBeetle VOPR style)
 *
 * Owns: running the production {@link RaftDriver} and Raft core against a
 * simulated world (clock, network, disk, clients, faults) and checking every
 * step. Never imported by production code.
 *
 * Shape of a run ({@link runSeed}): one seed derives the world's
 * configuration by swarm testing (`config.ts`: cluster size 1/3/5, network
 * loss/duplication/latency, disk latency and torn writes, crash, partition,
 * storm, membership and transfer frequencies, Raft tuning, a small snapshot
 * threshold) and independent random streams for every consumer (`prng.ts`).
 * One {@link EventQueue} (`events.ts`) orders everything: driver timers
 * ({@link SimClock}), message deliveries ({@link SimNetwork}), disk
 * completions ({@link SimDisk}), state machine work ({@link KvStateMachine}),
 * client requests ({@link Workload}) and faults ({@link Nemesis}). After the
 * fault phase the nemesis heals everything and the run requires liveness (a
 * write commits within a bound), final linearizable reads, convergence (all
 * members at the leader's commit index with equal state hashes), that every
 * acknowledged write is in every member's log, and a linearizable history
 * ({@link Checker}, `linearizability.ts`).
 *
 * Invariants, and why:
 * - Determinism: no real timers, no `Date`, no `Math.random`, no promises on
 *   the simulation path (the driver interfaces are callback-based for this),
 *   and ties in time break by scheduling order. So a failing seed replays
 *   exactly: `deno task sim --seed S --trace` prints every state change.
 * - A crash is abrupt: the node's {@link Scope} dies (none of its pending
 *   events ever run), its endpoint closes and its disk keeps only completed
 *   writes (plus possibly a torn prefix of the oldest in-flight append, or a
 *   half-done reset). A restart builds a new driver and a fresh state machine
 *   over that disk. The nemesis aims many crashes at the middle of a log
 *   append, where durability ordering bugs live, and sometimes crashes
 *   several nodes at once.
 * - Outcomes are classified strictly (`workload.ts`): an operation reported
 *   failed must not have happened, so a driver that misreports is caught.
 * - The world can be broken on purpose (`brokenDisk`) to prove the checker
 *   fails when durability is violated (tests/sim/sim_test.ts).
 * - Bounds: an event budget per seed (a livelock fails the seed), bounded
 *   link queues, a trace line cap.
 *
 * @module
 */

export { Checker, type HistoryOperation, SafetyViolation, type Violation } from "./checker.ts";
export { Cluster, dataDigest, entryDigest, type SimNode } from "./cluster.ts";
export { describeConfig, type SimConfig, type SimOverrides, swarmConfig } from "./config.ts";
export { type DiskOptions, SimDisk } from "./disk.ts";
export { EventQueue, Scope, SimClock } from "./events.ts";
export {
  decodeCommand,
  encodeCommand,
  type KvCommand,
  type KvResult,
  KvStateMachine,
} from "./kv.ts";
export { checkLinearizable, type Operation } from "./linearizability.ts";
export { Nemesis } from "./nemesis.ts";
export { type NetworkOptions, RELIABLE_NETWORK, SimNetwork, SimTransport } from "./network.ts";
export { Prng } from "./prng.ts";
export { type RunOptions, runSeed, type SeedResult, SimFailure } from "./run.ts";
export { Tracer } from "./trace.ts";
export { Workload } from "./workload.ts";
