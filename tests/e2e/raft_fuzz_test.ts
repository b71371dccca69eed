/**
 * Seeded fuzzing of a real node's Raft port (lib/transport/mux.ts): valid
 * frames of both services built with the real codecs (Raft messages and
 * snapshot transfers, lib/transport/codec.ts; cluster-service requests,
 * lib/cluster/protocol.ts), then mutated (bytes flipped, inserted, deleted,
 * truncated, duplicated), with oversized or lying length prefixes, cut
 * short, or followed by silence. Each connection must be closed by the
 * node (or its request answered) within a bound; silent and half-sent
 * connections are closed by -raft-idle-timeout; the node keeps serving
 * HTTP and Raft (writes commit) and the protected data does not change.
 * The idea of tests/e2e/cluster/garbage_test.ts (fixed kinds of garbage on
 * a cluster) extended with seeded mutation of valid traffic; a smaller run
 * goes to a 3-node cluster's leader and follower.
 *
 * How "no data changes" is guaranteed: a stranger that speaks valid Raft
 * could append entries (only TLS keeps strangers out), so every frame is
 * checked with the node's own decoders before it is sent. A mutated frame
 * that still decodes is sent only when each Raft message in it is harmless
 * (addressed to another id, or a term older than the node's at the start:
 * a stale message is answered or ignored, never acted on) and each cluster
 * request is a node-meta lookup or SQL that names only `scratch` with a
 * command kind other than `load`; otherwise the unmutated frame is sent.
 * Frames that do not decode are sent as they are: that is the point.
 *
 * Replay a failure with `FUZZ_SEED=<seed> deno test -A tests/e2e/raft_fuzz_test.ts`.
 */

import assert from "node:assert/strict";
import { decodeRequest, encodeRequest } from "../../lib/cluster/protocol.ts";
import type { Command } from "../../lib/db/mod.ts";
import { type Message, MESSAGE_KINDS } from "../../lib/raft/types.ts";
import { crc32c } from "../../lib/storage/crc32c.ts";
import { decodeMessages, encodeMessages } from "../../lib/transport/codec.ts";
import { putFrameHeader } from "../../lib/transport/frame.ts";
import {
  FRAME_MESSAGES,
  FRAME_SNAPSHOT_BEGIN,
  FRAME_SNAPSHOT_CHUNK,
  FRAME_SNAPSHOT_END,
} from "../../lib/transport/raft_transport.ts";
import {
  type Bytes,
  concat,
  fuzzSeed,
  mutate,
  Prng,
  randomBytes,
  sendUntilClosed,
  withSeed,
} from "../util/fuzz.ts";
import { spawnNode } from "../util/node.ts";
import { skipUnlessClustering } from "./cluster/available.ts";
import { withCluster } from "./cluster/harness.ts";
import { splitHostPort } from "./cluster/proxy.ts";
import { mustExecute, mustExecuteOnceLed, raftStatus, startTracked, withNodes } from "./helpers.ts";
import { keepsServing, protectedState, seedProtectedData, stillRunning } from "./protected_data.ts";

const SEED = fuzzSeed(20250612);
/** -raft-idle-timeout of the fuzzed node: silent connections must be gone soon after. */
const IDLE_MS = 1_000;
/** A connection must be closed (or answered) within this after we stop sending. */
const CLOSE_BOUND_MS = 5_000;

/** Frame header (u32 big-endian length) + payload. */
function frame(payload: Uint8Array): Bytes {
  const out = new Uint8Array(4 + payload.byteLength);
  putFrameHeader(out, 0, payload.byteLength);
  out.set(payload, 4);
  return out;
}

function u64(n: number): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt(n));
  return b;
}

function u32(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n);
  return b;
}

/** What the frames are aimed at: the node's id and its term before the fuzzing. */
interface Target {
  readonly id: string;
  readonly termAtStart: number;
}

// Every kind but snapshot, whose data travels beside the message.
const KINDS: Message["kind"][] = MESSAGE_KINDS.filter((k) => k !== "snapshot");

/** A valid, harmless Raft message: stale term when addressed to the node, else to a stranger. */
function harmlessMessage(rng: Prng, t: Target): Message {
  const toNode = t.termAtStart > 0 && rng.chance(0.7);
  const term = toNode ? rng.nextInt(t.termAtStart) : rng.nextInt(1000);
  const index = rng.nextInt(50);
  const kind = rng.pick(KINDS);
  const entries = kind === "append"
    ? Array.from({ length: rng.nextInt(4) }, (_, i) => ({
      term,
      index: index + 1 + i,
      kind: "normal" as const,
      data: randomBytes(rng, rng.nextInt(64)),
    }))
    : [];
  return {
    kind,
    from: rng.pick(["n-stranger", "127.0.0.1:1", t.id + "x"]),
    to: toNode ? t.id : "n-elsewhere",
    term,
    index,
    logTerm: Math.min(term, rng.nextInt(3)),
    entries,
    commit: 0,
    reject: rng.chance(0.5),
    rejectHint: 0,
    context: rng.chance(0.2) ? "ctx" : "",
  } as Message;
}

/** Every message harmless to the node (see the design note). */
function harmless(msgs: readonly Message[], t: Target): boolean {
  return msgs.every((m) => m.to !== t.id || m.term < t.termAtStart);
}

/** Whether the node would act on a Raft frame payload (decoded as its transport does). */
function raftPayloadSafe(payload: Uint8Array, t: Target): boolean {
  try {
    if (payload[0] === FRAME_MESSAGES) return harmless(decodeMessages(payload.subarray(1)), t);
    if (payload[0] === FRAME_SNAPSHOT_BEGIN && payload.byteLength >= 9) {
      return harmless(decodeMessages(payload.subarray(9)), t);
    }
    return true; // chunks and ends only complete a transfer whose begin was checked
  } catch {
    return true; // undecodable: refused by the node
  }
}

/** Payloads of valid Raft frames: message batches, or one whole snapshot transfer. */
function raftPayloads(rng: Prng, t: Target): Uint8Array[] {
  if (rng.chance(0.75)) {
    const msgs = Array.from({ length: 1 + rng.nextInt(3) }, () => harmlessMessage(rng, t));
    return [concat(new Uint8Array([FRAME_MESSAGES]), encodeMessages(msgs))];
  }
  const data = randomBytes(rng, 1 + rng.nextInt(4096));
  const snap: Message = {
    ...harmlessMessage(rng, t),
    kind: "snapshot",
    entries: [],
    snapshot: { index: 5, term: 0, conf: { voters: ["n-stranger"], learners: [] } },
  } as Message;
  const half = rng.nextInt(data.byteLength);
  return [
    concat(new Uint8Array([FRAME_SNAPSHOT_BEGIN]), u64(data.byteLength), encodeMessages([snap])),
    concat(new Uint8Array([FRAME_SNAPSHOT_CHUNK]), data.subarray(0, half)),
    concat(new Uint8Array([FRAME_SNAPSHOT_CHUNK]), data.subarray(half)),
    concat(new Uint8Array([FRAME_SNAPSHOT_END]), u32(crc32c(data))),
  ];
}

/** A valid cluster-service request payload that reads, or writes only `scratch`. */
function clusterPayload(rng: Prng): Uint8Array {
  const sql = rng.pick([
    "SELECT * FROM scratch",
    "INSERT INTO scratch(a, b) VALUES(1, 'x')",
    "DELETE FROM scratch WHERE a > 1000",
  ]);
  const command = (kind: Command["kind"]): Command => ({
    kind,
    statements: [{ sql, params: rng.chance(0.5) ? [] : [{ value: 1n }] }],
    transaction: rng.chance(0.3),
  });
  const id = rng.nextInt(1000);
  const timeoutMs = 1 + rng.nextInt(5_000);
  const max = 1 << 26;
  switch (rng.nextInt(4)) {
    case 0:
      return encodeRequest({ id, type: "nodeMeta", timeoutMs, body: {} }, max);
    case 1:
      return encodeRequest({
        id,
        type: "query",
        timeoutMs,
        body: { command: command("query"), options: { level: rng.pick(["none", "weak"]) } },
      }, max);
    case 2:
      return encodeRequest({
        id,
        type: "execute",
        timeoutMs,
        body: { command: command("execute"), options: {} },
      }, max);
    default:
      return encodeRequest({
        id,
        type: "request",
        timeoutMs,
        body: { command: command("request"), options: { level: "weak" } },
      }, max);
  }
}

/** Whether the node would act on a cluster request in a way that could touch protected data. */
function clusterPayloadSafe(payload: Uint8Array): boolean {
  let decoded;
  try {
    decoded = decodeRequest(payload);
  } catch {
    return true; // malformed: the node closes the connection
  }
  if (!decoded.known) return true; // answered with an error
  const r = decoded.request;
  if (r.type === "nodeMeta") return true;
  if (r.type !== "execute" && r.type !== "query" && r.type !== "request") return false;
  const cmd = r.body.command;
  if (cmd.kind === "load" || cmd.data !== undefined) return false;
  return cmd.statements.every((s) => /scratch/i.test(s.sql) && !/keep|schema|master/i.test(s.sql));
}

/** One connection's worth of bytes, and whether we half-close after sending. */
interface Attempt {
  readonly what: string;
  readonly bytes: Bytes;
  /** Close our sending side after the bytes (the node sees EOF); else stay silent. */
  readonly halfClose: boolean;
}

/** A seeded attempt on the Raft port. */
function attempt(rng: Prng, t: Target, counts: { unsafe: number }): Attempt {
  const halfClose = rng.chance(0.8);
  if (rng.chance(0.05)) {
    // A service byte no service has.
    const bytes = concat(new Uint8Array([rng.pick([0, 3, 4, 127, 255])]), randomBytes(rng, 16));
    return { what: `service byte ${bytes[0]}`, bytes, halfClose };
  }
  const service = rng.chance(0.55) ? 1 : 2;
  const payloads = service === 1 ? raftPayloads(rng, t) : [clusterPayload(rng)];
  const safe = service === 1
    ? (p: Uint8Array) => raftPayloadSafe(p, t)
    : (p: Uint8Array) => clusterPayloadSafe(p);
  const how = rng.nextInt(10);
  let body: Bytes;
  let what: string;
  if (how < 5) {
    // Mutate one payload inside a correct frame.
    const i = rng.nextInt(payloads.length);
    const mutated = mutate(rng, payloads[i]!);
    if (safe(mutated)) payloads[i] = mutated;
    else counts.unsafe++;
    body = concat(...payloads.map(frame));
    what = `service ${service}, payload ${i} mutated`;
  } else if (how < 7) {
    // Mutate the framed stream (length prefixes included).
    const framed = concat(...payloads.map(frame));
    const mutated = mutate(rng, framed);
    // Only frames whose payloads all decode harmlessly (or not at all) are sent mutated.
    body = streamSafe(mutated, safe) ? mutated : framed;
    if (body === framed) counts.unsafe++;
    what = `service ${service}, stream mutated`;
  } else if (how === 7) {
    // A lying length prefix: larger than any frame, or larger than what follows.
    const len = rng.pick([0xffff_ffff, 0x8000_0000, (80 << 20) + 1, 1 << 20, 65_536]);
    body = concat(u32(len), randomBytes(rng, rng.nextInt(256)));
    what = `service ${service}, length ${len}`;
  } else if (how === 8) {
    // A frame cut short.
    const framed = concat(...payloads.map(frame));
    body = framed.slice(0, rng.nextInt(framed.byteLength));
    what = `service ${service}, cut at ${body.byteLength} of ${framed.byteLength}`;
  } else {
    body = randomBytes(rng, rng.nextInt(4096));
    what = `service ${service}, ${body.byteLength} random bytes`;
  }
  return { what, bytes: concat(new Uint8Array([service]), body), halfClose };
}

/** Splits a framed stream like the node would and checks each whole payload. */
function streamSafe(stream: Uint8Array, safe: (p: Uint8Array) => boolean): boolean {
  let at = 0;
  while (at + 4 <= stream.byteLength) {
    const len = new DataView(stream.buffer, stream.byteOffset + at).getUint32(0);
    if (at + 4 + len > stream.byteLength) return true; // the rest never completes
    if (!safe(stream.subarray(at + 4, at + 4 + len))) return false;
    at += 4 + len;
  }
  return true;
}

/** Runs `count` attempts, `parallel` at a time, asserting each connection is closed in time. */
async function fuzzPort(
  rng: Prng,
  addr: string,
  t: Target,
  count: number,
  counts: { unsafe: number },
): Promise<void> {
  const attempts = Array.from({ length: count }, () => attempt(rng, t, counts));
  let next = 0;
  const worker = async () => {
    while (next < attempts.length) {
      const a = attempts[next++]!;
      const bound = (a.halfClose ? 0 : IDLE_MS) + CLOSE_BOUND_MS;
      const how = await sendUntilClosed(splitHostPort(addr), a.bytes, a.halfClose, bound);
      assert.match(how, /^closed/, `${addr}: ${a.what} (${a.bytes.byteLength} bytes): still open`);
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
}

Deno.test({
  name: "fuzz: the Raft port closes hostile connections, the node keeps serving, no data changes",
  fn: () =>
    withSeed(SEED, () =>
      withNodes("raft-fuzz", async (dir, track) => {
        const rng = new Prng(SEED);
        const node = await startTracked(
          track,
          () => spawnNode(`${dir}/n`, ["-raft-idle-timeout", `${IDLE_MS}ms`]),
        );
        await seedProtectedData(node.url);
        const before = await protectedState(node.url);
        const status = await raftStatus(node.url);
        const t: Target = { id: node.raftAddr, termAtStart: Number(status.term) };
        assert.ok(t.termAtStart >= 1, `term ${status.term}`);
        // The safety filter itself: it refuses what could act on the node.
        const risky = { ...harmlessMessage(rng, t), to: t.id, term: t.termAtStart };
        const riskyPayload = concat(new Uint8Array([FRAME_MESSAGES]), encodeMessages([risky]));
        assert.equal(raftPayloadSafe(riskyPayload, t), false);
        const remove = encodeRequest(
          { id: 1, type: "remove", timeoutMs: 1, body: { id: "x" } },
          1e6,
        );
        assert.equal(clusterPayloadSafe(remove), false);
        const counts = { unsafe: 0 };
        const batches = 4;
        const perBatch = 100;
        for (let b = 0; b < batches; b++) {
          // Silent connections alongside: no service byte, or a service byte then nothing.
          const silent = [new Uint8Array(0), new Uint8Array([1]), new Uint8Array([2])];
          const [quiet] = await Promise.all([
            Promise.all(
              silent.map((bytes) =>
                sendUntilClosed(
                  splitHostPort(node.raftAddr),
                  bytes,
                  false,
                  IDLE_MS + CLOSE_BOUND_MS,
                )
              ),
            ),
            fuzzPort(rng, node.raftAddr, t, perBatch, counts),
          ]);
          for (const how of quiet) assert.match(how, /^closed/, "idle connections closed");
          await keepsServing(node.url, `after batch ${b}`, "strong");
          await mustExecute(node.url, [["INSERT INTO scratch(a, b) VALUES(?, ?)", b, "ok"]]);
        }
        assert.equal(await protectedState(node.url), before, "the protected data changed");
        await stillRunning(node, "the node");
        const st = JSON.parse(
          await (await fetch(`${node.url}/status`, { signal: AbortSignal.timeout(5_000) })).text(),
        );
        const transport = st.cluster.transport;
        const mux = st.cluster.mux;
        assert.ok(transport.inboundErrors > 0, "bad Raft frames were refused");
        assert.ok(transport.inboundIdleClosed > 0, "idle Raft connections were closed");
        assert.ok(mux.rejectedTimeout > 0 && mux.rejectedUnknown > 0, JSON.stringify(mux));
        assert.equal(mux.open, 0, "no connection left open");
        // The safety filter must not have swallowed most of the mutations.
        assert.ok(
          counts.unsafe < batches * perBatch / 4,
          `${counts.unsafe} unsafe mutations replaced`,
        );
        console.log(`${counts.unsafe} of ${batches * perBatch} mutations replaced as unsafe`);
      })),
});

Deno.test({
  name:
    "fuzz: mutated frames on a 3-node cluster's Raft ports, the cluster keeps its leader and data",
  ignore: skipUnlessClustering("Raft-port fuzzing of a cluster (tests/e2e/raft_fuzz_test.ts)"),
  fn: () =>
    withSeed(SEED + 1, () =>
      withCluster({
        prefix: "raft-fuzz",
        proxied: false,
        // Short enough for silent fuzz connections to go quickly; peers' own links survive it.
        // Small bodies and frames: an oversized command through a follower is cheap to build.
        flags: [
          "-raft-idle-timeout",
          `${IDLE_MS}ms`,
          "-max-body-bytes",
          String(1 << 20),
          "-raft-max-frame-bytes",
          String(2 << 20),
        ],
      }, async (c) => {
        const rng = new Prng(SEED + 1);
        const leader = await c.leader();
        await seedProtectedData(leader.url);
        const before = await protectedState(leader.url);
        const counts = { unsafe: 0 };
        for (const n of [c.followersOf(leader)[0]!, leader]) {
          const term = Number((await raftStatus(n.url)).term);
          await fuzzPort(rng, n.raftAddr, { id: n.name, termAtStart: term }, 60, counts);
        }
        assert.equal((await c.leader()).name, leader.name, "no leadership change from garbage");
        // A command too large for one log entry, sent to a follower: refused, not forwarded to stall.
        const follower = c.followersOf(leader)[0]!;
        const huge = `[["INSERT INTO scratch(a) VALUES(?)",${
          new Array(500_000).fill("1").join(",")
        }]]`;
        for (const path of ["/db/execute", "/db/request"]) {
          const res = await fetch(`${follower.url}${path}`, {
            method: "POST",
            headers: { "Content-Type": "application/json" },
            body: huge,
            signal: AbortSignal.timeout(15_000),
          });
          const text = await res.text();
          assert.equal(res.status, 413, `${path} via a follower: ${text.slice(0, 300)}`);
          assert.match(text, /-raft-max-frame-bytes/);
        }
        for (const n of c.nodes) {
          // After the fuzz a loaded follower may be between heartbeats: 503 is retried.
          await mustExecuteOnceLed(n.url, [["INSERT INTO scratch(a, b) VALUES(?, ?)", 1, n.name]]);
          await keepsServing(n.url, n.name, "strong");
          await stillRunning(n.proc!, n.name);
        }
        assert.equal(await protectedState(leader.url), before, "the protected data changed");
      })),
});
