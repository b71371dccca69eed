/**
 * A database worker: owns one {@link SqliteEngine} and runs every request
 * to completion, one at a time, in arrival order. Started by
 * {@link DbClient} as the write worker (a writable engine) or as a read
 * worker (`readOnly` engine; the client closes and reopens it around
 * restores). Never imported by the main thread.
 *
 * Requests are served strictly one after the other: a request whose work
 * is asynchronous (the online-backup fallback of a file snapshot) finishes
 * before the next one starts, so nothing writes during a snapshot. The
 * queue of waiting requests is bounded by the client (`maxInFlight` on the
 * write worker, a fixed pipeline depth on read workers).
 *
 * @module
 */

import { type Command, CommandDecodeError, decodeCommand } from "./command.ts";
import { SqliteEngine } from "./engine.ts";
import type { WorkerReply, WorkerRequest } from "./protocol.ts";
import type { CommandOutcome } from "./result.ts";

interface WorkerScope {
  onmessage: ((e: MessageEvent<WorkerRequest>) => void) | null;
  postMessage(message: WorkerReply, transfer?: Transferable[]): void;
  close(): void;
}

const scope = globalThis as unknown as WorkerScope;
let engine: SqliteEngine | undefined;

function need(): SqliteEngine {
  if (engine === undefined) throw new Error("database worker: not open");
  return engine;
}

/**
 * Decodes a batch of log entries and applies them with group commit
 * ({@link SqliteEngine.applyBatch}: committed before this returns, so a read
 * sent after the outcomes sees the whole batch), then keeps the WAL bounded.
 */
function applyBatch(buffer: ArrayBuffer, lengths: Uint32Array): CommandOutcome[] {
  const e = need();
  const items: (Command | string)[] = new Array(lengths.length);
  let off = 0;
  for (let i = 0; i < lengths.length; i++) {
    const len = lengths[i]!;
    if (off + len > buffer.byteLength) {
      items[i] = "command decode: batch shorter than its lengths";
      continue;
    }
    const bytes = new Uint8Array(buffer, off, len);
    off += len;
    try {
      items[i] = decodeCommand(bytes);
    } catch (err) {
      items[i] = err instanceof CommandDecodeError || err instanceof Error
        ? err.message
        : String(err);
    }
  }
  const out = e.applyBatch(items);
  e.maintain();
  return out;
}

type Handled = { value: unknown; transfer?: Transferable[] };

function handle(m: WorkerRequest): Handled | Promise<Handled> {
  switch (m.op) {
    case "open":
      engine?.close();
      engine = new SqliteEngine(m.options);
      return { value: undefined };
    case "execute":
    case "request": {
      const e = need();
      const value = m.op === "execute" ? e.execute(m.command) : e.request(m.command);
      e.maintain();
      return { value };
    }
    case "query":
      return { value: need().query(m.command, { readOnly: m.readOnly }) };
    case "classify":
      return { value: need().classify(m.statements) };
    case "apply": {
      const outcomes = applyBatch(m.buffer, m.lengths);
      // Copying thousands of outcome objects back costs both threads time.
      return { value: m.results ? outcomes : outcomes.length };
    }
    case "load":
      need().load(m.bytes);
      return { value: undefined };
    case "restore":
      need().restore(m.bytes);
      return { value: undefined };
    case "checkImage":
      need().checkImage(m.bytes);
      return { value: undefined };
    case "snapshotToFile":
      return need().snapshotToFile(m.path).then((value) => ({ value }));
    case "backupToFile":
      return need().backupToFile(m.path, m.options).then((value) => ({ value }));
    case "restoreFromFile":
      need().restoreFromFile(m.path, m.options);
      return { value: undefined };
    case "serialize": {
      const img = need().serialize();
      const whole = img.byteOffset === 0 && img.byteLength === img.buffer.byteLength;
      return { value: img, transfer: whole ? [img.buffer as ArrayBuffer] : [] };
    }
    case "stateHash":
      return { value: need().stateHash() };
    case "checkpoint":
      return { value: need().checkpoint() };
    case "close": {
      const report = engine?.close() ?? {};
      engine = undefined;
      return { value: report };
    }
  }
}

function failure(id: number, err: unknown): WorkerReply {
  return {
    id,
    ok: false,
    name: err instanceof Error ? err.name : "Error",
    message: err instanceof Error ? err.message : String(err),
  };
}

/** Serves one request and posts its reply; never throws. */
async function serve(m: WorkerRequest): Promise<void> {
  let reply: WorkerReply;
  let transfer: Transferable[] = [];
  try {
    const r = await handle(m);
    reply = { id: m.id, ok: true, value: r.value };
    transfer = r.transfer ?? [];
  } catch (err) {
    reply = failure(m.id, err);
  }
  try {
    scope.postMessage(reply, transfer);
  } catch (err) {
    // An uncloneable value: the caller still gets an answer, and the queue goes on.
    scope.postMessage(failure(m.id, err));
  }
}

/** The request being served (and those queued behind it), in arrival order. */
let tail: Promise<void> = Promise.resolve();

scope.onmessage = (e: MessageEvent<WorkerRequest>) => {
  const m = e.data;
  tail = tail.then(() => serve(m));
};
