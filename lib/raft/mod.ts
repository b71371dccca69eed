/**
 * # lib/raft — the pure Raft core
 *
 * A step-function implementation of Raft modelled on etcd-io/raft. It owns
 * the protocol: elections (pre-vote, check-quorum), log replication with
 * batching, pipelining and per-follower flow control, the commit rule,
 * snapshots, single-server membership changes, leadership transfer and
 * ReadIndex. It owns no I/O: time arrives as {@link Raft.tick}, randomness
 * from an injected {@link RandomSource}, and all work leaves as a
 * {@link Ready} that the driver (lib/node) persists, sends and applies before
 * calling {@link Raft.advance}.
 *
 * Invariants: the folder imports nothing outside itself, reads no clock,
 * draws no ambient randomness, uses no timers, promises or runtime APIs
 * (tests/raft/purity_test.ts enforces it), and throws {@link AssertionError} at once when an invariant
 * breaks. Why: a pure core can be run millions of times by the simulator and
 * every failure replays exactly from its seed.
 *
 * @module
 */

export * from "./types.ts";
export * from "./errors.ts";
export * from "./raft.ts";
export * from "./confchange.ts";
