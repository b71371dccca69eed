import assert from "node:assert/strict";
import { parseQueryParams, parseRawQuery } from "../../lib/sql/params.ts";
import type { QueryParams } from "../../lib/sql/params.ts";

function ok(query: string): QueryParams {
  const r = parseQueryParams(query);
  if (!r.ok) throw new Error(`expected ${query} to parse, got ${r.error}`);
  return r.params;
}

function err(query: string): string {
  const r = parseQueryParams(query);
  assert.equal(r.ok, false, `expected ${query} to fail`);
  return r.ok ? "" : r.error;
}

Deno.test("flags: presence turns them on whatever the value", () => {
  for (const q of ["pretty", "pretty=", "pretty=true", "pretty=false", "pretty=0", "?pretty=no"]) {
    assert.equal(ok(q).pretty, true, q);
  }
  assert.equal(ok("").pretty, false);
  assert.equal(ok("?").pretty, false);
  assert.equal(ok("timings").pretty, false);
});

Deno.test("flags: every documented flag maps to its field", () => {
  const names: [string, keyof QueryParams][] = [
    ["pretty", "pretty"],
    ["timings", "timings"],
    ["transaction", "transaction"],
    ["queue", "queue"],
    ["wait", "wait"],
    ["associative", "associative"],
    ["blob_array", "blobArray"],
    ["qualify_columns", "qualifyColumns"],
    ["norwrandom", "norwrandom"],
    ["norwtime", "norwtime"],
    ["noparse", "noparse"],
    ["redirect", "redirect"],
    ["noleader", "noleader"],
    ["nonvoters", "nonvoters"],
    ["raft_index", "raftIndex"],
    ["compress", "compress"],
    ["vacuum", "vacuum"],
    ["sync", "sync"],
    ["bypass", "bypass"],
  ];
  for (const [key, field] of names) {
    const p = ok(`${key}=false`);
    assert.equal(p[field], true, key);
    // Only that one.
    const on = names.filter(([, f]) => p[f] === true).map(([k]) => k);
    assert.deepEqual(on, [key]);
  }
  assert.equal(ok("freshness=1s&freshness_strict").freshnessStrict, true);
});

Deno.test("keys are case-sensitive and unknown keys are ignored", () => {
  const p = ok("Pretty&TIMINGS&whatever=1&x");
  assert.equal(p.pretty, false);
  assert.equal(p.timings, false);
  assert.equal(p.raw.get("whatever"), "1");
  // Case-sensitive validation too: TIMEOUT is unknown, so not validated.
  assert.equal(ok("TIMEOUT=bogus").timeoutMs, undefined);
});

Deno.test("the first value of a repeated key wins", () => {
  assert.equal(ok("level=none&level=strong").level, "none");
  assert.equal(ok("timeout=1s&timeout=bogus").timeoutMs, 1000);
  assert.equal(err("timeout=bogus&timeout=1s"), "timeout is not a valid duration");
  assert.equal(ok("q=SELECT%201&q=").q, "SELECT 1");
});

Deno.test("durations: each parameter validated with Go's grammar and its own message", () => {
  for (const name of ["timeout", "freshness", "db_timeout", "linearizable_timeout"]) {
    for (const bad of ["10", "1.5", "", "abc", "1d", "-", "1%20s"]) {
      assert.equal(err(`${name}=${bad}`), `${name} is not a valid duration`, `${name}=${bad}`);
    }
    assert.equal(err(name), `${name} is not a valid duration`); // present without value
  }
  const p = ok("timeout=2s&freshness=1m30s&db_timeout=0&linearizable_timeout=300ms");
  assert.equal(p.timeoutMs, 2000);
  assert.equal(p.freshnessMs, 90_000);
  assert.equal(p.dbTimeoutMs, 0);
  assert.equal(p.linearizableTimeoutMs, 300);
  assert.equal(ok("timeout=-1.5h").timeoutMs, -5_400_000);
  assert.equal(ok("timeout=1us").timeoutMs, 0.001);
  assert.equal(ok("timeout=1%C2%B5s").timeoutMs, 0.001); // µs, percent-encoded
  assert.equal(ok("timeout=2h45m").timeoutMs, 9_900_000);
  const absent = ok("");
  assert.equal(absent.timeoutMs, undefined);
  assert.equal(absent.freshnessMs, undefined);
  assert.equal(absent.dbTimeoutMs, undefined);
  assert.equal(absent.linearizableTimeoutMs, undefined);
});

Deno.test("integers: retries and trailing_logs as Go's strconv.Atoi", () => {
  assert.equal(ok("retries=3").retries, 3);
  assert.equal(ok("retries=-2").retries, -2);
  assert.equal(ok("retries=%2B4").retries, 4); // +4
  assert.equal(ok("trailing_logs=100").trailingLogs, 100);
  for (const bad of ["", "1.0", "abc", "1e3", "0x10", "1_000", "9223372036854775808"]) {
    assert.equal(err(`retries=${bad}`), "retries is not a valid integer", bad);
    assert.equal(err(`trailing_logs=${bad}`), "trailing_logs is not a valid integer", bad);
  }
  assert.equal(ok("retries=9223372036854775807").retries, 9223372036854775807);
  assert.equal(ok("").retries, undefined);
});

Deno.test("freshness_strict requires freshness", () => {
  assert.equal(err("freshness_strict"), "freshness_strict requires freshness");
  assert.equal(err("freshness_strict=true&level=none"), "freshness_strict requires freshness");
  assert.equal(ok("freshness_strict&freshness=5s").freshnessMs, 5000);
});

Deno.test("q: value kept, empty rejected", () => {
  assert.equal(ok("q=SELECT+*+FROM+foo").q, "SELECT * FROM foo");
  assert.equal(ok("q=SELECT%20%27a%2Bb%27").q, "SELECT 'a+b'");
  assert.equal(err("q="), "query parameter not set");
  assert.equal(err("q"), "query parameter not set");
  assert.equal(ok("").q, undefined);
});

Deno.test("validation order: freshness_strict, durations, integers, q", () => {
  assert.equal(
    err("q=&retries=x&timeout=x&freshness_strict"),
    "freshness_strict requires freshness",
  );
  assert.equal(err("q=&retries=x&db_timeout=x&timeout=x"), "timeout is not a valid duration");
  assert.equal(
    err("q=&retries=x&linearizable_timeout=x&freshness=y"),
    "freshness is not a valid duration",
  );
  assert.equal(err("q=&trailing_logs=x&retries=x"), "retries is not a valid integer");
  assert.equal(err("q=&trailing_logs=x"), "trailing_logs is not a valid integer");
});

Deno.test("level: case-insensitive, unknown or absent is weak", () => {
  assert.equal(ok("").level, "weak");
  assert.equal(ok("level=").level, "weak");
  assert.equal(ok("level=bogus").level, "weak");
  assert.equal(ok("level=NONE").level, "none");
  assert.equal(ok("level=Weak").level, "weak");
  assert.equal(ok("level=sTrOnG").level, "strong");
  assert.equal(ok("level=LINEARIZABLE").level, "linearizable");
  assert.equal(ok("level=auto").level, "auto");
});

Deno.test("ver, fmt, tables, key", () => {
  assert.equal(ok("ver=2").ver, "2");
  assert.equal(ok("").ver, undefined);
  assert.equal(ok("").backupFormat, "binary");
  assert.equal(ok("fmt=sql").backupFormat, "sql");
  assert.equal(ok("fmt=delete").backupFormat, "delete");
  assert.equal(ok("fmt=binary").backupFormat, "binary");
  assert.equal(ok("fmt=SQL").backupFormat, "binary");
  assert.equal(ok("fmt=bogus").backupFormat, "binary");
  assert.deepEqual(ok("tables=foo,bar").tables, ["foo", "bar"]);
  assert.deepEqual(ok("tables=foo").tables, ["foo"]);
  assert.deepEqual(ok("tables=a,,b%2Cc").tables, ["a", "", "b", "c"]);
  assert.equal(ok("").tables, undefined);
  assert.equal(ok("key=store.raft").key, "store.raft");
});

Deno.test("url.ParseQuery errors become 400 texts", () => {
  assert.equal(err("a=1;b=2"), "invalid semicolon separator in query");
  assert.equal(err("pretty&x;y"), "invalid semicolon separator in query");
  assert.equal(err("a=%zz"), 'invalid URL escape "%zz"');
  assert.equal(err("a=%"), 'invalid URL escape "%"');
  assert.equal(err("a=%4"), 'invalid URL escape "%4"');
  assert.equal(err("%g1=x"), 'invalid URL escape "%g1"');
  // The first escape error is kept; a semicolon error overrides it (as in Go).
  assert.equal(err("a=%zz&b=%yy"), 'invalid URL escape "%zz"');
  assert.equal(err("a=%zz&b;c"), "invalid semicolon separator in query");
  // Errors are reported even when valid parameters follow.
  assert.equal(err("a=%zz&pretty"), 'invalid URL escape "%zz"');
});

Deno.test("parseRawQuery: decoding as Go's url.ParseQuery", () => {
  const { values, error } = parseRawQuery("a=1&&b&c=x+y&d=%E2%82%AC&=v&e=a=b&a=2");
  assert.equal(error, undefined);
  assert.equal(values.get("a"), "1");
  assert.equal(values.get("b"), "");
  assert.equal(values.get("c"), "x y");
  assert.equal(values.get("d"), "\u20ac");
  assert.equal(values.get(""), "v");
  assert.equal(values.get("e"), "a=b");
});
