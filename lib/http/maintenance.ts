/**
 * Node maintenance endpoints (rqlite-api.md §4): `POST /snapshot`,
 * `POST /reap` and `POST /boot`. The work itself is the node's
 * ({@link NodeMaintenance}, lib/server/maintenance.ts); this module maps it
 * to rqlite's status codes and bodies.
 *
 * @module
 */

import type { QueryParams } from "../sql/params.ts";
import { count, type HttpContext } from "./context.ts";
import { emptyStatus, jsonText, textError } from "./response.ts";

/** A refused /boot, with the status code rqlite answers. */
export class BootError extends Error {
  override readonly name = "BootError";
  constructor(readonly status: 400 | 503, message: string) {
    super(message);
  }
}

/** What the maintenance endpoints ask of the node. */
export interface NodeMaintenance {
  /** Snapshot now, keeping `trailingLogs` log entries (undefined: configured); undefined when nothing was new. */
  snapshot(trailingLogs: number | undefined): Promise<{ index: number; term: number } | undefined>;
  /** Removes all but the newest snapshot and checkpoints the database's WAL. */
  reap(): Promise<{ snapshotsReaped: number; walsCheckpointed: number }>;
  /** Loads a SQLite file straight into a single-node cluster; throws {@link BootError}. */
  boot(body: ReadableStream<Uint8Array>): Promise<void>;
}

/**
 * The shared part of the three endpoints: POST only, a node whose store is
 * open, and `run`'s errors as text with `failStatus` (BootError carries its own).
 */
async function maintain(
  req: Request,
  ctx: HttpContext,
  failStatus: number,
  run: (m: NodeMaintenance) => Promise<Response>,
): Promise<Response> {
  if (req.method !== "POST") return emptyStatus(405);
  const m = ctx.maintenance;
  if (m === undefined || ctx.store() === undefined) return textError(503, "store is not open");
  try {
    return await run(m);
  } catch (err) {
    if (err instanceof BootError) return textError(err.status, err.message);
    return textError(failStatus, err instanceof Error ? err.message : String(err));
  }
}

/** `POST /snapshot[?trailing_logs=N]`: 200 when a snapshot was taken, 204 when nothing was new. */
export function handleSnapshot(req: Request, ctx: HttpContext, qp: QueryParams): Promise<Response> {
  if (qp.trailingLogs !== undefined && qp.trailingLogs < 0) {
    return Promise.resolve(textError(400, "trailing_logs must not be negative"));
  }
  // rqlite: 0 means "the configured number".
  const trailing = qp.trailingLogs === 0 ? undefined : qp.trailingLogs;
  return maintain(req, ctx, 500, async (m) => {
    const taken = await m.snapshot(trailing);
    count(ctx, "user_snapshots");
    return emptyStatus(taken === undefined ? 204 : 200);
  });
}

/** `POST /reap`: `{"snapshots_reaped":N,"wals_checkpointed":M}`. */
export function handleReap(req: Request, ctx: HttpContext, _qp: QueryParams): Promise<Response> {
  return maintain(req, ctx, 500, async (m) => {
    const r = await m.reap();
    count(ctx, "user_reaps");
    return jsonText(
      `{"snapshots_reaped":${r.snapshotsReaped},"wals_checkpointed":${r.walsCheckpointed}}\n`,
    );
  });
}

/** `POST /boot`: 200 empty on success; 400 `invalid SQLite data`; 503 when not a single-node leader. */
export function handleBoot(req: Request, ctx: HttpContext, _qp: QueryParams): Promise<Response> {
  return maintain(req, ctx, 503, async (m) => {
    if (req.body === null) return textError(400, "invalid SQLite data");
    await m.boot(req.body);
    return new Response(null, { status: 200 });
  });
}
