/**
 * Fault-injecting TCP proxies for multi-process cluster tests, in the test
 * process itself (no root, no `ip netns`).
 *
 * Topology: every node N binds its real `-raft-addr` but advertises
 * (`-raft-adv-addr`) the address of its own proxy P(N), which forwards to
 * the real address. Peers learn addresses only from what each node
 * advertised (join requests, notify, the Raft configuration), so all Raft
 * and cluster-service traffic to N (both share the port: first byte 1 or
 * 2) enters through P(N): a dialer reaches N only through N's proxy.
 *
 * Who is calling: all nodes connect from 127.0.0.1, so a proxy identifies
 * the node behind an accepted connection by the process that owns the
 * client socket (procnet.ts: /proc/net/tcp inode -> /proc/<pid>/fd). That
 * gives per-link control with one advertised address per node.
 *
 * FAULT MODEL (what {@link Network} achieves):
 * - A link is an unordered pair {a, b}. Cutting it stops every byte on every
 *   connection between a and b in both directions: connections a opens to
 *   P(b) and connections b opens to P(a). A TCP connection carries requests
 *   one way and responses the other, so a cut is always symmetric; one-way
 *   loss (a hears b, b does not hear a) is not modelled.
 * - `isolate(n)` cuts every link of n; `partition([[a], [b, c]])` cuts every
 *   link between groups; `cut(a, b)` cuts one link (c still talks to both:
 *   a partial partition); `heal()` restores all links.
 * - Two ways to cut: "stall" behaves like a network that drops packets: open
 *   connections freeze (nothing is delivered either way, senders see
 *   back-pressure, nobody sees an error), and new connections are accepted
 *   (the kernel completes the handshake; userland cannot refuse a SYN) but
 *   nothing flows on them. At heal the frozen connections are closed, as if
 *   TCP had timed out, and new connections flow again. "reset" closes open
 *   connections at once and closes new ones right after accept, like RSTs.
 * - `block(n)` makes P(n) refuse everything, also outsiders' connections
 *   (the test process, a stranger); per-link cuts only concern node-to-node
 *   traffic, so outsiders always get through an unblocked proxy.
 * - Client HTTP traffic never goes through a proxy: clients on either side of
 *   a partition reach "their" node, as in Jepsen.
 * - Optional latency per proxy (`setDelay`): each chunk is delivered `delayMs`
 *   (+ jitter) after it was read, in order, both directions.
 * - Process death is not a network fault: the harness SIGKILLs the node; its
 *   proxy then fails to reach the target and closes the dialer's connection.
 * Not modelled: packet reordering or corruption inside a connection (TCP
 * would never show them), bandwidth limits, clock skew.
 *
 * @module
 */

import { connectionOwner, type Endpoint } from "./procnet.ts";

/** How a blocked or cut connection behaves (see the module doc). */
export type CutMode = "stall" | "reset";

/** Counters of one proxy. */
export interface ProxyStats {
  /** Connections accepted. */
  accepted: number;
  /** Connections forwarded to the target. */
  forwarded: number;
  /** Connections closed by a fault (reset at accept or while open, or stalled then closed). */
  cut: number;
  /** Connections that could not reach the target (node down). */
  targetDown: number;
  /** Accepted connections per source node ("?" = outsider, "?unknown" = not identified). */
  bySource: Record<string, number>;
  /** Bytes forwarded to the target / back to the dialer. */
  bytesIn: number;
  bytesOut: number;
}

/** Options of {@link FaultProxy.start}. */
export interface ProxyOptions {
  /** Name used in messages (usually the node's). */
  name: string;
  /** Where connections are forwarded: "host:port". */
  target: string;
  /** Address to listen on; default 127.0.0.1 port 0 (a free port). */
  hostname?: string;
  port?: number;
  /**
   * Tells which node a connection comes from: a node name, undefined for an
   * outsider that per-link cuts do not concern, or {@link UNKNOWN_SOURCE}.
   */
  identify?: (client: Endpoint, server: Endpoint) => Promise<string | undefined>;
}

/**
 * Source of a connection whose dialing process could not be found (it
 * closed its socket already, or is not a known process). Return it from
 * `identify`; `undefined` means a known outsider (e.g. the test itself).
 */
export const UNKNOWN_SOURCE = "?unknown";

/** Upper bound of bytes read ahead of the writer per direction (back-pressure beyond it). */
const QUEUE_BYTES_MAX = 1 << 20;
const READ_CHUNK = 64 * 1024;
const CONNECT_TIMEOUT_MS = 5_000;

type Verdict = "pass" | CutMode;

/** One proxied connection. */
class Link {
  server: Deno.TcpConn | undefined;
  stalled = false;
  closed = false;
  readonly closedSignal: Promise<void>;
  #resolveClosed!: () => void;
  done: Promise<void> = Promise.resolve();

  constructor(readonly client: Deno.TcpConn, readonly source: string | undefined) {
    this.closedSignal = new Promise((r) => (this.#resolveClosed = r));
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    closeQuietly(this.client);
    if (this.server !== undefined) closeQuietly(this.server);
    this.#resolveClosed();
  }

  /** Resolves after `ms` or as soon as the link closes (no timer left behind). */
  wait(ms: number): Promise<void> {
    if (this.closed || ms <= 0) return Promise.resolve();
    let timer: ReturnType<typeof setTimeout> | undefined;
    return Promise.race([
      new Promise<void>((r) => (timer = setTimeout(r, ms))),
      this.closedSignal,
    ]).finally(() => clearTimeout(timer));
  }
}

/** A TCP proxy to one target with block/cut/delay controls. */
export class FaultProxy {
  readonly name: string;
  /** "127.0.0.1:port" the proxy listens on (advertise this). */
  readonly addr: string;
  /** Where new connections go; may be changed (e.g. a node moved). */
  target: string;
  readonly stats: ProxyStats = {
    accepted: 0,
    forwarded: 0,
    cut: 0,
    targetDown: 0,
    bySource: {},
    bytesIn: 0,
    bytesOut: 0,
  };
  #listener: Deno.TcpListener;
  #identify: ProxyOptions["identify"];
  #links = new Set<Link>();
  #tasks = new Set<Promise<void>>();
  #acceptLoop: Promise<void>;
  #blocked: CutMode | undefined;
  #blockedFrom = new Map<string, CutMode>();
  #delayMs = 0;
  #jitterMs = 0;
  #closing = false;

  private constructor(listener: Deno.TcpListener, options: ProxyOptions) {
    this.name = options.name;
    this.target = options.target;
    this.#listener = listener;
    this.#identify = options.identify;
    const a = listener.addr;
    this.addr = `${a.hostname}:${a.port}`;
    this.#acceptLoop = this.#accept();
  }

  /** Starts listening. */
  static start(options: ProxyOptions): FaultProxy {
    const listener = Deno.listen({
      hostname: options.hostname ?? "127.0.0.1",
      port: options.port ?? 0,
      transport: "tcp",
    });
    return new FaultProxy(listener, options);
  }

  /** Cuts every connection, from anyone (see the module doc for the modes). */
  block(mode: CutMode = "reset"): void {
    this.#blocked = mode;
    this.#reevaluate();
  }

  /** Undoes {@link block}. */
  unblock(): void {
    this.#blocked = undefined;
    this.#reevaluate();
  }

  /** Cuts connections whose dialer is node `source` (or restores them with `undefined`). */
  setBlockedFrom(source: string, mode: CutMode | undefined): void {
    if (mode === undefined) this.#blockedFrom.delete(source);
    else this.#blockedFrom.set(source, mode);
    this.#reevaluate();
  }

  /** Replaces all per-source cuts at once. */
  setBlockedSources(cuts: ReadonlyMap<string, CutMode>): void {
    this.#blockedFrom = new Map(cuts);
    this.#reevaluate();
  }

  /** Delivers every chunk `delayMs` (+ uniform jitter up to `jitterMs`) after reading it. */
  setDelay(delayMs: number, jitterMs = 0): void {
    if (!(delayMs >= 0 && jitterMs >= 0)) throw new RangeError("delays must be >= 0");
    this.#delayMs = delayMs;
    this.#jitterMs = jitterMs;
  }

  /** Open (forwarding or stalled) connections. */
  get openConnections(): number {
    return this.#links.size;
  }

  /** Stops listening, closes every connection and waits for all tasks. */
  async close(): Promise<void> {
    this.#closing = true;
    closeQuietly(this.#listener);
    for (const link of this.#links) link.close();
    await this.#acceptLoop;
    while (this.#tasks.size > 0) await Promise.all([...this.#tasks]);
  }

  #verdict(source: string | undefined): Verdict {
    if (this.#blocked !== undefined) return this.#blocked;
    if (source === UNKNOWN_SOURCE) {
      // A dialer that is gone or foreign while links are cut: it might be a cut peer.
      return this.#blockedFrom.size > 0 ? "reset" : "pass";
    }
    if (source !== undefined) return this.#blockedFrom.get(source) ?? "pass";
    return "pass";
  }

  /** Applies the current rules to open connections. */
  #reevaluate(): void {
    for (const link of this.#links) {
      const v = this.#verdict(link.source);
      if (v === "reset" || (v === "pass" && link.stalled)) {
        // A healed stalled connection is closed: TCP would have timed it out.
        this.stats.cut++;
        link.close();
      } else if (v === "stall") {
        link.stalled = true;
      }
    }
  }

  async #accept(): Promise<void> {
    try {
      for await (const conn of this.#listener) {
        if (this.#closing) {
          closeQuietly(conn);
          continue;
        }
        this.stats.accepted++;
        this.#track(this.#handle(conn));
      }
    } catch {
      // listener closed
    }
  }

  #track(task: Promise<void>): void {
    const t = task.catch(() => {}).finally(() => this.#tasks.delete(t));
    this.#tasks.add(t);
  }

  async #handle(conn: Deno.TcpConn): Promise<void> {
    let source: string | undefined;
    if (this.#identify !== undefined) {
      try {
        source = await this.#identify(conn.remoteAddr, conn.localAddr);
      } catch {
        source = undefined;
      }
    }
    const key = source ?? "?";
    this.stats.bySource[key] = (this.stats.bySource[key] ?? 0) + 1;
    const link = new Link(conn, source);
    this.#links.add(link);
    try {
      if (this.#closing) return;
      const v = this.#verdict(source);
      if (v === "reset") {
        this.stats.cut++;
        return;
      }
      if (v === "stall") {
        link.stalled = true;
        // Held open, nothing forwarded, until a heal or reset closes it.
        await link.closedSignal;
        return;
      }
      try {
        link.server = await connectWithTimeout(this.target, CONNECT_TIMEOUT_MS);
      } catch {
        this.stats.targetDown++;
        return;
      }
      if (link.closed || this.#closing) return;
      // The rules may have changed while connecting.
      const again = this.#verdict(source);
      if (again === "reset") {
        this.stats.cut++;
        return;
      }
      if (again === "stall") link.stalled = true;
      this.stats.forwarded++;
      const up = this.#pipe(link, conn, link.server, "in");
      const down = this.#pipe(link, link.server, conn, "out");
      await Promise.all([up, down]);
    } finally {
      link.close();
      this.#links.delete(link);
    }
  }

  /** Copies src -> dst with the configured delay, stopping while the link is stalled. */
  async #pipe(
    link: Link,
    src: Deno.TcpConn,
    dst: Deno.TcpConn,
    dir: "in" | "out",
  ): Promise<void> {
    const queue: { data: Uint8Array; due: number }[] = [];
    let queued = 0;
    let eof = false;
    let wakeWriter: (() => void) | undefined;
    let wakeReader: (() => void) | undefined;
    let lastDue = 0;

    const reader = (async () => {
      const buf = new Uint8Array(READ_CHUNK);
      try {
        while (!link.closed) {
          while (queued >= QUEUE_BYTES_MAX && !link.closed) {
            await Promise.race([new Promise<void>((r) => (wakeReader = r)), link.closedSignal]);
          }
          if (link.closed) break;
          const n = await src.read(buf);
          if (n === null) break;
          const jitter = this.#jitterMs > 0 ? Math.random() * this.#jitterMs : 0;
          const due = Math.max(lastDue, performance.now() + this.#delayMs + jitter);
          lastDue = due;
          queue.push({ data: buf.slice(0, n), due });
          queued += n;
          wakeWriter?.();
        }
      } catch {
        link.close();
      } finally {
        eof = true;
        wakeWriter?.();
      }
    })();

    const writer = (async () => {
      try {
        while (!link.closed) {
          if (link.stalled) {
            await link.closedSignal;
            break;
          }
          const head = queue[0];
          if (head === undefined) {
            if (eof) {
              // Half-close: the peer finished sending; pass the FIN on.
              await dst.closeWrite().catch(() => {});
              break;
            }
            await Promise.race([new Promise<void>((r) => (wakeWriter = r)), link.closedSignal]);
            continue;
          }
          const wait = head.due - performance.now();
          if (wait > 0) {
            await link.wait(wait);
            continue;
          }
          queue.shift();
          queued -= head.data.length;
          wakeReader?.();
          await writeAll(dst, head.data);
          if (dir === "in") this.stats.bytesIn += head.data.length;
          else this.stats.bytesOut += head.data.length;
        }
      } catch {
        link.close();
      }
    })();

    await Promise.all([reader, writer]);
  }
}

/**
 * A set of nodes, each behind its own {@link FaultProxy}, with link-level
 * partitions (see the module doc for the exact fault model).
 */
export class Network {
  readonly proxies = new Map<string, FaultProxy>();
  #pids = new Map<string, number>();
  /** Cut links: key "a\u0000b" with a < b. */
  #cuts = new Map<string, CutMode>();

  /** Starts a proxy for node `name` forwarding to `target`; returns it. */
  addNode(name: string, target: string): FaultProxy {
    if (this.proxies.has(name)) throw new Error(`node ${name} already has a proxy`);
    const proxy = FaultProxy.start({
      name,
      target,
      identify: async (client, server) => {
        const owner = await connectionOwner(client, server, this.#candidates());
        if (owner === OUTSIDER) return undefined;
        return owner ?? UNKNOWN_SOURCE;
      },
    });
    this.proxies.set(name, proxy);
    this.#apply();
    return proxy;
  }

  #candidates(): Map<string, number> {
    return new Map([...this.#pids, [OUTSIDER, Deno.pid]]);
  }

  /** Records (or forgets, with undefined) the pid of node `name`'s current process. */
  setPid(name: string, pid: number | undefined): void {
    if (pid === undefined) this.#pids.delete(name);
    else this.#pids.set(name, pid);
  }

  /** The proxy of `name` (throws if unknown). */
  proxy(name: string): FaultProxy {
    const p = this.proxies.get(name);
    if (p === undefined) throw new Error(`no proxy for node ${name}`);
    return p;
  }

  /** Cuts the link between `a` and `b` (both directions). */
  cut(a: string, b: string, mode: CutMode = "stall"): void {
    this.#cuts.set(linkKey(a, b), mode);
    this.#apply();
  }

  /** Cuts every link of `name`: it can neither reach nor be reached by any other node. */
  isolate(name: string, mode: CutMode = "stall"): void {
    for (const other of this.proxies.keys()) {
      if (other !== name) this.#cuts.set(linkKey(name, other), mode);
    }
    this.#apply();
  }

  /**
   * Cuts every link between different groups (each node in exactly one
   * group; nodes not listed form one more group of their own).
   */
  partition(groups: readonly (readonly string[])[], mode: CutMode = "stall"): void {
    const groupOf = new Map<string, number>();
    groups.forEach((g, i) => g.forEach((n) => groupOf.set(n, i)));
    const names = [...this.proxies.keys()];
    for (const a of names) {
      for (const b of names) {
        if (a < b && (groupOf.get(a) ?? -1) !== (groupOf.get(b) ?? -1)) {
          this.#cuts.set(linkKey(a, b), mode);
        }
      }
    }
    this.#apply();
  }

  /** Restores every link and unblocks every proxy. */
  heal(): void {
    this.#cuts.clear();
    for (const p of this.proxies.values()) p.unblock();
    this.#apply();
  }

  /** Whether the link between `a` and `b` is cut. */
  isCut(a: string, b: string): boolean {
    return this.#cuts.has(linkKey(a, b));
  }

  /** The cut links, e.g. "n1-n2 n1-n3" ("" when healed). */
  describe(): string {
    return [...this.#cuts.keys()].map((k) => k.replace("\u0000", "-")).sort().join(" ");
  }

  /** Closes every proxy. */
  async close(): Promise<void> {
    await Promise.all([...this.proxies.values()].map((p) => p.close()));
  }

  #apply(): void {
    for (const [target, proxy] of this.proxies) {
      const from = new Map<string, CutMode>();
      for (const source of this.proxies.keys()) {
        const mode = source === target ? undefined : this.#cuts.get(linkKey(source, target));
        if (mode !== undefined) from.set(source, mode);
      }
      proxy.setBlockedSources(from);
    }
  }
}

/** Candidate name of this (the test) process: an outsider, never cut per link. */
const OUTSIDER = "\u0000outsider";

function linkKey(a: string, b: string): string {
  if (a === b) throw new Error(`a link needs two different nodes, got ${a} twice`);
  return a < b ? `${a}\u0000${b}` : `${b}\u0000${a}`;
}

function closeQuietly(c: { close(): void }): void {
  try {
    c.close();
  } catch {
    // already closed
  }
}

async function writeAll(conn: Deno.TcpConn, data: Uint8Array): Promise<void> {
  let off = 0;
  while (off < data.length) off += await conn.write(data.subarray(off));
}

/** Splits "host:port" (IPv6 in brackets allowed). */
export function splitHostPort(addr: string): { hostname: string; port: number } {
  const i = addr.lastIndexOf(":");
  if (i < 0) throw new Error(`address "${addr}" has no port`);
  return { hostname: addr.slice(0, i).replace(/^\[|\]$/g, ""), port: Number(addr.slice(i + 1)) };
}

async function connectWithTimeout(addr: string, timeoutMs: number): Promise<Deno.TcpConn> {
  const { hostname, port } = splitHostPort(addr);
  // Not AbortSignal.timeout: Deno closes the connection when the signal fires, even after connect.
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), timeoutMs);
  try {
    return await Deno.connect({ hostname, port, transport: "tcp", signal: ac.signal });
  } finally {
    clearTimeout(timer);
  }
}
