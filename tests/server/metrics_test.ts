/**
 * lib/server/metrics.ts without a node: route labels follow the router
 * (exact or prefix), stay a bounded set whatever paths arrive, and a node
 * that has not opened its store yet still renders a valid exposition.
 */

import assert from "node:assert/strict";
import { NodeMetrics, routeLabel } from "../../lib/server/metrics.ts";
import { parseExposition } from "../util/prometheus.ts";

function idleMetrics(): NodeMetrics {
  return new NodeMetrics({
    store: () => undefined,
    storage: () => undefined,
    db: () => undefined,
    authRefusals: () => 0,
  });
}

Deno.test("metrics: route labels are the router's routes, matched as the router matches them", () => {
  const cases: [string, string][] = [
    ["/db/execute", "/db/execute"],
    ["/db/executemore", "/db/execute"], // prefix route, as rqlite's mux
    ["/db/query/x", "/db/query"],
    ["/status", "/status"],
    ["/leader", "/leader"],
    ["/leader/x", "other"], // exact route
    ["/snapshots", "other"],
    ["/metrics", "/metrics"],
    ["/debug/vars", "/debug/vars"],
    ["/console/app.js", "/console/"],
    ["/", "other"],
    ["/nope", "other"],
  ];
  for (const [path, label] of cases) assert.equal(routeLabel(path), label, path);
});

Deno.test("metrics: any number of distinct paths and statuses stays a bounded set of series", () => {
  const m = idleMetrics();
  for (let i = 0; i < 2_000; i++) {
    m.observeRequest(`/random/${i}`, 404, 0.001);
    m.observeRequest(`/db/query/${i}`, 100 + (i % 700), 0.002);
  }
  const { samples } = parseExposition(m.render());
  const counts = [...samples.keys()].filter((k) =>
    k.startsWith("raftlite_http_request_duration_seconds_count")
  );
  assert.deepEqual(counts.sort(), [
    'raftlite_http_request_duration_seconds_count{route="/db/query",code="1xx"}',
    'raftlite_http_request_duration_seconds_count{route="/db/query",code="2xx"}',
    'raftlite_http_request_duration_seconds_count{route="/db/query",code="3xx"}',
    'raftlite_http_request_duration_seconds_count{route="/db/query",code="4xx"}',
    'raftlite_http_request_duration_seconds_count{route="/db/query",code="5xx"}',
    'raftlite_http_request_duration_seconds_count{route="/db/query",code="other"}',
    'raftlite_http_request_duration_seconds_count{route="other",code="4xx"}',
  ]);
  assert.equal(
    samples.get('raftlite_http_request_duration_seconds_count{route="other",code="4xx"}'),
    2_000,
  );
});

Deno.test("metrics: a node whose store is not open yet renders a valid exposition", () => {
  const m = idleMetrics();
  m.requestsInFlight(1);
  m.observeAppendSync(2.5);
  m.observeSnapshot(1500);
  m.leaderChanged();
  const { samples, types } = parseExposition(m.render());
  assert.equal(samples.get("raftlite_http_requests_in_flight"), 1);
  assert.equal(samples.get('raftlite_log_append_sync_duration_seconds_bucket{le="0.0025"}'), 1);
  assert.equal(samples.get('raftlite_log_append_sync_duration_seconds_bucket{le="0.001"}'), 0);
  assert.equal(samples.get("raftlite_log_append_sync_duration_seconds_sum"), 0.0025);
  assert.equal(samples.get("raftlite_snapshot_duration_seconds_sum"), 1.5);
  assert.equal(samples.get("raftlite_raft_leader_changes_total"), 1);
  assert.equal(types.get("raftlite_raft_term"), "gauge");
  assert.equal(types.get("raftlite_raft_proposals_total"), "counter");
  assert.equal(samples.get("raftlite_raft_term"), 0);
});
