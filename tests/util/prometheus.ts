/**
 * A strict reader of the Prometheus text exposition format 0.0.4 for tests:
 * it checks what a scraper relies on and returns every sample by its
 * series text (`name{label="v",...}`), so tests compare numbers.
 *
 * Checked: every family has `# HELP` then `# TYPE` before its samples and
 * appears once; names and label names are valid; label values are quoted
 * with only `\\`, `\"`, `\n` escapes; values parse; counters end in
 * `_total`; a histogram's buckets are cumulative, end with `le="+Inf"`
 * equal to `_count`, and come with `_sum`; the text ends with a newline.
 *
 * @module
 */

import assert from "node:assert/strict";

/** One parsed exposition: samples by series text, and each family's type. */
export interface Exposition {
  readonly samples: ReadonlyMap<string, number>;
  readonly types: ReadonlyMap<string, string>;
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$/;
const LABEL = /^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)/;

/** Parses and checks `text`; throws an AssertionError naming the offending line. */
export function parseExposition(text: string): Exposition {
  assert.ok(text.endsWith("\n"), "the exposition ends with a newline");
  const samples = new Map<string, number>();
  const types = new Map<string, string>();
  const helped = new Set<string>();
  let family = "";
  for (const line of text.slice(0, -1).split("\n")) {
    if (line.startsWith("# HELP ")) {
      const name = line.slice(7).split(" ")[0]!;
      assert.match(name, NAME, line);
      assert.ok(!helped.has(name), `family ${name} appears twice`);
      assert.doesNotMatch(line.slice(8 + name.length), /\\[^\\n]/, `HELP escapes: ${line}`);
      helped.add(name);
      family = name;
      continue;
    }
    if (line.startsWith("# TYPE ")) {
      const [name, type] = line.slice(7).split(" ");
      assert.equal(name, family, `TYPE follows its HELP: ${line}`);
      assert.ok(["counter", "gauge", "histogram"].includes(type!), line);
      if (type === "counter") assert.match(name!, /_total$/, `counter name: ${line}`);
      types.set(name!, type!);
      continue;
    }
    assert.ok(!line.startsWith("#") && line !== "", `unexpected line: ${JSON.stringify(line)}`);
    const m = SAMPLE.exec(line);
    assert.ok(m !== null, `not a sample: ${line}`);
    const [, name, , labels, value] = m;
    const type = types.get(family);
    assert.ok(type !== undefined, `sample before its TYPE: ${line}`);
    const base = type === "histogram" ? name!.replace(/_(bucket|sum|count)$/, "") : name;
    assert.equal(base, family, `sample of family ${family}: ${line}`);
    if (labels !== undefined) checkLabels(labels, line);
    const n = value === "+Inf" ? Infinity : value === "-Inf" ? -Infinity : Number(value);
    assert.ok(value === "NaN" || !Number.isNaN(n), `value: ${line}`);
    const key = labels === undefined ? name! : `${name}{${labels}}`;
    assert.ok(!samples.has(key), `series twice: ${line}`);
    samples.set(key, n);
  }
  for (const [name, type] of types) if (type === "histogram") checkHistogram(name, samples);
  return { samples, types };
}

function checkLabels(labels: string, line: string): void {
  let rest = labels;
  const seen = new Set<string>();
  while (rest !== "") {
    const m = LABEL.exec(rest);
    assert.ok(m !== null, `labels: ${line}`);
    assert.ok(!seen.has(m[1]!), `label twice: ${line}`);
    seen.add(m[1]!);
    rest = rest.slice(m[0].length);
  }
}

/** Buckets of each series of histogram `name` are cumulative and end at `_count`. */
function checkHistogram(name: string, samples: ReadonlyMap<string, number>): void {
  const bySeries = new Map<string, { le: number; n: number }[]>();
  for (const [key, n] of samples) {
    if (!key.startsWith(`${name}_bucket{`)) continue;
    const labels = key.slice(name.length + 8, -1);
    const le = /(?:^|,)le="([^"]*)"$/.exec(labels);
    assert.ok(le !== null, `le is the last label: ${key}`);
    const other = labels.slice(0, le.index);
    const list = bySeries.get(other) ?? [];
    list.push({ le: le[1] === "+Inf" ? Infinity : Number(le[1]), n });
    bySeries.set(other, list);
  }
  for (const [other, buckets] of bySeries) {
    const suffix = other === "" ? "" : `{${other}}`;
    for (let i = 1; i < buckets.length; i++) {
      assert.ok(buckets[i]!.le > buckets[i - 1]!.le, `${name}${suffix}: le ascends`);
      assert.ok(buckets[i]!.n >= buckets[i - 1]!.n, `${name}${suffix}: buckets are cumulative`);
    }
    assert.equal(buckets.at(-1)?.le, Infinity, `${name}${suffix}: ends with le="+Inf"`);
    assert.equal(buckets.at(-1)?.n, samples.get(`${name}_count${suffix}`), `${name}${suffix}`);
    assert.ok(samples.has(`${name}_sum${suffix}`), `${name}_sum${suffix}`);
  }
}
