/**
 * Internode TLS (lib/transport/tls.ts) on real sockets with certificates
 * made by openssl: mutual TLS through the mux, refused clients (self-signed,
 * wrong common name, plain TCP, silent), dial-side verification
 * (`noVerify`, `serverName`), a plain dialer told that the peer wants TLS,
 * failures logged once per peer, and Raft messages from a node without an
 * acceptable certificate never delivered.
 */

import assert from "node:assert/strict";
import type { Message } from "../../lib/raft/types.ts";
import { FrameReader, writeFrames } from "../../lib/transport/frame.ts";
import { type ConnectFn, dialService, Mux, SERVICE_CLUSTER } from "../../lib/transport/mux.ts";
import { TcpTransport } from "../../lib/transport/raft_transport.ts";
import { type NodeTlsConfig, tlsConnect, tlsListen } from "../../lib/transport/tls.ts";
import { type CertFiles, withPki } from "../util/certs.ts";
import { delay, waitFor } from "./helpers.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** The TLS settings of a node holding `files`, trusting `caCert` (a path). */
function tlsConfig(
  files: CertFiles,
  caCert: string | undefined,
  extra: Partial<NodeTlsConfig> = {},
): NodeTlsConfig {
  return {
    cert: Deno.readTextFileSync(files.cert),
    key: Deno.readTextFileSync(files.key),
    ...(caCert === undefined ? {} : { caCert: Deno.readTextFileSync(caCert) }),
    verifyClient: false,
    noVerify: false,
    ...extra,
  };
}

/** A TLS mux whose cluster service echoes frames; `logs` collects its log lines. */
function echoServer(config: NodeTlsConfig) {
  const logs: string[] = [];
  const mux = Mux.listen({
    hostname: "127.0.0.1",
    port: 0,
    listen: tlsListen(config, { log: (line) => logs.push(line) }),
  });
  const loops: Promise<void>[] = [];
  let served = 0;
  mux.handle(SERVICE_CLUSTER, (conn, firstBytes) => {
    served++;
    loops.push((async () => {
      const frames = new FrameReader(conn, { prefix: firstBytes });
      try {
        for (let f = await frames.read(); f !== null; f = await frames.read()) {
          await writeFrames(conn, [enc.encode(`echo:${dec.decode(f)}`)]);
        }
      } catch {
        // closed
      } finally {
        conn.close();
      }
    })());
  });
  return {
    mux,
    logs,
    served: () => served,
    close: async () => {
      await mux.close();
      await Promise.all(loops);
    },
  };
}

/**
 * A plain dial of the cluster service, retried while the port refuses
 * connections: node's listen binds on the next turn of the event loop.
 */
async function dialWhenListening(addr: string): Promise<Deno.Conn> {
  for (let attempt = 0;; attempt++) {
    try {
      return await dialService(addr, SERVICE_CLUSTER, { timeoutMs: 2_000 });
    } catch (err) {
      if (attempt >= 50 || !/refused/i.test(String(err))) throw err;
      await delay(20);
    }
  }
}

/** Dials `addr`, sends one frame, returns the answer (throws what the dial or read throws). */
async function roundTrip(addr: string, connect: ConnectFn, text = "hi"): Promise<string> {
  const conn = await dialService(addr, SERVICE_CLUSTER, { timeoutMs: 5_000, connect });
  try {
    await writeFrames(conn, [enc.encode(text)]);
    const frame = await new FrameReader(conn).read();
    if (frame === null) throw new Error("connection ended without an answer");
    return dec.decode(frame);
  } finally {
    conn.close();
  }
}

Deno.test("mutual TLS: a node certificate from the CA is served, others are refused", async () => {
  await withPki(async (pki) => {
    const server = await pki.issue("server");
    const good = await pki.issue("good");
    const rogue = await pki.selfSigned("rogue", { cn: "good" });
    const srv = echoServer(tlsConfig(server, pki.caCert, { verifyClient: true }));
    const clientLogs: string[] = [];
    const log = (line: string) => clientLogs.push(line);
    try {
      const ok = tlsConnect(tlsConfig(good, pki.caCert), { log });
      assert.equal(await roundTrip(srv.mux.address, ok), "echo:hi");
      assert.equal(srv.served(), 1);

      // A self-signed certificate with the same name: the handshake looks done
      // to the client (TLS 1.3), then the server ends the connection.
      const bad = tlsConnect(tlsConfig(rogue, pki.caCert), { log });
      await assert.rejects(
        () => roundTrip(srv.mux.address, bad),
        /ended before any answer: the peer may refuse this node's certificate/,
      );
      assert.equal(srv.served(), 1, "the rogue connection never reached the service");
      await waitFor(() => srv.logs.length > 0, 5_000, "server logs the refusal");
      assert.match(srv.logs.join("\n"), /TLS handshake from 127\.0\.0\.1 failed/);
    } finally {
      await srv.close();
    }
  });
});

Deno.test("mutual TLS: -node-verify-common-name refuses other names", async () => {
  await withPki(async (pki) => {
    const server = await pki.issue("server");
    const right = await pki.issue("right", { cn: "raft-node" });
    const wrong = await pki.issue("wrong", { cn: "somebody" });
    const srv = echoServer(
      tlsConfig(server, pki.caCert, { verifyClient: true, commonName: "raft-node" }),
    );
    const log = () => {};
    try {
      const ok = tlsConnect(tlsConfig(right, pki.caCert), { log });
      assert.equal(await roundTrip(srv.mux.address, ok), "echo:hi");
      const bad = tlsConnect(tlsConfig(wrong, pki.caCert), { log });
      await assert.rejects(() => roundTrip(srv.mux.address, bad), /ended before any answer/);
      assert.equal(srv.served(), 1);
      await waitFor(() => srv.logs.length > 0, 5_000, "server logs the refusal");
      assert.match(srv.logs[0]!, /common name is "somebody", not "raft-node"/);
    } finally {
      await srv.close();
    }
  });
});

Deno.test("TLS listener: plain TCP and silent clients are closed, failures logged once", async () => {
  await withPki(async (pki) => {
    const server = await pki.issue("server");
    const srv = echoServer(
      tlsConfig(server, pki.caCert, { verifyClient: true, handshakeTimeoutMs: 300 }),
    );
    try {
      // A plain-TCP node: its service byte and frame are not a TLS hello.
      for (let i = 0; i < 5; i++) {
        const plain = await dialWhenListening(srv.mux.address);
        await writeFrames(plain, [enc.encode("plain")]).catch(() => {});
        // The TLS server answers with an alert, which the plain dialer names.
        await assert.rejects(
          () => plain.read(new Uint8Array(64)),
          /answered with a TLS alert: it requires internode TLS; start this node with -node-cert/,
        );
        plain.close();
      }
      await waitFor(() => srv.logs.length > 0, 5_000, "plain TCP logged");
      await delay(100);
      const plainLines = srv.logs.filter((l) => /does not speak TLS/.test(l));
      assert.equal(plainLines.length, 1, `once, not per attempt: ${srv.logs.join("\n")}`);

      // Silent: connects and sends nothing; the handshake timeout closes it.
      const silent = await Deno.connect({ hostname: "127.0.0.1", port: srv.mux.addr.port });
      const t0 = performance.now();
      const n = await silent.read(new Uint8Array(8)).catch(() => null);
      const ms = performance.now() - t0;
      silent.close();
      assert.equal(n, null);
      assert.ok(ms >= 250 && ms < 5_000, `closed after ${ms.toFixed(0)} ms`);
      assert.equal(srv.served(), 0);
    } finally {
      await srv.close();
    }
  });
});

Deno.test("dialing: -node-no-verify accepts a self-signed server, verification refuses it", async () => {
  await withPki(async (pki) => {
    const self = await pki.selfSigned("self");
    const client = await pki.issue("client");
    const srv = echoServer(tlsConfig(self, undefined));
    const logs: string[] = [];
    const log = (line: string) => logs.push(line);
    try {
      const strict = tlsConnect(tlsConfig(client, pki.caCert), { log });
      await assert.rejects(
        () => roundTrip(srv.mux.address, strict),
        /TLS handshake with 127\.0\.0\.1:\d+ failed: .*self[- ]signed.*not signed by -node-ca-cert/,
      );
      await assert.rejects(() => roundTrip(srv.mux.address, strict), /self[- ]signed/);
      assert.equal(logs.length, 1, `logged once per peer: ${logs.join("\n")}`);
      const lax = tlsConnect(tlsConfig(client, pki.caCert, { noVerify: true }), { log });
      assert.equal(await roundTrip(srv.mux.address, lax), "echo:hi");
    } finally {
      await srv.close();
    }
  });
});

Deno.test("dialing: -node-verify-server-name checks the fixed name, not the dialled host", async () => {
  await withPki(async (pki) => {
    const named = await pki.issue("named", { san: ["DNS:raft.internal"] });
    const client = await pki.issue("client");
    const srv = echoServer(tlsConfig(named, pki.caCert));
    const log = () => {};
    try {
      const byHost = tlsConnect(tlsConfig(client, pki.caCert), { log });
      await assert.rejects(
        () => roundTrip(srv.mux.address, byHost),
        /failed: .*127\.0\.0\.1.*use -node-verify-server-name/,
      );
      const byName = tlsConnect(
        tlsConfig(client, pki.caCert, { serverName: "raft.internal" }),
        { log },
      );
      assert.equal(await roundTrip(srv.mux.address, byName), "echo:hi");
      const wrongName = tlsConnect(
        tlsConfig(client, pki.caCert, { serverName: "other.internal" }),
        { log },
      );
      await assert.rejects(
        () => roundTrip(srv.mux.address, wrongName),
        /other\.internal.*check -node-verify-server-name/,
      );
    } finally {
      await srv.close();
    }
  });
});

Deno.test("dialing a plain-TCP node over TLS fails with a clear error", async () => {
  await withPki(async (pki) => {
    const client = await pki.issue("client");
    const mux = Mux.listen({ hostname: "127.0.0.1", port: 0 });
    mux.handle(SERVICE_CLUSTER, (conn) => conn.close());
    try {
      const connect = tlsConnect(tlsConfig(client, pki.caCert), { log: () => {} });
      await assert.rejects(() => roundTrip(mux.address, connect), (err: Error) => {
        assert.match(err.message, /TLS handshake with 127\.0\.0\.1:\d+ failed/);
        return true;
      });
    } finally {
      await mux.close();
    }
  });
});

function heartbeat(from: string, to: string, term: number): Message {
  return {
    kind: "heartbeat",
    from,
    to,
    term,
    index: 0,
    logTerm: 0,
    entries: [],
    commit: 0,
    reject: false,
    rejectHint: 0,
    context: "",
  };
}

Deno.test("Raft traffic: a node without an acceptable certificate delivers nothing", async () => {
  await withPki(async (pki) => {
    const nodeA = await pki.issue("a");
    const nodeB = await pki.issue("b");
    const rogue = await pki.selfSigned("rogue", { cn: "a" });
    const book = new Map<string, string>();
    const logs: string[] = [];
    const listen = tlsListen(tlsConfig(nodeA, pki.caCert, { verifyClient: true }), {
      log: (l) => logs.push(l),
    });
    const muxA = Mux.listen({ hostname: "127.0.0.1", port: 0, listen });
    book.set("a", muxA.address);
    const a = new TcpTransport({ self: "a", resolve: (id) => book.get(id), mux: muxA });
    const got: Message[] = [];
    a.listen({ onMessage: (m) => void got.push(m), onSnapshot: () => {} });
    const sender = (id: string, files: CertFiles) => {
      const mux = Mux.listen({ hostname: "127.0.0.1", port: 0 });
      const connect = tlsConnect(tlsConfig(files, pki.caCert), { log: () => {} });
      const t = new TcpTransport({
        self: id,
        resolve: (x) => book.get(x),
        mux,
        connect,
        backoff: { initialMs: 10, maxMs: 50 },
      });
      return { t, stop: async () => (await t.shutdown(), await mux.close()) };
    };
    const bad = sender("r", rogue);
    const good = sender("b", nodeB);
    try {
      for (let i = 0; i < 20; i++) bad.t.send(heartbeat("r", "a", 7));
      await waitFor(() => logs.length > 0, 5_000, "the refusal is logged");
      await delay(300);
      assert.equal(got.length, 0, "nothing from the rogue node arrived");
      good.t.send(heartbeat("b", "a", 8));
      await waitFor(() => got.length === 1, 5_000, "the good node's message arrives");
      assert.equal(got[0]!.from, "b");
      assert.equal(got[0]!.term, 8);
    } finally {
      await bad.stop();
      await good.stop();
      await a.shutdown();
      await muxA.close();
    }
  });
});
