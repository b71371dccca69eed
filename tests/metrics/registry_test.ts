/** lib/metrics: the Prometheus text format, exactly. */

import assert from "node:assert/strict";
import { escapeLabel, formatValue, Registry } from "../../lib/metrics/mod.ts";

Deno.test("registry: counters, gauges and histograms render in the 0.0.4 text format", () => {
  const r = new Registry();
  const c = r.define("x_requests_total", "Requests.\nSecond line \\ here.", "counter", {
    labels: ["route"],
  });
  c.inc(1, "/a");
  c.inc(2, "/a");
  c.inc(1, 'we"ird\\\n');
  const g = r.define("x_depth", "Depth.", "gauge");
  g.set(-1.5);
  const h = r.define("x_seconds", "Latency.", "histogram", { buckets: [0.1, 1] });
  h.observe(0.05);
  h.observe(0.1); // on the bound: counted in le="0.1"
  h.observe(0.5);
  h.observe(7);
  let collected = 0;
  r.onCollect(() => collected++);
  assert.equal(
    r.render(),
    [
      "# HELP x_requests_total Requests.\\nSecond line \\\\ here.",
      "# TYPE x_requests_total counter",
      'x_requests_total{route="/a"} 3',
      'x_requests_total{route="we\\"ird\\\\\\n"} 1',
      "# HELP x_depth Depth.",
      "# TYPE x_depth gauge",
      "x_depth -1.5",
      "# HELP x_seconds Latency.",
      "# TYPE x_seconds histogram",
      'x_seconds_bucket{le="0.1"} 2',
      'x_seconds_bucket{le="1"} 3',
      'x_seconds_bucket{le="+Inf"} 4',
      "x_seconds_sum 7.65",
      "x_seconds_count 4",
      "",
    ].join("\n"),
  );
  assert.equal(collected, 1, "collectors run once per render");
});

Deno.test("registry: names, buckets and label sets are checked; series are bounded", () => {
  const r = new Registry();
  assert.throws(() => r.define("bad-name", "", "gauge"), /invalid metric name/);
  assert.throws(() => r.define("x", "", "counter"), /must end in _total/);
  r.define("y", "", "gauge");
  assert.throws(() => r.define("y", "", "gauge"), /defined twice/);
  assert.throws(() => r.define("z", "", "histogram", { buckets: [1, 1] }), /ascend/);
  assert.throws(() => r.define("w", "", "gauge", { labels: ["le"] }), /invalid label/);
  const f = r.define("v_total", "", "counter", { labels: ["k"], maxSeries: 2 });
  f.inc(1, "a");
  f.inc(1, "b");
  f.inc(1, "a");
  assert.throws(() => f.inc(1, "c"), /more than 2 label combinations/);
  assert.throws(() => f.inc(-1, "a"), /counters only grow/);
  assert.throws(() => f.inc(1), /expected 1 label values/);
});

Deno.test("values and labels are written as Prometheus reads them", () => {
  assert.equal(formatValue(Infinity), "+Inf");
  assert.equal(formatValue(-Infinity), "-Inf");
  assert.equal(formatValue(NaN), "NaN");
  assert.equal(formatValue(3), "3");
  assert.equal(formatValue(0.25), "0.25");
  assert.equal(escapeLabel('a"b\\c\nd'), 'a\\"b\\\\c\\nd');
});
