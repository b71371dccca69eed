/**
 * A node that knows no leader (rqlite-api.md §4-§6): its data directory
 * holds a configuration whose only voter is another id, so it never
 * campaigns. Leader-requiring requests answer 503 `leader not found`;
 * `level=none` reads and /status, /readyz?noleader still answer.
 */

import assert from "node:assert/strict";
import { parseFlags } from "../../lib/config/flags.ts";
import { configFromFlags } from "../../lib/server/config.ts";
import { startNode } from "../../lib/server/start.ts";
import { waitFor } from "../util/node.ts";
import {
  assertJson,
  assertTextError,
  get,
  parse,
  post,
  postText,
  queryPath,
  type TestNode,
  withNode,
} from "./helpers.ts";

const ROWS = '{"results":[{"columns":["x"],"types":["integer"],"values":[[1]]}]}';

/** Starts a node as node id `b` on a data dir whose configuration only has `a`. */
async function leaderlessNode(dataDir: string): Promise<TestNode> {
  const node = startNode(
    configFromFlags(
      parseFlags([
        "-http-addr",
        "127.0.0.1:0",
        "-raft-addr",
        "127.0.0.1:0",
        "-node-id",
        "b",
        dataDir,
      ]),
    ),
    () => {},
  );
  await node.ready;
  const url = `http://${node.httpAddr}`;
  const n: TestNode = {
    node,
    url,
    dataDir,
    fetch: (path, init) => node.handler(new Request(url + path, init)),
    fetchSocket: (path, init) => fetch(url + path, init),
    close: () => node.close(),
  };
  // The committed log is applied at start-up even without a leader.
  await waitFor(
    async () => (await get(n, queryPath("SELECT * FROM nl_t", "level=none"))).text === ROWS,
    5_000,
  );
  return n;
}

Deno.test("no leader: 503 leader not found, level=none still served", async (t) => {
  const dataDir = await Deno.makeTempDir({ prefix: "raftlite-http-noleader-" });
  try {
    await withNode(["-node-id", "a"], async (a) => {
      await post(a, "/db/execute", ["CREATE TABLE nl_t (x INTEGER)", "INSERT INTO nl_t VALUES(1)"]);
    }, dataDir);
    const n = await leaderlessNode(dataDir);
    try {
      await t.step("/readyz: 503 leader does not exist; noleader 200", async () => {
        const r = await get(n, "/readyz");
        assert.equal(r.status, 503);
        assert.equal(r.text, "[+]node ok\n[+]leader does not exist");
        const live = await get(n, "/readyz?noleader");
        assert.equal(live.status, 200);
        assert.equal(live.text, "[+]node ok");
      });

      await t.step("writes and leader-level reads: 503 leader not found", async () => {
        assertTextError(
          await post(n, "/db/execute", ["INSERT INTO nl_t VALUES(2)"]),
          503,
          "leader not found",
        );
        assertTextError(
          await post(n, "/db/execute?redirect", ["INSERT INTO nl_t VALUES(2)"]),
          503,
          "leader not found",
        );
        for (const level of ["weak", "strong", "linearizable"]) {
          assertTextError(
            await get(n, queryPath("SELECT * FROM nl_t", `level=${level}`)),
            503,
            "leader not found",
          );
        }
        assertTextError(await get(n, queryPath("SELECT * FROM nl_t")), 503, "leader not found");
        assertTextError(
          await post(n, "/db/request", ["SELECT * FROM nl_t"]),
          503,
          "leader not found",
        );
        assertTextError(
          await post(n, "/db/request?level=none", [
            "SELECT * FROM nl_t",
            "INSERT INTO nl_t VALUES(3)",
          ]),
          503,
          "leader not found",
        );
        assertTextError(await get(n, "/leader"), 503, "leader not found");
      });

      await t.step("backup and load: 503 leader not found; backup?noleader is local", async () => {
        for (const path of ["/db/backup", "/db/backup?redirect", "/db/backup?fmt=sql"]) {
          assertTextError(await get(n, path), 503, "leader not found");
        }
        const local = await get(n, "/db/backup?fmt=sql&noleader");
        assert.equal(local.status, 200);
        assert.match(local.text, /INSERT INTO "nl_t" VALUES\(1\);/);
        assertTextError(
          await postText(n, "/db/load", "INSERT INTO nl_t VALUES(9);"),
          503,
          "leader not found",
        );
      });

      await t.step("level=none reads are served locally", async () => {
        assertJson(await get(n, queryPath("SELECT * FROM nl_t", "level=none")), ROWS);
        assertJson(await post(n, "/db/request?level=none", ["SELECT * FROM nl_t"]), ROWS);
        // auto: `none` on a node that is not a voter of the configuration.
        assertJson(await get(n, queryPath("SELECT * FROM nl_t", "level=auto")), ROWS);
        // In /db/request, auto is not resolved: a local read without checks.
        assertJson(await post(n, "/db/request?level=auto", ["SELECT * FROM nl_t"]), ROWS);
      });

      await t.step("/status answers: no leader, not ready, Follower", async () => {
        const store = parse(await get(n, "/status")).store;
        assert.deepEqual(store.leader, { addr: "", node_id: "" });
        assert.equal(store.ready, false);
        assert.equal(store.node_id, "b");
        assert.equal(store.raft.state, "Follower");
        assert.equal(store.raft.voter, false);
      });

      await t.step("/nodes lists the configuration; unreachable nodes omit api_addr", async () => {
        const nodes = parse(await get(n, "/nodes"));
        assert.deepEqual(Object.keys(nodes), ["a"]);
        assert.deepEqual(Object.keys(nodes.a), [
          "id",
          "addr",
          "version",
          "voter",
          "reachable",
          "leader",
          "time",
          "time_s",
          "error",
        ]);
        assert.equal(nodes.a.version, "");
        assert.equal(nodes.a.reachable, false);
        assert.equal(nodes.a.leader, false);
      });
    } finally {
      await n.close();
    }
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

// rqlite §5: a non-leader whose last leader contact is older than `freshness` (here: never)
// answers `{"results":[],"error":"stale read"}` with status 200.
Deno.test({
  name: "no leader: level=none with freshness is a stale read",
  fn: async () => {
    const dataDir = await Deno.makeTempDir({ prefix: "raftlite-http-stale-" });
    try {
      await withNode(["-node-id", "a"], async (a) => {
        await post(a, "/db/execute", [
          "CREATE TABLE nl_t (x INTEGER)",
          "INSERT INTO nl_t VALUES(1)",
        ]);
      }, dataDir);
      const n = await leaderlessNode(dataDir);
      try {
        assertJson(
          await get(n, queryPath("SELECT * FROM nl_t", "level=none&freshness=1s")),
          '{"results":[],"error":"stale read"}',
        );
        assertJson(
          await post(n, "/db/request?level=none&freshness=1s", ["SELECT * FROM nl_t"]),
          '{"results":[],"error":"stale read"}',
        );
      } finally {
        await n.close();
      }
    } finally {
      await Deno.remove(dataDir, { recursive: true });
    }
  },
});
