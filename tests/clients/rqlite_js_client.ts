/**
 * rqlite-js (npm, unmodified) used as its users use it, against the
 * raftlite nodes whose URLs are the arguments. Run by
 * tests/e2e/cluster/rqlite_js_test.ts as
 * `deno run -A --config tests/clients/deno.json tests/clients/rqlite_js_client.ts <phase> <url>...`.
 *
 * Its own config because rqlite-js's CommonJS build requires
 * `@babel/runtime` without declaring it: that needs a node_modules
 * directory with @babel/runtime installed beside it, which the project
 * itself does not want. Prints one JSON object with what each step saw.
 *
 * @module
 */

import { DataApiClient } from "npm:rqlite-js@2.5.7";

// deno-lint-ignore no-explicit-any
type Results = any;

const [phase, ...hosts] = Deno.args;
const client = new DataApiClient(hosts);
const out: Record<string, unknown> = {};

function firstError(r: Results): string | null {
  return r.hasError() ? String(r.getFirstError().toString()) : null;
}

if (phase === "main") {
  let r: Results = await client.execute(
    "CREATE TABLE foo (id INTEGER NOT NULL PRIMARY KEY, name TEXT, data BLOB, n INTEGER)",
  );
  out.create = firstError(r);
  r = await client.execute(
    "INSERT INTO foo(name, data, n) VALUES(\"fiona\", x'00ff10', 9007199254740993)",
  );
  out.insertError = firstError(r);
  out.insertId = r.get(0).getLastInsertId();
  r = await client.execute([["INSERT INTO foo(name, n) VALUES(?, ?)", "bound", 42]]);
  out.paramError = firstError(r);
  out.paramRows = r.get(0).getRowsAffected();
  for (const level of ["none", "weak", "linearizable", "strong", "auto"]) {
    r = await client.query("SELECT name FROM foo ORDER BY id", { level });
    out[`names_${level}`] = firstError(r) ?? r.toArray().map((row: { name: string }) => row.name);
  }
  r = await client.query("SELECT data, n FROM foo WHERE id = 1");
  out.blob = r.get(0).get("data");
  out.bigint = r.get(0).get("n");
  r = await client.execute([
    'INSERT INTO foo(name) VALUES("in tx")',
    "INSERT INTO nosuchtable(x) VALUES(1)",
  ], { transaction: true });
  out.txError = firstError(r);
  r = await client.query('SELECT COUNT(*) AS c FROM foo WHERE name = "in tx"', { level: "strong" });
  out.txRows = r.get(0).get("c");
  r = await client.query("SELECT * FROM missing");
  out.queryError = firstError(r);
  const raw = await client.execute('UPDATE foo SET name = "justin" WHERE name = "fiona"', {
    raw: true,
  });
  out.rawStatus = raw.status;
  out.rawResults = Array.isArray(raw.body?.results);
} else if (phase === "failover") {
  // The first host is down: the client must go on to the next ones.
  const r: Results = await client.execute('INSERT INTO foo(name) VALUES("after failover")');
  out.failoverError = firstError(r);
  const q: Results = await client.query("SELECT COUNT(*) AS c FROM foo", { level: "strong" });
  out.failoverCount = q.get(0).get("c");
} else {
  throw new Error(`unknown phase ${phase}`);
}
console.log(JSON.stringify(out));
