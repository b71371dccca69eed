/**
 * Simulated clients: writes, compare-and-sets and reads at three
 * consistency levels against the cluster, recorded as a history for the
 * linearizability checker.
 *
 * A client runs one operation at a time. It sends to the node it believes
 * leads (hinted by `NotLeaderError`), over a client link with its own small
 * delay. Outcomes are classified strictly:
 * - success: the operation happened, with the result the node returned;
 * - definite failure (`NotLeaderError`, `ProposalDroppedError`, node down
 *   on arrival): it did not happen and is left out of the history;
 * - anything else (timeout, a stopped driver, an unexpected error): the
 *   outcome is unknown (`returnMs: Infinity`); the write may or may not have
 *   taken effect.
 * So a driver that reports failure for a write that later commits is caught
 * as a linearizability violation.
 *
 * Reads: `linearizable` = ReadIndex on the node, then the node's local
 * state; `strong` = a `get` command through the log; `none` = the local
 * state of any node (checked only for having been written).
 *
 * @module
 */

import { NotLeaderError, ProposalDroppedError } from "../raft/errors.ts";
import type { NodeId } from "../raft/types.ts";
import type { HistoryOperation, ReadLevel } from "./checker.ts";
import type { Cluster, Incarnation } from "./cluster.ts";
import { dataDigest } from "./cluster.ts";
import type { SimConfig } from "./config.ts";
import { encodeCommand, type KvCommand, type KvResult } from "./kv.ts";
import type { Prng } from "./prng.ts";
import type { Tracer } from "./trace.ts";

/** What a client asked. */
export type OpKind = "write" | "cas" | "read";

/** A request a client makes. */
export interface OpRequest {
  readonly kind: OpKind;
  readonly key: string;
  readonly level?: ReadLevel;
  /** write/cas: the new value. */
  readonly value?: string;
  /** cas: expected current value (null = absent). */
  readonly expected?: string | null;
}

/** How a request ended. */
export type OpOutcome =
  | { readonly status: "ok"; readonly output?: string | null; readonly casOk?: boolean }
  | { readonly status: "failed"; readonly reason: string; readonly leader?: NodeId }
  | { readonly status: "unknown"; readonly reason: string };

/** Counters of client activity. */
export interface WorkloadStats {
  invoked: number;
  ok: number;
  failed: number;
  unknown: number;
  reads: number;
  writes: number;
  cas: number;
}

interface ClientState {
  readonly id: number;
  leader: NodeId | undefined;
  /** Last value this client saw per key (for cas expectations). */
  readonly seen: Map<string, string | null>;
  active: boolean;
}

/** The clients and the history they record. */
export class Workload {
  readonly history: HistoryOperation[] = [];
  readonly stats: WorkloadStats = {
    invoked: 0,
    ok: 0,
    failed: 0,
    unknown: 0,
    reads: 0,
    writes: 0,
    cas: 0,
  };
  readonly keys: string[];
  #nextOpId = 1;
  #clients: ClientState[] = [];
  #issuing = false;
  /** Operations in flight: their finishers. */
  #pending = new Map<number, (outcome: OpOutcome) => void>();
  /** Values written per key (for cas expectations of other clients). */
  #written = new Map<string, string[]>();

  constructor(
    readonly cluster: Cluster,
    readonly rng: Prng,
    readonly config: SimConfig,
    readonly tracer: Tracer,
  ) {
    this.keys = [];
    for (let i = 0; i < config.keys; i++) this.keys.push(`k${i}`);
  }

  /** Starts every client's loop. */
  start(): void {
    this.#issuing = true;
    for (let i = 0; i < this.config.clients; i++) {
      const client: ClientState = { id: i + 1, leader: undefined, seen: new Map(), active: true };
      this.#clients.push(client);
      this.cluster.queue.after(
        this.rng.exponential(this.config.thinkMeanMs),
        () => this.#next(client),
      );
    }
  }

  /** Clients finish their current operation and issue no more. */
  stop(): void {
    this.#issuing = false;
  }

  /** Operations still in flight. */
  get pending(): number {
    return this.#pending.size;
  }

  /** Ends every operation still in flight with an unknown outcome (the run is over). */
  abandonAll(): void {
    this.#issuing = false;
    for (const finish of [...this.#pending.values()]) {
      finish({ status: "unknown", reason: "run ended" });
    }
  }

  #next(client: ClientState): void {
    if (!this.#issuing) {
      client.active = false;
      return;
    }
    const request = this.#choose(client);
    this.execute(client.id, request, (outcome) => {
      this.cluster.queue.after(
        this.rng.exponential(this.config.thinkMeanMs),
        () => this.#next(client),
      );
      void outcome;
    });
  }

  #choose(client: ClientState): OpRequest {
    const key = this.rng.pick(this.keys);
    const kind = this.rng.weighted<string>([
      ["write", 35],
      ["cas", 20],
      ["linearizable", 20],
      ["strong", 10],
      ["none", 15],
    ]);
    if (kind === "write") return { kind: "write", key, value: this.#freshValue() };
    if (kind === "cas") {
      let expected: string | null = client.seen.get(key) ?? null;
      const written = this.#written.get(key);
      if (written !== undefined && written.length > 0 && this.rng.chance(0.3)) {
        expected = this.rng.pick(written);
      } else if (this.rng.chance(0.1)) expected = null;
      return { kind: "cas", key, expected, value: this.#freshValue() };
    }
    return { kind: "read", key, level: kind as ReadLevel };
  }

  #freshValue(): string {
    return `v${this.#nextOpId}.${this.rng.nextInt(1000)}`;
  }

  /** The client's guess of the leader, else a random running node. */
  #target(client: ClientState | undefined, anyNode: boolean): NodeId | undefined {
    const candidates = this.cluster.activeNodes();
    if (candidates.length === 0) return undefined;
    if (!anyNode && client?.leader !== undefined) {
      const guess = this.cluster.nodes.get(client.leader);
      if (guess !== undefined && !guess.removed) return guess.id;
    }
    return this.rng.pick(candidates).id;
  }

  #clientDelayMs(): number {
    return 0.2 + this.rng.exponential(0.5);
  }

  /**
   * Runs one operation for client `clientId` and records it; `done` gets the
   * outcome once the client knows it (or gave up).
   */
  execute(clientId: number, request: OpRequest, done: (outcome: OpOutcome) => void): void {
    let client = this.#clients.find((c) => c.id === clientId);
    if (client === undefined) {
      client = { id: clientId, leader: undefined, seen: new Map(), active: true };
      this.#clients.push(client);
    }
    const state = client;
    const queue = this.cluster.queue;
    const opId = this.#nextOpId++;
    const callMs = queue.nowMs;
    const target = this.#target(state, request.level === "none");
    this.stats.invoked++;
    if (request.kind === "read") this.stats.reads++;
    else if (request.kind === "write") this.stats.writes++;
    else this.stats.cas++;
    if (request.value !== undefined) {
      const list = this.#written.get(request.key) ?? [];
      list.push(request.value);
      if (list.length > 20) list.shift();
      this.#written.set(request.key, list);
    }
    this.#trace(() =>
      `client ${clientId} op#${opId} ${describe(request)} -> ${target ?? "nobody"}`
    );
    let finished = false;
    const finish = (outcome: OpOutcome) => {
      if (finished) return;
      finished = true;
      this.#pending.delete(opId);
      cancelTimeout();
      this.#record(state, opId, request, callMs, outcome, target);
      done(outcome);
    };
    const cancelTimeout = queue.after(
      this.config.clientTimeoutMs,
      () => finish({ status: "unknown", reason: "timeout" }),
    );
    this.#pending.set(opId, finish);
    if (target === undefined) {
      queue.after(1, () => finish({ status: "failed", reason: "no node" }));
      return;
    }
    const reply = (outcome: OpOutcome) => queue.after(this.#clientDelayMs(), () => finish(outcome));
    queue.after(this.#clientDelayMs(), () => {
      const node = this.cluster.nodes.get(target);
      const live = node?.live;
      if (node === undefined || live === undefined || !live.started) {
        reply({ status: "failed", reason: "node down" });
        return;
      }
      try {
        this.#invoke(live, opId, request, reply);
      } catch (err) {
        reply(classify(err));
      }
    });
  }

  #invoke(
    live: Incarnation,
    opId: number,
    request: OpRequest,
    reply: (outcome: OpOutcome) => void,
  ): void {
    const cmdId = `op${opId}`;
    if (request.kind === "read" && request.level === "none") {
      reply({ status: "ok", output: live.kv.read(request.key) });
      return;
    }
    if (request.kind === "read" && request.level === "linearizable") {
      live.driver.readIndex((err, index) => {
        if (err !== undefined) return reply(classify(err));
        if (live.kv.appliedIndex < index) {
          throw new Error(
            `readIndex callback at index ${index} but the state machine applied only ${live.kv.appliedIndex}`,
          );
        }
        reply({ status: "ok", output: live.kv.read(request.key) });
      });
      return;
    }
    let cmd: KvCommand;
    if (request.kind === "read") cmd = { op: "get", id: cmdId, key: request.key };
    else if (request.kind === "write") {
      cmd = { op: "put", id: cmdId, key: request.key, value: request.value ?? "" };
    } else {
      cmd = {
        op: "cas",
        id: cmdId,
        key: request.key,
        expected: request.expected ?? null,
        value: request.value ?? "",
      };
    }
    const data = encodeCommand(cmd);
    live.driver.propose(data, (err, result, index) => {
      if (err !== undefined) return reply(classify(err));
      const r = result as KvResult | undefined;
      if (r === undefined || r.id !== cmdId) {
        throw new Error(
          `proposal ${cmdId} acknowledged at index ${index} with the result of ${
            r === undefined ? "nothing" : r.id
          }`,
        );
      }
      this.cluster.checker.observeAck(opId, index, dataDigest("normal", data));
      reply(
        request.kind === "cas"
          ? { status: "ok", output: r.value, casOk: r.ok }
          : { status: "ok", output: r.value },
      );
    });
  }

  #record(
    client: ClientState,
    opId: number,
    request: OpRequest,
    callMs: number,
    outcome: OpOutcome,
    target: NodeId | undefined,
  ): void {
    const returnMs = this.cluster.queue.nowMs;
    this.#trace(() => `client ${client.id} op#${opId} ${outcomeText(outcome)}`);
    if (outcome.status === "ok") {
      this.stats.ok++;
      if (request.level !== "none") client.leader = target;
    } else if (outcome.status === "failed") {
      this.stats.failed++;
      client.leader = outcome.leader !== undefined && outcome.leader !== ""
        ? outcome.leader
        : undefined;
      return; // it did not happen: not part of the history
    } else {
      this.stats.unknown++;
      client.leader = undefined;
    }
    const base = { id: opId, client: client.id, key: request.key, callMs };
    if (request.kind === "read") {
      if (outcome.status !== "ok") return; // unknown reads constrain nothing
      client.seen.set(request.key, outcome.output ?? null);
      this.history.push({
        ...base,
        kind: "read",
        output: outcome.output ?? null,
        returnMs,
        level: request.level,
      });
      return;
    }
    const value = request.value ?? "";
    if (request.kind === "write") {
      if (outcome.status === "ok") client.seen.set(request.key, value);
      this.history.push({
        ...base,
        kind: "write",
        value,
        returnMs: outcome.status === "ok" ? returnMs : Infinity,
      });
      return;
    }
    const expected = request.expected ?? undefined;
    if (outcome.status === "ok") {
      client.seen.set(request.key, outcome.casOk === true ? value : outcome.output ?? null);
      this.history.push({ ...base, kind: "cas", value, expected, ok: outcome.casOk, returnMs });
    } else {
      this.history.push({ ...base, kind: "cas", value, expected, returnMs: Infinity });
    }
  }

  #trace(line: () => string): void {
    if (this.tracer.enabled) this.tracer.line(line());
  }
}

/** Sorts an error into a definite failure or an unknown outcome. */
export function classify(err: unknown): OpOutcome {
  if (err instanceof NotLeaderError) {
    return { status: "failed", reason: err.message, leader: err.leader };
  }
  if (err instanceof ProposalDroppedError) return { status: "failed", reason: err.message };
  const message = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  return { status: "unknown", reason: message };
}

function describe(r: OpRequest): string {
  if (r.kind === "read") return `read(${r.key}) ${r.level}`;
  if (r.kind === "write") return `write(${r.key})=${r.value}`;
  return `cas(${r.key}, ${r.expected ?? "null"} -> ${r.value})`;
}

function outcomeText(o: OpOutcome): string {
  if (o.status === "ok") {
    return `ok${o.casOk !== undefined ? ` cas=${o.casOk}` : ""} ${JSON.stringify(o.output)}`;
  }
  return `${o.status}: ${o.reason}`;
}
