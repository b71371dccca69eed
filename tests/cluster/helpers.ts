/**
 * Helpers for the cluster service tests: a real {@link Mux} on 127.0.0.1
 * with a {@link ClusterServer} over fake handlers that record their calls.
 *
 * @module
 */

import {
  ClusterHandlerError,
  type ClusterHandlers,
  type ClusterRequestContext,
  ClusterServer,
  type ClusterServerOptions,
  type CommandResult,
  type JoinRequest,
  type NotifyRequest,
} from "../../lib/cluster/mod.ts";
import type { Command } from "../../lib/db/mod.ts";
import { Mux } from "../../lib/transport/mux.ts";

export const META = {
  apiUrl: "http://127.0.0.1:4001",
  commitIndex: 17,
  version: "0.1.0",
  nodeId: "n1",
};

/** One recorded handler call. */
export interface Call {
  readonly type: string;
  readonly args: unknown[];
  readonly ctx: ClusterRequestContext;
}

/**
 * Fake handlers. A command's first statement steers the behaviour:
 * `hang` never answers (until its signal aborts), `sleep <ms>` answers after
 * that long, `fail <message>` throws that message, anything else echoes.
 */
export class FakeHandlers implements ClusterHandlers {
  readonly calls: Call[] = [];
  readonly members = new Map<string, string>([["n1", "127.0.0.1:4002"]]);
  leader = true;
  active = 0;
  maxActive = 0;
  readonly aborted: string[] = [];

  nodeMeta(ctx: ClusterRequestContext) {
    this.calls.push({ type: "nodeMeta", args: [], ctx });
    return META;
  }

  execute(cmd: Command, opts: object, ctx: ClusterRequestContext): Promise<CommandResult> {
    this.calls.push({ type: "execute", args: [cmd, opts], ctx });
    return this.#run(cmd, ctx, {
      outcome: { results: [{ lastInsertId: 2n ** 60n, rowsAffected: 1 }] },
      raftIndex: 5,
    });
  }

  query(cmd: Command, opts: object, ctx: ClusterRequestContext): Promise<CommandResult> {
    this.calls.push({ type: "query", args: [cmd, opts], ctx });
    return this.#run(cmd, ctx, {
      outcome: {
        results: [{
          columns: ["sql", "big", "blob"],
          types: ["text", "integer", "blob"],
          values: [[cmd.statements[0]?.sql ?? "", -(2n ** 63n), new Uint8Array([9, 8, 7])]],
        }],
      },
      raftIndex: 0,
    });
  }

  request(cmd: Command, opts: object, ctx: ClusterRequestContext): Promise<CommandResult> {
    this.calls.push({ type: "request", args: [cmd, opts], ctx });
    return this.#run(cmd, ctx, { outcome: { results: [], error: "request error" }, raftIndex: 6 });
  }

  join(req: JoinRequest, ctx: ClusterRequestContext): void {
    this.calls.push({ type: "join", args: [req], ctx });
    if (!this.leader) {
      throw new ClusterHandlerError("not leader", {
        code: "not_leader",
        leaderAddr: "10.0.0.9:4002",
      });
    }
    this.members.set(req.id, req.raftAddr);
  }

  async notify(req: NotifyRequest, ctx: ClusterRequestContext): Promise<void> {
    this.calls.push({ type: "notify", args: [req], ctx });
    await Promise.resolve();
  }

  remove(id: string, ctx: ClusterRequestContext): void {
    this.calls.push({ type: "remove", args: [id], ctx });
    if (!this.members.delete(id)) throw new Error("node not found in cluster");
  }

  stepdown(id: string | undefined, wait: boolean, ctx: ClusterRequestContext): Promise<void> {
    this.calls.push({ type: "stepdown", args: [id, wait], ctx });
    if (id === "n1") {
      return Promise.reject(new Error("stepdown: cannot step down to the current Leader"));
    }
    return Promise.resolve();
  }

  async #run(
    cmd: Command,
    ctx: ClusterRequestContext,
    result: CommandResult,
  ): Promise<CommandResult> {
    const sql = cmd.statements[0]?.sql ?? "";
    this.active++;
    this.maxActive = Math.max(this.maxActive, this.active);
    try {
      if (sql === "hang") {
        await new Promise<void>((resolve) => {
          ctx.signal.addEventListener("abort", () => {
            this.aborted.push(String((ctx.signal.reason as Error)?.message));
            resolve();
          }, { once: true });
        });
        return result;
      }
      if (sql.startsWith("sleep ")) await sleep(Number(sql.slice(6)), ctx.signal);
      if (sql.startsWith("fail ")) throw new Error(sql.slice(5));
      return result;
    } finally {
      this.active--;
    }
  }
}

/** Resolves after `ms`, or at once when `signal` aborts (the timer is always cleared). */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}

/** A running mux + cluster server. */
export interface TestServer {
  readonly mux: Mux;
  readonly server: ClusterServer;
  readonly addr: string;
  close(): Promise<void>;
}

export function startServer(
  handlers: ClusterHandlers,
  options: ClusterServerOptions = {},
  port = 0,
): TestServer {
  const mux = Mux.listen({ hostname: "127.0.0.1", port });
  const server = new ClusterServer(handlers, options);
  server.register(mux);
  return {
    mux,
    server,
    addr: mux.address,
    async close() {
      await server.close();
      await mux.close();
    },
  };
}

/** A command with one statement. */
export function cmd(sql: string, kind: Command["kind"] = "execute"): Command {
  return { kind, transaction: false, statements: [{ sql, params: [] }] };
}

/** Polls `cond` every 10 ms until it holds or `timeoutMs` passes. */
export async function waitFor(cond: () => boolean, timeoutMs = 3000, what = "condition") {
  const end = performance.now() + timeoutMs;
  while (!cond()) {
    if (performance.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}
