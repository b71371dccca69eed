/**
 * -auth on requests a follower forwards: two nodes in this process (the
 * first leads, the second joins it as `-join-as joiner`), each with its own
 * users file, so a test can make the follower accept credentials that the
 * leader refuses and see whose check decided. What must hold:
 * - /db/load through a follower needs `load` on the leader too (as rqlite's
 *   forwarded LOAD), for SQL text and for a database file, not `execute`;
 * - the leader decides: credentials the follower accepts but the leader's
 *   file does not are refused (401) and nothing is written.
 */

import assert from "node:assert/strict";
import { basicHeader } from "../../lib/auth/mod.ts";
import { startTestNode, type TestNode } from "../util/node.ts";

const ROOT = basicHeader({ username: "root", password: "rootpw" });
const LOADER = basicHeader({ username: "loader", password: "lp" });
const WRITER = basicHeader({ username: "writer", password: "wp" });

/** Users both nodes know. */
const COMMON = [
  { username: "root", password: "rootpw", perms: ["all"] },
  { username: "joiner", password: "jp", perms: ["join"] },
  { username: "loader", password: "lp", perms: ["load"] },
  { username: "writer", password: "wp", perms: ["execute"] },
];

interface Pair {
  readonly leader: TestNode;
  readonly follower: TestNode;
}

/** A leader with `leaderUsers` and a follower with `followerUsers`; both closed at the end. */
async function withPair(
  leaderUsers: unknown[],
  followerUsers: unknown[],
  body: (p: Pair) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "raftlite-auth-fwd-" });
  const nodes: TestNode[] = [];
  try {
    await Deno.writeTextFile(`${dir}/leader.json`, JSON.stringify(leaderUsers));
    await Deno.writeTextFile(`${dir}/follower.json`, JSON.stringify(followerUsers));
    const leader = await startTestNode(
      ["-auth", `${dir}/leader.json`],
      `${dir}/leader`,
      { authorization: ROOT },
    );
    nodes.push(leader);
    const follower = await startTestNode(
      [
        "-auth",
        `${dir}/follower.json`,
        "-join",
        leader.node.raftAddr,
        "-join-as",
        "joiner",
        "-join-interval",
        "200ms",
      ],
      `${dir}/follower`,
      { authorization: ROOT },
    );
    nodes.push(follower);
    assert.equal(leader.node.store()?.isLeader(), true, "the first node leads");
    assert.equal(follower.node.store()?.isLeader(), false);
    await body({ leader, follower });
  } finally {
    for (const n of nodes.reverse()) await n.close();
    await Deno.remove(dir, { recursive: true });
  }
}

async function send(
  node: TestNode,
  method: string,
  path: string,
  authorization: string,
  body?: BodyInit,
): Promise<{ status: number; text: string }> {
  const res = await node.fetch(path, {
    method,
    headers: { Authorization: authorization, "Content-Type": "application/json" },
    body,
  });
  return { status: res.status, text: await res.text() };
}

/** Rows of `sql` read on the leader (as root). */
async function rowsOnLeader(p: Pair, sql: string): Promise<unknown> {
  const r = await send(p.leader, "GET", `/db/query?q=${encodeURIComponent(sql)}`, ROOT);
  assert.equal(r.status, 200, r.text);
  return JSON.parse(r.text).results[0].values ?? [];
}

/** A small SQLite database file with table `img` holding one row. */
async function sqliteImage(dir: string): Promise<Uint8Array<ArrayBuffer>> {
  const { DatabaseSync } = await import("node:sqlite");
  const path = `${dir}/img.db`;
  const db = new DatabaseSync(path);
  db.exec("CREATE TABLE img (v TEXT); INSERT INTO img VALUES ('from image')");
  db.close();
  return await Deno.readFile(path);
}

Deno.test("auth forwarding: /db/load through a follower needs load on the leader, not execute", async () => {
  await withPair(COMMON, COMMON, async (p) => {
    // SQL text through the follower, as a user with only `load`.
    let r = await send(
      p.follower,
      "POST",
      "/db/load",
      LOADER,
      "CREATE TABLE t (v TEXT); INSERT INTO t VALUES ('loaded');",
    );
    assert.equal(r.status, 200, `load-only user through the follower: ${r.status} ${r.text}`);
    assert.doesNotMatch(r.text, /error/);
    assert.deepEqual(await rowsOnLeader(p, "SELECT v FROM t"), [["loaded"]]);
    // A database file through the follower, same user.
    const dir = await Deno.makeTempDir({ prefix: "raftlite-auth-img-" });
    try {
      r = await send(p.follower, "POST", "/db/load", LOADER, await sqliteImage(dir));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
    assert.equal(r.status, 200, `image load through the follower: ${r.text}`);
    assert.deepEqual(await rowsOnLeader(p, "SELECT v FROM img"), [["from image"]]);
    // `execute` alone does not load, here or through the follower.
    for (const n of [p.leader, p.follower]) {
      r = await send(n, "POST", "/db/load", WRITER, "INSERT INTO t VALUES ('no');");
      assert.equal(r.status, 401);
      assert.equal(r.text, "");
    }
    assert.deepEqual(await rowsOnLeader(p, "SELECT v FROM t"), []);
  });
});

Deno.test("auth forwarding: the leader's file decides; a write it refuses changes nothing", async () => {
  // The follower's file gives "sneaky" everything; the leader's file gives it only `query`.
  const leaderUsers = [...COMMON, { username: "sneaky", password: "sp", perms: ["query"] }];
  const followerUsers = [...COMMON, { username: "sneaky", password: "sp", perms: ["all"] }];
  await withPair(leaderUsers, followerUsers, async (p) => {
    const sneaky = basicHeader({ username: "sneaky", password: "sp" });
    let r = await send(p.leader, "POST", "/db/execute", ROOT, '["CREATE TABLE t (v TEXT)"]');
    assert.equal(r.status, 200, r.text);
    const refused: [string, string, BodyInit][] = [
      ["POST", "/db/execute", '[["INSERT INTO t VALUES(?)", "execute"]]'],
      ["POST", "/db/request", '[["INSERT INTO t VALUES(?)", "request"]]'],
      ["POST", "/db/load", "INSERT INTO t VALUES ('load');"],
    ];
    for (const [method, path, body] of refused) {
      r = await send(p.follower, method, path, sneaky, body);
      assert.equal(r.status, 401, `${path} forwarded with credentials the leader refuses`);
      assert.equal(r.text, "", `${path}: empty body`);
    }
    // The same credentials are fine where both files agree (a strong read goes to the leader).
    r = await send(p.follower, "GET", "/db/query?level=strong&q=SELECT+COUNT(*)+FROM+t", sneaky);
    assert.equal(r.status, 200, r.text);
    assert.match(r.text, /"values":\[\[0\]\]/);
    assert.deepEqual(await rowsOnLeader(p, "SELECT v FROM t"), []);
    // A user both files give `execute` writes through the follower.
    r = await send(
      p.follower,
      "POST",
      "/db/execute",
      WRITER,
      '[["INSERT INTO t VALUES(?)", "ok"]]',
    );
    assert.match(r.text, /"rows_affected":1/);
    assert.deepEqual(await rowsOnLeader(p, "SELECT v FROM t"), [["ok"]]);
  });
});

Deno.test("auth forwarding: backup, remove and stepdown through a follower are re-checked by the leader", async () => {
  const leaderUsers = [...COMMON, { username: "sneaky", password: "sp", perms: ["query"] }];
  const followerUsers = [...COMMON, { username: "sneaky", password: "sp", perms: ["all"] }];
  await withPair(leaderUsers, followerUsers, async (p) => {
    const sneaky = basicHeader({ username: "sneaky", password: "sp" });
    // rqlite words these three refusals (rqlite-api.md §6).
    const cases: [string, string, string | undefined, string][] = [
      ["GET", "/db/backup", undefined, "remote backup not authorized\n"],
      [
        "DELETE",
        "/remove",
        `{"id":"${p.leader.node.config.nodeId}"}`,
        "remote remove node not authorized\n",
      ],
      ["POST", "/leader?wait", undefined, "remote stepdown not authorized\n"],
    ];
    for (const [method, path, body, text] of cases) {
      const r = await send(p.follower, method, path, sneaky, body);
      assert.equal(r.status, 401, `${method} ${path}: ${r.text}`);
      assert.equal(r.text, text);
    }
    // Nothing happened: the same leader, both nodes still voters.
    assert.equal(p.leader.node.store()?.isLeader(), true);
    const nodes = await send(p.leader, "GET", "/nodes", ROOT);
    assert.equal(Object.keys(JSON.parse(nodes.text)).length, 2, nodes.text);
    // Credentials both files accept: the follower streams the leader's backup.
    const res = await p.follower.fetch("/db/backup", { headers: { Authorization: ROOT } });
    const bytes = new Uint8Array(await res.arrayBuffer());
    assert.equal(res.status, 200);
    assert.equal(new TextDecoder().decode(bytes.subarray(0, 13)), "SQLite format");
  });
});

Deno.test("auth forwarding: queued writes on a follower go to the leader as the -join-as user", async () => {
  const queue = (p: Pair) =>
    send(
      p.follower,
      "POST",
      "/db/execute?queue&wait&timeout=10s",
      WRITER,
      '[["INSERT INTO t VALUES(?)", "q"]]',
    );
  // joiner may only join: the leader refuses the batch, and says so to a waiting client.
  await withPair(COMMON, COMMON, async (p) => {
    await send(p.leader, "POST", "/db/execute", ROOT, '["CREATE TABLE t (v TEXT)"]');
    const r = await queue(p);
    assert.equal(r.status, 200, r.text);
    assert.match(JSON.parse(r.text).error, /refused the batch: unauthorized/);
    assert.deepEqual(await rowsOnLeader(p, "SELECT v FROM t"), []);
  });
  // joiner may also execute: the batch is written.
  const users = COMMON.map((u) =>
    u.username === "joiner" ? { ...u, perms: ["join", "execute"] } : u
  );
  await withPair(users, users, async (p) => {
    await send(p.leader, "POST", "/db/execute", ROOT, '["CREATE TABLE t (v TEXT)"]');
    const r = await queue(p);
    assert.equal(r.status, 200, r.text);
    assert.equal(JSON.parse(r.text).error, undefined, r.text);
    assert.deepEqual(await rowsOnLeader(p, "SELECT v FROM t"), [["q"]]);
  });
});
