import assert from "node:assert/strict";
import {
  checkDisallowedPragmas,
  DISALLOWED_PRAGMA_ERROR,
  hasDisallowedPragma,
} from "../../lib/db/pragma.ts";

Deno.test("pragma: disallowed forms are detected", () => {
  for (
    const sql of [
      "PRAGMA journal_mode=DELETE",
      "pragma JOURNAL_MODE = wal",
      "  PRAGMA main.journal_mode=OFF",
      'PRAGMA "main"."journal_mode"=OFF',
      "PRAGMA journal_mode(OFF)",
      "PRAGMA wal_autocheckpoint=0",
      "PRAGMA wal_checkpoint",
      "PRAGMA wal_checkpoint(TRUNCATE)",
      "PRAGMA temp.wal_checkpoint",
      "PRAGMA synchronous=OFF",
      "PRAGMA query_only=1",
      "PRAGMA query_only = 0",
      "SELECT 1; PRAGMA synchronous=0",
      "/* c */ PRAGMA synchronous=0",
      "-- c\nPRAGMA synchronous=0",
    ]
  ) assert.equal(hasDisallowedPragma(sql), true, sql);
});

Deno.test("pragma: allowed forms pass", () => {
  for (
    const sql of [
      "PRAGMA journal_mode",
      "PRAGMA main.synchronous",
      "PRAGMA query_only",
      "PRAGMA wal_autocheckpoint",
      "PRAGMA foreign_keys=ON",
      "PRAGMA table_info(foo)",
      "SELECT 'PRAGMA journal_mode=OFF'",
      'SELECT "pragma synchronous=0"',
      "SELECT 1 -- PRAGMA synchronous=0",
      "INSERT INTO pragmas(x) VALUES('pragma query_only=1')",
      "CREATE TABLE journal_mode(x)",
    ]
  ) assert.equal(hasDisallowedPragma(sql), false, sql);
});

Deno.test("pragma: checkDisallowedPragmas rejects the whole request", () => {
  assert.equal(
    checkDisallowedPragmas([{ sql: "SELECT 1" }, { sql: "PRAGMA journal_mode=off" }]),
    DISALLOWED_PRAGMA_ERROR,
  );
  assert.equal(DISALLOWED_PRAGMA_ERROR, "disallowed pragma");
  assert.equal(checkDisallowedPragmas([{ sql: "SELECT 1" }, { sql: "" }]), undefined);
});
