/**
 * `-join-as` beyond `-join` (which tests/e2e/cluster/auth_test.ts covers):
 * bootstrap-expect notifications and a node's own removal on shutdown
 * (`-raft-cluster-remove-shutdown`) carry the user's credentials, and the
 * receiving node refuses them without the permission rqlite asks for
 * (`join` to notify, `remove` to remove). Nodes run in this process.
 */

import assert from "node:assert/strict";
import { basicHeader } from "../../lib/auth/mod.ts";
import { parseFlags } from "../../lib/config/flags.ts";
import { configFromFlags } from "../../lib/server/config.ts";
import { type RunningNode, startNode } from "../../lib/server/start.ts";
import { freePort, startTestNode, type TestNode, waitFor } from "../util/node.ts";

const ROOT = basicHeader({ username: "root", password: "rootpw" });

const USERS = [
  { username: "root", password: "rootpw", perms: ["all"] },
  { username: "joiner", password: "jp", perms: ["join"] },
  { username: "leaver", password: "lp", perms: ["join", "remove"] },
  { username: "reader", password: "rp", perms: ["query"] },
];

/** Runs `body` with a temp dir holding `users.json`; removes the dir afterwards. */
async function withUsersDir(body: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "raftlite-join-as-" });
  try {
    await Deno.writeTextFile(`${dir}/users.json`, JSON.stringify(USERS));
    await body(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** GET `path` on `node` as root, parsed. */
async function getJson(node: RunningNode, path: string): Promise<Record<string, unknown>> {
  const res = await node.handler(
    new Request(`http://${node.httpAddr}${path}`, { headers: { Authorization: ROOT } }),
  );
  assert.equal(res.status, 200, path);
  return await res.json();
}

/** Two nodes started at once with `-bootstrap-expect 2`, notifying as `user`. */
function startPairExpecting(dir: string, user: string, timeout: string): RunningNode[] {
  const raft = [`127.0.0.1:${freePort()}`, `127.0.0.1:${freePort()}`];
  return raft.map((addr, i) =>
    startNode(
      configFromFlags(parseFlags([
        "-http-addr",
        "127.0.0.1:0",
        "-raft-addr",
        addr,
        "-auth",
        `${dir}/users.json`,
        "-join-as",
        user,
        "-bootstrap-expect",
        "2",
        "-join",
        raft.join(","),
        "-join-interval",
        "100ms",
        "-bootstrap-expect-timeout",
        timeout,
        `${dir}/n${i}`,
      ])),
      () => {},
    )
  );
}

Deno.test("-join-as: bootstrap-expect notifications carry the user's credentials", async () => {
  await withUsersDir(async (dir) => {
    const nodes = startPairExpecting(dir, "joiner", "20s");
    try {
      await Promise.all(nodes.map((n) => n.ready));
      await waitFor(() => Promise.resolve(nodes.some((n) => n.store()?.isLeader())), 10_000);
      for (const n of nodes) {
        assert.equal(n.store()?.driver.status().conf.voters.length, 2);
        const status = await getJson(n, "/status");
        assert.equal((status.cluster as Record<string, unknown>).num_auth_refused, 0);
      }
    } finally {
      await Promise.all(nodes.map((n) => n.close()));
    }
  });
});

Deno.test("-join-as: a user without join cannot announce itself; nobody bootstraps", async () => {
  await withUsersDir(async (dir) => {
    const nodes = startPairExpecting(dir, "reader", "1500ms");
    try {
      const outcomes = await Promise.allSettled(nodes.map((n) => n.ready));
      for (const o of outcomes) {
        assert.equal(o.status, "rejected");
        assert.match(String(o.reason), /bootstrap-expect 2: only 1 nodes announced themselves/);
      }
      // Each refused the other's notifications for want of the join permission.
      for (const n of nodes) {
        const status = await getJson(n, "/status");
        const refused = (status.cluster as Record<string, unknown>).num_auth_refused as number;
        assert.ok(refused >= 1, `refusals: ${refused}`);
      }
    } finally {
      await Promise.all(nodes.map((n) => n.close()));
    }
  });
});

/** A leader, and a follower that joins as `user` and leaves the cluster when it stops. */
async function leaveAs(dir: string, user: string): Promise<string[]> {
  const started: TestNode[] = [];
  try {
    const leader = await startTestNode(
      ["-auth", `${dir}/users.json`],
      `${dir}/leader-${user}`,
      { authorization: ROOT },
    );
    started.push(leader);
    const follower = await startTestNode(
      [
        "-auth",
        `${dir}/users.json`,
        "-join",
        leader.node.raftAddr,
        "-join-as",
        user,
        "-raft-cluster-remove-shutdown",
      ],
      `${dir}/follower-${user}`,
      { authorization: ROOT },
    );
    started.push(follower);
    assert.equal(leader.node.store()?.driver.status().conf.voters.length, 2);
    await follower.node.leave();
    await follower.close();
    started.pop();
    return leader.node.store()?.driver.status().conf.voters.slice() ?? [];
  } finally {
    for (const n of started.reverse()) await n.close();
  }
}

Deno.test("-join-as: leaving on shutdown removes the node only when the user may remove", async () => {
  await withUsersDir(async (dir) => {
    assert.equal((await leaveAs(dir, "joiner")).length, 2, "joiner lacks remove: still a member");
    assert.equal((await leaveAs(dir, "leaver")).length, 1, "leaver may remove: gone");
  });
});
