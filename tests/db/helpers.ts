/** Small builders shared by the lib/db tests. */

import type { Command, CommandKind, Param, ParamValue, Statement } from "../../lib/db/command.ts";
import { type EncodeOptions, encodeResponse } from "../../lib/db/encode.ts";
import type { StatementResult } from "../../lib/db/result.ts";

/** A statement: plain SQL, or [sql, ...params] where a params object gives named ones. */
export type StmtSpec = string | Statement | [
  string,
  ...(ParamValue | Record<string, ParamValue>)[],
];

export function stmt(spec: StmtSpec): Statement {
  if (typeof spec === "string") return { sql: spec, params: [] };
  if (!Array.isArray(spec)) return spec;
  const [sql, ...rest] = spec;
  const params: Param[] = [];
  for (const v of rest) {
    if (v !== null && typeof v === "object" && !(v instanceof Uint8Array)) {
      for (const [name, value] of Object.entries(v)) params.push({ name, value });
    } else {
      params.push({ value: v as ParamValue });
    }
  }
  return { sql, params };
}

export function cmd(
  specs: StmtSpec[],
  extra: Partial<Command> = {},
  kind: CommandKind = "execute",
): Command {
  return { kind, transaction: false, statements: specs.map(stmt), ...extra };
}

/** The rqlite JSON body for `results`. */
export function body(results: StatementResult[], opts: EncodeOptions = {}): string {
  return encodeResponse({ results }, opts);
}

/** A fresh temporary directory path (caller removes it). */
export function tempDir(): string {
  return Deno.makeTempDirSync({ prefix: "raftlite-db-test-" });
}
