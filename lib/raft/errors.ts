/**
 * Typed errors of the Raft core.
 *
 * Expected conditions (not the leader, proposal dropped, a membership change
 * already in flight) are typed errors callers handle. A broken internal
 * invariant is an {@link AssertionError}: it is thrown at once, carries the
 * values involved, and is never caught to continue.
 *
 * @module
 */

import type { NodeId } from "./types.ts";

/** The operation needs the leader; `leader` is the known leader or "". */
export class NotLeaderError extends Error {
  override readonly name = "NotLeaderError";
  constructor(readonly leader: NodeId) {
    super(leader === "" ? "not leader, leader unknown" : `not leader, leader is ${leader}`);
  }
}

/** The proposal was not accepted (leadership transfer in progress, too much uncommitted). */
export class ProposalDroppedError extends Error {
  override readonly name = "ProposalDroppedError";
  constructor(reason: string) {
    super(`proposal dropped: ${reason}`);
  }
}

/** A membership change was refused; the reason says what to wait for. */
export class ConfChangeError extends Error {
  override readonly name = "ConfChangeError";
  constructor(reason: string) {
    super(`membership change refused: ${reason}`);
  }
}

/** A broken invariant: a bug. Never caught to continue. */
export class AssertionError extends Error {
  override readonly name = "AssertionError";
}

/**
 * Throws {@link AssertionError} when `condition` is false. `detail` is only
 * built on failure, so callers may format values freely.
 */
export function assert(condition: boolean, detail: () => string): asserts condition {
  if (!condition) throw new AssertionError(`raft invariant broken: ${detail()}`);
}

/** A message that breaks the protocol's shape (not merely stale): dropped by the driver, counted. */
export class InvalidMessageError extends Error {
  override readonly name = "InvalidMessageError";
  constructor(reason: string) {
    super(`invalid raft message: ${reason}`);
  }
}
