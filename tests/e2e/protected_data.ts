/**
 * The data the hostile-input tests protect: a table `keep` with 20 known
 * rows (text with non-ASCII, integers beyond 2^53, reals, blobs) beside a
 * table `scratch` that fuzzed requests may write to. {@link protectedState}
 * is what must not change: `keep`'s rows and the whole schema, as the API
 * shows them byte for byte.
 *
 * @module
 */

import assert from "node:assert/strict";
import { get, mustExecute, post } from "./helpers.ts";

/** Rows in `keep`. */
export const KEEP_ROWS = 20;

/** Creates `keep` (with its rows) and `scratch`. */
export async function seedProtectedData(url: string): Promise<void> {
  await mustExecute(url, [
    "CREATE TABLE keep(id INTEGER PRIMARY KEY, t TEXT, n INTEGER, r REAL, b BLOB)",
    "CREATE TABLE scratch(a, b)",
  ]);
  const rows: [string, ...unknown[]][] = [];
  for (let i = 1; i <= KEEP_ROWS; i++) {
    rows.push([
      "INSERT INTO keep VALUES(?, ?, ?, ?, ?)",
      i,
      `row ${i} é \u2028`,
      9007199254740993 + i,
      i / 7,
      [i, 0, 255],
    ]);
  }
  await mustExecute(url, rows);
}

/** `keep`'s rows and the schema, read through the log (level strong). */
export async function protectedState(url: string): Promise<string> {
  const a = await post(url, "/db/query?level=strong", [
    "SELECT * FROM keep ORDER BY id",
    "SELECT type, name, tbl_name, sql FROM sqlite_schema ORDER BY name",
  ]);
  assert.equal(a.status, 200, a.text);
  return a.text;
}

/** The node answers a known query with the known count (at level `level`). */
export async function keepsServing(url: string, where: string, level = "weak"): Promise<void> {
  const a = await get(url, `/db/query?level=${level}&q=SELECT%20count(*)%20FROM%20keep`, 10_000);
  assert.equal(a.status, 200, `${where}: known query: ${a.text}`);
  assert.deepEqual(a.json?.results?.[0]?.values, [[KEEP_ROWS]], `${where}: ${a.text}`);
}

/** The process still runs and logged no crash. */
export async function stillRunning(
  proc: { child: Deno.ChildProcess; stderr(): string },
  what: string,
): Promise<void> {
  const status = await Promise.race([
    proc.child.status.then((s) => `exited ${s.code}`),
    new Promise<string>((r) => setTimeout(() => r("running"), 10)),
  ]);
  assert.equal(status, "running", `${what}: ${proc.stderr().slice(-2000)}`);
  assert.doesNotMatch(proc.stderr(), /Uncaught|panicked|fatal:/i, proc.stderr().slice(-2000));
}
