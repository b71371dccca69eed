/**
 * -auth on a real node: every permission allowed and denied on every
 * endpoint. Each endpoint is called as: a user holding exactly the needed
 * permission(s) (not 401), every single-permission user without them (401,
 * empty body), the right user with a wrong password (401), anonymous (401),
 * and a user with `all` (not 401). "Not 401" is what the permission decides;
 * what the endpoint then answers (200, 400 for a garbage body, 404...) is its
 * own business and covered elsewhere. Then a few of the same over a real
 * socket, `*` grants, the common headers, and bad -auth setups.
 */

import assert from "node:assert/strict";
import { basicHeader, type Permission, PERMISSIONS } from "../../lib/auth/mod.ts";
import { startTestNode, type TestNode } from "../util/node.ts";

interface Endpoint {
  readonly method: string;
  readonly path: string;
  readonly body?: string;
  readonly needs: readonly Permission[];
}

const ENDPOINTS: readonly Endpoint[] = [
  {
    method: "POST",
    path: "/db/execute",
    body: '["CREATE TABLE IF NOT EXISTS t (x)"]',
    needs: ["execute"],
  },
  {
    method: "POST",
    path: "/db/execute?queue",
    body: '["INSERT INTO t VALUES(1)"]',
    needs: ["execute"],
  },
  { method: "GET", path: "/db/query?q=SELECT%201", needs: ["query"] },
  { method: "POST", path: "/db/query", body: '["SELECT 1"]', needs: ["query"] },
  { method: "POST", path: "/db/request", body: '["SELECT 1"]', needs: ["query", "execute"] },
  { method: "GET", path: "/db/sql?q=SELECT%201", needs: ["query"] },
  { method: "GET", path: "/db/backup", needs: ["backup"] },
  { method: "POST", path: "/db/load", body: "not sqlite", needs: ["load"] },
  { method: "POST", path: "/boot", body: "not sqlite", needs: ["load"] },
  { method: "POST", path: "/snapshot", needs: ["snapshot"] },
  { method: "POST", path: "/reap", needs: ["snapshot"] },
  { method: "DELETE", path: "/remove", body: '{"id":"no-such-node"}', needs: ["remove"] },
  { method: "GET", path: "/leader", needs: ["status"] },
  {
    method: "POST",
    path: "/leader?wait=false",
    body: '{"id":"no-such-node"}',
    needs: ["leader-ops"],
  },
  { method: "GET", path: "/nodes", needs: ["status"] },
  { method: "GET", path: "/status", needs: ["status"] },
  { method: "GET", path: "/readyz", needs: ["ready"] },
  { method: "GET", path: "/debug/vars", needs: ["status"] },
  { method: "GET", path: "/console/", needs: ["ui"] },
  { method: "PUT", path: "/db/execute", needs: ["execute"] }, // 401 comes before 405
];

/** One user per permission (`u-<perm>` / `p-<perm>`), one with query+execute, root with all. */
function usersFile(): string {
  const users: unknown[] = PERMISSIONS.filter((p) => p !== "all").map((p) => ({
    username: `u-${p}`,
    password: `p-${p}`,
    perms: [p],
  }));
  users.push({ username: "u-query-execute", password: "qe", perms: ["query", "execute"] });
  users.push({ username: "root", password: "rootpw", perms: ["all"] });
  return JSON.stringify(users);
}

const ROOT = basicHeader({ username: "root", password: "rootpw" });

async function withAuthNode(users: string, body: (n: TestNode) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "raftlite-auth-" });
  const file = `${dir}/users.json`;
  await Deno.writeTextFile(file, users);
  const node = await startTestNode(["-auth", file], `${dir}/data`, { authorization: ROOT });
  try {
    await body(node);
  } finally {
    await node.close();
    await Deno.remove(dir, { recursive: true });
  }
}

async function call(
  node: TestNode,
  e: Endpoint,
  authorization: string | undefined,
  socket = false,
): Promise<{ status: number; text: string; headers: Headers }> {
  const headers = new Headers();
  if (authorization !== undefined) headers.set("Authorization", authorization);
  if (e.body !== undefined) headers.set("Content-Type", "application/json");
  const init = { method: e.method, headers, body: e.body };
  const res = socket ? await node.fetchSocket(e.path, init) : await node.fetch(e.path, init);
  return { status: res.status, text: await res.text(), headers: res.headers };
}

function singleUsers(): { name: string; header: string; perm: Permission }[] {
  return PERMISSIONS.filter((p) => p !== "all").map((p) => ({
    name: `u-${p}`,
    header: basicHeader({ username: `u-${p}`, password: `p-${p}` }),
    perm: p,
  }));
}

Deno.test("auth: every permission allowed and denied on every endpoint", async () => {
  await withAuthNode(usersFile(), async (node) => {
    for (const e of ENDPOINTS) {
      const what = `${e.method} ${e.path}`;
      const denied = async (header: string | undefined, who: string) => {
        const r = await call(node, e, header);
        assert.equal(r.status, 401, `${what} as ${who}: ${r.status} ${r.text.slice(0, 80)}`);
        assert.equal(r.text, "", `${what} as ${who}: 401 has an empty body`);
        assert.equal(r.headers.get("WWW-Authenticate"), 'Basic realm="rqlite"');
      };
      const allowed = async (header: string, who: string) => {
        const r = await call(node, e, header);
        assert.notEqual(r.status, 401, `${what} as ${who} must pass the permission check`);
      };
      await denied(undefined, "anonymous");
      for (const u of singleUsers()) {
        if (e.needs.length === 1 && e.needs[0] === u.perm) await allowed(u.header, u.name);
        else await denied(u.header, u.name);
      }
      if (e.needs.length === 2) {
        await allowed(
          basicHeader({ username: "u-query-execute", password: "qe" }),
          "query+execute",
        );
      }
      const holder = e.needs.length === 1 ? e.needs[0]! : "query-execute";
      const wrong = basicHeader({ username: `u-${holder}`, password: "wrong" });
      await denied(wrong, `u-${holder} with a wrong password`);
      await allowed(ROOT, "root (all)");
    }
    // The same decision over a real socket, for a few endpoints.
    for (const e of [ENDPOINTS[0]!, ENDPOINTS[2]!, ENDPOINTS[15]!]) {
      assert.equal((await call(node, e, undefined, true)).status, 401);
      assert.notEqual((await call(node, e, ROOT, true)).status, 401);
    }
    // OPTIONS is never checked; unknown paths stay 404.
    assert.equal(
      (await call(node, { method: "OPTIONS", path: "/db/execute", needs: [] }, undefined)).status,
      200,
    );
    assert.equal(
      (await call(node, { method: "GET", path: "/nothing", needs: [] }, undefined)).status,
      404,
    );
  });
});

Deno.test("auth: '*' grants its permissions without credentials, and to wrong ones", async () => {
  const users = JSON.stringify([
    { username: "root", password: "rootpw", perms: ["all"] },
    { username: "*", perms: ["status", "ready", "query"] },
  ]);
  await withAuthNode(users, async (node) => {
    const q = ENDPOINTS[2]!;
    assert.equal((await call(node, q, undefined)).status, 200);
    assert.equal((await call(node, q, basicHeader({ username: "x", password: "y" }))).status, 200);
    const r = await call(node, ENDPOINTS[0]!, undefined);
    assert.equal(r.status, 401);
    const s = await call(node, ENDPOINTS[15]!, undefined);
    assert.equal(s.status, 200);
    assert.equal(s.headers.get("Access-Control-Allow-Headers"), "Content-Type, Authorization");
    assert.equal(s.headers.get("Access-Control-Allow-Credentials"), "true");
    assert.equal(JSON.parse(s.text).cluster.auth_enabled, true);
    assert.equal(JSON.parse(s.text).http.auth, "enabled", "rqlite's /status http.auth");
  });
});

Deno.test("auth: a bcrypt password in the users file works over HTTP", async () => {
  // $2b$ hash of "correct horse", cost 4 (made with bcryptjs).
  const { default: bcrypt } = await import("npm:bcryptjs@3.0.3");
  const users = JSON.stringify([
    { username: "root", password: "rootpw", perms: ["all"] },
    { username: "h", password: bcrypt.hashSync("correct horse", 4), perms: ["query"] },
  ]);
  await withAuthNode(users, async (node) => {
    const q = ENDPOINTS[2]!;
    assert.equal(
      (await call(node, q, basicHeader({ username: "h", password: "correct horse" }))).status,
      200,
    );
    assert.equal(
      (await call(node, q, basicHeader({ username: "h", password: "correct" }))).status,
      401,
    );
  });
});

Deno.test("auth: a bad users file or -join-as stops the node with a clear fatal", async () => {
  const dir = await Deno.makeTempDir({ prefix: "raftlite-auth-bad-" });
  const main = new URL("../../main.ts", import.meta.url).pathname;
  const run = async (args: string[]) => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        main,
        "-http-addr",
        "127.0.0.1:0",
        "-raft-addr",
        "127.0.0.1:0",
        ...args,
        `${dir}/data`,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    return { code: out.code, stderr: new TextDecoder().decode(out.stderr) };
  };
  try {
    await Deno.writeTextFile(
      `${dir}/bad.json`,
      '[{"username":"a","password":"b","perms":["exec"]}]',
    );
    let r = await run(["-auth", `${dir}/bad.json`]);
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      /fatal: -auth .*bad\.json: entry 1 \(user "a"\): unknown permission "exec"/,
    );
    r = await run(["-auth", `${dir}/missing.json`]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /fatal: -auth .*missing\.json: cannot read the users file/);
    await Deno.writeTextFile(
      `${dir}/ok.json`,
      '[{"username":"a","password":"b","perms":["join"]}]',
    );
    r = await run(["-auth", `${dir}/ok.json`, "-join-as", "zed"]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /fatal: -join-as zed: no such user/);
    r = await run(["-join-as", "a"]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /fatal: -join-as needs -auth/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
