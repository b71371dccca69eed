/**
 * Diagnostics endpoints on a single node (rqlite-api.md §4): /status,
 * /readyz, /nodes, /leader and /debug/vars.
 */

import assert from "node:assert/strict";
import {
  assertEmpty,
  assertJson,
  assertTextError,
  get,
  parse,
  post,
  send,
  type TestNode,
  withNode,
} from "./helpers.ts";

/** rqlite's node object keys, in order (`error` only when unreachable). */
const NODE_KEYS = [
  "id",
  "api_addr",
  "addr",
  "version",
  "voter",
  "reachable",
  "leader",
  "time",
  "time_s",
];

Deno.test("status: /status, /readyz, /nodes, /leader, /debug/vars", async (t) => {
  await withNode([], async (node) => {
    const step = (name: string, fn: (n: TestNode) => Promise<void>) => t.step(name, () => fn(node));
    const status = parse(await get(node, "/status"));
    const nodeId = status.store.node_id as string;
    const raftAddr = status.store.addr as string;
    const version = status.build.version as string;
    const self = node.url.slice("http://".length);

    await step("/status: 200 JSON with rqlite's top-level keys", async (n) => {
      const r = await get(n, "/status");
      assert.equal(r.status, 200);
      assert.equal(r.headers.get("content-type"), "application/json; charset=utf-8");
      const body = JSON.parse(r.text);
      for (const key of ["os", "runtime", "http", "node", "build", "store"]) {
        assert.equal(typeof body[key], "object", key);
      }
      // Go map: keys sorted at every level.
      const sorted = (o: Record<string, unknown>) => {
        const keys = Object.keys(o);
        assert.deepEqual(keys, [...keys].sort());
      };
      sorted(body);
      sorted(body.store);
      sorted(body.store.raft);
      for (const key of ["pid", "ppid", "page_size", "executable", "hostname"]) {
        assert.ok(key in body.os, `os.${key}`);
      }
      for (const key of ["GOARCH", "GOOS", "GOMAXPROCS", "num_cpu", "num_goroutine", "version"]) {
        assert.ok(key in body.runtime, `runtime.${key}`);
      }
      for (const key of ["start_time", "current_time", "uptime"]) assert.ok(key in body.node, key);
      for (
        const key of ["commit", "version", "compiler_toolchain", "compiler_command", "build_time"]
      ) {
        assert.ok(key in body.build, `build.${key}`);
      }
      assert.equal(body.build.version, r.headers.get("x-rqlite-version"));
      assert.equal(body.http.auth, "disabled");
      assert.equal(body.http.bind_addr, self);
      assert.equal(body.http.allow_origin, undefined);
    });

    await step("/status store: open, ready, leader is this node", async (n) => {
      const store = parse(await get(n, "/status")).store;
      assert.deepEqual(store.open, {});
      assert.equal(store.ready, true);
      assert.deepEqual(store.leader, { addr: raftAddr, node_id: nodeId });
      assert.equal(store.raft.state, "Leader");
      assert.equal(store.raft.voter, true);
      assert.equal(store.raft.num_peers, 0);
      assert.deepEqual(store.nodes, [{ addr: raftAddr, id: nodeId, suffrage: "voter" }]);
      for (const key of ["term", "commit_index", "applied_index", "last_log_index"]) {
        assert.ok(Number.isInteger(store.raft[key]) && store.raft[key] > 0, key);
      }
    });

    await step("/status indexes move with writes", async (n) => {
      const before = parse(await get(n, "/status?key=store.raft")).commit_index;
      await post(n, "/db/execute", ["CREATE TABLE st_w (x)", "INSERT INTO st_w VALUES(1)"]);
      const after = parse(await get(n, "/status?key=store.raft"));
      assert.ok(after.commit_index > before, `${after.commit_index} > ${before}`);
      assert.equal(after.applied_index, after.commit_index);
    });

    await step("/status?key= selects a sub-object; missing key is {}", async (n) => {
      const raft = await get(n, "/status?key=store.raft");
      assert.equal(raft.status, 200);
      const body = JSON.parse(raft.text);
      assert.equal(body.state, "Leader");
      assert.ok(!("store" in body) && !("raft" in body));
      assertJson(await get(n, "/status?key=nope"), "{}");
      assertJson(await get(n, "/status?key=store.nope.deeper"), "{}");
      assertJson(await get(n, "/status?key=store.raft.state"), '"Leader"');
      assertJson(
        await get(n, "/status?key=store.leader"),
        `{"addr":${JSON.stringify(raftAddr)},"node_id":${JSON.stringify(nodeId)}}`,
      );
      assertJson(
        await get(n, "/status?key=store.leader&pretty"),
        `{\n    "addr": ${JSON.stringify(raftAddr)},\n    "node_id": ${JSON.stringify(nodeId)}\n}`,
      );
    });

    await step("/status: 405 for other methods", async (n) => {
      for (const method of ["POST", "PUT", "DELETE"]) {
        assertEmpty(await send(n, "/status", { method }), 405);
      }
    });

    await step("/readyz texts", async (n) => {
      const full = await get(n, "/readyz");
      assert.equal(full.status, 200);
      assert.equal(full.text, "[+]node ok\n[+]leader ok\n[+]store ok\n[+]db ok");
      assert.equal(full.headers.get("content-type"), "text/plain; charset=utf-8");
      const noleader = await get(n, "/readyz?noleader");
      assert.equal(noleader.status, 200);
      assert.equal(noleader.text, "[+]node ok");
      const sync = await get(n, "/readyz?sync");
      assert.equal(sync.status, 200);
      assert.equal(sync.text, "[+]node ok\n[+]leader ok\n[+]store ok\n[+]sync ok\n[+]db ok");
      const syncTimeout = await get(n, "/readyz?sync&timeout=2s");
      assert.equal(syncTimeout.text, "[+]node ok\n[+]leader ok\n[+]store ok\n[+]sync ok\n[+]db ok");
      assertEmpty(await send(n, "/readyz", { method: "POST" }), 405);
    });

    await step("/nodes: legacy map keyed by id, rqlite's node keys in order", async (n) => {
      const r = await get(n, "/nodes");
      assert.equal(r.headers.get("content-type"), "application/json; charset=utf-8");
      const body = parse(r);
      assert.deepEqual(Object.keys(body), [nodeId]);
      const me = body[nodeId];
      assert.deepEqual(Object.keys(me), NODE_KEYS);
      assert.equal(me.id, nodeId);
      assert.equal(me.api_addr, n.url);
      assert.equal(me.addr, raftAddr);
      assert.equal(me.version, version);
      assert.equal(me.voter, true);
      assert.equal(me.reachable, true);
      assert.equal(me.leader, true);
      assert.equal(typeof me.time, "number");
      assert.match(me.time_s, /^\d+(\.\d+)?(ns|µs|ms|s)$/);
      // Byte layout: compact, id first.
      assert.match(
        r.text,
        new RegExp(
          `^\\{${esc(JSON.stringify(nodeId))}:\\{"id":${esc(JSON.stringify(nodeId))},` +
            `"api_addr":${esc(JSON.stringify(n.url))},"addr":${esc(JSON.stringify(raftAddr))},` +
            `"version":${
              esc(JSON.stringify(version))
            },"voter":true,"reachable":true,"leader":true,` +
            `"time":[0-9.e-]+,"time_s":"[^"]+"\\}\\}$`,
        ),
      );
      // nonvoters adds nothing on a lone voter.
      assert.deepEqual(Object.keys(parse(await get(n, "/nodes?nonvoters"))), [nodeId]);
      assertEmpty(await send(n, "/nodes", { method: "POST" }), 405);
    });

    await step('/nodes?ver=2: {"nodes":[...]} array form', async (n) => {
      const r = await get(n, "/nodes?ver=2");
      const body = parse(r);
      assert.deepEqual(Object.keys(body), ["nodes"]);
      assert.equal(body.nodes.length, 1);
      assert.deepEqual(Object.keys(body.nodes[0]), NODE_KEYS);
      assert.equal(body.nodes[0].id, nodeId);
      assert.equal(body.nodes[0].leader, true);
      assert.match(r.text, /^\{"nodes":\[\{"id":/);
      // Any other ver is the legacy form.
      assert.deepEqual(Object.keys(parse(await get(n, "/nodes?ver=1"))), [nodeId]);
      const pretty = await get(n, "/nodes?ver=2&pretty");
      assert.match(pretty.text, /^\{\n {4}"nodes": \[\n {8}\{\n {12}"id": /);
    });

    await step("/leader GET: this node's object", async (n) => {
      const r = await get(n, "/leader");
      const body = parse(r);
      assert.deepEqual(Object.keys(body), NODE_KEYS);
      assert.equal(body.id, nodeId);
      assert.equal(body.api_addr, n.url);
      assert.equal(body.addr, raftAddr);
      assert.equal(body.leader, true);
      assert.equal(body.reachable, true);
      assert.match(r.text, new RegExp(`^\\{"id":${esc(JSON.stringify(nodeId))},"api_addr":`));
      assertEmpty(await send(n, "/leader", { method: "PUT" }), 405);
    });

    await step("/debug/vars: expvar layout, keys sorted", async (n) => {
      await post(n, "/db/execute", ["CREATE TABLE st_vars (x)"]);
      await post(n, "/db/query", ["SELECT 1"]);
      await post(n, "/db/request", ["SELECT 1"]);
      const r = await get(n, "/debug/vars");
      assert.equal(r.status, 200);
      assert.equal(r.headers.get("content-type"), "application/json; charset=utf-8");
      assert.ok(r.text.startsWith("{\n") && r.text.endsWith("\n}\n"), JSON.stringify(r.text));
      const lines = r.text.slice(2, -3).split(",\n");
      const names: string[] = [];
      for (const line of lines) {
        const m = line.match(/^("[^"]+"): (.*)$/s);
        assert.ok(m, line);
        names.push(JSON.parse(m[1]!));
        JSON.parse(m[2]!);
      }
      assert.deepEqual(names, [...names].sort());
      for (const name of ["cmdline", "memstats", "http", "store"]) {
        assert.ok(names.includes(name), name);
      }
      const all = JSON.parse(r.text);
      assert.ok(Array.isArray(all.cmdline));
      assert.ok(all.http.executions >= 1 && all.http.queries >= 1 && all.http.requests >= 1);
    });

    await step("/debug/vars?key= restricts to one var; any method", async (n) => {
      const r = await get(n, "/debug/vars?key=http");
      assert.match(r.text, /^\{\n"http": \{.*\}\n\}\n$/s);
      // expvar.Map text: `{"a": 1, "b": 2}`.
      const inner = r.text.slice('{\n"http": '.length, -"\n}\n".length);
      assert.match(inner, /^\{"[a-z_]+": \d+(, "[a-z_]+": \d+)*\}$/);
      assert.match(inner, /"executions": \d+/);
      const store = await get(n, "/debug/vars?key=store");
      assert.match(store.text, /^\{\n"store": \{"[a-z_]+": \d+(, "[a-z_]+": \d+)*\}\n\}\n$/);
      const cmdline = await get(n, "/debug/vars?key=cmdline");
      assert.match(cmdline.text, /^\{\n"cmdline": \[("[^"]*"(,"[^"]*")*)?\]\n\}\n$/);
      assert.equal((await get(n, "/debug/vars?key=nope")).text, "{\n\n}\n");
      for (const method of ["POST", "PUT", "DELETE"]) {
        const m = await send(n, "/debug/vars?key=store", { method });
        assert.equal(m.status, 200, method);
        assert.match(m.text, /^\{\n"store": /);
      }
    });

    await step("405 and 400 on the diagnostics paths", async (n) => {
      assertTextError(await get(n, "/nodes?timeout=x"), 400, "timeout is not a valid duration");
      assertTextError(await get(n, "/readyz?retries=x"), 400, "retries is not a valid integer");
      assertTextError(
        await get(n, "/debug/vars?freshness_strict"),
        400,
        "freshness_strict requires freshness",
      );
    });
  });
});

function esc(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

Deno.test("status: a -node-id different from the Raft address", async () => {
  await withNode(["-node-id", "custom-id"], async (n) => {
    const store = parse(await get(n, "/status?key=store"));
    assert.equal(store.node_id, "custom-id");
    assert.notEqual(store.addr, "custom-id");
    assert.deepEqual(store.leader, { addr: store.addr, node_id: "custom-id" });
    assert.deepEqual(store.nodes, [{ addr: store.addr, id: "custom-id", suffrage: "voter" }]);
    const nodes = parse(await get(n, "/nodes"));
    assert.deepEqual(Object.keys(nodes), ["custom-id"]);
    assert.equal(nodes["custom-id"].addr, store.addr);
    assert.equal(nodes["custom-id"].api_addr, n.url);
    const leader = parse(await get(n, "/leader"));
    assert.equal(leader.id, "custom-id");
    assert.equal(leader.addr, store.addr);
  });
});
