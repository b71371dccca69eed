/** lib/auth: the users file, rqlite's permission rule, passwords (plaintext and bcrypt), routes. */

import assert from "node:assert/strict";
import bcrypt from "npm:bcryptjs@3.0.3";
import {
  Authenticator,
  basicCredentials,
  basicHeader,
  clusterPermissions,
  constantTimeEquals,
  forwardedWriteKind,
  isBcryptHash,
  parseUsers,
  PERMISSIONS,
  permissionsFor,
  UsersFileError,
} from "../../lib/auth/mod.ts";

const EXAMPLE = JSON.stringify([
  { username: "foo", password: "bar", perms: ["all"] },
  { username: "qux", password: "baz", perms: ["join-read-replica"] },
  { username: "reader", password: "r", perms: ["query"] },
  { username: "writer", password: "w", perms: ["execute"] },
  { username: "*", perms: ["status", "ready"] },
]);

Deno.test("users file: rqlite's example parses, perms as sets", () => {
  const users = parseUsers(EXAMPLE);
  assert.equal(users.length, 5);
  assert.deepEqual([...users[0]!.perms], ["all"]);
  assert.equal(users[4]!.username, "*");
  assert.equal(users[4]!.password, undefined);
});

Deno.test("users file: every mistake is refused with a message naming the entry", () => {
  const cases: [string, RegExp][] = [
    ["{", /not valid JSON/],
    ['{"username":"a"}', /expected a JSON array/],
    ["[1]", /entry 1: expected an object/],
    ['[{"username":"","password":"x","perms":[]}]', /"username" must be a non-empty string/],
    ['[{"username":"a","perms":[]}]', /user "a".*"password" must be a non-empty string/],
    ['[{"username":"a","password":"","perms":[]}]', /"password" must be a non-empty string/],
    ['[{"username":"a","password":"x"}]', /"perms" must be an array/],
    ['[{"username":"a","password":"x","perms":["exec"]}]', /unknown permission "exec"/],
    ['[{"username":"a","password":"x","perms":[1]}]', /unknown permission 1/],
    ['[{"username":"a","password":"x","perms":[],"role":"x"}]', /unknown field "role"/],
    ['[{"username":"*","password":"x","perms":[]}]', /takes no password/],
    // Basic auth splits at the first colon: such a user could never sign in.
    ['[{"username":"a:b","password":"x","perms":[]}]', /user "a:b".*must not contain ":"/],
    // bcrypt-shaped passwords whose cost bcrypt refuses, or that would take minutes per check.
    [`[{"username":"a","password":"$2b$99$${"a".repeat(53)}","perms":[]}]`, /cost 99.*4 to 31/],
    [`[{"username":"a","password":"$2b$03$${"a".repeat(53)}","perms":[]}]`, /cost 3.*4 to 31/],
    [`[{"username":"a","password":"$2y$15$${"a".repeat(53)}","perms":[]}]`, /cost 15.*10 to 12/],
    [
      '[{"username":"a","password":"x","perms":[]},{"username":"a","password":"y","perms":[]}]',
      /user "a" appears more than once/,
    ],
  ];
  for (const [text, message] of cases) {
    assert.throws(() => parseUsers(text), (e: unknown) => {
      assert.ok(e instanceof UsersFileError, `${text}: ${e}`);
      assert.match(e.message, message, text);
      return true;
    });
  }
});

Deno.test("rule: '*' grants without credentials; others need a matching password and the perm", async () => {
  const auth = new Authenticator(parseUsers(EXAMPLE));
  assert.equal(await auth.allowed(undefined, ["status"]), true);
  assert.equal(await auth.allowed(undefined, ["ready"]), true);
  assert.equal(await auth.allowed(undefined, ["query"]), false);
  assert.equal(await auth.allowed({ username: "", password: "" }, ["query"]), false);
  assert.equal(await auth.allowed({ username: "reader", password: "r" }, ["query"]), true);
  assert.equal(await auth.allowed({ username: "reader", password: "R" }, ["query"]), false);
  assert.equal(await auth.allowed({ username: "reader", password: "r" }, ["execute"]), false);
  assert.equal(await auth.allowed({ username: "nobody", password: "r" }, ["query"]), false);
  // "all" grants every permission; "*"'s grants hold for any credentials, even wrong ones.
  for (const p of PERMISSIONS) {
    assert.equal(await auth.allowed({ username: "foo", password: "bar" }, [p]), true, p);
  }
  assert.equal(await auth.allowed({ username: "reader", password: "wrong" }, ["status"]), true);
  // /db/request needs query and execute: each alone is not enough.
  assert.equal(
    await auth.allowed({ username: "reader", password: "r" }, ["query", "execute"]),
    false,
  );
  assert.equal(
    await auth.allowed({ username: "writer", password: "w" }, ["query", "execute"]),
    false,
  );
  assert.equal(
    await auth.allowed({ username: "foo", password: "bar" }, ["query", "execute"]),
    true,
  );
});

Deno.test("rule: '*' with all opens everything; no '*' closes everything to anonymous", async () => {
  const open = new Authenticator(parseUsers('[{"username":"*","perms":["all"]}]'));
  assert.equal(await open.allowed(undefined, ["load", "execute"]), true);
  const closed = new Authenticator(parseUsers('[{"username":"a","password":"b","perms":["ui"]}]'));
  assert.equal(await closed.allowed(undefined, ["status"]), false);
  assert.equal(await closed.allowed({ username: "a", password: "b" }, ["ui"]), true);
});

Deno.test("passwords: bcrypt hashes ($2a$, $2b$, $2y$) are checked, plaintext compared exactly", async () => {
  const hash2b = bcrypt.hashSync("s3cret", 4);
  assert.ok(isBcryptHash(hash2b));
  const hash2a = "$2a$" + hash2b.slice(4);
  const hash2y = "$2y$" + hash2b.slice(4);
  const users = parseUsers(JSON.stringify([
    { username: "b", password: hash2b, perms: ["query"] },
    { username: "a", password: hash2a, perms: ["query"] },
    { username: "y", password: hash2y, perms: ["query"] },
    { username: "p", password: "$2b$not-a-hash", perms: ["query"] },
  ]));
  const auth = new Authenticator(users);
  for (const u of ["b", "a", "y"]) {
    assert.equal(await auth.allowed({ username: u, password: "s3cret" }, ["query"]), true, u);
    assert.equal(await auth.allowed({ username: u, password: "s3cret!" }, ["query"]), false, u);
    assert.equal(await auth.allowed({ username: u, password: hash2b }, ["query"]), false, u);
  }
  // Not a well-formed hash: a plaintext password that happens to start with $2b$.
  assert.equal(await auth.allowed({ username: "p", password: "$2b$not-a-hash" }, ["query"]), true);
  assert.equal(await auth.allowed({ username: "p", password: "x" }, ["query"]), false);
});

Deno.test("passwords: a successful bcrypt check is remembered (bounded, expiring); failures never", async () => {
  let now = 0;
  const hash = bcrypt.hashSync("pw", 4);
  const users = parseUsers(JSON.stringify([
    { username: "u1", password: hash, perms: ["query"] },
    { username: "u2", password: hash, perms: ["query"] },
  ]));
  const auth = new Authenticator(users, {
    bcryptCacheTtlMs: 1000,
    bcryptCacheMax: 1,
    nowMs: () => now,
  });
  const calls: string[] = [];
  const original = bcrypt.compare;
  // Count the real bcrypt comparisons made.
  (bcrypt as { compare: typeof bcrypt.compare }).compare = ((a: string, b: string) => {
    calls.push(a);
    return original(a, b);
  }) as typeof bcrypt.compare;
  try {
    assert.equal(await auth.allowed({ username: "u1", password: "pw" }, ["query"]), true);
    assert.equal(await auth.allowed({ username: "u1", password: "pw" }, ["query"]), true);
    assert.equal(calls.length, 1, "second check served from the cache");
    assert.equal(await auth.allowed({ username: "u1", password: "no" }, ["query"]), false);
    assert.equal(await auth.allowed({ username: "u1", password: "no" }, ["query"]), false);
    assert.equal(calls.length, 3, "failures are not cached");
    // One entry at most: u2 pushes u1 out.
    assert.equal(await auth.allowed({ username: "u2", password: "pw" }, ["query"]), true);
    assert.equal(await auth.allowed({ username: "u1", password: "pw" }, ["query"]), true);
    assert.equal(calls.length, 5);
    now += 1001; // expired
    assert.equal(await auth.allowed({ username: "u1", password: "pw" }, ["query"]), true);
    assert.equal(calls.length, 6);
  } finally {
    (bcrypt as { compare: typeof bcrypt.compare }).compare = original;
  }
});

Deno.test("passwords: constantTimeEquals is exact for any lengths", () => {
  assert.equal(constantTimeEquals("abc", "abc"), true);
  assert.equal(constantTimeEquals("abc", "abd"), false);
  assert.equal(constantTimeEquals("abc", "abcd"), false);
  assert.equal(constantTimeEquals("", ""), true);
  assert.equal(constantTimeEquals("é", "e\u0301"), false);
});

Deno.test("Basic header: parsed, round-trips, malformed ones are anonymous", () => {
  const creds = { username: "üser", password: "pa:ss word" };
  assert.deepEqual(basicCredentials(basicHeader(creds)), creds);
  assert.deepEqual(basicCredentials("basic Zm9vOmJhcg=="), { username: "foo", password: "bar" });
  for (const bad of [null, undefined, "", "Bearer abc", "Basic", "Basic !!!", "Basic Zm9v"]) {
    assert.equal(basicCredentials(bad), undefined, String(bad));
  }
});

Deno.test("-join-as: plaintext password returned; a bcrypt hash or unknown user refused", () => {
  const auth = new Authenticator(parseUsers(JSON.stringify([
    { username: "joiner", password: "jp", perms: ["join"] },
    { username: "hashed", password: bcrypt.hashSync("x", 4), perms: ["join"] },
  ])));
  assert.equal(auth.passwordOf("joiner"), "jp");
  assert.throws(() => auth.passwordOf("hashed"), /bcrypt hash/);
  assert.throws(() => auth.passwordOf("nobody"), /no such user/);
});

Deno.test("routes: each endpoint's permission as rqlite; unknown paths and redirects need none", () => {
  const table: [string, string, string[] | undefined][] = [
    ["POST", "/db/execute", ["execute"]],
    ["GET", "/db/query", ["query"]],
    ["POST", "/db/request", ["query", "execute"]],
    ["GET", "/db/sql", ["query"]],
    ["GET", "/db/backup", ["backup"]],
    ["POST", "/db/load", ["load"]],
    ["POST", "/boot", ["load"]],
    ["POST", "/snapshot", ["snapshot"]],
    ["POST", "/reap", ["snapshot"]],
    ["DELETE", "/remove", ["remove"]],
    ["GET", "/leader", ["status"]],
    ["POST", "/leader", ["leader-ops"]],
    ["GET", "/nodes", ["status"]],
    ["GET", "/status", ["status"]],
    ["GET", "/readyz", ["ready"]],
    ["GET", "/debug/vars", ["status"]],
    ["GET", "/metrics", ["status"]],
    ["GET", "/console/", ["ui"]],
    ["GET", "/console/app.js", ["ui"]],
    ["PUT", "/db/execute", ["execute"]], // 401 before 405
    ["OPTIONS", "/db/execute", undefined],
    ["GET", "/", undefined],
    ["GET", "/console", undefined],
    ["GET", "/nothing", undefined],
  ];
  for (const [method, path, perms] of table) {
    assert.deepEqual(permissionsFor(method, path), perms, `${method} ${path}`);
  }
  assert.deepEqual(clusterPermissions("join"), [["join"]]);
  assert.deepEqual(clusterPermissions("join", true), [["join"], ["join-read-only"], [
    "join-read-replica",
  ]]);
  assert.deepEqual(clusterPermissions("request"), [["query", "execute"]]);
  assert.deepEqual(clusterPermissions("nodeMeta"), []);
  // A forwarded /db/load (image, or SQL text with rollbackOnError) needs load on the leader.
  assert.equal(forwardedWriteKind({ kind: "load" }), "load");
  assert.equal(forwardedWriteKind({ kind: "execute", rollbackOnError: true }), "load");
  assert.equal(forwardedWriteKind({ kind: "execute" }), "execute");
  assert.equal(forwardedWriteKind({ kind: "execute", rollbackOnError: false }), "execute");
  assert.deepEqual(clusterPermissions("load"), [["load"]]);
  assert.deepEqual(clusterPermissions("execute"), [["execute"]]);
});

/** Runs `body` while counting the real bcrypt comparisons made (their passwords, in order). */
async function countingBcrypt(body: (calls: string[]) => Promise<void>): Promise<void> {
  const calls: string[] = [];
  const original = bcrypt.compare;
  (bcrypt as { compare: typeof bcrypt.compare }).compare = ((a: string, b: string) => {
    calls.push(a);
    return original(a, b);
  }) as typeof bcrypt.compare;
  try {
    await body(calls);
  } finally {
    (bcrypt as { compare: typeof bcrypt.compare }).compare = original;
  }
}

Deno.test("passwords: concurrent checks of the same credentials share one bcrypt run", async () => {
  const auth = new Authenticator(parseUsers(JSON.stringify([
    { username: "u", password: bcrypt.hashSync("pw", 4), perms: ["query"] },
  ])));
  await countingBcrypt(async (calls) => {
    const right = await Promise.all(
      Array.from({ length: 8 }, () => auth.allowed({ username: "u", password: "pw" }, ["query"])),
    );
    assert.deepEqual(right, Array(8).fill(true));
    assert.equal(calls.length, 1, "eight concurrent checks, one bcrypt run");
    const wrong = await Promise.all(
      Array.from({ length: 4 }, () => auth.allowed({ username: "u", password: "no" }, ["query"])),
    );
    assert.deepEqual(wrong, Array(4).fill(false));
    assert.equal(calls.length, 2, "a shared failing run is not cached afterwards");
    assert.equal(await auth.allowed({ username: "u", password: "no" }, ["query"]), false);
    assert.equal(calls.length, 3);
  });
});

Deno.test("passwords: with bcrypt users, an unknown user costs a bcrypt run too (and never passes)", async () => {
  const hash = bcrypt.hashSync("pw", 4);
  const withHashes = new Authenticator(parseUsers(JSON.stringify([
    { username: "h", password: hash, perms: ["all"] },
    { username: "p", password: "plain", perms: ["all"] },
    { username: "*", perms: [] },
  ])));
  await countingBcrypt(async (calls) => {
    // h's own password under another name, or as "*", must not pass the decoy check.
    for (const username of ["nobody", "H", "*"]) {
      assert.equal(await withHashes.allowed({ username, password: "pw" }, ["query"]), false);
    }
    assert.equal(calls.length, 3, "each unknown user paid a bcrypt run, as a known one would");
    // Plaintext users are compared in constant time, no bcrypt involved.
    assert.equal(await withHashes.allowed({ username: "p", password: "plain" }, ["query"]), true);
    assert.equal(await withHashes.allowed({ username: "p", password: "pw" }, ["query"]), false);
    assert.equal(calls.length, 3);
  });
  const plainOnly = new Authenticator(
    parseUsers('[{"username":"p","password":"x","perms":["all"]}]'),
  );
  await countingBcrypt(async (calls) => {
    assert.equal(await plainOnly.allowed({ username: "nobody", password: "x" }, ["query"]), false);
    assert.equal(calls.length, 0, "no bcrypt users: nothing to imitate");
  });
});
