/**
 * Clustering glue for one node: the internode port (mux), the Raft
 * transport, the cluster service handlers, forwarding to the leader, and
 * the two ways to form a cluster (rqlite-api.md §8, §9):
 * - `-join`: a new node asks a member to add it (following `not leader`
 *   answers to the leader) and then receives the log from the leader;
 * - `-bootstrap-expect N`: nodes notify each other; once a node knows N of
 *   them it bootstraps with exactly that set. All nodes compute the same
 *   set, so they write identical first entries.
 *
 * Addresses: a member's Raft address travels in the configuration
 * (ConfState.context). Before a node has the configuration (joining,
 * bootstrapping) it uses addresses it learned from notify and node-meta
 * calls.
 *
 * @module
 */

import {
  ClusterClient,
  ClusterHandlerError,
  type ClusterHandlers,
  type ClusterRequestContext,
  ClusterServer,
  type NodeMeta,
  RemoteError,
} from "../cluster/mod.ts";
import type { RaftDriver } from "../node/driver.ts";
import type { NodeId } from "../raft/types.ts";
import { Membership } from "../store/membership.ts";
import { NotLeaderStoreError, type Store } from "../store/store.ts";
import type { Log } from "../log/mod.ts";
import type { ConnectFn, Mux } from "../transport/mux.ts";
import { type SnapshotIo, TcpTransport } from "../transport/raft_transport.ts";
import {
  type Authenticator,
  clusterPermissions,
  type ClusterRequestKind,
  type Credentials,
  forwardedWriteKind,
} from "../auth/mod.ts";

/** Everything the cluster layer needs from the node being assembled. */
export interface ClusterDeps {
  readonly nodeId: NodeId;
  readonly raftAdvAddr: string;
  readonly apiUrl: string;
  readonly version: string;
  readonly mux: Mux;
  readonly connectTimeoutMs: number;
  /** Opens internode connections (TLS when configured; default plain TCP). */
  readonly connect?: ConnectFn;
  /** Largest internode frame: must carry the largest request body plus headers. */
  readonly maxFrameBytes: number;
  /** Inbound connections that complete no frame for this long are closed (-raft-idle-timeout). */
  readonly idleTimeoutMs: number;
  /** Where the transport reads and writes snapshot bytes (files in the snapshot directory). */
  readonly snapshotIo: SnapshotIo;
  /** Largest snapshot accepted from a leader. */
  readonly maxSnapshotBytes: number;
  store(): Store | undefined;
  driver(): RaftDriver | undefined;
  membership(): Membership | undefined;
  /** The `cluster` component's log. */
  readonly log: Log;
  /** `-auth`: checks the credentials every cluster request carries; undefined = all allowed. */
  readonly auth?: Authenticator;
  /** `-join-as`: the credentials this node sends with its own join, notify and remove. */
  readonly nodeCredentials?: Credentials;
}

/** The cluster side of a node. */
export class ClusterRuntime {
  readonly client: ClusterClient;
  readonly transport: TcpTransport;
  readonly server: ClusterServer;
  /** Addresses learned outside the configuration (notify, node meta). */
  readonly learned = new Map<NodeId, string>();
  /** Bootstrap-expect: nodes that announced themselves (id -> Raft address). */
  readonly notifiers = new Map<NodeId, string>();
  #onNotify: (() => void) | undefined;

  constructor(private readonly deps: ClusterDeps) {
    this.client = new ClusterClient({
      dialTimeoutMs: deps.connectTimeoutMs,
      maxFrameBytes: deps.maxFrameBytes,
      ...(deps.connect === undefined ? {} : { connect: deps.connect }),
    });
    this.transport = new TcpTransport({
      self: deps.nodeId,
      mux: deps.mux,
      resolve: (id) => this.addressOf(id),
      maxFrameBytes: deps.maxFrameBytes,
      snapshotIo: deps.snapshotIo,
      maxSnapshotBytes: deps.maxSnapshotBytes,
      ...(deps.connect === undefined ? {} : { connect: deps.connect }),
      inboundIdleTimeoutMs: deps.idleTimeoutMs,
    });
    this.server = new ClusterServer(this.#handlers(), {
      maxFrameBytes: deps.maxFrameBytes,
      idleTimeoutMs: deps.idleTimeoutMs,
    });
    this.server.register(deps.mux);
  }

  /** The Raft port's listener (connection counts and refusals for /status). */
  get mux(): Mux {
    return this.deps.mux;
  }

  /** The Raft address of `id`: from the configuration, else learned. */
  addressOf(id: NodeId): string | undefined {
    if (id === this.deps.nodeId) return this.deps.raftAdvAddr;
    return this.deps.driver()?.conf().context?.[id] ?? this.learned.get(id);
  }

  /** The leader's Raft address, or undefined when no leader is known. */
  leaderAddr(): string | undefined {
    const leader = this.deps.driver()?.leader() ?? "";
    return leader === "" ? undefined : this.addressOf(leader);
  }

  /** Learns the id behind `addr` (so replies to it can be routed before the configuration arrives). */
  async learn(addr: string, timeoutMs: number): Promise<NodeMeta> {
    const meta = await this.client.nodeMeta(addr, { timeoutMs });
    if (meta.nodeId !== "") this.learned.set(meta.nodeId, addr);
    return meta;
  }

  /**
   * Joins through `targets`: each attempt tries every address, following a
   * `not leader` answer to the leader. Throws the last error after all attempts.
   */
  async join(
    targets: readonly string[],
    voter: boolean,
    attempts: number,
    intervalMs: number,
  ): Promise<string> {
    let last: unknown = new Error("no join addresses");
    for (let attempt = 0; attempt < attempts; attempt++) {
      for (const target of targets) {
        if (target === this.deps.raftAdvAddr) continue;
        try {
          return await this.#joinVia(target, voter);
        } catch (err) {
          last = err;
          this.deps.log.warn(`join via ${target} failed: ${errText(err)}`);
        }
      }
      if (attempt + 1 < attempts) await delay(intervalMs);
    }
    throw new Error(`failed to join cluster at ${targets.join(",")}: ${errText(last)}`);
  }

  async #joinVia(target: string, voter: boolean): Promise<string> {
    let addr = target;
    for (let hops = 0; hops < 8; hops++) {
      await this.learn(addr, 5_000);
      try {
        // Fresh while nothing has reached this node yet (a retried join after
        // a lost answer must not make the leader replace a live member).
        const fresh = (this.deps.driver()?.status().lastIndex ?? 0) === 0;
        await this.client.join(addr, {
          id: this.deps.nodeId,
          raftAddr: this.deps.raftAdvAddr,
          voter,
          ...(fresh ? { fresh } : {}),
        }, { timeoutMs: 30_000, credentials: this.deps.nodeCredentials });
        return addr;
      } catch (err) {
        if (err instanceof RemoteError && err.code === "not_leader" && err.leaderAddr) {
          addr = err.leaderAddr;
          continue;
        }
        throw err;
      }
    }
    throw new Error(`join via ${target}: too many leader redirects`);
  }

  /**
   * Bootstrap-expect: announces this node to `targets` until `expect` nodes
   * are known (then resolves with them, sorted by id) or `timeoutMs` passes.
   */
  async collectNotifiers(
    targets: readonly string[],
    expect: number,
    intervalMs: number,
    timeoutMs: number,
  ): Promise<Map<NodeId, string>> {
    this.notifiers.set(this.deps.nodeId, this.deps.raftAdvAddr);
    const deadline = performance.now() + timeoutMs;
    const pending = new Set(targets.filter((t) => t !== this.deps.raftAdvAddr));
    while (this.notifiers.size < expect) {
      if (performance.now() > deadline) {
        throw new Error(
          `bootstrap-expect ${expect}: only ${this.notifiers.size} nodes announced themselves ` +
            `within ${timeoutMs} ms (${[...this.notifiers.keys()].join(", ")})`,
        );
      }
      await this.#notifyAll(pending);
      if (this.notifiers.size >= expect) break;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, intervalMs);
        this.#onNotify = done;
        function done() {
          clearTimeout(timer);
          resolve();
        }
      });
      this.#onNotify = undefined;
    }
    // Keep announcing in the background until every target heard us, so that
    // slower nodes reach the same set.
    void this.#announceRest(pending, deadline, intervalMs);
    const ids = [...this.notifiers.keys()].sort().slice(0, Math.max(expect, 1));
    return new Map(ids.map((id) => [id, this.notifiers.get(id) ?? ""]));
  }

  async #announceRest(pending: Set<string>, deadline: number, intervalMs: number): Promise<void> {
    while (pending.size > 0 && performance.now() < deadline && !this.#closed) {
      await this.#notifyAll(pending);
      if (pending.size > 0) await delay(intervalMs);
    }
  }

  async #notifyAll(pending: Set<string>): Promise<void> {
    await Promise.all([...pending].map(async (target) => {
      try {
        await this.client.notify(
          target,
          { id: this.deps.nodeId, raftAddr: this.deps.raftAdvAddr },
          { timeoutMs: 5_000, credentials: this.deps.nodeCredentials },
        );
        pending.delete(target);
      } catch {
        // not up yet: try again next round
      }
    }));
  }

  #closed = false;

  /** This node's own credentials (`-join-as`), if any. */
  get nodeCredentials(): Credentials | undefined {
    return this.deps.nodeCredentials;
  }

  /** Join requests received (`cluster.num_join_req`). */
  joinRequests = 0;

  /** Cluster requests refused for their credentials (status `cluster.num_auth_refused`). */
  authRefusals = 0;

  /**
   * Throws `unauthorized` unless the request's credentials may do `kind`
   * (rqlite re-checks forwarded credentials on the leader, §10).
   */
  async #permit(
    kind: ClusterRequestKind,
    ctx: ClusterRequestContext,
    nonVoterJoin = false,
  ): Promise<void> {
    const auth = this.deps.auth;
    if (auth === undefined) return;
    const alternatives = clusterPermissions(kind, nonVoterJoin);
    if (alternatives.length === 0) return;
    for (const perms of alternatives) {
      if (await auth.allowed(ctx.credentials, perms)) return;
    }
    this.authRefusals++;
    throw new ClusterHandlerError("unauthorized", { code: "unauthorized" });
  }

  /** Stops the transport, server and client. The caller closes the mux. */
  async close(): Promise<void> {
    this.#closed = true;
    this.transport.close();
    await this.server.close();
    await this.client.close();
  }

  #handlers(): ClusterHandlers {
    const store = () => {
      const s = this.deps.store();
      if (s === undefined) throw new ClusterHandlerError("store not open");
      return s;
    };
    const leaderError = (err: unknown): unknown => {
      if (err instanceof NotLeaderStoreError) {
        const leaderAddr = err.leaderId === "" ? undefined : this.addressOf(err.leaderId);
        return new ClusterHandlerError(err.message, {
          code: err.leaderId === "" ? "leader_not_found" : "not_leader",
          leaderAddr,
        });
      }
      return err;
    };
    const guard = async <T>(fn: () => Promise<T>): Promise<T> => {
      try {
        return await fn();
      } catch (err) {
        throw leaderError(err);
      }
    };
    const membership = () => {
      const m = this.deps.membership();
      if (m === undefined) throw new ClusterHandlerError("store not open");
      return m;
    };
    return {
      nodeMeta: () => ({
        apiUrl: this.deps.apiUrl,
        commitIndex: this.deps.driver()?.status().commit ?? 0,
        version: this.deps.version,
        nodeId: this.deps.nodeId,
      }),
      execute: async (cmd, opts, ctx) => {
        await this.#permit(forwardedWriteKind(cmd), ctx);
        return await guard(() => store().execute(cmd, opts.timeoutMs));
      },
      query: async (cmd, opts, ctx) => {
        await this.#permit("query", ctx);
        return await guard(() => store().query(cmd, opts));
      },
      request: async (cmd, opts, ctx) => {
        await this.#permit("request", ctx);
        return await guard(() => store().request(cmd, opts));
      },
      join: async (req, ctx) => {
        this.joinRequests++;
        await this.#permit("join", ctx, !req.voter);
        await guard(async () => void await membership().join(req));
      },
      notify: async (req, ctx) => {
        await this.#permit("notify", ctx);
        this.notifiers.set(req.id, req.raftAddr);
        this.learned.set(req.id, req.raftAddr);
        this.#onNotify?.();
      },
      remove: async (id, ctx) => {
        await this.#permit("remove", ctx);
        await guard(() => membership().remove(id));
      },
      stepdown: async (id, wait, ctx) => {
        await this.#permit("stepdown", ctx);
        await guard(() => membership().stepdown(id, wait));
      },
    };
  }
}

function errText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
