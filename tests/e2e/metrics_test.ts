/**
 * GET /metrics and the logs of a real node process (main.ts): after writes,
 * a read and a snapshot the Prometheus figures move as they should, the
 * exposition passes a strict parser, and every stderr line is one levelled
 * event (-raft-log-level INFO shows the Raft component's events).
 */

import assert from "node:assert/strict";
import { spawnNode } from "../util/node.ts";
import { parseExposition } from "../util/prometheus.ts";
import { get, mustExecute, post, startTracked, withNodes } from "./helpers.ts";

const EVENT =
  /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (ERROR|WARN|INFO|DEBUG) \[[a-z][a-z0-9_-]*\] /;

async function scrape(url: string): Promise<ReadonlyMap<string, number>> {
  const res = await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(10_000) });
  const text = await res.text();
  assert.equal(res.status, 200, text);
  assert.equal(res.headers.get("content-type"), "text/plain; version=0.0.4; charset=utf-8");
  return parseExposition(text).samples;
}

Deno.test("metrics e2e: a node process's /metrics moves with writes, reads and a snapshot", async () => {
  await withNodes("metrics", async (dir, track) => {
    const node = await startTracked(
      track,
      () => spawnNode(dir, ["-raft-log-level", "INFO", "-log-level", "DEBUG"]),
    );
    const before = await scrape(node.url);
    const value = (m: ReadonlyMap<string, number>, key: string) => {
      const v = m.get(key);
      assert.ok(v !== undefined, `no sample ${key}`);
      return v;
    };
    assert.ok(value(before, "raftlite_raft_term") >= 1);
    assert.equal(value(before, "raftlite_raft_is_leader"), 1);
    assert.equal(value(before, 'raftlite_raft_role{role="leader"}'), 1);
    assert.equal(value(before, 'raftlite_raft_role{role="follower"}'), 0);
    assert.ok(value(before, "raftlite_raft_leader_changes_total") >= 1);

    const writes = 20;
    await mustExecute(node.url, ["CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"]);
    for (let i = 0; i < writes; i++) {
      await mustExecute(node.url, [["INSERT INTO t(v) VALUES(?)", `row ${i}`]]);
    }
    assert.equal((await post(node.url, "/db/query", ["SELECT COUNT(*) FROM t"])).status, 200);
    const snap = await fetch(`${node.url}/snapshot`, { method: "POST" });
    await snap.body?.cancel();
    assert.equal(snap.status, 200);
    for (const path of ["/nope", "/nope/2", "/x?y=1"]) {
      assert.equal((await get(node.url, path)).status, 404);
    }
    const after = await scrape(node.url);

    const grew = (key: string, atLeast: number) => {
      const delta = value(after, key) - (before.get(key) ?? 0);
      assert.ok(delta >= atLeast, `${key} grew by ${delta}, expected >= ${atLeast}`);
    };
    grew("raftlite_raft_applied_index", writes + 1);
    grew("raftlite_raft_commit_index", writes + 1);
    grew("raftlite_raft_last_log_index", writes + 1);
    grew("raftlite_raft_proposals_total", writes + 1);
    // Each awaited write had its own append (and fdatasync) on a lone node.
    grew("raftlite_log_append_sync_duration_seconds_count", writes + 1);
    grew("raftlite_log_appends_total", writes + 1);
    grew("raftlite_log_written_bytes_total", 1);
    grew(
      'raftlite_http_request_duration_seconds_count{route="/db/execute",code="2xx"}',
      writes + 1,
    );
    grew('raftlite_http_request_duration_seconds_count{route="/db/query",code="2xx"}', 1);
    grew('raftlite_http_request_duration_seconds_count{route="/snapshot",code="2xx"}', 1);
    grew("raftlite_snapshots_total", 1);
    grew("raftlite_snapshot_duration_seconds_count", 1);
    // Unknown paths share one label: no series per path.
    grew('raftlite_http_request_duration_seconds_count{route="other",code="4xx"}', 3);
    assert.equal([...after.keys()].filter((k) => k.includes("nope")).length, 0);

    assert.equal(value(after, "raftlite_raft_proposals_refused_total"), 0);
    assert.equal(value(after, "raftlite_raft_proposals_failed_total"), 0);
    assert.ok(
      value(after, "raftlite_raft_last_log_index") >= value(after, "raftlite_raft_applied_index"),
    );
    assert.ok(value(after, "raftlite_raft_apply_backlog_entries") >= 0);
    assert.ok(value(after, "raftlite_snapshot_last_duration_seconds") > 0);
    assert.ok(value(after, "raftlite_sqlite_database_bytes") > 0);
    assert.ok(value(after, "raftlite_snapshot_store_bytes") > 0);
    assert.ok(value(after, "raftlite_process_resident_memory_bytes") > 1e6);
    assert.ok(value(after, "raftlite_process_heap_used_bytes") > 0);
    // The scrape itself is in flight while the gauge is read.
    assert.equal(value(after, "raftlite_http_requests_in_flight"), 1);
    assert.equal(value(after, "raftlite_write_queue_depth"), 0);
    assert.equal(value(after, 'raftlite_cluster_requests_total{type="join"}'), 0);
    assert.equal([...after.keys()].filter((k) => k.startsWith("raftlite_build_info{")).length, 1);

    // Logs: every stderr line is one event; the Raft component's INFO events show.
    await node.kill("SIGTERM");
    const lines = node.stderr().split("\n").filter((l) => l !== "");
    for (const line of lines) assert.match(line, EVENT);
    const logs = lines.join("\n");
    assert.match(logs, / INFO \[raft\] leader changed leader=\S+ term=\d+ role=leader/);
    assert.match(logs, / INFO \[raft\] snapshot taken index=\d+ term=\d+ ms=\d+/);
    assert.match(logs, / INFO \[node\] shutting down/);
  });
});

Deno.test("metrics e2e: at the default levels Raft INFO events stay quiet", async () => {
  await withNodes("metrics-quiet", async (dir, track) => {
    const node = await startTracked(track, () => spawnNode(dir));
    await mustExecute(node.url, ["CREATE TABLE t (x)"]);
    await node.kill("SIGTERM");
    const logs = node.stderr();
    assert.doesNotMatch(logs, /\[raft\]/, "-raft-log-level defaults to WARN");
    assert.match(logs, / INFO \[node\] shutting down/, "-log-level defaults to INFO");
  });
});
