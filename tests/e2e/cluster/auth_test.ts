/**
 * -auth across a 3-node cluster (rqlite-api.md §10): nodes join with their
 * `-join-as` user; a write through a follower carries the client's
 * credentials to the leader, which checks them again: a follower whose users
 * file accepts credentials the leader's file does not gets the write refused
 * by the leader (401, nothing written, the leader counts the refusal); a
 * node whose `-join-as` user lacks the join permission cannot join.
 */

import assert from "node:assert/strict";
import { basicHeader } from "../../../lib/auth/mod.ts";
import { skipUnlessClustering } from "./available.ts";
import {
  type ClusterNode,
  joiningNode,
  rawRequest,
  rowsOn,
  waitConverged,
  withCluster,
} from "./harness.ts";

const ignore = skipUnlessClustering("cluster auth test (tests/e2e/cluster/auth_test.ts)");

const USERS = [
  { username: "joiner", password: "jp", perms: ["join"] },
  { username: "writer", password: "wp", perms: ["execute"] },
  { username: "reader", password: "rp", perms: ["query"] },
  // The harness and the convergence checks read anonymously.
  { username: "*", perms: ["status", "ready", "query"] },
];

const WRITER = basicHeader({ username: "writer", password: "wp" });

function execute(n: ClusterNode, statements: unknown[], authorization?: string) {
  const headers: Record<string, string> = { "Content-Type": "application/json" };
  if (authorization !== undefined) headers.Authorization = authorization;
  return rawRequest(`${n.url}/db/execute`, {
    method: "POST",
    headers,
    body: JSON.stringify(statements),
  });
}

async function refusalsOn(n: ClusterNode): Promise<number> {
  const a = await rawRequest(`${n.url}/status`, {});
  return JSON.parse(a.text).cluster.num_auth_refused as number;
}

async function waitExit(n: ClusterNode, timeoutMs: number): Promise<Deno.CommandStatus> {
  const child = n.proc!.child;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${n.name} still running`)), timeoutMs);
  });
  try {
    return await Promise.race([child.status, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

Deno.test({
  name: "cluster auth: -join-as joins, forwarded credentials are checked again by the leader",
  ignore,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "raftlite-auth-users-" });
    const file = `${dir}/users.json`;
    await Deno.writeTextFile(file, JSON.stringify(USERS));
    try {
      await withCluster(
        { prefix: "auth", proxied: false, flags: ["-auth", file, "-join-as", "joiner"] },
        async (c) => {
          // Formed: n2 and n3 joined with joiner's credentials.
          const leader = await c.leader();
          const [f1, f2] = c.followersOf(leader) as [ClusterNode, ClusterNode];

          // A write through a follower with the writer's credentials reaches every node.
          let a = await execute(f1, ["CREATE TABLE a (x)"], WRITER);
          assert.equal(a.status, 200, a.text);
          a = await execute(f1, [["INSERT INTO a VALUES(?)", "ok"]], WRITER);
          assert.match(a.text, /"rows_affected":1/);
          // Refused on the follower itself: no credentials, or a reader.
          assert.equal((await execute(f1, [["INSERT INTO a VALUES(1)"]])).status, 401);
          a = await execute(
            f1,
            [["INSERT INTO a VALUES(1)"]],
            basicHeader({ username: "reader", password: "rp" }),
          );
          assert.equal(a.status, 401);

          // f2 restarts with a users file that also knows "sneaky" (all
          // permissions); the leader's file does not. f2 accepts sneaky's
          // write and forwards it; only the leader can refuse it.
          await Deno.writeTextFile(
            file,
            JSON.stringify([...USERS, { username: "sneaky", password: "sp", perms: ["all"] }]),
          );
          await c.kill(f2, "SIGTERM");
          await c.restart(f2);
          await c.waitForLeader({ exclude: [] });
          const before = await refusalsOn(leader);
          a = await execute(
            f2,
            [["INSERT INTO a VALUES(?)", "sneaky"]],
            basicHeader({ username: "sneaky", password: "sp" }),
          );
          assert.equal(
            a.status,
            401,
            `forwarded write with credentials the leader refuses: ${a.text}`,
          );
          assert.equal(a.text, "");
          assert.equal(await refusalsOn(leader), before + 1, "the leader refused it");
          // f2 accepts the writer's credentials (both files agree) and forwards them.
          a = await execute(f2, [["INSERT INTO a VALUES(?)", "via f2"]], WRITER);
          assert.match(a.text, /"rows_affected":1/);
          await waitConverged([leader, f1, f2]);
          assert.deepEqual(await rowsOn(leader, "SELECT x FROM a ORDER BY rowid"), [["ok"], [
            "via f2",
          ]]);

          // A node joining as a user without the join permission is refused.
          const n4 = joiningNode(c, "n4", leader.advAddr, undefined, [
            "-auth",
            file,
            "-join-as",
            "reader",
            "-join-attempts",
            "1",
          ]);
          await c.spawn(n4);
          const status = await waitExit(n4, 30_000);
          const logs = n4.logs();
          n4.proc = undefined;
          assert.notEqual(status.code, 0, "n4 must fail to join");
          assert.match(logs, /failed to join cluster .*unauthorized/);
          const nodes = await rawRequest(`${leader.url}/nodes`, {});
          assert.deepEqual(Object.keys(JSON.parse(nodes.text)).sort(), ["n1", "n2", "n3"]);
        },
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
