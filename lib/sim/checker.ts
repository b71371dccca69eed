/**
 * The simulator's safety and liveness checker (ARCHITECTURE §3).
 *
 * Owns: the Raft invariants of the paper's Figure 3 plus the service-level
 * promises, checked from observations the simulator (or a real-process test)
 * feeds in as they happen:
 * - Election Safety (§5.2): at most one leader per term.
 * - Log Matching (§5.3): entries with the same index and term carry the same
 *   command and the same predecessor term, on every node.
 * - Leader Completeness (§5.4): an entry committed in an earlier term is in
 *   every later leader's log; committed entries at an index agree everywhere.
 * - State Machine Safety (§5.4.3): every node applies the same command at the
 *   same index, in contiguous increasing order, and reaches the same state
 *   hash at the same applied index.
 * - No acknowledged write is lost; the cluster makes progress once faults
 *   stop; client reads and writes form a linearizable history.
 *
 * Invariants of the checker itself: pure and deterministic (no I/O, clock or
 * randomness), every check is O(1) amortized per observation except
 * {@link Checker.observeLeader} and {@link Checker.checkAckedDurable}, which
 * scan the committed entries / acknowledgements once per call.
 *
 * Memory bounds: one small record per distinct (index, term) seen in any log,
 * per committed index, per applied index, per state-hash index, per leader
 * term, per acknowledged write and per node; with violations capped at
 * `maxViolations`. That is O(entries + terms + nodes), fine for simulator
 * runs up to ~1e6 entries (roughly 100-200 bytes each); long soaks should use
 * a fresh Checker per seed.
 *
 * Why: a violation found at the step it happens, with the node ids, term,
 * index and values in the message, makes a failing seed cheap to diagnose.
 *
 * @module
 */

import type { NodeId, Role } from "../raft/types.ts";
import {
  checkLinearizable,
  type CheckOptions,
  type CheckResult,
  type Operation,
} from "./linearizability.ts";

export type { CheckOptions, CheckResult, Operation } from "./linearizability.ts";

/** Names of the invariants the checker enforces. */
export type Invariant =
  | "ElectionSafety"
  | "LogMatching"
  | "LeaderCompleteness"
  | "CommittedAgreement"
  | "StateMachineSafety"
  | "ApplyOrder"
  | "StateHashAgreement"
  | "AckedWriteDurability"
  | "Liveness"
  | "Linearizability";

/** One broken invariant: `message` names the nodes, term, index and values involved. */
export interface Violation {
  readonly invariant: Invariant;
  readonly message: string;
  readonly details: Readonly<Record<string, unknown>>;
}

/** Thrown at once in strict mode; carries the {@link Violation}. */
export class SafetyViolation extends Error {
  override readonly name = "SafetyViolation";
  constructor(readonly violation: Violation) {
    super(`${violation.invariant} violated: ${violation.message}`);
  }
}

/** Options of {@link Checker}. */
export interface CheckerOptions {
  /** Throw a {@link SafetyViolation} at the first violation (default true). */
  readonly strict?: boolean;
  /** Violations kept in {@link Checker.violations} (default 1000); more are only counted. */
  readonly maxViolations?: number;
}

/** An entry a node has appended: `prevTerm` is the term of the entry at `index - 1` (0 if none). */
export interface LogRecord {
  readonly index: number;
  readonly term: number;
  readonly prevTerm: number;
  /** Hash of the entry's kind and data. */
  readonly digest: string;
}

/** What a leader's log holds at an index. */
export interface EntryView {
  readonly term: number;
  readonly digest: string;
}

/**
 * Looks up the new leader's log: the entry, `undefined` when the index is
 * compacted into a snapshot (skipped), or `null` when the log has no entry
 * there (a violation if it was committed).
 */
export type LeaderLogLookup = (index: number) => EntryView | undefined | null;

/** rqlite read consistency levels. */
export type ReadLevel = "none" | "weak" | "linearizable" | "strong" | "auto";

/** A client operation with the read consistency level it used (default: linearizable). */
export type HistoryOperation = Operation & { readonly level?: ReadLevel };

interface LogSeen {
  readonly node: NodeId;
  readonly digest: string;
  readonly prevTerm: number;
}

interface Committed {
  readonly node: NodeId;
  readonly term: number;
  readonly digest: string;
  /** Upper bound of the term in which the entry became committed. */
  commitTermBound: number;
}

interface Applied {
  readonly node: NodeId;
  readonly term: number;
  readonly digest: string;
}

/** Feeds on observations from the simulator; records or throws on violations. */
export class Checker {
  /** Violations recorded so far (capped at `maxViolations`). */
  readonly violations: Violation[] = [];
  /** Violations beyond the cap (counted, not kept). */
  droppedViolations = 0;
  readonly #strict: boolean;
  readonly #maxViolations: number;
  readonly #leaders = new Map<number, { node: NodeId; timeMs: number }>();
  readonly #logs = new Map<number, Map<number, LogSeen>>();
  readonly #committed = new Map<number, Committed>();
  readonly #applied = new Map<number, Applied>();
  readonly #lastApplied = new Map<NodeId, number>();
  readonly #stateHashes = new Map<number, { node: NodeId; hash: string }>();
  readonly #acks = new Map<number, { opId: number; digest: string }>();
  #maxTermSeen = 0;

  constructor(options: CheckerOptions = {}) {
    this.#strict = options.strict ?? true;
    this.#maxViolations = options.maxViolations ?? 1000;
  }

  /** True while no violation has been found. */
  get ok(): boolean {
    return this.violations.length === 0 && this.droppedViolations === 0;
  }

  /** Throws a {@link SafetyViolation} for the first recorded violation, if any (non-strict use). */
  assertOk(): void {
    const first = this.violations[0];
    if (first !== undefined) throw new SafetyViolation(first);
  }

  // -------------------------------------------------------------------------
  // Election Safety

  /** A node is in `role` at `term` (call on every role or term change). */
  observeRole(node: NodeId, term: number, role: Role, timeMs: number): void {
    if (term > this.#maxTermSeen) this.#maxTermSeen = term;
    if (role !== "leader") return;
    const prev = this.#leaders.get(term);
    if (prev === undefined) {
      this.#leaders.set(term, { node, timeMs });
    } else if (prev.node !== node) {
      this.#violate(
        "ElectionSafety",
        `nodes ${prev.node} (at ${fmtMs(prev.timeMs)}) and ${node} (at ${fmtMs(timeMs)}) ` +
          `are both leader in term ${term}`,
        { term, nodes: [prev.node, node], timesMs: [prev.timeMs, timeMs] },
      );
    }
  }

  // -------------------------------------------------------------------------
  // Log Matching

  /**
   * A node has appended `entries` (any subset, in index order; again after a
   * truncation with the new suffix). Checks each against every entry with the
   * same index and term seen on any node.
   */
  observeLog(node: NodeId, entries: readonly LogRecord[]): void {
    let before: LogRecord | undefined;
    for (const e of entries) {
      this.#checkLogRecordShape(node, e, before);
      this.#checkLogMatching(node, e);
      before = e;
    }
  }

  #checkLogRecordShape(node: NodeId, e: LogRecord, before: LogRecord | undefined): void {
    if (e.prevTerm > e.term || (e.index === 1 && e.prevTerm !== 0)) {
      this.#violate(
        "LogMatching",
        `node ${node} entry ${e.index} has term ${e.term} but predecessor term ${e.prevTerm}`,
        { node, index: e.index, term: e.term, prevTerm: e.prevTerm },
      );
    }
    if (before !== undefined && before.index + 1 === e.index && before.term !== e.prevTerm) {
      this.#violate(
        "LogMatching",
        `node ${node} entry ${e.index} claims predecessor term ${e.prevTerm} but entry ` +
          `${before.index} in the same append has term ${before.term}`,
        { node, index: e.index, prevTerm: e.prevTerm, actualPrevTerm: before.term },
      );
    }
  }

  #checkLogMatching(node: NodeId, e: LogRecord): void {
    let byTerm = this.#logs.get(e.index);
    if (byTerm === undefined) this.#logs.set(e.index, byTerm = new Map());
    const seen = byTerm.get(e.term);
    if (seen === undefined) {
      byTerm.set(e.term, { node, digest: e.digest, prevTerm: e.prevTerm });
      return;
    }
    if (seen.digest !== e.digest || seen.prevTerm !== e.prevTerm) {
      this.#violate(
        "LogMatching",
        `index ${e.index} term ${e.term}: node ${seen.node} has digest ${seen.digest} ` +
          `(prev term ${seen.prevTerm}) but node ${node} has digest ${e.digest} ` +
          `(prev term ${e.prevTerm})`,
        {
          index: e.index,
          term: e.term,
          nodes: [seen.node, node],
          digests: [seen.digest, e.digest],
          prevTerms: [seen.prevTerm, e.prevTerm],
        },
      );
    }
  }

  // -------------------------------------------------------------------------
  // Leader Completeness and committed agreement

  /**
   * A node learned that entry (`index`, `term`, `digest`) is committed.
   * `commitTerm` is the node's current term when it learned it (an upper
   * bound of the term in which the entry was committed); when omitted the
   * highest term seen by {@link observeRole} is used, so pass it whenever
   * roles are not observed. Committed entries must agree across nodes and
   * with acknowledged writes.
   */
  observeCommit(
    node: NodeId,
    index: number,
    term: number,
    digest: string,
    commitTerm?: number,
  ): void {
    const bound = commitTerm ?? Math.max(term, this.#maxTermSeen);
    const prev = this.#committed.get(index);
    if (prev === undefined) {
      this.#committed.set(index, { node, term, digest, commitTermBound: bound });
    } else if (prev.term !== term || prev.digest !== digest) {
      this.#violate(
        "CommittedAgreement",
        `index ${index} committed as term ${prev.term} digest ${prev.digest} on node ` +
          `${prev.node} but as term ${term} digest ${digest} on node ${node}`,
        {
          index,
          nodes: [prev.node, node],
          terms: [prev.term, term],
          digests: [prev.digest, digest],
        },
      );
    } else {
      prev.commitTermBound = Math.min(prev.commitTermBound, bound);
    }
    this.#checkAgainstAck(node, index, digest);
  }

  /**
   * `node` became leader of `term`. Every entry known to be committed in an
   * earlier term must be in its log with the same term and digest. `lookup`
   * returns `undefined` for compacted indexes (skipped) and `null` for
   * indexes the log does not hold; `lastIndex`, when given, marks every index
   * beyond it as missing even if `lookup` returns `undefined`. Also counts as
   * a leader observation for Election Safety. Costs O(committed entries).
   */
  observeLeader(node: NodeId, term: number, lookup: LeaderLogLookup, lastIndex?: number): void {
    this.observeRole(node, term, "leader", NaN);
    for (const [index, c] of this.#committed) {
      if (c.commitTermBound >= term) continue; // may have been committed after this election
      const have = lookup(index);
      const missing = have === null ||
        (have === undefined && lastIndex !== undefined && index > lastIndex);
      if (have === undefined && !missing) continue; // compacted into a snapshot
      if (have && have.term === c.term && have.digest === c.digest) continue;
      const found = have ? `term ${have.term} digest ${have.digest}` : "nothing";
      this.#violate(
        "LeaderCompleteness",
        `new leader ${node} of term ${term} has ${found} at index ${index}, which node ` +
          `${c.node} saw committed (by term ${c.commitTermBound}) as term ${c.term} digest ${c.digest}`,
        { node, term, index, committed: { term: c.term, digest: c.digest }, found: have ?? null },
      );
    }
  }

  // -------------------------------------------------------------------------
  // State Machine Safety

  /** A node applied entry `index`; it must be the next index and agree with every other node. */
  observeApply(node: NodeId, index: number, term: number, digest: string): void {
    const last = this.#lastApplied.get(node) ?? 0;
    if (index !== last + 1) {
      const what = index <= last ? "re-applied" : `skipped ${last + 1}..${index - 1} and applied`;
      this.#violate(
        "ApplyOrder",
        `node ${node} ${what} index ${index} (term ${term}) after last applied ${last}`,
        { node, index, term, lastApplied: last },
      );
    }
    this.#lastApplied.set(node, index);
    this.#checkAppliedAgreement(node, index, term, digest);
    this.#checkAgainstAck(node, index, digest);
  }

  #checkAppliedAgreement(node: NodeId, index: number, term: number, digest: string): void {
    const prev = this.#applied.get(index);
    if (prev === undefined) this.#applied.set(index, { node, term, digest });
    else if (prev.term !== term || prev.digest !== digest) {
      this.#violate(
        "StateMachineSafety",
        `index ${index}: node ${prev.node} applied term ${prev.term} digest ${prev.digest} ` +
          `but node ${node} applied term ${term} digest ${digest}`,
        {
          index,
          nodes: [prev.node, node],
          terms: [prev.term, term],
          digests: [prev.digest, digest],
        },
      );
    }
    const c = this.#committed.get(index);
    if (c !== undefined && (c.term !== term || c.digest !== digest)) {
      this.#violate(
        "StateMachineSafety",
        `node ${node} applied term ${term} digest ${digest} at index ${index}, but node ` +
          `${c.node} saw term ${c.term} digest ${c.digest} committed there`,
        { index, node, applied: { term, digest }, committed: { term: c.term, digest: c.digest } },
      );
    }
  }

  /**
   * A node's state machine was replaced by a snapshot covering up to `index`
   * (also call with the snapshot index, or 0, when a node restarts and
   * rebuilds its state). The next apply must be `index + 1`.
   */
  observeRestore(node: NodeId, index: number): void {
    this.#lastApplied.set(node, index);
  }

  /** The state machine of `node` hashes to `hash` after applying up to `appliedIndex`. */
  observeStateHash(node: NodeId, appliedIndex: number, hash: string): void {
    const prev = this.#stateHashes.get(appliedIndex);
    if (prev === undefined) this.#stateHashes.set(appliedIndex, { node, hash });
    else if (prev.hash !== hash) {
      this.#violate(
        "StateHashAgreement",
        `at applied index ${appliedIndex} node ${prev.node} has state hash ${prev.hash} ` +
          `but node ${node} has ${hash}`,
        { appliedIndex, nodes: [prev.node, node], hashes: [prev.hash, hash] },
      );
    }
  }

  // -------------------------------------------------------------------------
  // Acknowledged writes

  /** Client operation `opId` was acknowledged as entry `index` with `digest`. */
  observeAck(opId: number, index: number, digest: string): void {
    const prev = this.#acks.get(index);
    if (prev !== undefined && prev.digest !== digest) {
      this.#violate(
        "AckedWriteDurability",
        `ops ${prev.opId} and ${opId} were both acknowledged at index ${index} with digests ` +
          `${prev.digest} and ${digest}`,
        { index, opIds: [prev.opId, opId], digests: [prev.digest, digest] },
      );
      return;
    }
    this.#acks.set(index, { opId, digest });
    const applied = this.#applied.get(index);
    if (applied !== undefined) this.#checkAgainstAck(applied.node, index, applied.digest);
    const c = this.#committed.get(index);
    if (c !== undefined) this.#checkAgainstAck(c.node, index, c.digest);
  }

  #checkAgainstAck(node: NodeId, index: number, digest: string): void {
    const ack = this.#acks.get(index);
    if (ack === undefined || ack.digest === digest) return;
    this.#violate(
      "AckedWriteDurability",
      `acknowledged op ${ack.opId} (index ${index}, digest ${ack.digest}) is lost: node ` +
        `${node} has digest ${digest} at that index`,
      { opId: ack.opId, index, node, acked: ack.digest, found: digest },
    );
  }

  /**
   * End-of-run check for one node: every acknowledged write at an index up to
   * `appliedUpTo` must be in that node's log/state with its digest. `lookup`
   * returns the node's digest at an index, or `undefined` when compacted
   * (skipped: the state hash covers it). Returns how many acks were verified.
   */
  checkAckedDurable(
    node: NodeId,
    appliedUpTo: number,
    lookup: (index: number) => string | undefined,
  ): number {
    let verified = 0;
    for (const [index, ack] of this.#acks) {
      if (index > appliedUpTo) continue;
      const digest = lookup(index);
      if (digest === undefined) continue;
      verified++;
      if (digest !== ack.digest) {
        this.#violate(
          "AckedWriteDurability",
          `acknowledged op ${ack.opId} (index ${index}, digest ${ack.digest}) is lost on node ` +
            `${node}, which applied up to ${appliedUpTo} and has digest ${digest} there`,
          { opId: ack.opId, index, node, acked: ack.digest, found: digest, appliedUpTo },
        );
      }
    }
    return verified;
  }

  // -------------------------------------------------------------------------
  // Liveness

  /**
   * Progress once faults stop. Call at the end of the quiet period, i.e. at
   * simulated time `faultsStoppedAtMs + boundMs`, with `lastProgressMs` the
   * time of the most recent commit on any node (`-Infinity` if none; a new
   * leader's no-op counts, so progress needs no client load). Violation iff
   * `lastProgressMs < faultsStoppedAtMs`: nothing was committed in the window
   * [faultsStoppedAtMs, faultsStoppedAtMs + boundMs]. Called later than the
   * end of the window, it still never reports a false violation; it only
   * weakens to "something was committed after faults stopped".
   * Returns true when the property holds.
   */
  checkLiveness(faultsStoppedAtMs: number, lastProgressMs: number, boundMs: number): boolean {
    if (!Number.isFinite(faultsStoppedAtMs) || !(boundMs > 0) || Number.isNaN(lastProgressMs)) {
      throw new RangeError(
        `checkLiveness: need finite faultsStoppedAtMs and boundMs > 0, got ` +
          `${faultsStoppedAtMs}, ${boundMs} (lastProgressMs ${lastProgressMs})`,
      );
    }
    if (lastProgressMs >= faultsStoppedAtMs) return true;
    this.#violate(
      "Liveness",
      `no commit within ${boundMs} ms after faults stopped at ${faultsStoppedAtMs} ms ` +
        `(last commit at ${fmtMs(lastProgressMs)})`,
      { faultsStoppedAtMs, lastProgressMs, boundMs },
    );
    return false;
  }

  // -------------------------------------------------------------------------
  // Client history

  /**
   * Checks the client history: writes, cas and reads at `linearizable`,
   * `strong` (or unspecified) level must be linearizable, so stale reads are
   * violations. Reads at `none`, `weak` and `auto` may be stale, but must
   * return a value some write or cas invoked before the read returned (or
   * null). An "unknown" verdict (search budget exhausted) is returned, not
   * recorded as a violation.
   */
  checkHistory(ops: readonly HistoryOperation[], options: CheckOptions = {}): CheckResult {
    const checked: Operation[] = [];
    const stale: HistoryOperation[] = [];
    for (const op of ops) {
      if (op.kind === "read" && isStaleAllowed(op.level)) stale.push(op);
      else checked.push(op);
    }
    const result = checkLinearizable(checked, options);
    if (result.ok === false) {
      this.#violate("Linearizability", `key ${JSON.stringify(result.key)}: ${result.reason}`, {
        key: result.key,
        opIds: result.ops.map((o) => o.id),
      });
      return result;
    }
    return this.#checkStaleReads(stale, checked) ?? result;
  }

  #checkStaleReads(reads: HistoryOperation[], writes: Operation[]): CheckResult | undefined {
    const firstWriteMs = new Map<string, number>(); // key \0 value -> earliest call
    for (const w of writes) {
      if (w.kind === "read") continue;
      const k = `${w.key}\0${w.value}`;
      firstWriteMs.set(k, Math.min(firstWriteMs.get(k) ?? Infinity, w.callMs));
    }
    for (const r of reads) {
      if (r.output === null || r.output === undefined) continue;
      const writtenMs = firstWriteMs.get(`${r.key}\0${r.output}`);
      if (writtenMs !== undefined && writtenMs <= r.returnMs) continue;
      const reason = `${r.level} read #${r.id} of key ${JSON.stringify(r.key)} returned ` +
        `${JSON.stringify(r.output)}, which no write or cas invoked before it returned`;
      this.#violate("Linearizability", reason, { key: r.key, opIds: [r.id] });
      return { ok: false, key: r.key, reason, ops: [r] };
    }
    return undefined;
  }

  // -------------------------------------------------------------------------

  #violate(invariant: Invariant, message: string, details: Record<string, unknown>): void {
    const violation: Violation = { invariant, message, details };
    if (this.violations.length < this.#maxViolations) this.violations.push(violation);
    else this.droppedViolations++;
    if (this.#strict) throw new SafetyViolation(violation);
  }
}

function isStaleAllowed(level: ReadLevel | undefined): boolean {
  return level === "none" || level === "weak" || level === "auto";
}

function fmtMs(ms: number): string {
  return Number.isNaN(ms) ? "?" : `${ms} ms`;
}
