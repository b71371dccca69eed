/**
 * Types shared by the pure Raft core and its driver.
 *
 * Everything here is plain data: the driver persists, sends and applies these
 * values; the core never touches the world. Indexes and terms are plain
 * numbers (safe integers); index 0 / term 0 mean "nothing".
 *
 * @module
 */

/** A node's identity. rqlite uses strings (by default the Raft address). */
export type NodeId = string;

/** Kinds of log entries. */
export type EntryKind = "normal" | "config";

/**
 * One log entry. `normal` entries carry application commands (an empty
 * `data` is the no-op a new leader appends, §5.4.2 / thesis §6.4); `config`
 * entries carry an encoded {@link ConfChange} (see `encodeConfChange`).
 */
export interface Entry {
  readonly term: number;
  readonly index: number;
  readonly kind: EntryKind;
  readonly data: Uint8Array;
}

/** State that must be durable before any message that depends on it leaves. */
export interface HardState {
  readonly term: number;
  /** Whom this node voted for in `term`, or "" for nobody. */
  readonly vote: NodeId;
  /** Highest index known committed (persisted so restarts apply less eagerly; may lag). */
  readonly commit: number;
}

/** The cluster membership: voters decide, learners (non-voters) only receive the log. */
export interface ConfState {
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
  /**
   * Opaque per-member context from the membership changes that added them
   * (rqlite: the node's Raft address). The core carries it, never reads it;
   * it travels in snapshot metadata like the rest of the configuration.
   */
  readonly context?: Readonly<Record<NodeId, string>>;
}

/** Kinds of single-server membership changes (thesis §4.1). */
export type ConfChangeKind = "addVoter" | "addLearner" | "remove";

/** One membership change; `addVoter` of an existing learner promotes it. */
export interface ConfChange {
  readonly kind: ConfChangeKind;
  readonly node: NodeId;
  /** Opaque application context carried to every node (rqlite: node meta such as addresses). */
  readonly context?: string;
}

/** Metadata of a snapshot: the last entry it covers and the membership at that point. */
export interface SnapshotMeta {
  readonly index: number;
  readonly term: number;
  readonly conf: ConfState;
}

/**
 * Every message kind exchanged between Raft nodes, in a fixed order (the
 * transport's wire codes are positions in this list: append only).
 */
export const MESSAGE_KINDS = [
  "preVote",
  "preVoteResp",
  "vote",
  "voteResp",
  "append",
  "appendResp",
  "heartbeat",
  "heartbeatResp",
  "snapshot",
  "timeoutNow",
] as const;

/** Message kinds exchanged between Raft nodes. */
export type MessageKind = typeof MESSAGE_KINDS[number];

/**
 * A Raft message. One flat shape (as etcd's raftpb.Message) keeps codecs and
 * the simulator simple; each kind uses the fields documented on it.
 */
export interface Message {
  readonly kind: MessageKind;
  readonly from: NodeId;
  readonly to: NodeId;
  readonly term: number;
  /**
   * append: index of the entry before `entries` (prevLogIndex).
   * appendResp: on success the highest index now matching; on reject the
   *   rejected prevLogIndex. vote/preVote: candidate's last log index.
   */
  readonly index: number;
  /**
   * append: term of the entry at `index` (prevLogTerm). vote/preVote:
   * candidate's last log term. appendResp on reject: term of the follower's
   * entry at `rejectHint` (for fast backtracking).
   */
  readonly logTerm: number;
  /** append: entries to append. */
  readonly entries: readonly Entry[];
  /** append/heartbeat: leader's commit index (heartbeat: min(match, commit)). */
  readonly commit: number;
  /** appendResp/voteResp/preVoteResp: true when refused. */
  readonly reject: boolean;
  /** appendResp on reject: follower's hint of where the logs may match. */
  readonly rejectHint: number;
  /** snapshot: metadata of the snapshot whose data travels beside the message. */
  readonly snapshot?: SnapshotMeta;
  /** heartbeat/heartbeatResp: ReadIndex context ("" for none). */
  readonly context: string;
}

/** The role of a node. */
export type Role = "follower" | "preCandidate" | "candidate" | "leader";

/** Volatile state that the driver may want to observe (not persisted). */
export interface SoftState {
  readonly leader: NodeId;
  readonly role: Role;
}

/** A released linearizable read: serve it once `appliedIndex >= index`. */
export interface ReadState {
  readonly index: number;
  readonly context: string;
}

/**
 * Everything the driver must do, in this order (ARCHITECTURE §2):
 * 1. persist `snapshot` (if any), then `hardState` (if any) and `entries`
 *    (truncating any stored suffix from `entries[0].index`), durably;
 * 2. send `messages`;
 * 3. apply `committedEntries` (restore `snapshot` data first if present);
 * 4. call `advance(ready)`.
 * `readStates` are served once the state machine has applied their index.
 */
export interface Ready {
  readonly softState?: SoftState;
  readonly hardState?: HardState;
  readonly snapshot?: SnapshotMeta;
  readonly entries: readonly Entry[];
  readonly messages: readonly Message[];
  readonly committedEntries: readonly Entry[];
  readonly readStates: readonly ReadState[];
}

/**
 * Read-only view of the durable log the core consults (etcd's Storage). All
 * methods are synchronous; the driver's store serves them from memory or
 * with synchronous reads.
 */
export interface LogReader {
  /**
   * Index of the first entry still stored. Entries before it were compacted
   * away; a snapshot covering them exists (`firstIndex() - 1 <= snapshotMeta().index`).
   */
  firstIndex(): number;
  /** Index of the last stored entry (`firstIndex() - 1` when the log is empty). */
  lastIndex(): number;
  /** Term of entry `index`; valid for `firstIndex() - 1 ... lastIndex()`. */
  term(index: number): number;
  /** Entries in [lo, hi) within the stored range: at least one, then up to `maxBytes` of data in all. */
  entries(lo: number, hi: number, maxBytes: number): Entry[];
  /**
   * The newest stored snapshot (index 0, term 0, empty conf when none). It is
   * what the leader sends to followers behind `firstIndex()`, and its
   * configuration plus the config entries after it give the membership.
   */
  snapshotMeta(): SnapshotMeta;
}

/** Deterministic random source injected into the core (election jitter). */
export interface RandomSource {
  /** Uniform integer in [0, n). */
  nextInt(n: number): number;
}
