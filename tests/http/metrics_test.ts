/**
 * GET /metrics and /debug/vars on a real node: after writes, a snapshot and
 * a reap the figures move; the format is Prometheus's; every counter of
 * rqlite-api.md §4 is in /debug/vars.
 */

import assert from "node:assert/strict";
import { startTestNode, type TestNode } from "../util/node.ts";

async function metrics(node: TestNode): Promise<Map<string, number>> {
  const res = await node.fetchSocket("/metrics");
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("content-type"), "text/plain; version=0.0.4; charset=utf-8");
  const text = await res.text();
  const values = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const m = /^([a-z_]+(?:\{[^}]*\})?) (\S+)$/.exec(line);
    assert.ok(m !== null, `not a sample line: ${line}`);
    values.set(m[1]!, Number(m[2]));
  }
  return values;
}

async function post(node: TestNode, path: string, body?: unknown): Promise<string> {
  const res = await node.fetchSocket(path, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  assert.ok(res.status === 200 || res.status === 204, `${path}: ${res.status} ${text}`);
  return text;
}

Deno.test("metrics: Raft, proposals, fsync, requests by route and snapshots move", async () => {
  const node = await startTestNode();
  try {
    const before = await metrics(node);
    assert.ok(before.get("raftlite_raft_term")! >= 1);
    assert.equal(before.get("raftlite_raft_is_leader"), 1);
    await post(node, "/db/execute", ["CREATE TABLE t (x)"]);
    for (let i = 0; i < 5; i++) await post(node, "/db/execute", [["INSERT INTO t VALUES(?)", i]]);
    await post(node, "/snapshot");
    const after = await metrics(node);
    const grew = (name: string, by = 1) =>
      assert.ok(
        (after.get(name) ?? 0) - (before.get(name) ?? 0) >= by,
        `${name}: ${before.get(name)} -> ${after.get(name)}`,
      );
    grew("raftlite_raft_applied_index", 6);
    grew("raftlite_raft_commit_index", 6);
    grew("raftlite_raft_proposals_total", 6);
    grew("raftlite_log_append_sync_duration_seconds_count", 6);
    grew('raftlite_http_request_duration_seconds_count{route="/db/execute",code="2xx"}', 6);
    grew("raftlite_snapshots_total");
    grew("raftlite_snapshot_duration_seconds_count");
    assert.ok(after.get("raftlite_raft_leader_changes_total")! >= 1);
    assert.ok(after.get("raftlite_sqlite_database_bytes")! > 0);
    assert.ok(after.get("raftlite_process_resident_memory_bytes")! > 1e6);
    // Cumulative buckets end at the count.
    assert.equal(
      after.get('raftlite_log_append_sync_duration_seconds_bucket{le="+Inf"}'),
      after.get("raftlite_log_append_sync_duration_seconds_count"),
    );
    // An unknown path is one bounded label, not a new series per path.
    for (const p of ["/x1", "/x2", "/x3"]) await (await node.fetchSocket(p)).body?.cancel();
    const unknown = await metrics(node);
    assert.equal(
      unknown.get('raftlite_http_request_duration_seconds_count{route="other",code="4xx"}'),
      3,
    );
    const wrong = await node.fetchSocket("/metrics", { method: "POST" });
    await wrong.body?.cancel();
    assert.equal(wrong.status, 405);
  } finally {
    await node.close();
  }
});

Deno.test("debug/vars: rqlite §4's counters exist and count", async () => {
  const node = await startTestNode();
  try {
    await post(node, "/db/execute", ["CREATE TABLE t (x)"]);
    await post(node, "/snapshot");
    await post(node, "/reap");
    const res = await node.fetchSocket("/debug/vars");
    const vars = JSON.parse(await res.text());
    assert.equal(vars.http.user_snapshots, 1);
    assert.equal(vars.http.user_reaps, 1);
    assert.ok(vars.store.num_snapshots >= 1);
    for (
      const key of [
        "num_restores",
        "num_restores_start",
        "num_restores_start_skipped",
        "num_ignored_joins",
        "num_removed_before_joins",
      ]
    ) assert.equal(typeof vars.store[key], "number", `store.${key}`);
    assert.equal(vars.cluster.num_join_req, 0);
    assert.equal(vars.cluster.num_client_force_new_conn, 0);
    assert.equal(vars.snapshot.upgrade_ok, 0);
    for (
      const key of [
        "num_uploads_ok",
        "num_uploads_fail",
        "num_uploads_skipped",
        "num_uploads_skipped_id",
      ]
    ) {
      assert.equal(vars.uploader[key], 0, `uploader.${key}`);
    }
    const one = await (await node.fetchSocket("/debug/vars?key=snapshot")).text();
    assert.equal(one, '{\n"snapshot": {"upgrade_ok": 0}\n}\n');
  } finally {
    await node.close();
  }
});

Deno.test("debug/vars: a restart from a snapshot counts num_restores_start", async () => {
  const dir = await Deno.makeTempDir({ prefix: "raftlite-vars-" });
  try {
    const first = await startTestNode(["-node-id", "n1"], dir);
    await post(first, "/db/execute", ["CREATE TABLE t (x)"]);
    await post(first, "/snapshot");
    await first.close();
    const second = await startTestNode(["-node-id", "n1"], dir);
    try {
      const vars = JSON.parse(await (await second.fetchSocket("/debug/vars")).text());
      assert.equal(vars.store.num_restores_start, 1);
      assert.equal(vars.store.num_restores_start_skipped, 0);
    } finally {
      await second.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
