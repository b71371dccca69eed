/**
 * Membership operations on the leader (rqlite-api.md §9 join/remove/stepdown):
 * joins that are idempotent for the same id and address, replace a member
 * whose id or address changed, and retry while another change is in
 * flight; removals; leadership hand-off.
 *
 * Every change is one single-server Raft configuration change and is
 * answered only once applied on this node.
 *
 * @module
 */

import type { RaftDriver } from "../node/driver.ts";
import { ConfChangeError, NotLeaderError } from "../raft/errors.ts";
import type { ConfChange, ConfState } from "../raft/types.ts";
import { NotLeaderStoreError, StoreTimeoutError } from "./store.ts";

/** A request to join the cluster. */
export interface JoinRequest {
  readonly id: string;
  readonly raftAddr: string;
  readonly voter: boolean;
  /** The joiner has no state (new or wiped): an entry with its id is replaced, never kept. */
  readonly fresh?: boolean;
}

/** What a join did. */
export type JoinOutcome = "added" | "ignored" | "replaced";

/** Counters for /debug/vars (`store.num_ignored_joins`, `store.num_removed_before_joins`). */
export interface MembershipStats {
  ignoredJoins: number;
  removedBeforeJoins: number;
}

/** The member's address as carried in the configuration. */
export function addressOf(conf: ConfState, id: string): string | undefined {
  return conf.context?.[id];
}

/** Every member with its address and suffrage. */
export function members(conf: ConfState): { id: string; addr: string; voter: boolean }[] {
  return [
    ...conf.voters.map((id) => ({ id, addr: addressOf(conf, id) ?? "", voter: true })),
    ...conf.learners.map((id) => ({ id, addr: addressOf(conf, id) ?? "", voter: false })),
  ];
}

/** The cluster's membership operations, run on the leader. */
export class Membership {
  readonly stats: MembershipStats = { ignoredJoins: 0, removedBeforeJoins: 0 };

  constructor(private readonly driver: RaftDriver, private readonly timeoutMs: number) {}

  /** Adds (or re-adds) a node; same id and address again is a no-op. */
  async join(req: JoinRequest): Promise<JoinOutcome> {
    this.#requireLeader();
    const conf = this.driver.status().conf;
    const existing = members(conf);
    const same = existing.find((m) => m.id === req.id);
    if (
      same !== undefined && same.addr === req.raftAddr && (same.voter || !req.voter) &&
      !req.fresh
    ) {
      this.stats.ignoredJoins++;
      return "ignored";
    }
    let replaced = false;
    if (same !== undefined && same.addr === req.raftAddr && req.fresh) {
      // A wiped node under its old id: the leader's progress for it describes
      // a log that no longer exists. Remove and re-add it so it starts afresh.
      await this.change({ kind: "remove", node: req.id });
      this.stats.removedBeforeJoins++;
      replaced = true;
    }
    for (const m of members(this.driver.status().conf)) {
      // A node that rejoins with a new address (or another id at this address) replaces the entry.
      if (
        (m.id === req.id && m.addr !== req.raftAddr) || (m.id !== req.id && m.addr === req.raftAddr)
      ) {
        await this.change({ kind: "remove", node: m.id });
        this.stats.removedBeforeJoins++;
        replaced = true;
      }
    }
    const kind = req.voter ? "addVoter" : "addLearner";
    await this.change({ kind, node: req.id, context: req.raftAddr });
    return replaced ? "replaced" : "added";
  }

  /** Removes a member. */
  async remove(id: string): Promise<void> {
    this.#requireLeader();
    const conf = this.driver.status().conf;
    if (!conf.voters.includes(id) && !conf.learners.includes(id)) {
      throw new Error(`node ${id} not found in cluster`);
    }
    await this.change({ kind: "remove", node: id });
  }

  /**
   * Hands leadership to `target` (or the most up-to-date voter). With
   * `wait`, resolves once another node leads.
   */
  async stepdown(
    target: string | undefined,
    wait: boolean,
    waitMs = this.timeoutMs,
  ): Promise<void> {
    this.#requireLeader();
    const s = this.driver.status();
    let to = target ?? "";
    if (to === s.id) throw new Error("stepdown: cannot step down to the current Leader");
    if (to !== "" && !s.conf.voters.includes(to)) {
      throw new Error("stepdown: node not found in cluster");
    }
    if (to === "") {
      let best = -1;
      for (const [id, pr] of s.progress) {
        if (id !== s.id && s.conf.voters.includes(id) && pr.match > best) {
          best = pr.match;
          to = id;
        }
      }
      if (to === "") throw new Error("stepdown: no other voter to hand leadership to");
    }
    this.driver.transferLeadership(to);
    if (!wait) return;
    const deadline = performance.now() + waitMs;
    while (performance.now() < deadline) {
      const now = this.driver.status();
      if (now.role !== "leader" && now.leader !== "" && now.leader !== s.id) return;
      await delay(20);
    }
    throw new StoreTimeoutError("stepdown: timed out waiting for leadership to move");
  }

  /** Proposes one change, retrying (bounded) while another is still committing. */
  async change(cc: ConfChange): Promise<number> {
    const deadline = performance.now() + this.timeoutMs;
    for (let attempt = 0;; attempt++) {
      try {
        return await this.#proposeOnce(cc);
      } catch (err) {
        const retryable = err instanceof ConfChangeError &&
          !/already|not a member|last voter/.test(err.message);
        if (!retryable || performance.now() > deadline) throw err;
        await delay(Math.min(500, 20 * 2 ** Math.min(attempt, 5)));
      }
    }
  }

  #proposeOnce(cc: ConfChange): Promise<number> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new StoreTimeoutError(`membership change ${cc.kind} ${cc.node} timed out`)),
        this.timeoutMs,
      );
      this.driver.proposeConfChange(cc, (err, index) => {
        clearTimeout(timer);
        if (err instanceof NotLeaderError) reject(new NotLeaderStoreError(err.leader));
        else if (err) reject(err);
        else resolve(index);
      });
    });
  }

  #requireLeader(): void {
    const s = this.driver.status();
    if (s.role !== "leader") throw new NotLeaderStoreError(s.leader);
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
