/**
 * Dot-commands about the node and the cluster rather than the data:
 * `.status`, `.expvar`, `.extensions`, `.ready`, `.nodes`, `.leader`,
 * `.remove`, `.stepdown`, `.snapshot`, `.reap`, `.sysdump`. Each is one or
 * a few HTTP calls (rqlite-api.md §4, §14); node lists print as tables in
 * the current `.mode`, diagnostics as indented JSON.
 *
 * @module
 */

import { httpErrorMessage, type TextResponse } from "./connection.ts";
import { formatResult, jsonValue } from "./format.ts";
import { writeAllSync } from "./output.ts";
import type { Session } from "./session.ts";

/** A node as /nodes describes it. */
interface NodeInfo {
  id?: string;
  api_addr?: string;
  addr?: string;
  version?: string;
  voter?: boolean;
  reachable?: boolean;
  leader?: boolean;
  time?: number;
  error?: string;
}

async function get(session: Session, path: string): Promise<TextResponse> {
  return await session.run((signal) => session.conn.fetchText(path, { signal }));
}

function mustOk(r: TextResponse): TextResponse {
  if (r.status < 200 || r.status > 299) throw new Error(httpErrorMessage(r));
  return r;
}

/** JSON indented by 2 spaces, big integers exact. */
function pretty(value: unknown, indent = ""): string {
  if (Array.isArray(value)) {
    if (value.length === 0) return "[]";
    const inner = value.map((v) => `${indent}  ${pretty(v, indent + "  ")}`);
    return `[\n${inner.join(",\n")}\n${indent}]`;
  }
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value);
    if (entries.length === 0) return "{}";
    const inner = entries.map(([k, v]) =>
      `${indent}  ${JSON.stringify(k)}: ${pretty(v, indent + "  ")}`
    );
    return `{\n${inner.join(",\n")}\n${indent}}`;
  }
  return jsonValue(value);
}

/** `.status [key]`: GET /status (or one key path, e.g. `store.raft`). */
export async function statusCommand(session: Session, key?: string): Promise<void> {
  const q = key === undefined ? "" : `?key=${encodeURIComponent(key)}`;
  const r = mustOk(await get(session, `/status${q}`));
  session.print(r.json === undefined ? r.text : pretty(r.json));
}

/** `.expvar [name]`: GET /debug/vars. */
export async function expvarCommand(session: Session, key?: string): Promise<void> {
  const q = key === undefined ? "" : `?key=${encodeURIComponent(key)}`;
  const r = mustOk(await get(session, `/debug/vars${q}`));
  session.print(r.json === undefined ? r.text : pretty(r.json));
}

/** `.extensions`: the SQLite extensions the node loaded. */
export async function extensionsCommand(session: Session): Promise<void> {
  const r = mustOk(await get(session, "/status?key=extensions"));
  const names = (r.json as { names?: unknown } | undefined)?.names;
  if (!Array.isArray(names) || names.length === 0) {
    session.print("no extensions loaded");
    return;
  }
  for (const n of names) session.print(String(n));
}

/** `.ready`: `ready` or `not ready` (then the node's reasons, indented). */
export async function readyCommand(session: Session): Promise<void> {
  const r = await get(session, "/readyz");
  if (r.status === 200) {
    session.print("ready");
    return;
  }
  session.print("not ready");
  for (const line of r.text.trim().split("\n")) if (line !== "") session.print(`  ${line}`);
}

async function fetchNodes(session: Session, all: boolean): Promise<NodeInfo[]> {
  const r = mustOk(await get(session, `/nodes${all ? "?nonvoters" : ""}`));
  const body = r.json as Record<string, NodeInfo> | { nodes?: NodeInfo[] } | undefined;
  if (body === undefined || typeof body !== "object") {
    throw new Error(`unexpected /nodes answer: ${r.text.slice(0, 200)}`);
  }
  const list = Array.isArray((body as { nodes?: NodeInfo[] }).nodes)
    ? (body as { nodes: NodeInfo[] }).nodes
    : Object.entries(body as Record<string, NodeInfo>).map(([id, n]) => ({ id, ...n }));
  return list.sort((a, b) => String(a.id).localeCompare(String(b.id)));
}

function printNodes(session: Session, nodes: NodeInfo[]): void {
  const columns = ["id", "api_addr", "addr", "voter", "reachable", "leader", "error"];
  const values = nodes.map((n) => [
    n.id ?? "",
    n.api_addr ?? "",
    n.addr ?? "",
    n.voter ?? null,
    n.reachable ?? null,
    n.leader ?? null,
    n.error ?? "",
  ]);
  session.write(formatResult({ columns, values }, session.settings.mode));
}

/** `.nodes [all]`: every voter (and non-voter with `all`), reachability, the leader. */
export async function nodesCommand(session: Session, all: boolean): Promise<void> {
  printNodes(session, await fetchNodes(session, all));
}

/** `.leader`: the leader's row of `.nodes`. */
export async function leaderCommand(session: Session): Promise<void> {
  const leader = (await fetchNodes(session, true)).filter((n) => n.leader === true);
  if (leader.length === 0) {
    session.print("no leader (the cluster may be electing one; try again shortly)");
    return;
  }
  printNodes(session, leader);
}

/** `.remove NODEID`: DELETE /remove. */
export async function removeCommand(session: Session, id: string): Promise<void> {
  const r = await session.run((signal) =>
    session.conn.fetchText("/remove", {
      method: "DELETE",
      headers: { "Content-Type": "application/json" },
      body: () => JSON.stringify({ id }),
      signal,
    })
  );
  mustOk(r);
  session.print(`node ${id} removed from the cluster`);
}

/** `.stepdown [NODEID]`: POST /leader?wait=true, then says who leads now. */
export async function stepdownCommand(session: Session, id?: string): Promise<void> {
  const r = await session.run((signal) =>
    session.conn.fetchText("/leader?wait=true", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: () => JSON.stringify({ id: id ?? "" }),
      signal,
    })
  );
  mustOk(r);
  const now = await get(session, "/leader");
  const leader = now.json as NodeInfo | undefined;
  session.print(
    now.status === 200 && leader?.id !== undefined
      ? `leadership transferred; the leader is now ${leader.id} (${leader.api_addr ?? "?"})`
      : "leadership transferred",
  );
}

/** `.snapshot [trailing-logs]`: POST /snapshot. */
export async function snapshotCommand(session: Session, trailing?: string): Promise<void> {
  if (trailing !== undefined && !/^\d+$/.test(trailing)) {
    throw new Error(`.snapshot takes a number of log entries to keep, not "${trailing}"`);
  }
  const q = trailing === undefined ? "" : `?trailing_logs=${trailing}`;
  const r = await session.run((signal) =>
    session.conn.fetchText(`/snapshot${q}`, { method: "POST", signal })
  );
  mustOk(r);
  session.print(r.status === 204 ? "nothing new to snapshot" : "snapshot taken");
}

/** `.reap`: POST /reap. */
export async function reapCommand(session: Session): Promise<void> {
  const r = mustOk(
    await session.run((signal) => session.conn.fetchText("/reap", { method: "POST", signal })),
  );
  const body = r.json as { snapshots_reaped?: number; wals_checkpointed?: number } | undefined;
  session.print(
    `snapshots reaped: ${body?.snapshots_reaped ?? 0}, WALs checkpointed: ${
      body?.wals_checkpointed ?? 0
    }`,
  );
}

/** The diagnostics `.sysdump` collects from each node. */
const SYSDUMP_PATHS = ["/status?pretty", "/nodes?pretty&nonvoters", "/readyz", "/debug/vars"];

/**
 * `.sysdump FILE`: /status, /nodes, /readyz and /debug/vars of every node
 * the connected node knows (its own always), each under a header line, for
 * offline analysis. An unreachable node gets its error written instead.
 */
export async function sysdumpCommand(session: Session, file: string): Promise<void> {
  const bases = new Set<string>([session.conn.url("").replace(/\/$/, "")]);
  try {
    for (const n of await fetchNodes(session, true)) {
      if (n.api_addr) bases.add(n.api_addr.replace(/\/$/, "") + session.conn.options.prefix);
    }
  } catch (err) {
    session.error(`cannot list the nodes (${(err as Error).message}); dumping this node only`);
  }
  const out = await Deno.open(file, { write: true, create: true, truncate: true });
  try {
    for (const base of bases) {
      for (const path of SYSDUMP_PATHS) {
        const url = base + path;
        let section: string;
        try {
          const r = await session.run((signal) => session.conn.fetchTextAt(url, { signal }));
          section = `${r.status} ${r.statusText}\n${r.text}`;
        } catch (err) {
          section = `error: ${(err as Error).message}`;
        }
        writeAllSync(out, `===== ${url} =====\n${section.trimEnd()}\n\n`);
      }
    }
  } finally {
    out.close();
  }
  session.print(
    `system diagnostics of ${bases.size} ${bases.size === 1 ? "node" : "nodes"} written to ${file}`,
  );
}
