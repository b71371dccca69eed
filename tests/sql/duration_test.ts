import assert from "node:assert/strict";
import {
  formatGoDuration,
  formatGoDurationNs,
  isGoDuration,
  parseGoDuration,
} from "../../lib/sql/duration.ts";

function ns(text: string): bigint {
  const r = parseGoDuration(text);
  assert.ok(r.ok, `${text} should parse`);
  return r.ns;
}

Deno.test("parseGoDuration: the examples of Go's documentation and every unit", () => {
  assert.equal(ns("300ms"), 300_000_000n);
  assert.equal(ns("-1.5h"), -5_400_000_000_000n);
  assert.equal(ns("2h45m"), 9_900_000_000_000n);
  assert.equal(ns("1ns"), 1n);
  assert.equal(ns("1us"), 1_000n);
  assert.equal(ns("1\u00b5s"), 1_000n); // micro sign
  assert.equal(ns("1\u03bcs"), 1_000n); // Greek mu
  assert.equal(ns("1ms"), 1_000_000n);
  assert.equal(ns("2s"), 2_000_000_000n);
  assert.equal(ns("1m30s"), 90_000_000_000n);
  assert.equal(ns("1h"), 3_600_000_000_000n);
  assert.equal(ns("+5s"), 5_000_000_000n);
});

Deno.test("parseGoDuration: fractions as Go computes them", () => {
  assert.equal(ns(".5s"), 500_000_000n);
  assert.equal(ns("1.s"), 1_000_000_000n);
  assert.equal(ns("1.5ms"), 1_500_000n);
  assert.equal(ns("0.000000001s"), 1n);
  // Precision beyond 1<<63 in the fraction is dropped, not an error.
  assert.equal(ns("1.0000000000000000000001s"), 1_000_000_000n);
  assert.equal(ns("1h1m1.1s"), 3_661_100_000_000n);
});

Deno.test("parseGoDuration: bare zero is the only bare number", () => {
  assert.equal(ns("0"), 0n);
  assert.equal(ns("-0"), 0n);
  assert.equal(ns("+0"), 0n);
  for (const bad of ["1", "10", "00", "0.0", "1.5", "-1"]) {
    assert.equal(isGoDuration(bad), false, bad);
  }
});

Deno.test("parseGoDuration: invalid forms and Go's messages", () => {
  for (
    const bad of ["", "-", "+", "s", ".s", "1S", "1 s", " 1s", "1s ", "1d", "1h-2m", "1e3s", "--1s"]
  ) {
    assert.equal(isGoDuration(bad), false, JSON.stringify(bad));
  }
  assert.deepEqual(parseGoDuration("1"), {
    ok: false,
    error: 'time: missing unit in duration "1"',
  });
  assert.deepEqual(parseGoDuration("1d"), {
    ok: false,
    error: 'time: unknown unit "d" in duration "1d"',
  });
  assert.deepEqual(parseGoDuration(""), { ok: false, error: 'time: invalid duration ""' });
  assert.deepEqual(parseGoDuration('"1s'), {
    ok: false,
    error: 'time: invalid duration "\\"1s"',
  });
});

Deno.test("parseGoDuration: int64 overflow bounds", () => {
  assert.equal(ns("9223372036854775807ns"), 9223372036854775807n);
  assert.equal(ns("-9223372036854775808ns"), -9223372036854775808n);
  assert.equal(ns("2562047h47m16.854775807s"), 9223372036854775807n);
  assert.equal(isGoDuration("9223372036854775808ns"), false);
  assert.equal(isGoDuration("2562047h47m16.854775808s"), false);
  assert.equal(isGoDuration("2562048h"), false);
  assert.equal(isGoDuration("99999999999999999999s"), false);
});

Deno.test("formatGoDuration: Duration.String() for ms inputs", () => {
  assert.equal(formatGoDuration(0), "0s");
  assert.equal(formatGoDuration(10_000), "10s");
  assert.equal(formatGoDuration(60_000), "1m0s");
  assert.equal(formatGoDuration(90_000), "1m30s");
  assert.equal(formatGoDuration(1.5), "1.5ms");
  assert.equal(formatGoDuration(0.1), "100\u00b5s");
  assert.equal(formatGoDuration(0.0015), "1.5\u00b5s");
  assert.equal(formatGoDuration(0.000001), "1ns");
  assert.equal(formatGoDuration(1), "1ms");
  assert.equal(formatGoDuration(1000), "1s");
  assert.equal(formatGoDuration(1500), "1.5s");
  assert.equal(formatGoDuration(3_600_000), "1h0m0s");
  assert.equal(formatGoDuration(9_900_000), "2h45m0s");
  assert.equal(formatGoDuration(3_723_000.5), "1h2m3.0005s");
  assert.equal(formatGoDuration(-1500), "-1.5s");
  // Large whole values stay exact (no float noise in the nanoseconds).
  assert.equal(formatGoDuration(200 * 86_400_000), "4800h0m0s");
  assert.throws(() => formatGoDuration(Number.NaN), RangeError);
});

Deno.test("formatGoDurationNs: nanosecond inputs and the int64 extremes", () => {
  assert.equal(formatGoDurationNs(1n), "1ns");
  assert.equal(formatGoDurationNs(999n), "999ns");
  assert.equal(formatGoDurationNs(1_000n), "1\u00b5s");
  assert.equal(formatGoDurationNs(100_000n), "100\u00b5s");
  assert.equal(formatGoDurationNs(1_234_567n), "1.234567ms");
  assert.equal(formatGoDurationNs(1_000_000_001n), "1.000000001s");
  assert.equal(formatGoDurationNs(9223372036854775807n), "2562047h47m16.854775807s");
  assert.equal(formatGoDurationNs(-9223372036854775808n), "-2562047h47m16.854775808s");
});

Deno.test("parse and format round-trip", () => {
  for (const text of ["1h2m3.5s", "1.5ms", "100\u00b5s", "10s", "1m0s", "-2h0m0s", "0s", "7ns"]) {
    assert.equal(formatGoDurationNs(ns(text)), text);
  }
});
