/**
 * Linearizability checker for a key/value register history (Porcupine-style).
 *
 * Owns: deciding whether a concurrent history of reads, writes and
 * compare-and-sets on string-keyed registers is linearizable, used by the
 * simulator and by real-process fault tests (ARCHITECTURE §3, §9).
 *
 * How: P-compositionality splits the history per key (linearizability is
 * local, Herlihy & Wing), and each key is checked by the Wing & Gong search
 * over an entry list of call/return events sorted by time, with Lowe's cache
 * of (linearized set, state) pairs already explored, as Porcupine does.
 * Two sound prunings keep it fast: a read (or failed cas) that fits the
 * current state is linearized at once without branching (it changes no
 * state, so any valid order can be rearranged to take it now), and pending
 * writes whose value nobody observes are dropped before the search.
 * Refuting a history is costlier than accepting one: every (set, state)
 * configuration up to the violation must be explored.
 *
 * Invariants and bounds:
 * - Pure and deterministic: no I/O, no clock, no Math.random (the Zobrist
 *   hashes come from a fixed-seed generator); the same history gives the same
 *   verdict and the same counterexample.
 * - Bounded: the search stops after `maxStepsPerKey` steps or after the cache
 *   holds `maxCacheWordsPerKey` 32-bit words and answers "unknown" rather than
 *   hang or exhaust memory. Cached sets are stored compactly (only the words
 *   between the lowest unlinearized op and the highest linearized op), so a
 *   history of n ops with concurrency c costs about O(n * c) words, not O(n²).
 * - Real time: op A precedes op B only when A.returnMs < B.callMs; ops that
 *   touch at the same millisecond are treated as concurrent (the lenient
 *   choice: the checker never reports a false violation because of clock
 *   granularity).
 * - Unknown outcomes (returnMs = Infinity): reads are dropped (they constrain
 *   nothing); writes and cas may take effect at any point after their call or
 *   never (never == linearized after everything else, which is always legal).
 *
 * @module
 */

/** One client operation on a key/value register. */
export interface Operation {
  /** Unique id of the operation within the history. */
  readonly id: number;
  /** Client (process) that issued it; informational (clients may pipeline). */
  readonly client: number;
  readonly key: string;
  readonly kind: "read" | "write" | "cas";
  /** write: the new value; cas: the new value on success. */
  readonly value?: string;
  /** cas: the value that must be current for it to succeed (undefined = absent). */
  readonly expected?: string;
  /** read: the value read, null when the key was absent; undefined = unknown (op dropped). */
  readonly output?: string | null;
  /**
   * cas: whether it succeeded. undefined = not reported: a completed cas still
   * ran inside [callMs, returnMs] (so it succeeded iff the value matched); a
   * pending one may also never run.
   */
  readonly ok?: boolean;
  /** Time the client invoked the op. */
  readonly callMs: number;
  /** Time the client saw the response; Infinity when the outcome is unknown. */
  readonly returnMs: number;
}

/** Bounds of {@link checkLinearizable}. */
export interface CheckOptions {
  /**
   * Search steps allowed per key before answering "unknown" (default 2,000,000,
   * roughly 0.5 s). After a violation is found, shrinking the counterexample
   * may spend up to the same budget again.
   */
  readonly maxStepsPerKey?: number;
  /** Words (32-bit) the per-key cache may hold before answering "unknown" (default 2^24 = 64 MiB). */
  readonly maxCacheWordsPerKey?: number;
}

/** Verdict of {@link checkLinearizable}. */
export type CheckResult =
  | { readonly ok: true }
  | {
    readonly ok: false;
    readonly key: string;
    readonly reason: string;
    /** A short failing prefix (by call time) of the key's history: itself not linearizable. */
    readonly ops: Operation[];
  }
  | { readonly ok: "unknown"; readonly key: string; readonly reason: string };

/** Default search budget per key. */
export const DEFAULT_MAX_STEPS_PER_KEY = 2_000_000;
/** Default cache budget per key, in 32-bit words. */
export const DEFAULT_MAX_CACHE_WORDS_PER_KEY = 1 << 24;

/**
 * Checks that `ops` is linearizable with respect to a register per key whose
 * initial value is absent (null). Keys are checked independently in sorted
 * order; a failing key wins over an unknown one. Throws `TypeError` on a
 * malformed operation (bad times, missing values, duplicate ids).
 */
export function checkLinearizable(
  ops: readonly Operation[],
  options: CheckOptions = {},
): CheckResult {
  validateHistory(ops);
  const budget = {
    steps: options.maxStepsPerKey ?? DEFAULT_MAX_STEPS_PER_KEY,
    cacheWords: options.maxCacheWordsPerKey ?? DEFAULT_MAX_CACHE_WORDS_PER_KEY,
  };
  let unknown: CheckResult | undefined;
  for (const [key, keyOps] of partitionByKey(ops)) {
    const verdict = checkKey(key, keyOps, budget);
    if (verdict.ok === false) return verdict;
    if (verdict.ok === "unknown" && unknown === undefined) unknown = verdict;
  }
  return unknown ?? { ok: true };
}

/** Renders an operation compactly for messages, e.g. `#7 c2 write(k)="b" [10, 12]`. */
export function describeOperation(op: Operation): string {
  const q = (v: string | null | undefined) => (v === undefined ? "?" : JSON.stringify(v));
  let body: string;
  if (op.kind === "read") body = `read(${op.key})->${q(op.output)}`;
  else if (op.kind === "write") body = `write(${op.key})=${q(op.value)}`;
  else {
    const outcome = op.ok === undefined ? "?" : String(op.ok);
    body = `cas(${op.key}, ${q(op.expected ?? null)}->${q(op.value)})=${outcome}`;
  }
  const end = op.returnMs === Infinity ? "pending" : String(op.returnMs);
  return `#${op.id} c${op.client} ${body} [${op.callMs}, ${end}]`;
}

// ---------------------------------------------------------------------------
// Validation and partitioning

function validateHistory(ops: readonly Operation[]): void {
  const ids = new Set<number>();
  for (const op of ops) {
    validateOperation(op);
    if (ids.has(op.id)) throw new TypeError(`duplicate operation id ${op.id}`);
    ids.add(op.id);
  }
}

function validateOperation(op: Operation): void {
  const bad = (what: string) => new TypeError(`operation #${op.id}: ${what}`);
  if (!Number.isFinite(op.callMs)) throw bad(`callMs must be finite, got ${op.callMs}`);
  if (Number.isNaN(op.returnMs) || op.returnMs < op.callMs) {
    throw bad(`returnMs (${op.returnMs}) must be >= callMs (${op.callMs}) or Infinity`);
  }
  if (op.kind === "read") return;
  if (op.kind !== "write" && op.kind !== "cas") throw bad(`unknown kind ${String(op.kind)}`);
  if (typeof op.value !== "string") throw bad(`${op.kind} needs a string value`);
}

/** Groups ops per key (keys sorted), dropping ops that constrain nothing. */
function partitionByKey(ops: readonly Operation[]): Map<string, Operation[]> {
  const byKey = new Map<string, Operation[]>();
  for (const op of ops) {
    if (op.kind === "read" && (op.returnMs === Infinity || op.output === undefined)) continue;
    const list = byKey.get(op.key);
    if (list === undefined) byKey.set(op.key, [op]);
    else list.push(op);
  }
  const keys = [...byKey.keys()].sort();
  return new Map(keys.map((k) => [k, byKey.get(k)!]));
}

// ---------------------------------------------------------------------------
// Per-key check: quick scan, search, shrink

interface Budget {
  steps: number;
  readonly cacheWords: number;
}

function checkKey(key: string, ops: Operation[], budget: Budget): CheckResult {
  const sorted = [...ops].sort((a, b) => a.callMs - b.callMs || a.id - b.id);
  const phantom = findPhantomObservation(sorted);
  if (phantom !== undefined) {
    return { ok: false, key, reason: phantom.reason, ops: [phantom.op] };
  }
  const relevant = dropUnobservedPending(sorted);
  const outcome = search(relevant, budget.steps, budget.cacheWords);
  if (outcome.kind === "ok") return { ok: true };
  if (outcome.kind === "unknown") return { ok: "unknown", key, reason: outcome.reason };
  const prefix = shrinkToFailingPrefix(relevant, outcome.stuck, budget);
  const reason = `history of key ${JSON.stringify(key)} (${sorted.length} ops) is not ` +
    `linearizable: after linearizing at most ${outcome.depth} ops no order can place ` +
    `${describeOperation(outcome.stuck)}; shortest failing prefix has ${prefix.length} ops`;
  return { ok: false, key, reason, ops: prefix };
}

/**
 * A read (or successful cas) observing a value no write or cas invoked before
 * its return could have produced: not linearizable, and easy to explain.
 */
function findPhantomObservation(
  sorted: Operation[],
): { op: Operation; reason: string } | undefined {
  const firstWriteMs = new Map<string, number>();
  for (const op of sorted) {
    if (op.kind !== "read" && !firstWriteMs.has(op.value!)) firstWriteMs.set(op.value!, op.callMs);
  }
  for (const op of sorted) {
    const casSucceeded = op.kind === "cas" && op.ok === true && op.returnMs !== Infinity;
    const seen = op.kind === "read" ? op.output : casSucceeded ? op.expected : null;
    if (seen === null || seen === undefined) continue;
    const writtenMs = firstWriteMs.get(seen);
    if (writtenMs === undefined || writtenMs > op.returnMs) {
      const reason = `${describeOperation(op)} observed ${JSON.stringify(seen)}, a value ` +
        `no write or cas on key ${JSON.stringify(op.key)} produced before it returned`;
      return { op, reason };
    }
  }
  return undefined;
}

/**
 * Removes pending writes and cas whose new value nobody observes: no read
 * returns it, and no remaining cas expects it. Sound: in a linearization
 * using such an op W (value v), the ops between W and the next write could
 * only be reads of v or cas expecting v (none exist) or no-op cas; dropping W
 * changes the state those no-op cas see from v back to the previous value u,
 * which matters only for a completed cas with ok false/unknown expecting u,
 * so nothing is dropped when a key has such a cas expecting a value that is
 * ever current (null or written). Pending cas that are no-ops are dropped
 * with W. Dropping a pending cas may leave another value unobserved, hence
 * the worklist. Keeps the search from branching on ops that cannot matter.
 */
function dropUnobservedPending(sorted: Operation[]): Operation[] {
  const written = new Set<string | null>([null]);
  for (const op of sorted) if (op.kind !== "read") written.add(op.value!);
  const observers = new Map<string, number>();
  const observe = (v: string | null | undefined, d: number) => {
    if (v !== null && v !== undefined) observers.set(v, (observers.get(v) ?? 0) + d);
  };
  for (const op of sorted) {
    if (op.kind === "read") observe(op.output, 1);
    else if (op.kind === "cas") observe(op.expected, 1);
    const negative = op.kind === "cas" && op.returnMs !== Infinity && op.ok !== true;
    if (negative && written.has(op.expected ?? null)) return sorted;
  }
  const pendingByValue = new Map<string, Operation[]>();
  for (const op of sorted) {
    if (op.kind === "read" || op.returnMs !== Infinity) continue;
    const same = pendingByValue.get(op.value!);
    if (same === undefined) pendingByValue.set(op.value!, [op]);
    else same.push(op);
  }
  const dropped = new Set<Operation>();
  const work = [...pendingByValue.values()].flat();
  for (let op = work.pop(); op !== undefined; op = work.pop()) {
    if (dropped.has(op) || (observers.get(op.value!) ?? 0) > 0) continue;
    dropped.add(op);
    if (op.kind !== "cas" || op.expected === undefined) continue;
    observe(op.expected, -1);
    if (observers.get(op.expected) === 0) work.push(...(pendingByValue.get(op.expected) ?? []));
  }
  return dropped.size === 0 ? sorted : sorted.filter((op) => !dropped.has(op));
}

/**
 * Shortest failing prefix (ops sorted by call time): first probes the prefix
 * that ends where the search got stuck (usually the violation), then binary
 * searches below the shortest known failing prefix. Not every prefix of a
 * failing history fails, so only prefixes verified to fail are kept; the
 * whole shrink shares one search budget.
 */
function shrinkToFailingPrefix(sorted: Operation[], stuck: Operation, budget: Budget): Operation[] {
  let stepsLeft = budget.steps;
  const fails = (length: number) => {
    const outcome = search(sorted.slice(0, length), stepsLeft, budget.cacheWords);
    stepsLeft -= outcome.steps;
    return outcome.kind === "fail";
  };
  let hi = sorted.length; // the prefix of length hi fails
  const probe = sorted.findIndex((op) => op.callMs > stuck.returnMs);
  if (probe > 0 && probe < hi && fails(probe)) hi = probe;
  let lo = 0; // prefixes of length <= lo are not known to fail
  while (hi - lo > 1 && stepsLeft > 0) {
    const mid = (lo + hi) >>> 1;
    if (fails(mid)) hi = mid;
    else lo = mid;
  }
  return sorted.slice(0, hi);
}

// ---------------------------------------------------------------------------
// The register model, over interned state ids (0 = absent)

const READ = 0, WRITE = 1, CAS_OK = 2, CAS_FAIL = 3, CAS_ANY = 4;
const REJECT = -1;

interface Model {
  /** Per op: READ / WRITE / CAS_*. */
  readonly code: Uint8Array;
  /** Per op: read output, write value, cas expected (state ids). */
  readonly argA: Int32Array;
  /** Per op: cas new value (state id). */
  readonly argB: Int32Array;
  /** Per op: 1 when the outcome is unknown (may be skipped). */
  readonly pending: Uint8Array;
}

function buildModel(ops: Operation[]): Model {
  const ids = new Map<string, number>();
  const intern = (v: string | null | undefined) => {
    if (v === null || v === undefined) return 0;
    let id = ids.get(v);
    if (id === undefined) ids.set(v, id = ids.size + 1);
    return id;
  };
  const n = ops.length;
  const model: Model = {
    code: new Uint8Array(n),
    argA: new Int32Array(n),
    argB: new Int32Array(n),
    pending: new Uint8Array(n),
  };
  ops.forEach((op, i) => {
    const pending = op.returnMs === Infinity;
    model.pending[i] = pending ? 1 : 0;
    model.code[i] = opCode(op, pending);
    model.argA[i] = intern(
      op.kind === "read" ? op.output : op.kind === "write" ? op.value : op.expected,
    );
    model.argB[i] = op.kind === "cas" ? intern(op.value) : 0;
  });
  return model;
}

function opCode(op: Operation, pending: boolean): number {
  if (op.kind === "read") return READ;
  if (op.kind === "write") return WRITE;
  if (pending || op.ok === undefined) return CAS_ANY;
  return op.ok ? CAS_OK : CAS_FAIL;
}

/** The register's transition: next state id, or REJECT when the op's output is impossible. */
function step(model: Model, state: number, op: number): number {
  const a = model.argA[op]!;
  switch (model.code[op]) {
    case READ:
      return state === a ? state : REJECT;
    case WRITE:
      return a;
    case CAS_OK:
      return state === a ? model.argB[op]! : REJECT;
    case CAS_FAIL:
      return state !== a ? state : REJECT;
    default: // CAS_ANY: whatever happened is what the register did
      return state === a ? model.argB[op]! : state;
  }
}

// ---------------------------------------------------------------------------
// Entry list: a doubly linked list of call/return events sorted by time

const HEAD = 0;

interface EntryList {
  readonly next: Int32Array;
  readonly prev: Int32Array;
  /** Per node: the op index. */
  readonly opOf: Int32Array;
  /** Per node: the matching return node for a call node, -1 for a return node. */
  readonly match: Int32Array;
  readonly tail: number;
}

function buildEntryList(ops: Operation[]): EntryList {
  const n = ops.length;
  const events: { time: number; isReturn: number; op: number }[] = [];
  ops.forEach((op, i) => {
    events.push({ time: op.callMs, isReturn: 0, op: i });
    events.push({ time: op.returnMs, isReturn: 1, op: i });
  });
  // Calls before returns at equal times: touching ops are concurrent.
  events.sort((x, y) => x.time - y.time || x.isReturn - y.isReturn || x.op - y.op);
  const tail = 2 * n + 1;
  const list: EntryList = {
    next: new Int32Array(tail + 1),
    prev: new Int32Array(tail + 1),
    opOf: new Int32Array(tail + 1).fill(-1),
    match: new Int32Array(tail + 1).fill(-1),
    tail,
  };
  const callNode = new Int32Array(n);
  events.forEach((e, k) => {
    const node = k + 1;
    list.opOf[node] = e.op;
    if (e.isReturn) list.match[callNode[e.op]!] = node;
    else callNode[e.op] = node;
  });
  for (let node = 0; node <= tail; node++) {
    list.next[node] = node + 1;
    list.prev[node] = node - 1;
  }
  return list;
}

/** Removes a call node and its return node (the op is linearized). */
function lift(list: EntryList, call: number): void {
  const { next, prev } = list;
  const ret = list.match[call]!;
  next[prev[call]!] = next[call]!;
  prev[next[call]!] = prev[call]!;
  next[prev[ret]!] = next[ret]!;
  prev[next[ret]!] = prev[ret]!;
}

/** Undoes {@link lift}: the removed nodes still point at their old neighbours. */
function unlift(list: EntryList, call: number): void {
  const { next, prev } = list;
  const ret = list.match[call]!;
  next[prev[ret]!] = ret;
  prev[next[ret]!] = ret;
  next[prev[call]!] = call;
  prev[next[call]!] = call;
}

// ---------------------------------------------------------------------------
// Linearized set with an incremental Zobrist hash and a compact snapshot

/**
 * A bitset that tracks its lowest not-all-ones word (`lo`) and highest
 * non-zero word (`hi`), so a snapshot needs only the words in between: ops
 * are numbered by call time and get linearized roughly in that order.
 */
class Region {
  readonly words: Uint32Array;
  lo = 0;
  hi = -1;
  constructor(bits: number) {
    this.words = new Uint32Array(Math.max(1, Math.ceil(bits / 32)));
  }

  toggle(bit: number): void {
    const w = bit >>> 5;
    const word = (this.words[w]! ^ (1 << (bit & 31))) >>> 0;
    this.words[w] = word;
    if (word !== 0 && w > this.hi) this.hi = w;
    while (this.hi >= 0 && this.words[this.hi] === 0) this.hi--;
    if (word !== 0xffffffff && w < this.lo) this.lo = w;
    while (this.lo < this.words.length && this.words[this.lo] === 0xffffffff) this.lo++;
  }

  /** Words lo..hi: everything below lo is all ones, everything above hi zero. */
  compact(): Uint32Array {
    return this.words.slice(this.lo, Math.max(this.lo, this.hi + 1));
  }

  equals(lo: number, compact: Uint32Array): boolean {
    const len = Math.max(0, this.hi - this.lo + 1);
    if (lo !== this.lo || compact.length !== len) return false;
    for (let i = 0; i < len; i++) if (compact[i] !== this.words[lo + i]) return false;
    return true;
  }
}

/**
 * The set of linearized ops. Completed ops (0..completed-1) and pending ops
 * live in separate regions: a pending op may stay unlinearized for the whole
 * search, and in a shared region it would pin `lo` and make every snapshot
 * span the history.
 */
class OpSet {
  readonly done: Region;
  readonly pending: Region;
  hash = 0;
  constructor(readonly completed: number, total: number, private readonly zobrist: Int32Array) {
    this.done = new Region(completed);
    this.pending = new Region(total - completed);
  }

  toggle(op: number): void {
    this.hash ^= this.zobrist[op]!;
    if (op < this.completed) this.done.toggle(op);
    else this.pending.toggle(op - this.completed);
  }
}

function zobristTable(n: number): Int32Array {
  const table = new Int32Array(n);
  let s = 0x9e3779b9; // fixed seed: verdicts are reproducible
  for (let i = 0; i < n; i++) {
    // splitmix32
    s = (s + 0x9e3779b9) | 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    table[i] = z ^ (z >>> 16);
  }
  return table;
}

interface CacheEntry {
  readonly state: number;
  readonly doneLo: number;
  readonly done: Uint32Array;
  readonly pendingLo: number;
  readonly pending: Uint32Array;
}

/** Lowe's cache: (linearized set, state) pairs already explored. */
class SearchCache {
  private readonly buckets = new Map<number, CacheEntry[]>();
  words = 0;

  /** Adds the pair; false when it was already present. */
  insert(set: OpSet, state: number): boolean {
    const key = (set.hash ^ Math.imul(state + 1, 0x9e3779b1)) | 0;
    let bucket = this.buckets.get(key);
    if (bucket === undefined) this.buckets.set(key, bucket = []);
    for (const e of bucket) {
      if (
        e.state === state && set.done.equals(e.doneLo, e.done) &&
        set.pending.equals(e.pendingLo, e.pending)
      ) return false;
    }
    const done = set.done.compact();
    const pending = set.pending.compact();
    bucket.push({ state, doneLo: set.done.lo, done, pendingLo: set.pending.lo, pending });
    this.words += done.length + pending.length + 8; // + rough per-entry overhead
    return true;
  }
}

// ---------------------------------------------------------------------------
// Wing & Gong search with Lowe's cache

type SearchOutcome =
  & { readonly steps: number }
  & (
    | { readonly kind: "ok" }
    | { readonly kind: "fail"; readonly depth: number; readonly stuck: Operation }
    | { readonly kind: "unknown"; readonly reason: string }
  );

interface Frame {
  readonly call: number;
  readonly state: number;
  /** Linearized without branching (see {@link findForcedCall}): never an alternative point. */
  readonly forced: boolean;
}

/** The mutable state of one depth-first search. */
class Search {
  readonly model: Model;
  readonly list: EntryList;
  readonly set: OpSet;
  readonly cache = new SearchCache();
  readonly stack: Frame[] = [];
  state = 0;
  completedLeft: number;
  steps = 0;
  deepest = { depth: -1, op: 0 };

  readonly ops: Operation[];

  constructor(sorted: Operation[]) {
    const isPending = (op: Operation) => op.returnMs === Infinity;
    const ops = [...sorted.filter((op) => !isPending(op)), ...sorted.filter(isPending)];
    this.ops = ops;
    this.model = buildModel(ops);
    this.list = buildEntryList(ops);
    this.completedLeft = ops.length - this.model.pending.reduce((a, b) => a + b, 0);
    this.set = new OpSet(this.completedLeft, ops.length, zobristTable(ops.length));
  }

  /** Linearizes the op of `call` now unless (set, state) was explored already. */
  tryLift(call: number, next: number, forced: boolean): boolean {
    const op = this.list.opOf[call]!;
    this.set.toggle(op);
    if (!this.cache.insert(this.set, next)) {
      this.set.toggle(op);
      return false;
    }
    this.stack.push({ call, state: this.state, forced });
    this.state = next;
    lift(this.list, call);
    this.completedLeft -= 1 - this.model.pending[op]!;
    return true;
  }

  /** Undoes frames up to the newest alternative point; returns where to resume, or -1. */
  backtrack(): number {
    for (let top = this.stack.pop(); top !== undefined; top = this.stack.pop()) {
      const op = this.list.opOf[top.call]!;
      this.state = top.state;
      this.set.toggle(op);
      unlift(this.list, top.call);
      this.completedLeft += 1 - this.model.pending[op]!;
      if (!top.forced) return this.list.next[top.call]!;
    }
    return -1;
  }

  /**
   * A candidate (a call before the first pending return) that reads the
   * current state or fails a cas against it. Linearizing it now loses
   * nothing: it leaves the state unchanged, so in any valid linearization
   * extending this prefix it can be moved here. -1 when there is none.
   */
  findForcedCall(): number {
    const { list, model } = this;
    for (let node = list.next[HEAD]!; list.match[node] !== -1; node = list.next[node]!) {
      this.steps++;
      const op = list.opOf[node]!;
      const code = model.code[op];
      if ((code === READ || code === CAS_FAIL) && step(model, this.state, op) !== REJECT) {
        return node;
      }
    }
    return -1;
  }

  noteStuck(entry: number): void {
    if (this.stack.length > this.deepest.depth) {
      this.deepest = { depth: this.stack.length, op: this.list.opOf[entry]! };
    }
  }
}

/**
 * Explores linearizations of `ops` (completed ops sorted by call time, then
 * pending ones) depth-first: at each
 * prefix it first takes a forced op if there is one, otherwise tries the
 * candidate calls in list order, and backtracks on reaching a return whose op
 * is not linearized. (The scan always meets a completed op's return before
 * the tail: pending ops return at Infinity.)
 */
function search(ops: Operation[], maxSteps: number, maxCacheWords: number): SearchOutcome {
  const s = new Search(ops);
  const { list, model } = s;
  let entry = HEAD; // HEAD means: at a fresh prefix
  while (s.completedLeft > 0) {
    if (s.steps++ >= maxSteps) return budgetExceeded(`${maxSteps} search steps`, s);
    if (s.cache.words > maxCacheWords) return budgetExceeded(`${maxCacheWords} cache words`, s);
    if (entry === HEAD) {
      const forced = s.findForcedCall();
      if (forced === -1) entry = list.next[HEAD]!;
      else if (!s.tryLift(forced, s.state, true)) entry = s.backtrack(); // seen: a dead end
      if (entry === -1) return failed(s);
      continue;
    }
    if (entry === list.tail) throw new Error("linearizability: scan ran past the last return");
    if (list.match[entry] !== -1) { // a call: try to linearize it now
      const next = step(model, s.state, list.opOf[entry]!);
      if (next !== REJECT && s.tryLift(entry, next, false)) entry = HEAD;
      else entry = list.next[entry]!;
      continue;
    }
    s.noteStuck(entry); // a return whose op is not linearized yet
    entry = s.backtrack();
    if (entry === -1) return failed(s);
  }
  return { kind: "ok", steps: s.steps };
}

function failed(s: Search): SearchOutcome {
  return { kind: "fail", depth: s.deepest.depth, stuck: s.ops[s.deepest.op]!, steps: s.steps };
}

function budgetExceeded(what: string, s: Search): SearchOutcome {
  const reason = `search of ${s.ops.length} ops exceeded ${what} without a verdict`;
  return { kind: "unknown", reason, steps: s.steps };
}
