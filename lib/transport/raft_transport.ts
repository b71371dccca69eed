/**
 * The Raft {@link Transport} over TCP: per-peer bounded queues, one outbound
 * connection per peer with batching, snapshots on dedicated connections.
 *
 * Wire protocol on a service-1 connection: frames (frame.ts) whose first
 * payload byte is a type:
 *
 * ```
 * 1 messages        codec batch (codec.ts)                       any number
 * 2 snapshot begin  u32 hi + u32 lo total data bytes, codec batch of one snapshot message
 * 3 snapshot chunk  raw data bytes (<= snapshotChunkBytes)
 * 4 snapshot end    u32 CRC32C of all the data -> the receiver replies with one byte 0x01 once delivered
 * ```
 *
 * Snapshot bytes never need to be whole in memory: the sender reads them
 * from a {@link SnapshotIo} source one chunk at a time and the receiver
 * writes each chunk to a sink as it arrives (production: files in the
 * snapshot directory; default: arrays). TCP backpressure bounds what is in
 * flight to about one chunk per transfer. Both ends compute the CRC32C of
 * the data; a mismatch at the end (or a sender whose source does not match
 * the CRC it was stored with) fails the transfer and nothing is delivered.
 *
 * Outbound: `send` appends to the peer's queue (dropping and counting when
 * the queue's message or byte bound is reached) and wakes the peer's writer.
 * The writer is a single task per peer: it takes everything queued (up to
 * `maxBatchBytes`), encodes it as ONE frame and writes it in ONE write, so
 * whatever accumulates while a write is in flight leaves together (batching
 * without timers). It dials lazily, redials with exponential backoff and
 * jitter after failures, and watches the connection for the peer closing it.
 * A batch lost in a failed write is counted as dropped: Raft retransmits.
 *
 * Inbound: every service-1 connection is read frame by frame; each message
 * goes to `handler.onMessage`. A frame, codec or protocol error closes that
 * connection and is counted; it never reaches the node. An exception thrown
 * by the handler itself is a bug in the node and is re-raised (reportError)
 * instead of being mistaken for bad input.
 *
 * @module
 */

import type { SnapshotData, Transport, TransportHandler } from "../node/interfaces.ts";
import { crc32c } from "../storage/crc32c.ts";
import type { Message, NodeId } from "../raft/types.ts";
import { CodecError, decodeMessages, encodeWithHeadroom, messageBound } from "./codec.ts";
import {
  errorText,
  FRAME_HEADER_BYTES,
  FrameError,
  FrameReader,
  putFrameHeader,
  writeAll,
} from "./frame.ts";
import { closeQuietly, type ConnectFn, dialService, type Mux, SERVICE_RAFT } from "./mux.ts";

/** Frame type bytes on a Raft connection. */
export const FRAME_MESSAGES = 1;
export const FRAME_SNAPSHOT_BEGIN = 2;
export const FRAME_SNAPSHOT_CHUNK = 3;
export const FRAME_SNAPSHOT_END = 4;
/** The receiver's reply once a snapshot was delivered. */
export const SNAPSHOT_ACK = 1;

const MiB = 1024 * 1024;
/** Frame header + type byte. */
const PREFIX_BYTES = FRAME_HEADER_BYTES + 1;
/** Frame header + type byte + u64 total size. */
const SNAPSHOT_BEGIN_PREFIX_BYTES = PREFIX_BYTES + 8;

/** Reconnect backoff: `initialMs * 2^(failures-1)` capped at `maxMs`, times a jitter in [0.5, 1). */
export interface BackoffOptions {
  readonly initialMs: number;
  readonly maxMs: number;
}

/** Options of {@link TcpTransport}. */
export interface TcpTransportOptions {
  /** This node's id (for stats and sanity). */
  readonly self: NodeId;
  /** The Raft address ("host:port") of a peer, from the current configuration's context; undefined when unknown. */
  readonly resolve: (id: NodeId) => string | undefined;
  /** The mux to register service 1 on. The caller owns it (and closes it after this transport). */
  readonly mux: Mux;
  /** Messages queued per peer at most; beyond, sends are dropped (default 4096). */
  readonly maxQueueMessages?: number;
  /** Estimated bytes queued per peer at most; beyond, sends are dropped (default 64 MiB). */
  readonly maxQueueBytes?: number;
  /** Coalescing stops at about this many bytes per frame (one larger message still goes alone). Default 4 MiB. */
  readonly maxBatchBytes?: number;
  /**
   * Largest frame sent or accepted. Must exceed the largest single message
   * (the largest log entry plus a few hundred bytes): larger messages are
   * dropped and counted. Default 80 MiB (above the 64 MiB HTTP body limit).
   */
  readonly maxFrameBytes?: number;
  /** Snapshot data per chunk frame (default 1 MiB; must be below `maxFrameBytes`). */
  readonly snapshotChunkBytes?: number;
  /** Largest snapshot accepted; a larger declared size closes the connection (default 1 GiB). */
  readonly maxSnapshotBytes?: number;
  /** Snapshots received at once at most; beyond, refused. Default 2. */
  readonly maxIncomingSnapshots?: number;
  /** Where snapshot bytes come from and go to (default {@link memorySnapshotIo}). */
  readonly snapshotIo?: SnapshotIo;
  /** A snapshot transfer making no progress for this long fails (default 30 s). */
  readonly snapshotIdleTimeoutMs?: number;
  /**
   * An inbound connection that completes no frame for this long is closed
   * (default 30 s): a silent or trickling stranger cannot keep a slot of the
   * mux. A leader's heartbeats keep its connections busy; an idle peer
   * simply redials when it has something to send.
   */
  readonly inboundIdleTimeoutMs?: number;
  /** Time to open a connection (default 5 s). */
  readonly dialTimeoutMs?: number;
  /** Redial backoff (default 50 ms doubling to 2 s). */
  readonly backoff?: BackoffOptions;
  /** Opens outbound connections (TLS seam); default TCP. */
  readonly connect?: ConnectFn;
  /** Uniform [0, 1) for jitter (default Math.random). */
  readonly random?: () => number;
}

/** Counters of one peer. */
export interface PeerStats {
  readonly addr: string;
  readonly connected: boolean;
  readonly queued: number;
  readonly queuedBytes: number;
  readonly sent: number;
  readonly dropped: number;
  readonly dialFailures: number;
  readonly lastError: string;
}

/** Counters for /status (monotonic except `peers[*].queued*`/`connected`). */
export interface TcpTransportStats {
  /** Messages written to a connection. */
  readonly sent: number;
  /** Messages dropped: queue full, peer unknown, oversize, lost in a failed write, unencodable. */
  readonly dropped: number;
  /** Frames and bytes written (messages and snapshots). */
  readonly framesSent: number;
  readonly bytesSent: number;
  /** Successful dials after a previous connection to that peer or a failed dial. */
  readonly reconnects: number;
  readonly dialFailures: number;
  /** Messages delivered to the handler, and frames/bytes read. */
  readonly received: number;
  readonly framesReceived: number;
  readonly bytesReceived: number;
  /** Inbound messages dropped because no handler was installed yet. */
  readonly receivedDropped: number;
  /** Inbound connections closed for a bad frame, undecodable bytes or a protocol violation. */
  readonly inboundErrors: number;
  /** Inbound connections closed because no frame completed within the idle timeout. */
  readonly inboundIdleClosed: number;
  /** Inbound connections open now. */
  readonly inboundOpen: number;
  readonly snapshotsSent: number;
  readonly snapshotsFailed: number;
  readonly snapshotsReceived: number;
  readonly peers: Readonly<Record<NodeId, PeerStats>>;
}

/** When an inbound connection last completed a frame, and whether one is being handled. */
interface IdleWatch {
  lastMs: number;
  busy: boolean;
  timer: ReturnType<typeof setInterval> | undefined;
}

/** The peer broke the wire protocol (frame types, snapshot sequence, sizes). */
class ProtocolError extends Error {
  override readonly name = "ProtocolError";
}

/** The node's handler threw while receiving: a bug of the node, not bad input. */
class HandlerFailure extends Error {
  override readonly name = "HandlerFailure";
}

class Peer {
  queue: Message[] = [];
  sizes: number[] = [];
  queueBytes = 0;
  conn: Deno.Conn | undefined;
  connAddr = "";
  everConnected = false;
  /** Consecutive failed dials (drives the backoff). */
  failures = 0;
  wake: (() => void) | undefined;
  cancelSleep: (() => void) | undefined;
  sent = 0;
  dropped = 0;
  dialFailures = 0;
  lastError = "";

  constructor(readonly id: NodeId) {}
}

interface Assembly {
  readonly msg: Message;
  readonly total: number;
  readonly sink: SnapshotSink;
  received: number;
  crc: number;
  /** Its slot under `maxIncomingSnapshots` was given back. */
  released: boolean;
  /** The sink was finished or aborted. */
  settled: boolean;
}

/** Reads a snapshot's bytes in order. */
export interface SnapshotSource {
  /** Fills the start of `into`; the count read, or null at the end. */
  read(into: Uint8Array): Promise<number | null>;
  /** CRC32C the data was stored with, if known (checked against what was read). */
  readonly crc32c?: number;
  close(): void;
}

/** Receives a snapshot's bytes in order. */
export interface SnapshotSink {
  write(chunk: Uint8Array): Promise<void>;
  /** All bytes arrived and their CRC32C matched: the data to deliver. */
  finish(crc32c: number): Promise<SnapshotData>;
  /** The transfer failed: drop what arrived. */
  abort(): Promise<void>;
}

/** Where snapshot bytes are read from and written to. */
export interface SnapshotIo {
  open(data: SnapshotData): Promise<SnapshotSource>;
  /** A sink for an incoming snapshot of `total` bytes. */
  create(total: number): Promise<SnapshotSink>;
}

/** Snapshot data as `Uint8Array`s in memory (tests, small deployments). */
export const memorySnapshotIo: SnapshotIo = {
  open(data: SnapshotData): Promise<SnapshotSource> {
    if (!(data instanceof Uint8Array)) {
      return Promise.reject(new TypeError("memorySnapshotIo sends Uint8Array snapshots only"));
    }
    let at = 0;
    return Promise.resolve({
      read(into: Uint8Array): Promise<number | null> {
        if (at >= data.byteLength) return Promise.resolve(null);
        const n = Math.min(into.byteLength, data.byteLength - at);
        into.set(data.subarray(at, at + n));
        at += n;
        return Promise.resolve(n);
      },
      close() {},
    });
  },
  create(total: number): Promise<SnapshotSink> {
    const out = new Uint8Array(total);
    let at = 0;
    return Promise.resolve({
      write(chunk: Uint8Array): Promise<void> {
        out.set(chunk, at);
        at += chunk.byteLength;
        return Promise.resolve();
      },
      finish: () => Promise.resolve(out),
      abort: () => Promise.resolve(),
    });
  },
};

/** Raft messages over TCP through a {@link Mux} (service byte 1). */
export class TcpTransport implements Transport {
  readonly #self: NodeId;
  readonly #resolve: (id: NodeId) => string | undefined;
  readonly #maxQueueMessages: number;
  readonly #maxQueueBytes: number;
  readonly #maxBatchBytes: number;
  readonly #maxFrameBytes: number;
  readonly #chunkBytes: number;
  readonly #maxSnapshotBytes: number;
  readonly #maxIncomingSnapshots: number;
  #incomingSnapshots = 0;
  readonly #snapshotIdleMs: number;
  readonly #inboundIdleMs: number;
  readonly #snapshotIo: SnapshotIo;
  readonly #dialTimeoutMs: number;
  readonly #backoff: BackoffOptions;
  readonly #connect: ConnectFn | undefined;
  readonly #random: () => number;

  readonly #peers = new Map<NodeId, Peer>();
  readonly #inbound = new Set<Deno.Conn>();
  readonly #snapshotConns = new Set<Deno.Conn>();
  readonly #tasks = new Set<Promise<unknown>>();
  /** Aborted by close(): abandons dials in progress. */
  readonly #abort = new AbortController();
  #handler: TransportHandler | undefined;
  #closed = false;

  #sent = 0;
  #dropped = 0;
  #framesSent = 0;
  #bytesSent = 0;
  #reconnects = 0;
  #dialFailures = 0;
  #received = 0;
  #framesReceived = 0;
  #bytesReceived = 0;
  #receivedDropped = 0;
  #inboundErrors = 0;
  #inboundIdleClosed = 0;
  #snapshotsSent = 0;
  #snapshotsFailed = 0;
  #snapshotsReceived = 0;

  /** Registers service 1 on `options.mux`; inbound messages are dropped until {@link listen}. */
  constructor(options: TcpTransportOptions) {
    this.#self = options.self;
    this.#resolve = options.resolve;
    this.#maxQueueMessages = positive("maxQueueMessages", options.maxQueueMessages ?? 4096);
    this.#maxQueueBytes = positive("maxQueueBytes", options.maxQueueBytes ?? 64 * MiB);
    this.#maxBatchBytes = positive("maxBatchBytes", options.maxBatchBytes ?? 4 * MiB);
    this.#maxFrameBytes = positive("maxFrameBytes", options.maxFrameBytes ?? 80 * MiB);
    this.#chunkBytes = positive("snapshotChunkBytes", options.snapshotChunkBytes ?? MiB);
    this.#maxSnapshotBytes = positive("maxSnapshotBytes", options.maxSnapshotBytes ?? 1024 * MiB);
    this.#maxIncomingSnapshots = positive(
      "maxIncomingSnapshots",
      options.maxIncomingSnapshots ?? 2,
    );
    this.#snapshotIo = options.snapshotIo ?? memorySnapshotIo;
    this.#snapshotIdleMs = positive(
      "snapshotIdleTimeoutMs",
      options.snapshotIdleTimeoutMs ?? 30_000,
    );
    this.#inboundIdleMs = positive(
      "inboundIdleTimeoutMs",
      options.inboundIdleTimeoutMs ?? 30_000,
    );
    this.#dialTimeoutMs = positive("dialTimeoutMs", options.dialTimeoutMs ?? 5_000);
    this.#backoff = options.backoff ?? { initialMs: 50, maxMs: 2_000 };
    positive("backoff.initialMs", this.#backoff.initialMs);
    positive("backoff.maxMs", this.#backoff.maxMs);
    this.#connect = options.connect;
    this.#random = options.random ?? Math.random;
    if (this.#chunkBytes + 1 > this.#maxFrameBytes) {
      throw new RangeError(
        `snapshotChunkBytes (${this.#chunkBytes}) must be below maxFrameBytes (${this.#maxFrameBytes})`,
      );
    }
    options.mux.handle(SERVICE_RAFT, (conn, firstBytes) => {
      const task = this.#serveInbound(conn, firstBytes);
      this.#track(task);
      return task;
    });
  }

  // ------------------------------------------------------------------ Transport

  /** Queues `msg` for `msg.to`; drops (and counts) it when closed, unknown or the queue is full. */
  send(msg: Message): void {
    if (this.#closed) return;
    const peer = this.#peer(msg.to);
    const size = messageBound(msg);
    if (
      peer.queue.length >= this.#maxQueueMessages || peer.queueBytes + size > this.#maxQueueBytes
    ) {
      this.#drop(peer, 1);
      return;
    }
    peer.queue.push(msg);
    peer.sizes.push(size);
    peer.queueBytes += size;
    const wake = peer.wake;
    if (wake !== undefined) {
      peer.wake = undefined;
      wake();
    }
  }

  /**
   * Streams `data` to `msg.to` on a dedicated connection; `done(true)` once
   * the receiver acknowledged delivery, `done(false)` on any failure, after
   * `snapshotIdleTimeoutMs` without progress, or when closed. `done` runs
   * exactly once, never synchronously.
   */
  sendSnapshot(msg: Message, data: SnapshotData, done: (ok: boolean) => void): void {
    let finished = false;
    const finish = (ok: boolean) => {
      if (finished) return;
      finished = true;
      if (ok) this.#snapshotsSent++;
      else this.#snapshotsFailed++;
      done(ok);
    };
    const addr = this.#closed ? undefined : this.#resolve(msg.to);
    if (addr === undefined) {
      queueMicrotask(() => finish(false));
      return;
    }
    this.#track(this.#streamSnapshot(addr, msg, data).then(finish, () => finish(false)));
  }

  /** Installs the receiver (once). */
  listen(handler: TransportHandler): void {
    if (this.#handler !== undefined) throw new Error("TcpTransport.listen called twice");
    this.#handler = handler;
  }

  /**
   * Stops sending and receiving: drops queues, closes every connection,
   * cancels backoff sleeps. Later sends are no-ops; later snapshots fail.
   * Idempotent. {@link shutdown} also waits for the tasks to end.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#abort.abort();
    for (const peer of this.#peers.values()) {
      peer.queue = [];
      peer.sizes = [];
      peer.queueBytes = 0;
      if (peer.conn !== undefined) closeQuietly(peer.conn);
      peer.conn = undefined;
      peer.cancelSleep?.();
      const wake = peer.wake;
      peer.wake = undefined;
      wake?.();
    }
    for (const conn of this.#inbound) closeQuietly(conn);
    for (const conn of this.#snapshotConns) closeQuietly(conn);
  }

  /** {@link close}, then waits until every task of this transport has ended. */
  async shutdown(): Promise<void> {
    this.close();
    while (this.#tasks.size > 0) await Promise.allSettled([...this.#tasks]);
  }

  /** Forgets a peer removed from the cluster: drops its queue and closes its connection. */
  removePeer(id: NodeId): void {
    const peer = this.#peers.get(id);
    if (peer === undefined) return;
    this.#peers.delete(id);
    this.#drop(peer, peer.queue.length);
    peer.queue = [];
    peer.sizes = [];
    peer.queueBytes = 0;
    if (peer.conn !== undefined) closeQuietly(peer.conn);
    peer.conn = undefined;
    peer.cancelSleep?.();
    const wake = peer.wake;
    peer.wake = undefined;
    wake?.();
  }

  /** Counters for /status. */
  stats(): TcpTransportStats {
    const peers: Record<NodeId, PeerStats> = {};
    for (const p of this.#peers.values()) {
      peers[p.id] = {
        addr: p.connAddr,
        connected: p.conn !== undefined,
        queued: p.queue.length,
        queuedBytes: p.queueBytes,
        sent: p.sent,
        dropped: p.dropped,
        dialFailures: p.dialFailures,
        lastError: p.lastError,
      };
    }
    return {
      sent: this.#sent,
      dropped: this.#dropped,
      framesSent: this.#framesSent,
      bytesSent: this.#bytesSent,
      reconnects: this.#reconnects,
      dialFailures: this.#dialFailures,
      received: this.#received,
      framesReceived: this.#framesReceived,
      bytesReceived: this.#bytesReceived,
      receivedDropped: this.#receivedDropped,
      inboundErrors: this.#inboundErrors,
      inboundIdleClosed: this.#inboundIdleClosed,
      inboundOpen: this.#inbound.size,
      snapshotsSent: this.#snapshotsSent,
      snapshotsFailed: this.#snapshotsFailed,
      snapshotsReceived: this.#snapshotsReceived,
      peers,
    };
  }

  // ------------------------------------------------------------------ outbound

  #track<T>(task: Promise<T>): void {
    this.#tasks.add(task);
    task.finally(() => this.#tasks.delete(task)).catch(() => {});
  }

  #peer(id: NodeId): Peer {
    let peer = this.#peers.get(id);
    if (peer === undefined) {
      peer = new Peer(id);
      this.#peers.set(id, peer);
      this.#track(this.#drive(peer));
    }
    return peer;
  }

  #drop(peer: Peer, n: number): void {
    peer.dropped += n;
    this.#dropped += n;
  }

  #removed(peer: Peer): boolean {
    return this.#closed || this.#peers.get(peer.id) !== peer;
  }

  /** The peer's writer: waits for messages, keeps a connection, writes batches. */
  async #drive(peer: Peer): Promise<void> {
    while (!this.#removed(peer)) {
      if (peer.queue.length === 0) {
        await new Promise<void>((resolve) => (peer.wake = resolve));
        continue;
      }
      const addr = this.#resolve(peer.id);
      if (addr === undefined) {
        peer.lastError = "address unknown";
        this.#drop(peer, peer.queue.length);
        peer.queue = [];
        peer.sizes = [];
        peer.queueBytes = 0;
        continue;
      }
      if (peer.conn !== undefined && peer.connAddr !== addr) this.#disconnect(peer);
      if (peer.conn === undefined && !await this.#dial(peer, addr)) continue;
      const conn = peer.conn;
      if (conn === undefined) continue;
      await this.#writeBatch(peer, conn, this.#takeBatch(peer));
    }
  }

  /** Opens the peer's connection after the backoff its failures call for. True when connected. */
  async #dial(peer: Peer, addr: string): Promise<boolean> {
    if (peer.failures > 0) {
      const { initialMs, maxMs } = this.#backoff;
      const base = Math.min(maxMs, initialMs * 2 ** Math.min(peer.failures - 1, 30));
      await this.#sleep(peer, base * (0.5 + 0.5 * this.#random()));
      if (this.#removed(peer)) return false;
    }
    let conn: Deno.Conn;
    try {
      conn = await dialService(addr, SERVICE_RAFT, {
        timeoutMs: this.#dialTimeoutMs,
        connect: this.#connect,
        signal: this.#abort.signal,
      });
    } catch (err) {
      peer.failures++;
      peer.dialFailures++;
      this.#dialFailures++;
      peer.lastError = errorText(err);
      return false;
    }
    if (this.#removed(peer)) {
      closeQuietly(conn);
      return false;
    }
    if (peer.everConnected || peer.failures > 0) this.#reconnects++;
    peer.everConnected = true;
    peer.failures = 0;
    peer.conn = conn;
    peer.connAddr = addr;
    this.#track(this.#watch(peer, conn));
    return true;
  }

  /** Sleeps `ms` unless the peer is removed or the transport closed meanwhile. */
  #sleep(peer: Peer, ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        peer.cancelSleep = undefined;
        resolve();
      }, ms);
      peer.cancelSleep = () => {
        clearTimeout(timer);
        peer.cancelSleep = undefined;
        resolve();
      };
    });
  }

  /** The receiver never writes on a message connection: a read returning means it closed it. */
  async #watch(peer: Peer, conn: Deno.Conn): Promise<void> {
    const buf = new Uint8Array(16);
    try {
      while ((await conn.read(buf)) !== null) {
        // Ignore stray bytes.
      }
    } catch {
      // Closed or reset.
    }
    if (peer.conn === conn) this.#disconnect(peer);
  }

  #disconnect(peer: Peer): void {
    const conn = peer.conn;
    peer.conn = undefined;
    if (conn !== undefined) closeQuietly(conn);
  }

  /** Takes queued messages up to `maxBatchBytes` (at least one). */
  #takeBatch(peer: Peer): Message[] {
    let bytes = 0;
    let n = 0;
    while (n < peer.queue.length) {
      const size = peer.sizes[n]!;
      if (n > 0 && bytes + size > this.#maxBatchBytes) break;
      bytes += size;
      n++;
    }
    peer.queueBytes -= bytes;
    if (n === peer.queue.length) {
      const batch = peer.queue;
      peer.queue = [];
      peer.sizes = [];
      return batch;
    }
    peer.sizes.splice(0, n);
    return peer.queue.splice(0, n);
  }

  async #writeBatch(peer: Peer, conn: Deno.Conn, batch: Message[]): Promise<void> {
    let frame: Uint8Array;
    try {
      frame = encodeWithHeadroom(batch, PREFIX_BYTES);
    } catch (err) {
      // A message the format cannot carry is a bug upstream; do not lose the connection over it.
      peer.lastError = `unencodable batch: ${errorText(err)}`;
      this.#drop(peer, batch.length);
      return;
    }
    const length = frame.byteLength - FRAME_HEADER_BYTES;
    if (length > this.#maxFrameBytes) {
      peer.lastError = `batch of ${length} bytes exceeds maxFrameBytes ${this.#maxFrameBytes}`;
      this.#drop(peer, batch.length);
      return;
    }
    putFrameHeader(frame, 0, length);
    frame[FRAME_HEADER_BYTES] = FRAME_MESSAGES;
    try {
      await writeAll(conn, frame);
    } catch (err) {
      peer.lastError = `write failed: ${errorText(err)}`;
      this.#drop(peer, batch.length);
      if (peer.conn === conn) this.#disconnect(peer);
      return;
    }
    peer.sent += batch.length;
    this.#sent += batch.length;
    this.#framesSent++;
    this.#bytesSent += frame.byteLength;
  }

  async #streamSnapshot(addr: string, msg: Message, data: SnapshotData): Promise<boolean> {
    let conn: Deno.Conn | undefined;
    let source: SnapshotSource | undefined;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const progress = () => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        if (conn !== undefined) closeQuietly(conn);
      }, this.#snapshotIdleMs);
    };
    try {
      progress();
      conn = await dialService(addr, SERVICE_RAFT, {
        timeoutMs: this.#dialTimeoutMs,
        connect: this.#connect,
        signal: this.#abort.signal,
      });
      this.#snapshotConns.add(conn);
      if (this.#closed) return false;
      const begin = encodeWithHeadroom([msg], SNAPSHOT_BEGIN_PREFIX_BYTES);
      putFrameHeader(begin, 0, begin.byteLength - FRAME_HEADER_BYTES);
      begin[FRAME_HEADER_BYTES] = FRAME_SNAPSHOT_BEGIN;
      putU64(begin, PREFIX_BYTES, data.byteLength);
      await this.#write(conn, begin);
      progress();
      source = await this.#snapshotIo.open(data);
      const crc = await this.#streamChunks(conn, source, data.byteLength, progress);
      if (source.crc32c !== undefined && source.crc32c !== crc) return false; // damaged at rest
      const end = new Uint8Array(PREFIX_BYTES + 4);
      putFrameHeader(end, 0, 5);
      end[FRAME_HEADER_BYTES] = FRAME_SNAPSHOT_END;
      new DataView(end.buffer).setUint32(PREFIX_BYTES, crc);
      await this.#write(conn, end);
      progress();
      const ack = new Uint8Array(1);
      const n = await conn.read(ack);
      return n === 1 && ack[0] === SNAPSHOT_ACK;
    } catch {
      return false;
    } finally {
      clearTimeout(timer);
      source?.close();
      if (conn !== undefined) {
        this.#snapshotConns.delete(conn);
        closeQuietly(conn);
      }
    }
  }

  /** Sends exactly `total` bytes from `source` as chunk frames; returns their CRC32C. */
  async #streamChunks(
    conn: Deno.Conn,
    source: SnapshotSource,
    total: number,
    progress: () => void,
  ): Promise<number> {
    const chunk = new Uint8Array(PREFIX_BYTES + Math.max(1, Math.min(this.#chunkBytes, total)));
    chunk[FRAME_HEADER_BYTES] = FRAME_SNAPSHOT_CHUNK;
    let crc = 0;
    let sent = 0;
    while (sent < total) {
      const want = Math.min(chunk.byteLength - PREFIX_BYTES, total - sent);
      const n = await source.read(chunk.subarray(PREFIX_BYTES, PREFIX_BYTES + want));
      if (n === null || n === 0) throw new Error(`snapshot source ended at ${sent} of ${total}`);
      const piece = chunk.subarray(PREFIX_BYTES, PREFIX_BYTES + n);
      crc = crc32c(piece, crc);
      putFrameHeader(chunk, 0, n + 1);
      await this.#write(conn, chunk.subarray(0, PREFIX_BYTES + n));
      sent += n;
      progress();
    }
    return crc;
  }

  async #write(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
    await writeAll(conn, bytes);
    this.#framesSent++;
    this.#bytesSent += bytes.byteLength;
  }

  // ------------------------------------------------------------------ inbound

  async #serveInbound(conn: Deno.Conn, firstBytes: Uint8Array): Promise<void> {
    if (this.#closed) {
      closeQuietly(conn);
      return;
    }
    this.#inbound.add(conn);
    const frames = new FrameReader(conn, {
      maxFrameBytes: this.#maxFrameBytes,
      prefix: firstBytes,
    });
    let snap: Assembly | undefined;
    const idle = this.#idleWatch(conn);
    try {
      for (let f = await frames.read(); f !== null; f = await frames.read()) {
        this.#framesReceived++;
        this.#bytesReceived += FRAME_HEADER_BYTES + f.byteLength;
        idle.busy = true;
        snap = await this.#onFrame(conn, f, snap);
        idle.busy = false;
        idle.lastMs = performance.now();
      }
    } catch (err) {
      if (err instanceof HandlerFailure) {
        closeQuietly(conn);
        reportError(err.cause);
      } else if (
        !this.#closed && (err instanceof CodecError || err instanceof ProtocolError ||
          (err instanceof FrameError && err.kind !== "io"))
      ) {
        this.#inboundErrors++;
      }
    } finally {
      clearInterval(idle.timer);
      if (snap !== undefined) {
        this.#release(snap);
        if (!snap.settled) {
          snap.settled = true;
          await snap.sink.abort().catch(() => {});
        }
      }
      this.#inbound.delete(conn);
      closeQuietly(conn);
    }
  }

  /**
   * Closes `conn` once no frame completed for the idle timeout (checked a
   * few times per period; time spent handling a frame does not count).
   */
  #idleWatch(conn: Deno.Conn): IdleWatch {
    const idle: IdleWatch = { lastMs: performance.now(), busy: false, timer: undefined };
    idle.timer = setInterval(() => {
      if (idle.busy || performance.now() - idle.lastMs < this.#inboundIdleMs) return;
      clearInterval(idle.timer);
      this.#inboundIdleClosed++;
      closeQuietly(conn);
    }, Math.max(10, this.#inboundIdleMs / 4));
    return idle;
  }

  #release(snap: Assembly): void {
    if (snap.released) return;
    snap.released = true;
    this.#incomingSnapshots--;
  }

  /** Handles one frame; returns the snapshot being assembled (if any) afterwards. */
  async #onFrame(
    conn: Deno.Conn,
    f: Uint8Array,
    snap: Assembly | undefined,
  ): Promise<Assembly | undefined> {
    const type = f[0];
    if (type === FRAME_MESSAGES) {
      if (snap !== undefined) throw new ProtocolError("messages inside a snapshot transfer");
      // Frames are never reused by the reader: entries may keep views of them.
      const msgs = decodeMessages(f.subarray(1), { views: true });
      const handler = this.#handler;
      if (handler === undefined || this.#closed) {
        this.#receivedDropped += msgs.length;
        return undefined;
      }
      for (const m of msgs) {
        this.#received++;
        deliver(() => handler.onMessage(m));
      }
      return undefined;
    }
    if (type === FRAME_SNAPSHOT_BEGIN) {
      if (snap !== undefined) throw new ProtocolError("snapshot begins inside a snapshot");
      if (f.byteLength < 9) throw new ProtocolError("short snapshot header");
      const total = getU64(f, 1);
      if (total > this.#maxSnapshotBytes) {
        throw new ProtocolError(
          `snapshot of ${total} bytes exceeds maxSnapshotBytes ${this.#maxSnapshotBytes}`,
        );
      }
      const msgs = decodeMessages(f.subarray(9), { views: true });
      const msg = msgs[0];
      if (msgs.length !== 1 || msg === undefined || msg.kind !== "snapshot" || !msg.snapshot) {
        throw new ProtocolError("snapshot header must carry exactly one snapshot message");
      }
      if (this.#incomingSnapshots >= this.#maxIncomingSnapshots) {
        throw new ProtocolError(`${this.#incomingSnapshots} snapshots already arriving`);
      }
      this.#incomingSnapshots++;
      let sink: SnapshotSink;
      try {
        sink = await this.#snapshotIo.create(total);
      } catch (err) {
        this.#incomingSnapshots--;
        throw new ProtocolError(`cannot receive a snapshot: ${errorText(err)}`);
      }
      return { msg, total, sink, received: 0, crc: 0, released: false, settled: false };
    }
    if (type === FRAME_SNAPSHOT_CHUNK) {
      if (snap === undefined) throw new ProtocolError("snapshot chunk outside a transfer");
      const piece = f.subarray(1);
      if (snap.received + piece.byteLength > snap.total) {
        throw new ProtocolError(`snapshot data beyond the declared ${snap.total} bytes`);
      }
      await snap.sink.write(piece);
      snap.crc = crc32c(piece, snap.crc);
      snap.received += piece.byteLength;
      return snap;
    }
    if (type === FRAME_SNAPSHOT_END) {
      if (snap === undefined) throw new ProtocolError("snapshot end outside a transfer");
      if (snap.received !== snap.total) {
        throw new ProtocolError(`snapshot ended at ${snap.received} of ${snap.total} bytes`);
      }
      if (f.byteLength !== 5) throw new ProtocolError("snapshot end without its CRC");
      const sentCrc = new DataView(f.buffer, f.byteOffset, f.byteLength).getUint32(1);
      if (sentCrc !== snap.crc) {
        throw new ProtocolError(
          `snapshot CRC32C mismatch: sender says ${sentCrc}, received data has ${snap.crc}`,
        );
      }
      const handler = this.#handler;
      if (handler === undefined || this.#closed) {
        throw new ProtocolError("no receiver installed for a snapshot");
      }
      this.#release(snap);
      snap.settled = true;
      const data = await snap.sink.finish(snap.crc);
      this.#snapshotsReceived++;
      deliver(() => handler.onSnapshot(snap.msg, data));
      await writeAll(conn, new Uint8Array([SNAPSHOT_ACK]));
      return undefined;
    }
    throw new ProtocolError(`unknown frame type ${String(type)}`);
  }
}

/** Runs a handler callback; anything it throws is the node's bug, not the peer's. */
function deliver(fn: () => void): void {
  try {
    fn();
  } catch (err) {
    throw new HandlerFailure("transport handler threw", { cause: err });
  }
}

function putU64(out: Uint8Array, at: number, v: number): void {
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  view.setUint32(at, Math.floor(v / 2 ** 32));
  view.setUint32(at + 4, v >>> 0);
}

function getU64(b: Uint8Array, at: number): number {
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  return view.getUint32(at) * 2 ** 32 + view.getUint32(at + 4);
}

function positive(name: string, v: number): number {
  if (!(v > 0)) throw new RangeError(`${name} must be positive, got ${v}`);
  return v;
}
