/**
 * # lib/node — the driver and its world
 *
 * What it owns: {@link RaftDriver}, which runs the pure core (lib/raft)
 * against the world — ticks it from a {@link Clock}, persists each Ready to a
 * {@link LogStore} / {@link StableStore} / {@link SnapshotStore}, sends its
 * messages over a {@link Transport}, applies committed entries to a
 * {@link StateMachine}, and completes client proposals and linearizable reads.
 * It also owns the interfaces of that world (`interfaces.ts`) and in-memory
 * implementations of all of them (`memory.ts`) for tests and the simulator.
 *
 * Invariants:
 * - One Ready in flight; messages leave only after the state they acknowledge
 *   (vote, entries, snapshot) is durable; committed entries are applied
 *   exactly once, in log order, one state machine operation at a time.
 * - A proposal's callback reports success only if the entry applied at its
 *   index carries the term it was proposed in; a definite failure only when
 *   it provably can never commit; otherwise "outcome unknown".
 * - Everything is bounded: pending proposals, pending reads, per-link queues
 *   of the in-memory network.
 * - No promises cross the interfaces; all I/O completes through callbacks, so
 *   the simulator's single event queue decides every ordering.
 *
 * Why: the same driver code runs in production (real disks, TCP) and in the
 * deterministic simulator, so what the simulator proves about ordering and
 * durability holds for the shipped binary.
 *
 * @module
 */

export * from "./interfaces.ts";
export * from "./driver.ts";
export * from "./memory.ts";
