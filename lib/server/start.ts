/**
 * Starting and stopping one raftlite node: the wiring of every layer in
 * the order rqlited uses (rqlite-api.md §8): HTTP first (so /status answers
 * while the store opens), then storage, the SQLite worker, the Raft driver
 * and the store.
 *
 * Durability: the SQLite database is rebuilt from the newest snapshot plus
 * the log at every start (in memory by default — a RAM-backed file under
 * /dev/shm, see lib/db/files.ts — or `<data-dir>/db.sqlite` with `-on-disk`),
 * so the log stays the only authority.
 *
 * @module
 */

import { DbClient } from "../db/mod.ts";
import { createHandler } from "../http/server.ts";
import type { HttpContext } from "../http/context.ts";
import { RaftDriver } from "../node/driver.ts";
import type { Transport } from "../node/interfaces.ts";
import { SystemClock } from "../node/memory.ts";
import { cryptoRandom } from "../sql/random.ts";
import { openStorage, type Storage } from "../storage/mod.ts";
import { SqliteStateMachine } from "../store/fsm.ts";
import { Store } from "../store/store.ts";
import { VERSION } from "../version.ts";
import type { Config } from "./config.ts";
import { statusReport } from "./status_report.ts";

/** A running node. */
export interface RunningNode {
  readonly config: Config;
  /** The bound HTTP address (host:port), useful with port 0. */
  readonly httpAddr: string;
  /** The bound Raft address. */
  readonly raftAddr: string;
  store(): Store | undefined;
  /** Resolves when the store is open and serving (or rejects when start-up failed). */
  readonly ready: Promise<void>;
  /** Stops everything; safe to call twice. */
  close(): Promise<void>;
}

/** A transport for a lone node: there is nobody to send to. Clustering replaces it. */
class LoneTransport implements Transport {
  send(): void {}
  sendSnapshot(_msg: unknown, _data: Uint8Array, done: (ok: boolean) => void): void {
    done(false);
  }
  listen(): void {}
  close(): void {}
}

function hostPort(addr: string): { hostname: string; port: number } {
  const i = addr.lastIndexOf(":");
  if (i < 0) throw new Error(`address "${addr}" has no port; use host:port`);
  const port = Number(addr.slice(i + 1));
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`address "${addr}" has an invalid port`);
  }
  return { hostname: addr.slice(0, i).replace(/^\[|\]$/g, "") || "0.0.0.0", port };
}

/** Uniform integers for the core's election jitter. */
const raftRandom = {
  nextInt(n: number): number {
    return Math.floor(Math.random() * n);
  },
};

/** Starts a node. HTTP is listening when this returns; `ready` tells when the store is. */
export function startNode(configIn: Config, log = console.error): RunningNode {
  let store: Store | undefined;
  let storage: Storage | undefined;
  let db: DbClient | undefined;
  let driver: RaftDriver | undefined;
  let fsm: SqliteStateMachine | undefined;
  const startedMs = Date.now();

  // The Raft port is bound now so its address is reserved and reported; the
  // internode services behind it arrive with clustering, so connections are closed.
  const raftListener = Deno.listen({ ...hostPort(configIn.raftAddr), transport: "tcp" });
  const raftAddr = addrText(raftListener.addr as Deno.NetAddr);
  const acceptLoop = (async () => {
    for await (const conn of raftListener) conn.close();
  })().catch(() => {});

  let handle: (req: Request) => Promise<Response> = () =>
    Promise.resolve(new Response(null, { status: 503 }));
  const server = Deno.serve({
    ...hostPort(configIn.httpAddr),
    onListen: () => {},
    handler: (req) => handle(req),
  });
  const httpAddr = addrText(server.addr);
  // With port 0 (tests) the advertised addresses and the default id come from the bound ports.
  const config = resolveAddresses(configIn, httpAddr, raftAddr);

  const ctx: HttpContext = {
    version: `v${VERSION}`,
    nodeId: config.nodeId,
    httpAdvAddr: config.httpAdvAddr,
    httpBindAddr: httpAddr,
    apiUrl: `http://${config.httpAdvAddr}`,
    raftAddr: config.raftAdvAddr,
    allowOrigin: config.httpAllowOrigin,
    maxBodyBytes: config.maxBodyBytes,
    maxStatements: config.maxStatements,
    store: () => store,
    statusReport: () =>
      statusReport({
        config,
        store,
        storage,
        db,
        startedMs,
        httpCounters: ctx.counters,
        httpBindAddr: httpAddr,
      }),
    counters: {},
    random: cryptoRandom,
    nowMs: () => Date.now(),
  };
  handle = createHandler(ctx);

  const ready = (async () => {
    storage = await openStorage(config.dataDir);
    for (const w of storage.warnings) log(`[storage] ${w}`);
    if (config.onDisk) await removeDbFiles(config.dbPath);
    // In memory: a fresh RAM-backed file the read workers share, deleted at close.
    db = await DbClient.open({
      path: config.onDisk ? config.dbPath : undefined,
      foreignKeys: config.foreignKeys,
    });
    fsm = new SqliteStateMachine(db, (err) => fatal(err));
    const isNew = storage.log.lastIndex() === 0 && storage.snapshots.latest() === undefined;
    driver = new RaftDriver({
      id: config.nodeId,
      clock: new SystemClock(),
      logStore: storage.log,
      stableStore: storage.stable,
      snapshotStore: storage.snapshots,
      stateMachine: fsm,
      transport: new LoneTransport(),
      random: raftRandom,
      tickMs: config.tickMs,
      raft: { electionTicks: config.electionTicks, heartbeatTicks: config.heartbeatTicks },
      snapshotThreshold: config.snapshotThreshold,
      trailingEntries: config.trailingEntries,
      bootstrap: isNew ? [config.nodeId] : undefined,
      onFatal: (err) => fatal(err),
    });
    await new Promise<void>((resolve, reject) =>
      driver?.start((err) => (err ? reject(err) : resolve()))
    );
    // A lone voter need not wait out an election timeout.
    const conf = driver.status().conf;
    if (conf.voters.length === 1 && conf.voters[0] === config.nodeId) driver.campaign();
    store = new Store({
      nodeId: config.nodeId,
      raftAddr: config.raftAdvAddr,
      driver,
      db,
      fsm,
      applyTimeoutMs: config.applyTimeoutMs,
      voter: true,
    });
  })();

  let closing: Promise<void> | undefined;
  const close = () =>
    closing ??= (async () => {
      await ready.catch(() => {});
      driver?.stop();
      await server.shutdown().catch(() => {});
      raftListener.close();
      await acceptLoop;
      await db?.close().catch(() => {});
      await storage?.close().catch(() => {});
    })();

  function fatal(err: Error): void {
    log(`fatal: ${err.message}`);
    // The node cannot apply the log safely any more; stop serving at once.
    void close().finally(() => Deno.exit(1));
  }

  return { config, httpAddr, raftAddr, store: () => store, ready, close };
}

function resolveAddresses(config: Config, httpAddr: string, raftAddr: string): Config {
  const httpAdvAddr = config.httpAdvAddr || httpAddr;
  const raftAdvAddr = config.raftAdvAddr || raftAddr;
  return { ...config, httpAdvAddr, raftAdvAddr, nodeId: config.nodeId || raftAdvAddr };
}

function addrText(addr: Deno.Addr): string {
  const a = addr as Deno.NetAddr;
  return a.hostname.includes(":") ? `[${a.hostname}]:${a.port}` : `${a.hostname}:${a.port}`;
}

async function removeDbFiles(path: string): Promise<void> {
  for (const suffix of ["", "-wal", "-shm"]) {
    await Deno.remove(path + suffix).catch((e) => {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    });
  }
}
