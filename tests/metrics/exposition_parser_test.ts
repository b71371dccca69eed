/** tests/util/prometheus.ts: the strict exposition reader refuses what a scraper would. */

import assert from "node:assert/strict";
import { Registry } from "../../lib/metrics/mod.ts";
import { parseExposition } from "../util/prometheus.ts";

const GOOD = [
  "# HELP a_total A.",
  "# TYPE a_total counter",
  'a_total{k="x\\"y\\\\z\\n"} 3',
  "# HELP h H.",
  "# TYPE h histogram",
  'h_bucket{r="1",le="0.5"} 1',
  'h_bucket{r="1",le="+Inf"} 2',
  'h_sum{r="1"} 0.75',
  'h_count{r="1"} 2',
  "",
].join("\n");

Deno.test("exposition reader: accepts the registry's output and a hand-written valid text", () => {
  const { samples, types } = parseExposition(GOOD);
  assert.equal(samples.get('a_total{k="x\\"y\\\\z\\n"}'), 3);
  assert.equal(types.get("h"), "histogram");
  const r = new Registry();
  r.define("g", "G.", "gauge", { labels: ["x"] }).set(Infinity, "a\nb");
  r.define("lat_seconds", "L.", "histogram", { buckets: [1, 2] }).observe(1.5);
  const parsed = parseExposition(r.render());
  assert.equal(parsed.samples.get('g{x="a\\nb"}'), Infinity);
  assert.equal(parsed.samples.get('lat_seconds_bucket{le="2"}'), 1);
});

Deno.test("exposition reader: refuses what a scraper would refuse or misread", () => {
  const broken: [string, string][] = [
    ["no trailing newline", GOOD.slice(0, -1)],
    ["sample before TYPE", "# HELP g G.\ng 1\n"],
    ["counter without _total", "# HELP c C.\n# TYPE c counter\nc 1\n"],
    ["bad escape", '# HELP g G.\n# TYPE g gauge\ng{k="a\\tb"} 1\n'],
    ["unquoted label", "# HELP g G.\n# TYPE g gauge\ng{k=a} 1\n"],
    ["not a number", "# HELP g G.\n# TYPE g gauge\ng one\n"],
    ["family twice", "# HELP g G.\n# TYPE g gauge\ng 1\n# HELP g G.\n# TYPE g gauge\n"],
    [
      "buckets shrink",
      GOOD.replace('le="+Inf"} 2', 'le="+Inf"} 0').replace('_count{r="1"} 2', '_count{r="1"} 0'),
    ],
    ["+Inf != count", GOOD.replace('h_count{r="1"} 2', 'h_count{r="1"} 5')],
    ["no +Inf bucket", GOOD.replace('h_bucket{r="1",le="+Inf"} 2\n', "")],
    ["blank line", GOOD.replace("# HELP h", "\n# HELP h")],
  ];
  for (const [what, text] of broken) assert.throws(() => parseExposition(text), Error, what);
});
