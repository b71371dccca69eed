/**
 * Membership: codec of {@link ConfChange} entries and the rules of single-server
 * changes (thesis §4.1).
 *
 * A configuration takes effect on each server as soon as its entry is in that
 * server's log, committed or not; truncating the entry reverts it. Only one
 * change may be uncommitted at a time, which keeps every pair of majorities of
 * consecutive configurations overlapping.
 *
 * @module
 */

import { assert } from "./errors.ts";
import type { ConfChange, ConfState, Entry, NodeId } from "./types.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Encodes a membership change as entry data. */
export function encodeConfChange(cc: ConfChange): Uint8Array {
  return encoder.encode(JSON.stringify([cc.kind, cc.node, cc.context ?? ""]));
}

/** Decodes entry data written by {@link encodeConfChange}; throws on anything else. */
export function decodeConfChange(data: Uint8Array): ConfChange {
  const value: unknown = JSON.parse(decoder.decode(data));
  assert(
    Array.isArray(value) && value.length === 3 && typeof value[1] === "string" &&
      typeof value[2] === "string" &&
      (value[0] === "addVoter" || value[0] === "addLearner" || value[0] === "remove"),
    () => `malformed membership entry: ${decoder.decode(data).slice(0, 200)}`,
  );
  const [kind, node, context] = value as [ConfChange["kind"], string, string];
  return context === "" ? { kind, node } : { kind, node, context };
}

/** The configuration after applying `cc` to `conf`. Pure; `conf` is not changed. */
export function applyConfChange(conf: ConfState, cc: ConfChange): ConfState {
  const voters = conf.voters.filter((id) => id !== cc.node);
  const learners = conf.learners.filter((id) => id !== cc.node);
  if (cc.kind === "addVoter") voters.push(cc.node);
  if (cc.kind === "addLearner") {
    // A voter cannot be demoted in one step by this API; keep it a voter.
    if (conf.voters.includes(cc.node)) voters.push(cc.node);
    else learners.push(cc.node);
  }
  const next: ConfState = { voters: voters.sort(), learners: learners.sort() };
  const context = { ...conf.context };
  if (cc.kind === "remove") delete context[cc.node];
  else if (cc.context !== undefined) context[cc.node] = cc.context;
  return Object.keys(context).length === 0 ? next : { ...next, context };
}

/** An empty configuration. */
export const EMPTY_CONF: ConfState = { voters: [], learners: [] };

/**
 * Entries that bootstrap a new cluster whose initial voters are `voters`
 * (with each one's `context`, e.g. its address):
 * one `addVoter` entry per node at term 1, indexes 1..n. Every founding node
 * writes the same entries and a hard state with term 1 and commit n, so they
 * agree on the first configuration without an election.
 */
export function bootstrapEntries(
  voters: readonly NodeId[],
  context: Readonly<Record<NodeId, string>> = {},
): Entry[] {
  assert(voters.length > 0, () => "bootstrap needs at least one voter");
  assert(new Set(voters).size === voters.length, () => `duplicate voters: ${voters.join(",")}`);
  return [...voters].sort().map((node, i) => ({
    term: 1,
    index: i + 1,
    kind: "config" as const,
    data: encodeConfChange(
      context[node] === undefined
        ? { kind: "addVoter", node }
        : { kind: "addVoter", node, context: context[node] },
    ),
  }));
}

/** True when `id` is in the configuration as voter or learner. */
export function isMember(conf: ConfState, id: NodeId): boolean {
  return conf.voters.includes(id) || conf.learners.includes(id);
}
