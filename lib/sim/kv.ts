/**
 * The simulator's replicated state machine: a string key/value map.
 *
 * Commands are bytes (a small JSON object): `put`, `cas` (compare-and-set,
 * `expected: null` meaning "absent"), `get` (a read proposed through the
 * log: its result is the value at apply time) and `noop`; each carries the
 * client's operation id for traces. Empty entries (a new leader's no-op) and
 * config entries change nothing and yield `undefined`.
 *
 * Like the production SQLite state machine (which lives in a worker), work
 * is asynchronous and FIFO: apply, snapshot and restore requests complete in
 * the order issued, each after a small random latency, and the state changes
 * when a request completes. Applies must be contiguous (`index ===
 * appliedIndex + 1`) and a restored snapshot must carry the index it claims:
 * a driver that skips, repeats or mislabels entries fails loudly here.
 *
 * {@link KvStateMachine.stateHash} (FNV-1a over the sorted entries and the
 * applied index) lets the checker compare replicas at equal applied indexes.
 *
 * @module
 */

import type { Done, StateMachine } from "../node/interfaces.ts";
import type { Entry, SnapshotMeta } from "../raft/types.ts";
import type { Scope } from "./events.ts";
import type { Prng } from "./prng.ts";

/** A command of the key/value state machine. */
export type KvCommand =
  | { readonly op: "put"; readonly id: string; readonly key: string; readonly value: string }
  | {
    readonly op: "cas";
    readonly id: string;
    readonly key: string;
    readonly expected: string | null;
    readonly value: string;
  }
  | { readonly op: "get"; readonly id: string; readonly key: string }
  | { readonly op: "noop"; readonly id: string };

/** Result of applying a command: whether it took effect and the value it saw. */
export interface KvResult {
  /** put, get, noop: true; cas: whether the comparison held (and the write happened). */
  readonly ok: boolean;
  /** put: the value written; cas and get: the value before / at apply time. */
  readonly value: string | null;
  readonly id: string;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Encodes a command as entry data. */
export function encodeCommand(cmd: KvCommand): Uint8Array {
  return encoder.encode(JSON.stringify(cmd));
}

/** Decodes entry data written by {@link encodeCommand}; throws on anything else. */
export function decodeCommand(data: Uint8Array): KvCommand {
  const value: unknown = JSON.parse(decoder.decode(data));
  if (typeof value !== "object" || value === null || !("op" in value) || !("id" in value)) {
    throw new Error(`malformed kv command: ${decoder.decode(data).slice(0, 200)}`);
  }
  return value as KvCommand;
}

/** FNV-1a (32-bit) continued over `text`. */
function fnv(hash: number, text: string): number {
  let h = hash;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/** Latency of state machine work and observation hooks. */
export interface KvOptions {
  /** Maximum latency of one request (uniform in [0, latencyMaxMs]). */
  latencyMaxMs: number;
  /** After a batch of entries changed the state (the checker watches here). */
  onApplied?: (entries: readonly Entry[], kv: KvStateMachine) => void;
  /** After a snapshot replaced the state. */
  onRestored?: (meta: SnapshotMeta, kv: KvStateMachine) => void;
}

interface SnapshotImage {
  readonly index: number;
  readonly entries: readonly (readonly [string, string])[];
}

/** The key/value state machine of one node incarnation. */
export class KvStateMachine implements StateMachine {
  #data = new Map<string, string>();
  #appliedIndex = 0;
  #busyUntilMs = 0;
  applies = 0;

  constructor(
    readonly name: string,
    readonly scope: Scope,
    readonly rng: Prng,
    readonly options: KvOptions = { latencyMaxMs: 1 },
  ) {}

  /** Index of the last entry whose effects are in the map. */
  get appliedIndex(): number {
    return this.#appliedIndex;
  }

  /** The value of `key` now (a local, possibly stale read), or null. */
  read(key: string): string | null {
    return this.#data.get(key) ?? null;
  }

  /** Keys present now, sorted. */
  keys(): string[] {
    return [...this.#data.keys()].sort();
  }

  /** A hash of the whole state and the applied index. */
  stateHash(): number {
    let h = fnv(0x811c9dc5, String(this.#appliedIndex));
    for (const key of this.keys()) {
      h = fnv(h, "\u0000" + key + "\u0001" + (this.#data.get(key) ?? ""));
    }
    return h;
  }

  /** Runs `work` after earlier requests, after a random latency. */
  #enqueue(work: () => void): void {
    const delay = this.rng.float() * this.options.latencyMaxMs;
    const at = Math.max(this.#busyUntilMs, this.scope.queue.nowMs + delay);
    this.#busyUntilMs = at;
    this.scope.after(at - this.scope.queue.nowMs, work);
  }

  apply(entries: readonly Entry[], done: (results: unknown[]) => void): void {
    const batch = [...entries];
    this.#enqueue(() => {
      const results = batch.map((entry) => this.#applyOne(entry));
      this.options.onApplied?.(batch, this);
      done(results);
    });
  }

  #applyOne(entry: Entry): KvResult | undefined {
    if (entry.index !== this.#appliedIndex + 1) {
      throw new Error(
        `${this.name}: apply of entry ${entry.index} after applied index ${this.#appliedIndex}`,
      );
    }
    this.#appliedIndex = entry.index;
    this.applies++;
    if (entry.kind !== "normal" || entry.data.byteLength === 0) return undefined;
    const cmd = decodeCommand(entry.data);
    switch (cmd.op) {
      case "put":
        this.#data.set(cmd.key, cmd.value);
        return { ok: true, value: cmd.value, id: cmd.id };
      case "cas": {
        const current = this.#data.get(cmd.key) ?? null;
        const ok = current === cmd.expected;
        if (ok) this.#data.set(cmd.key, cmd.value);
        return { ok, value: current, id: cmd.id };
      }
      case "get":
        return { ok: true, value: this.#data.get(cmd.key) ?? null, id: cmd.id };
      case "noop":
        return { ok: true, value: null, id: cmd.id };
    }
  }

  snapshot(done: (err: Error | undefined, data: Uint8Array) => void): void {
    this.#enqueue(() => {
      const image: SnapshotImage = {
        index: this.#appliedIndex,
        entries: this.keys().map((key) => [key, this.#data.get(key) ?? ""] as const),
      };
      done(undefined, encoder.encode(JSON.stringify(image)));
    });
  }

  restore(meta: SnapshotMeta, data: Uint8Array, done: Done): void {
    const bytes = data.slice();
    this.#enqueue(() => {
      const image = JSON.parse(decoder.decode(bytes)) as SnapshotImage;
      if (image.index !== meta.index) {
        throw new Error(
          `${this.name}: restore of snapshot labelled ${meta.index}@${meta.term} whose data is as of index ${image.index}`,
        );
      }
      this.#data = new Map(image.entries.map(([k, v]) => [k, v]));
      this.#appliedIndex = image.index;
      this.options.onRestored?.(meta, this);
      done();
    });
  }
}

/** Snapshot index recorded inside KV snapshot data (for diagnostics). */
export function snapshotDataIndex(data: Uint8Array): number {
  return (JSON.parse(decoder.decode(data)) as SnapshotImage).index;
}
