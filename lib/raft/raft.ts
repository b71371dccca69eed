/**
 * The Raft state machine: one node as a pure step function (etcd-io/raft's
 * shape). Section numbers cite the Raft paper (Ongaro & Ousterhout 2014,
 * "§5.x") and Ongaro's thesis (2014, "thesis §x.y").
 *
 * Inputs change state and queue outputs; {@link Raft.ready} hands the
 * outputs to the driver, which persists, sends, applies, then calls
 * {@link Raft.advance}. Only one Ready is outstanding at a time.
 *
 * @module
 */

import { applyConfChange, decodeConfChange, EMPTY_CONF, encodeConfChange } from "./confchange.ts";
import {
  assert,
  ConfChangeError,
  InvalidMessageError,
  NotLeaderError,
  ProposalDroppedError,
} from "./errors.ts";
import { entriesBytes, RaftLog } from "./log.ts";
import { majorityMatch, Progress, quorumOf } from "./progress.ts";
import { ReadOnlyQueue } from "./read_only.ts";
import { MESSAGE_KINDS } from "./types.ts";
import type {
  ConfChange,
  ConfState,
  Entry,
  HardState,
  LogReader,
  Message,
  MessageKind,
  NodeId,
  RandomSource,
  ReadState,
  Ready,
  Role,
  SoftState,
} from "./types.ts";

/** Configuration of one Raft node. */
export interface RaftConfig {
  readonly id: NodeId;
  /** The durable log as of start (entries already persisted). */
  readonly storage: LogReader;
  /** Hard state as of start. */
  readonly hardState: HardState;
  /** Index already applied by the state machine at start (default: snapshot index). */
  readonly applied?: number;
  /** Ticks without hearing from a leader before campaigning; randomized in [n, 2n). Default 10. */
  readonly electionTicks?: number;
  /** Ticks between leader heartbeats. Default 1. */
  readonly heartbeatTicks?: number;
  readonly random: RandomSource;
  /** Pre-vote (thesis §9.6). Default true. */
  readonly preVote?: boolean;
  /** Check-quorum: a leader that has not heard from a quorum in an election timeout steps down (thesis §6.2). Default true. */
  readonly checkQuorum?: boolean;
  /** Max entries in one append message. Default 256. */
  readonly maxEntriesPerMsg?: number;
  /** Max bytes of entry data in one append message (one larger entry still goes alone). Default 1 MiB. */
  readonly maxBytesPerMsg?: number;
  /** Max append messages in flight to one follower in replicate state. Default 64. */
  readonly maxInflightMsgs?: number;
  /** Max bytes of proposed-but-unapplied entry data on a leader; beyond, proposals are dropped. Default 64 MiB. */
  readonly maxUncommittedBytes?: number;
  /** Max bytes of committed entries handed out in one Ready. Default 8 MiB. */
  readonly maxApplyBytesPerReady?: number;
  /** Max pending ReadIndex requests. Default 65536. */
  readonly maxPendingReads?: number;
  /**
   * Vote floor of a node that lost its log (default 0: none). A node whose
   * log had to be emptied (say, its snapshot was corrupt and the log behind
   * it compacted) may have acknowledged entries up to this index that only a
   * minority now holds; voting with a shorter log could elect a leader that
   * lacks a committed entry (the §5.4 argument assumes acknowledged entries
   * stay). So while `lastIndex() < voteFloorIndex` the node grants no votes
   * and no pre-votes and never campaigns (no election on timeout;
   * {@link Raft.campaign} and TimeoutNow are ignored); it still follows a
   * leader, accepts appends and snapshots, and marks its append rejections
   * so the leader forgets the entries it had acknowledged and probes it
   * again (from a snapshot if need be). Once its log reaches the floor, it
   * behaves normally. Set it from the last index the node held before the loss.
   */
  readonly voteFloorIndex?: number;
}

/** Replication state of one follower as seen by the leader. */
export interface ProgressStatus {
  readonly match: number;
  readonly next: number;
  readonly state: "probe" | "replicate" | "snapshot";
  readonly learner: boolean;
  readonly recentActive: boolean;
}

/** A read-only view of the node for status pages and tests. */
export interface RaftStatus {
  readonly id: NodeId;
  readonly term: number;
  readonly vote: NodeId;
  readonly commit: number;
  readonly applied: number;
  readonly leader: NodeId;
  readonly role: Role;
  readonly firstIndex: number;
  readonly lastIndex: number;
  readonly conf: ConfState;
  readonly progress: ReadonlyMap<NodeId, ProgressStatus>;
  readonly leadTransferee: NodeId;
  /** The vote floor still in force (0 once the log reached it, or when none was set). */
  readonly voteFloorIndex: number;
}

/** Context of a vote request sent because of a leadership transfer: it bypasses the lease. */
const TRANSFER_CONTEXT = "transfer";
/**
 * Context of an append rejection from a node below its vote floor: it lost
 * entries it may have acknowledged, so the leader's `match` for it is stale.
 */
export const LOG_LOST_CONTEXT = "logLost";
/** Hard bound on entries in one received append, whatever the sender's settings. */
const MAX_ENTRIES_PER_RECEIVED_MESSAGE = 1 << 16;

const EMPTY: readonly never[] = Object.freeze([]);
const KINDS: ReadonlySet<string> = new Set(MESSAGE_KINDS);

/**
 * One Raft node as a pure step function. Inputs: {@link tick}, {@link step},
 * {@link propose}, {@link proposeConfChange}, {@link readIndex},
 * {@link transferLeadership}. Output: {@link ready} / {@link advance}.
 */
export class Raft {
  readonly id: NodeId;
  term: number;
  vote: NodeId;
  leader: NodeId = "";
  role: Role = "follower";
  readonly log: RaftLog;

  readonly #random: RandomSource;
  readonly #electionTicks: number;
  readonly #heartbeatTicks: number;
  readonly #preVote: boolean;
  readonly #checkQuorum: boolean;
  readonly #maxEntriesPerMsg: number;
  readonly #maxBytesPerMsg: number;
  readonly #maxInflight: number;
  readonly #maxUncommittedBytes: number;
  readonly #maxApplyBytes: number;
  readonly #voteFloorIndex: number;

  #conf: ConfState = EMPTY_CONF;
  /** Configurations in the log: each config entry's index and the membership after it. */
  #confHistory: { index: number; conf: ConfState }[] = [];
  #progress = new Map<NodeId, Progress>();
  #votes = new Map<NodeId, boolean>();
  #electionElapsed = 0;
  #heartbeatElapsed = 0;
  #randomizedElectionTimeout = 0;
  #leadTransferee: NodeId = "";
  #pendingConfIndex = 0;
  #uncommittedBytes = 0;
  readonly #readOnly: ReadOnlyQueue;
  #pendingReadContexts: string[] = [];
  readonly #maxPendingReads: number;

  #messages: Message[] = [];
  /** A read was queued since the last Ready: one heartbeat round confirms all of them. */
  #readHeartbeatDue = false;
  #readStates: ReadState[] = [];
  #prevHardState: HardState;
  #prevSoftState: SoftState;
  #readyOutstanding = false;

  constructor(config: RaftConfig) {
    this.id = config.id;
    assert(config.id !== "", () => "node id must not be empty");
    this.#random = config.random;
    this.#electionTicks = config.electionTicks ?? 10;
    this.#heartbeatTicks = config.heartbeatTicks ?? 1;
    assert(
      this.#heartbeatTicks > 0 && this.#electionTicks > this.#heartbeatTicks,
      () =>
        `electionTicks (${this.#electionTicks}) must exceed heartbeatTicks (${this.#heartbeatTicks}) > 0`,
    );
    this.#preVote = config.preVote ?? true;
    this.#checkQuorum = config.checkQuorum ?? true;
    this.#maxEntriesPerMsg = config.maxEntriesPerMsg ?? 256;
    this.#maxBytesPerMsg = config.maxBytesPerMsg ?? 1 << 20;
    this.#maxInflight = config.maxInflightMsgs ?? 64;
    this.#maxUncommittedBytes = config.maxUncommittedBytes ?? 64 << 20;
    this.#maxApplyBytes = config.maxApplyBytesPerReady ?? 8 << 20;
    this.#maxPendingReads = config.maxPendingReads ?? 1 << 16;
    this.#voteFloorIndex = config.voteFloorIndex ?? 0;
    assert(
      isCount(this.#voteFloorIndex),
      () => `voteFloorIndex must be a non-negative safe integer, got ${this.#voteFloorIndex}`,
    );
    this.#readOnly = new ReadOnlyQueue(this.#maxPendingReads);

    const hs = config.hardState;
    this.term = hs.term;
    this.vote = hs.vote;
    this.log = new RaftLog(config.storage, hs.commit, config.applied ?? 0);
    this.#loadConfiguration(config.storage);
    this.#prevHardState = this.#hardState();
    this.#prevSoftState = this.#softState();
    this.#becomeFollower(this.term, "");
  }

  // ---------------------------------------------------------------- inputs

  /** Advances logical time by one tick. */
  tick(): void {
    if (this.role === "leader") this.#tickHeartbeat();
    else this.#tickElection();
  }

  /**
   * Handles a message from a peer. Stale and unknown-sender messages are
   * ignored by the protocol's rules; a malformed one throws
   * {@link InvalidMessageError} and changes nothing.
   */
  step(m: Message): void {
    this.#validate(m);
    if (m.term > this.term) {
      if (!this.#acceptHigherTerm(m)) return;
    } else if (m.term < this.term) {
      this.#answerStaleTerm(m);
      return;
    }
    switch (m.kind) {
      case "preVote":
      case "vote":
        this.#handleVoteRequest(m);
        return;
      default:
        break;
    }
    switch (this.role) {
      case "leader":
        this.#stepLeader(m);
        return;
      case "candidate":
      case "preCandidate":
        this.#stepCandidate(m);
        return;
      case "follower":
        this.#stepFollower(m);
        return;
    }
  }

  /** Proposes commands; returns the index of the first. Throws NotLeaderError / ProposalDroppedError. */
  propose(data: readonly Uint8Array[]): number {
    this.#requireLeader();
    if (data.length === 0) return this.log.lastIndex() + 1;
    if (this.#leadTransferee !== "") {
      throw new ProposalDroppedError(`leadership is moving to ${this.#leadTransferee}`);
    }
    if (!this.#progress.has(this.id)) {
      throw new ProposalDroppedError("this leader is being removed from the cluster");
    }
    let bytes = 0;
    for (const d of data) bytes += d.byteLength;
    if (this.#uncommittedBytes > 0 && this.#uncommittedBytes + bytes > this.#maxUncommittedBytes) {
      throw new ProposalDroppedError(
        `${this.#uncommittedBytes} bytes are waiting to commit (limit ${this.#maxUncommittedBytes}); retry shortly`,
      );
    }
    const first = this.log.lastIndex() + 1;
    this.#appendEntries(data.map((d) => ({ kind: "normal" as const, data: d })));
    this.#broadcastAppend();
    return first;
  }

  /** Proposes one membership change (thesis §4.1); returns its index. */
  proposeConfChange(cc: ConfChange): number {
    this.#requireLeader();
    if (this.#leadTransferee !== "") {
      throw new ConfChangeError(`leadership is moving to ${this.#leadTransferee}`);
    }
    if (this.#pendingConfIndex > this.log.committed) {
      throw new ConfChangeError(
        `change at index ${this.#pendingConfIndex} is not committed yet; retry after it commits`,
      );
    }
    if (!this.#committedEntryInCurrentTerm()) {
      throw new ConfChangeError("the new leader has not committed an entry of its term yet; retry");
    }
    this.#checkConfChange(cc);
    const index = this.log.lastIndex() + 1;
    this.#appendEntries([{ kind: "config", data: encodeConfChange(cc) }]);
    this.#pendingConfIndex = index;
    this.#broadcastAppend();
    return index;
  }

  /**
   * Requests a linearizable read (thesis §6.4). A {@link ReadState} with
   * `context` is released in a later Ready; serve the read once the state
   * machine has applied its index. Throws NotLeaderError.
   */
  readIndex(context: string): void {
    this.#requireLeader();
    if (this.#readOnly.size + this.#pendingReadContexts.length >= this.#maxPendingReads) {
      throw new ProposalDroppedError(`${this.#maxPendingReads} reads pending; retry shortly`);
    }
    if (!this.#committedEntryInCurrentTerm()) {
      // A new leader does not know the commit index until it commits in its term.
      this.#pendingReadContexts.push(context);
      return;
    }
    this.#startRead(context);
  }

  /** Asks the leader to hand leadership to `to` (thesis §3.10). Throws NotLeaderError. */
  transferLeadership(to: NodeId): void {
    this.#requireLeader();
    if (to === this.id) return;
    if (!this.#conf.voters.includes(to)) {
      throw new ProposalDroppedError(`cannot transfer leadership to ${to}: not a voter`);
    }
    if (this.#leadTransferee === to) return;
    this.#leadTransferee = to;
    this.#electionElapsed = 0; // the transfer must finish within an election timeout
    const pr = this.#progress.get(to);
    assert(pr !== undefined, () => `voter ${to} has no progress`);
    if (pr.match === this.log.lastIndex()) this.#send(to, "timeoutNow", {});
    else this.#sendAppend(to, true);
  }

  /** Starts an election now, if this node is a voter. */
  campaign(): void {
    if (this.role === "leader") return;
    this.#campaign(this.#preVote ? "preVote" : "vote", false);
  }

  /** The transport could not reach `id`: stop pipelining to it. */
  reportUnreachable(id: NodeId): void {
    const pr = this.#progress.get(id);
    if (this.role !== "leader" || pr === undefined) return;
    if (pr.state === "replicate") pr.becomeProbe();
  }

  /** A snapshot sent to `id` finished (`ok`) or failed. */
  reportSnapshot(id: NodeId, ok: boolean): void {
    const pr = this.#progress.get(id);
    if (this.role !== "leader" || pr === undefined || pr.state !== "snapshot") return;
    if (!ok) pr.pendingSnapshot = 0;
    pr.becomeProbe();
    // Wait for the follower's answer (or a heartbeat) before probing again.
    pr.probeSent = true;
  }

  // ---------------------------------------------------------------- output

  /** True when {@link ready} has work. */
  hasReady(): boolean {
    if (this.#readyOutstanding) return false;
    if (this.#messages.length > 0 || this.#readStates.length > 0) return true;
    if (this.#readHeartbeatDue) return true;
    if (this.log.unstable.length > 0 || this.log.unstableSnapshot !== undefined) return true;
    if (this.log.committed > this.log.applied) return true;
    if (!sameHardState(this.#hardState(), this.#prevHardState)) return true;
    return !sameSoftState(this.#softState(), this.#prevSoftState);
  }

  /** Collects the work to do. Call {@link advance} with it once done. */
  ready(): Ready {
    assert(!this.#readyOutstanding, () => "ready() called again before advance()");
    if (this.#readHeartbeatDue) {
      this.#readHeartbeatDue = false;
      if (this.role === "leader") this.#broadcastHeartbeat(this.#readOnly.lastContext());
    }
    const hs = this.#hardState();
    const ss = this.#softState();
    const rd: Ready = {
      softState: sameSoftState(ss, this.#prevSoftState) ? undefined : ss,
      hardState: sameHardState(hs, this.#prevHardState) ? undefined : hs,
      snapshot: this.log.unstableSnapshot,
      entries: this.log.unstable.slice(),
      messages: this.#messages,
      committedEntries: this.log.nextCommitted(this.#maxApplyBytes),
      readStates: this.#readStates,
    };
    this.#messages = [];
    this.#readStates = [];
    this.#prevHardState = hs;
    this.#prevSoftState = ss;
    this.#readyOutstanding = true;
    return rd;
  }

  /** Acknowledges that `rd` was persisted, sent, and its committed entries handed to the state machine. */
  advance(rd: Ready): void {
    assert(this.#readyOutstanding, () => "advance() without an outstanding ready()");
    this.#readyOutstanding = false;
    if (rd.snapshot) this.log.stableSnapshotTo(rd.snapshot.index);
    const last = rd.entries.at(-1);
    if (last !== undefined) {
      this.log.stableTo(last.index, last.term);
      if (this.role === "leader") this.#onOwnEntriesDurable();
    }
    const applied = rd.committedEntries.at(-1);
    // A snapshot installed while this Ready was out already moved `applied` past it.
    if (applied !== undefined && applied.index > this.log.applied) {
      this.log.appliedTo(applied.index);
      this.#uncommittedBytes = Math.max(
        0,
        this.#uncommittedBytes - entriesBytes(rd.committedEntries),
      );
    }
  }

  // ---------------------------------------------------------------- views

  /** The current membership (the newest in the log, committed or not: thesis §4.1). */
  get conf(): ConfState {
    return this.#conf;
  }

  /** The membership as of log index `index` (>= the snapshot index), for snapshot metadata. */
  confAt(index: number): ConfState {
    let conf: ConfState | undefined;
    for (const h of this.#confHistory) {
      if (h.index > index) break;
      conf = h.conf;
    }
    assert(conf !== undefined, () => `no configuration known at index ${index}`);
    return conf;
  }

  /** A snapshot of the node's state. */
  status(): RaftStatus {
    const progress = new Map<NodeId, ProgressStatus>();
    if (this.role === "leader") {
      for (const [id, pr] of this.#progress) {
        progress.set(id, {
          match: pr.match,
          next: pr.next,
          state: pr.state,
          learner: pr.learner,
          recentActive: pr.recentActive,
        });
      }
    }
    return {
      id: this.id,
      term: this.term,
      vote: this.vote,
      commit: this.log.committed,
      applied: this.log.applied,
      leader: this.leader,
      role: this.role,
      firstIndex: this.log.firstIndex(),
      lastIndex: this.log.lastIndex(),
      conf: this.#conf,
      progress,
      leadTransferee: this.#leadTransferee,
      voteFloorIndex: this.#belowVoteFloor() ? this.#voteFloorIndex : 0,
    };
  }

  // ---------------------------------------------------------------- roles

  #becomeFollower(term: number, leader: NodeId): void {
    this.#reset(term);
    this.leader = leader;
    this.role = "follower";
  }

  #becomePreCandidate(): void {
    // Pre-vote changes neither term nor vote (thesis §9.6).
    this.#votes.clear();
    this.#resetProgress();
    this.leader = "";
    this.role = "preCandidate";
  }

  #becomeCandidate(): void {
    this.#reset(this.term + 1);
    this.vote = this.id;
    this.role = "candidate";
  }

  #becomeLeader(): void {
    assert(this.role === "candidate", () => `${this.id} becomes leader from ${this.role}`);
    this.#reset(this.term);
    this.leader = this.id;
    this.role = "leader";
    const self = this.#progress.get(this.id);
    if (self !== undefined) {
      // Count only what is durable; the rest is counted on advance().
      self.match = this.log.unstableOffset - 1;
      self.next = self.match + 1;
      self.becomeReplicate();
    }
    // Otherwise this leader is being removed: it commits that change, then steps down.
    // Be conservative: any uncommitted entry may be a config change.
    this.#pendingConfIndex = this.log.lastIndex();
    // Commit an entry of the new term at once (§5.4.2, thesis §6.4).
    this.#appendEntries([{ kind: "normal", data: new Uint8Array(0) }]);
    this.#broadcastAppend();
  }

  #reset(term: number): void {
    if (term !== this.term) {
      this.term = term;
      this.vote = "";
    }
    this.leader = "";
    this.#electionElapsed = 0;
    this.#heartbeatElapsed = 0;
    this.#randomizedElectionTimeout = this.#electionTicks +
      this.#random.nextInt(this.#electionTicks);
    this.#leadTransferee = "";
    this.#votes.clear();
    this.#resetProgress();
    this.#pendingConfIndex = 0;
    this.#uncommittedBytes = 0;
    this.#readOnly.reset();
    this.#pendingReadContexts = [];
    this.#readHeartbeatDue = false;
  }

  #resetProgress(): void {
    this.#progress.clear();
    const next = this.log.lastIndex() + 1;
    for (const id of this.#conf.voters) {
      this.#progress.set(id, new Progress(next, this.#maxInflight, false));
    }
    for (const id of this.#conf.learners) {
      this.#progress.set(id, new Progress(next, this.#maxInflight, true));
    }
  }

  // ---------------------------------------------------------------- time

  #tickElection(): void {
    this.#electionElapsed++;
    if (this.#promotable() && this.#electionElapsed >= this.#randomizedElectionTimeout) {
      this.#electionElapsed = 0;
      this.#campaign(this.#preVote ? "preVote" : "vote", false);
    }
  }

  #tickHeartbeat(): void {
    this.#heartbeatElapsed++;
    this.#electionElapsed++;
    if (this.#electionElapsed >= this.#electionTicks) {
      this.#electionElapsed = 0;
      if (this.#checkQuorum && !this.#quorumActive()) {
        // Check-quorum (thesis §6.2): a leader cut off from a majority steps down.
        this.#becomeFollower(this.term, "");
        return;
      }
      // A transfer that did not finish within an election timeout is abandoned (thesis §3.10).
      this.#leadTransferee = "";
    }
    if (this.#heartbeatElapsed >= this.#heartbeatTicks) {
      this.#heartbeatElapsed = 0;
      this.#broadcastHeartbeat(this.#readOnly.lastContext());
    }
  }

  /** True when a majority of voters were heard from since the last check; resets the marks. */
  #quorumActive(): boolean {
    let active = 0;
    for (const [id, pr] of this.#progress) {
      if (id === this.id) pr.recentActive = true;
      if (!pr.learner && pr.recentActive) active++;
      if (id !== this.id) pr.recentActive = false;
    }
    return active >= quorumOf(this.#conf.voters.length);
  }

  // ---------------------------------------------------------------- elections

  /**
   * May this node campaign? A voter of the newest configuration may; so may a
   * voter of the committed one whose removal is still uncommitted: otherwise
   * a leader that appended its own removal and then lost leadership could be
   * the one vote the old configuration needs, and nobody could win
   * (its votes are still counted by the newest configuration, so the
   * majorities of the two overlap as in any single-server change).
   * A node below its vote floor may not (see RaftConfig.voteFloorIndex).
   */
  #promotable(): boolean {
    if (this.log.unstableSnapshot !== undefined) return false;
    if (this.#belowVoteFloor()) return false;
    if (this.#conf.voters.includes(this.id)) return true;
    return this.confAt(this.log.committed).voters.includes(this.id);
  }

  #campaign(kind: "preVote" | "vote", transfer: boolean): void {
    if (!this.#promotable()) return;
    let voteTerm: number;
    if (kind === "preVote") {
      this.#becomePreCandidate();
      voteTerm = this.term + 1;
    } else {
      this.#becomeCandidate();
      voteTerm = this.term;
    }
    if (this.#recordVote(this.id, true) === "won") {
      this.#onElectionWon();
      return;
    }
    const lastIndex = this.log.lastIndex();
    const lastTerm = this.log.lastTerm();
    for (const id of this.#conf.voters) {
      if (id === this.id) continue;
      this.#messages.push(message(kind, this.id, id, voteTerm, {
        index: lastIndex,
        logTerm: lastTerm,
        context: transfer ? TRANSFER_CONTEXT : "",
      }));
    }
  }

  #onElectionWon(): void {
    if (this.role === "preCandidate") this.#campaign("vote", false);
    else this.#becomeLeader();
  }

  #recordVote(id: NodeId, granted: boolean): "won" | "lost" | "pending" {
    if (!this.#votes.has(id)) this.#votes.set(id, granted);
    let yes = 0;
    let no = 0;
    for (const voter of this.#conf.voters) {
      const v = this.#votes.get(voter);
      if (v === true) yes++;
      else if (v === false) no++;
    }
    const quorum = quorumOf(this.#conf.voters.length);
    if (yes >= quorum) return "won";
    if (no > this.#conf.voters.length - quorum) return "lost";
    return "pending";
  }

  /** Decides whether a message from a higher term is heeded, moving to that term if so. */
  #acceptHigherTerm(m: Message): boolean {
    if (m.kind === "preVote" || m.kind === "vote") {
      const forced = m.context === TRANSFER_CONTEXT;
      const inLease = (this.#checkQuorum || m.kind === "preVote") && this.leader !== "" &&
        this.#electionElapsed < this.#electionTicks;
      // Thesis §4.2.3: ignore disruptive candidates while a leader is heard from.
      if (!forced && inLease) return false;
    }
    if (m.kind === "preVote") return true; // answering a pre-vote changes no term
    if (m.kind === "preVoteResp" && !m.reject) return true; // our own future term
    const leaderKinds: readonly MessageKind[] = ["append", "heartbeat", "snapshot"];
    this.#becomeFollower(m.term, leaderKinds.includes(m.kind) ? m.from : "");
    return true;
  }

  #answerStaleTerm(m: Message): void {
    if ((this.#checkQuorum || this.#preVote) && (m.kind === "heartbeat" || m.kind === "append")) {
      // Tell a deposed leader our term so it steps down (etcd: its pings
      // would otherwise keep a partitioned pre-voting node silent).
      this.#send(m.from, "appendResp", {});
    } else if (m.kind === "preVote") {
      this.#send(m.from, "preVoteResp", { reject: true });
    }
  }

  #handleVoteRequest(m: Message): void {
    const canVote = this.vote === m.from ||
      (this.vote === "" && this.leader === "") ||
      (m.kind === "preVote" && m.term > this.term);
    const respKind = m.kind === "vote" ? "voteResp" : "preVoteResp";
    // Below the vote floor our log says nothing about what we acknowledged.
    if (canVote && !this.#belowVoteFloor() && this.log.isUpToDate(m.index, m.logTerm)) {
      // §5.2/§5.4.1: grant; a real vote is remembered (persisted before the reply leaves).
      this.#messages.push(message(respKind, this.id, m.from, m.term, {}));
      if (m.kind === "vote") {
        this.#electionElapsed = 0;
        this.vote = m.from;
      }
    } else {
      this.#send(m.from, respKind, { reject: true });
    }
  }

  // ---------------------------------------------------------------- roles: steps

  #stepFollower(m: Message): void {
    switch (m.kind) {
      case "append":
        this.#electionElapsed = 0;
        this.leader = m.from;
        this.#handleAppend(m);
        return;
      case "heartbeat":
        this.#electionElapsed = 0;
        this.leader = m.from;
        this.#handleHeartbeat(m);
        return;
      case "snapshot":
        this.#electionElapsed = 0;
        this.leader = m.from;
        this.#handleSnapshot(m);
        return;
      case "timeoutNow":
        // Leadership transfer (thesis §3.10): campaign at once, skipping pre-vote.
        this.#campaign("vote", true);
        return;
      default:
        return; // late responses from an earlier role
    }
  }

  #stepCandidate(m: Message): void {
    switch (m.kind) {
      case "append":
      case "heartbeat":
      case "snapshot":
        // A leader of our term exists (§5.2): step down and follow it.
        this.#becomeFollower(m.term, m.from);
        this.#stepFollower(m);
        return;
      case "preVoteResp":
      case "voteResp": {
        const expected = this.role === "preCandidate" ? "preVoteResp" : "voteResp";
        if (m.kind !== expected) return;
        const outcome = this.#recordVote(m.from, !m.reject);
        if (outcome === "won") this.#onElectionWon();
        else if (outcome === "lost") this.#becomeFollower(this.term, "");
        return;
      }
      default:
        return;
    }
  }

  #stepLeader(m: Message): void {
    const pr = this.#progress.get(m.from);
    if (pr === undefined) return; // not (or no longer) a member
    switch (m.kind) {
      case "appendResp":
        pr.recentActive = true;
        if (m.reject) this.#handleAppendReject(m, pr);
        else this.#handleAppendSuccess(m, pr);
        return;
      case "heartbeatResp":
        pr.recentActive = true;
        pr.probeSent = false;
        // An append of a full window may have been lost: free a slot so the
        // next one goes out and, if the gap is real, the follower's rejection
        // moves us back to probing (etcd does the same).
        if (pr.state === "replicate" && pr.inflights.full()) pr.inflights.freeFirstOne();
        if (pr.match < this.log.lastIndex()) this.#sendAppend(m.from, true);
        if (m.context !== "") this.#ackRead(m.context, m.from);
        return;
      default:
        return; // append/heartbeat of our own term from elsewhere cannot happen (§5.2)
    }
  }

  // ---------------------------------------------------------------- replication: leader

  #handleAppendReject(m: Message, pr: Progress): void {
    if (m.context === LOG_LOST_CONTEXT && m.rejectHint < pr.match) {
      // The follower lost entries it had acknowledged (its log was emptied to
      // recover from a damaged snapshot): forget them, so they count for no
      // commit, and probe from what it holds (a snapshot if compacted away).
      pr.becomeProbe();
      pr.match = 0;
      pr.next = m.rejectHint + 1;
      this.#sendAppend(m.from, true);
      return;
    }
    // Fast backtracking (§5.3 optimisation; etcd): jump to the follower's hint,
    // then past every entry of ours whose term is above the follower's.
    let hint = m.rejectHint;
    if (m.logTerm > 0) hint = this.log.findConflictByTerm(m.rejectHint, m.logTerm).index;
    if (pr.maybeDecrTo(m.index, hint)) {
      if (pr.state === "replicate") pr.becomeProbe();
      this.#sendAppend(m.from, true);
    }
  }

  #handleAppendSuccess(m: Message, pr: Progress): void {
    const wasPaused = pr.isPaused();
    if (!pr.maybeUpdate(m.index) && !(pr.match === m.index && pr.state === "probe")) return;
    if (pr.state === "probe") pr.becomeReplicate();
    else if (pr.state === "snapshot" && pr.match + 1 >= this.log.firstIndex()) {
      pr.becomeProbe();
      pr.becomeReplicate();
    } else if (pr.state === "replicate") pr.inflights.freeLE(m.index);

    if (this.#maybeCommit()) this.#onCommitAdvanced();
    else if (wasPaused) this.#sendAppend(m.from, true);
    // Fill the pipeline while the window allows.
    while (this.role === "leader" && this.#sendAppend(m.from, false));
    if (m.from === this.#leadTransferee && pr.match === this.log.lastIndex()) {
      this.#send(m.from, "timeoutNow", {});
    }
  }

  /** The leader's own entries reached its disk: it counts itself now (thesis §10.2.1). */
  #onOwnEntriesDurable(): void {
    const self = this.#progress.get(this.id);
    const stableLast = this.log.unstableOffset - 1;
    if (self !== undefined) self.maybeUpdate(stableLast);
    if (this.#maybeCommit()) this.#onCommitAdvanced();
  }

  #maybeCommit(): boolean {
    const matches: number[] = [];
    for (const [id, pr] of this.#progress) {
      if (!pr.learner && this.#conf.voters.includes(id)) matches.push(pr.match);
    }
    // §5.4.2: only an entry of the current term is committed by counting replicas.
    return this.log.maybeCommit(majorityMatch(matches), this.term);
  }

  #onCommitAdvanced(): void {
    this.#broadcastAppend();
    if (this.#committedEntryInCurrentTerm() && this.#pendingReadContexts.length > 0) {
      const contexts = this.#pendingReadContexts;
      this.#pendingReadContexts = [];
      for (const context of contexts) this.#startRead(context);
    }
    // A leader that removed itself steps down once the change commits (thesis §4.2.2).
    if (!this.#conf.voters.includes(this.id) && this.log.committed >= this.#lastConfIndex()) {
      this.#handOffAfterRemoval();
      this.#becomeFollower(this.term, "");
    }
  }

  #handOffAfterRemoval(): void {
    let best: NodeId = "";
    let bestMatch = -1;
    for (const id of this.#conf.voters) {
      const pr = this.#progress.get(id);
      if (pr !== undefined && pr.match > bestMatch) {
        best = id;
        bestMatch = pr.match;
      }
    }
    // Spare the cluster an election timeout when a voter is fully caught up.
    if (best !== "" && bestMatch === this.log.lastIndex()) this.#send(best, "timeoutNow", {});
  }

  #broadcastAppend(): void {
    for (const id of this.#progress.keys()) {
      if (id !== this.id) this.#sendAppend(id, true);
    }
  }

  #broadcastHeartbeat(context: string): void {
    for (const [id, pr] of this.#progress) {
      if (id === this.id) continue;
      this.#messages.push(message("heartbeat", this.id, id, this.term, {
        // Never tell a follower to commit beyond what it is known to hold.
        commit: Math.min(pr.match, this.log.committed),
        context,
      }));
    }
  }

  /**
   * Sends the next append to `to` if flow control allows. Returns true when
   * a message carrying entries (or, with `sendIfEmpty`, an empty one) went.
   */
  #sendAppend(to: NodeId, sendIfEmpty: boolean): boolean {
    const pr = this.#progress.get(to);
    if (pr === undefined || pr.isPaused()) return false;
    const prevIndex = pr.next - 1;
    const prevTerm = this.log.term(prevIndex);
    const lastIndex = this.log.lastIndex();
    const entries = pr.next <= lastIndex
      ? this.log.slice(pr.next, lastIndex + 1, this.#maxBytesPerMsg, this.#maxEntriesPerMsg)
      : EMPTY;
    if (prevTerm === undefined || entries === undefined) return this.#sendSnapshot(to, pr);
    if (entries.length === 0 && !sendIfEmpty) return false;
    const last = entries.at(-1);
    if (last !== undefined) {
      if (pr.state === "replicate") {
        pr.optimisticUpdate(last.index);
        pr.inflights.add(last.index);
      } else if (pr.state === "probe") pr.probeSent = true;
    } else if (pr.state === "probe") pr.probeSent = true;
    this.#messages.push(message("append", this.id, to, this.term, {
      index: prevIndex,
      logTerm: prevTerm,
      entries,
      commit: this.log.committed,
    }));
    return true;
  }

  /** InstallSnapshot (§7): the follower needs entries we compacted. */
  #sendSnapshot(to: NodeId, pr: Progress): boolean {
    if (!pr.recentActive) return false;
    const snapshot = this.log.snapshotMeta();
    assert(
      snapshot.index >= this.log.firstIndex() - 1 && snapshot.index > 0,
      () =>
        `follower ${to} needs entry ${pr.next} but the newest snapshot is ${snapshot.index} (first ${this.log.firstIndex()})`,
    );
    pr.becomeSnapshot(snapshot.index);
    this.#messages.push(message("snapshot", this.id, to, this.term, { snapshot }));
    return true;
  }

  // ---------------------------------------------------------------- replication: follower

  #handleAppend(m: Message): void {
    if (m.index < this.log.committed) {
      this.#send(m.from, "appendResp", { index: this.log.committed });
      return;
    }
    const result = this.log.maybeAppend(m.index, m.logTerm, m.commit, m.entries);
    if (result !== undefined) {
      if (result.changedFrom !== undefined) this.#onLogChanged(result.changedFrom);
      this.#send(m.from, "appendResp", { index: result.lastNewIndex });
      return;
    }
    const hint = this.log.findConflictByTerm(Math.min(m.index, this.log.lastIndex()), m.logTerm);
    this.#send(m.from, "appendResp", {
      index: m.index,
      reject: true,
      rejectHint: hint.index,
      logTerm: hint.term,
      context: this.#belowVoteFloor() ? LOG_LOST_CONTEXT : "",
    });
  }

  #handleHeartbeat(m: Message): void {
    if (m.commit > this.log.lastIndex()) {
      // Only below the vote floor (#validate): the leader still believes we
      // hold entries we lost. Its commit says nothing about our log, so take
      // none of it; answer, and ask it to probe us again.
      this.#send(m.from, "heartbeatResp", { context: m.context });
      this.#send(m.from, "appendResp", {
        index: m.commit,
        reject: true,
        rejectHint: this.log.lastIndex(),
        logTerm: this.log.lastTerm(),
        context: LOG_LOST_CONTEXT,
      });
      return;
    }
    this.log.commitTo(m.commit);
    this.#send(m.from, "heartbeatResp", { context: m.context });
  }

  #handleSnapshot(m: Message): void {
    const meta = m.snapshot;
    assert(meta !== undefined, () => "validated snapshot message without metadata");
    if (meta.index <= this.log.committed) {
      this.#send(m.from, "appendResp", { index: this.log.committed });
      return;
    }
    if (this.log.matchTerm(meta.index, meta.term)) {
      // We already hold the covered entries: just commit them (etcd fast-forward).
      this.log.commitTo(meta.index);
      this.#send(m.from, "appendResp", { index: this.log.lastIndex() });
      return;
    }
    this.log.restore(meta);
    this.#conf = meta.conf;
    this.#confHistory = [{ index: meta.index, conf: meta.conf }];
    this.#resetProgress();
    this.#send(m.from, "appendResp", { index: this.log.lastIndex() });
  }

  // ---------------------------------------------------------------- log and membership

  #appendEntries(items: readonly { kind: Entry["kind"]; data: Uint8Array }[]): void {
    let index = this.log.lastIndex();
    const entries = items.map((item) => ({
      term: this.term,
      index: ++index,
      kind: item.kind,
      data: item.data,
    }));
    const changedFrom = this.log.append(entries);
    this.#uncommittedBytes += entriesBytes(entries);
    this.#onLogChanged(changedFrom);
  }

  /**
   * Entries from `from` on were replaced or added: drop configurations that
   * were truncated and adopt the new ones at once (thesis §4.1).
   */
  #onLogChanged(from: number): void {
    let changed = false;
    while (this.#confHistory.length > 1 && (this.#confHistory.at(-1)?.index ?? 0) >= from) {
      this.#confHistory.pop();
      changed = true;
    }
    const last = this.log.lastIndex();
    const entries = from <= last
      ? this.log.slice(from, last + 1, Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER) ?? []
      : [];
    for (const entry of entries) {
      if (entry.kind !== "config") continue;
      const base = this.#confHistory.at(-1)?.conf ?? EMPTY_CONF;
      this.#confHistory.push({
        index: entry.index,
        conf: applyConfChange(base, decodeConfChange(entry.data)),
      });
      changed = true;
    }
    if (changed) this.#adoptConf(this.#confHistory.at(-1)?.conf ?? EMPTY_CONF);
  }

  #adoptConf(conf: ConfState): void {
    this.#conf = conf;
    if (this.role !== "leader") return;
    const next = this.log.lastIndex() + 1;
    const keep = new Set([...conf.voters, ...conf.learners]);
    for (const id of [...this.#progress.keys()]) {
      if (!keep.has(id)) this.#progress.delete(id);
    }
    for (const id of keep) {
      const learner = conf.learners.includes(id);
      const pr = this.#progress.get(id);
      if (pr === undefined) {
        const fresh = new Progress(next, this.#maxInflight, learner);
        fresh.match = 0;
        fresh.next = Math.max(1, next - 1);
        this.#progress.set(id, fresh);
      } else pr.learner = learner;
    }
    if (this.#leadTransferee !== "" && !conf.voters.includes(this.#leadTransferee)) {
      this.#leadTransferee = "";
    }
  }

  #checkConfChange(cc: ConfChange): void {
    const isVoter = this.#conf.voters.includes(cc.node);
    const isLearner = this.#conf.learners.includes(cc.node);
    if (cc.node === "") throw new ConfChangeError("node id must not be empty");
    if (cc.kind === "addVoter" && isVoter) {
      throw new ConfChangeError(`${cc.node} is already a voter`);
    }
    if (cc.kind === "addLearner" && (isVoter || isLearner)) {
      throw new ConfChangeError(`${cc.node} is already a member`);
    }
    if (cc.kind === "remove") {
      if (!isVoter && !isLearner) throw new ConfChangeError(`${cc.node} is not a member`);
      if (isVoter && this.#conf.voters.length === 1) {
        throw new ConfChangeError(`${cc.node} is the last voter`);
      }
    }
  }

  #lastConfIndex(): number {
    return this.#confHistory.at(-1)?.index ?? 0;
  }

  /** Builds the membership from the newest snapshot plus the config entries after it. */
  #loadConfiguration(storage: LogReader): void {
    const snapshot = storage.snapshotMeta();
    this.#confHistory = [{ index: snapshot.index, conf: snapshot.conf }];
    this.#conf = snapshot.conf;
    const last = storage.lastIndex();
    let lo = Math.max(snapshot.index + 1, storage.firstIndex());
    while (lo <= last) {
      const batch = storage.entries(lo, last + 1, this.#maxBytesPerMsg * 8);
      assert(batch.length > 0, () => `storage returned no entries for [${lo}, ${last + 1})`);
      for (const entry of batch) {
        if (entry.kind !== "config") continue;
        this.#conf = applyConfChange(this.#conf, decodeConfChange(entry.data));
        this.#confHistory.push({ index: entry.index, conf: this.#conf });
      }
      lo += batch.length;
    }
  }

  // ---------------------------------------------------------------- reads

  #committedEntryInCurrentTerm(): boolean {
    return this.log.term(this.log.committed) === this.term;
  }

  #startRead(context: string): void {
    this.#readOnly.add(context, this.log.committed, this.id);
    if (this.#conf.voters.length === 1 && this.#conf.voters[0] === this.id) {
      // A single voter is its own quorum.
      for (const rs of this.#readOnly.releaseAll()) this.#readStates.push(rs);
      return;
    }
    this.#readHeartbeatDue = true;
  }

  #ackRead(context: string, from: NodeId): void {
    const quorum = quorumOf(this.#conf.voters.length);
    const released = this.#readOnly.ack(context, from, (acks) => {
      let count = 0;
      for (const id of this.#conf.voters) if (acks.has(id)) count++;
      return count >= quorum;
    });
    for (const rs of released) this.#readStates.push(rs);
  }

  // ---------------------------------------------------------------- helpers

  /** True while the log ends below the vote floor (RaftConfig.voteFloorIndex). */
  #belowVoteFloor(): boolean {
    return this.log.lastIndex() < this.#voteFloorIndex;
  }

  #requireLeader(): void {
    if (this.role !== "leader") throw new NotLeaderError(this.leader);
  }

  #send(to: NodeId, kind: MessageKind, fields: Partial<Message>): void {
    this.#messages.push(message(kind, this.id, to, this.term, fields));
  }

  #hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.log.committed };
  }

  #softState(): SoftState {
    return { leader: this.leader, role: this.role };
  }

  /** Rejects messages whose shape breaks the protocol; stale ones pass (the rules handle them). */
  #validate(m: Message): void {
    if (m.to !== this.id) throw new InvalidMessageError(`addressed to ${m.to}, not ${this.id}`);
    if (m.from === "" || m.from === this.id) {
      throw new InvalidMessageError(`bad sender "${m.from}"`);
    }
    // Term 0 is legal: a brand-new node answers with the term it has.
    if (!isCount(m.term) || !isCount(m.index) || !isCount(m.logTerm)) {
      throw new InvalidMessageError(`bad term/index in ${m.kind} from ${m.from}`);
    }
    if (!isCount(m.commit) || !isCount(m.rejectHint)) {
      throw new InvalidMessageError(`bad commit/hint in ${m.kind} from ${m.from}`);
    }
    if (!KINDS.has(m.kind)) throw new InvalidMessageError(`unknown kind ${String(m.kind)}`);
    if (m.kind === "heartbeat" && m.commit > this.log.lastIndex() && !this.#belowVoteFloor()) {
      throw new InvalidMessageError(
        `heartbeat commit ${m.commit} beyond last index ${this.log.lastIndex()}`,
      );
    }
    if (m.entries.length > MAX_ENTRIES_PER_RECEIVED_MESSAGE) {
      throw new InvalidMessageError(`${m.entries.length} entries in one message`);
    }
    let expected = m.index + 1;
    let prevTerm = m.logTerm;
    for (const e of m.entries) {
      if (!isCount(e.term) || e.index !== expected || e.term < prevTerm || e.term > m.term) {
        throw new InvalidMessageError(`entries out of order at ${e.index} from ${m.from}`);
      }
      if (!(e.data instanceof Uint8Array) || (e.kind !== "normal" && e.kind !== "config")) {
        throw new InvalidMessageError(`malformed entry ${e.index} from ${m.from}`);
      }
      if (e.kind === "config") {
        try {
          decodeConfChange(e.data);
        } catch {
          throw new InvalidMessageError(`undecodable membership entry ${e.index} from ${m.from}`);
        }
      }
      expected++;
      prevTerm = e.term;
    }
    if (m.kind === "snapshot") {
      const s = m.snapshot;
      if (s === undefined || !isCount(s.index) || s.index === 0 || !isCount(s.term)) {
        throw new InvalidMessageError(`snapshot message from ${m.from} without valid metadata`);
      }
      const ids = (v: unknown) =>
        Array.isArray(v) && v.every((id) => typeof id === "string" && id !== "");
      if (
        typeof s.conf !== "object" || s.conf === null || !ids(s.conf.voters) ||
        !ids(s.conf.learners)
      ) {
        throw new InvalidMessageError(`snapshot message from ${m.from} with malformed membership`);
      }
      const context: unknown = s.conf.context;
      if (
        context !== undefined &&
        (typeof context !== "object" || context === null ||
          !Object.values(context).every((v) => typeof v === "string"))
      ) {
        throw new InvalidMessageError(`snapshot message from ${m.from} with malformed context`);
      }
    }
  }
}

function isCount(n: number): boolean {
  return Number.isSafeInteger(n) && n >= 0;
}

/** Builds a message with every field defaulted. */
export function message(
  kind: MessageKind,
  from: NodeId,
  to: NodeId,
  term: number,
  fields: Partial<Message>,
): Message {
  return {
    kind,
    from,
    to,
    term,
    index: fields.index ?? 0,
    logTerm: fields.logTerm ?? 0,
    entries: fields.entries ?? EMPTY,
    commit: fields.commit ?? 0,
    reject: fields.reject ?? false,
    rejectHint: fields.rejectHint ?? 0,
    snapshot: fields.snapshot,
    context: fields.context ?? "",
  };
}

function sameHardState(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}

function sameSoftState(a: SoftState, b: SoftState): boolean {
  return a.leader === b.leader && a.role === b.role;
}
