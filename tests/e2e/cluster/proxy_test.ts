/**
 * The fault proxy and the link-level partitions of proxy.ts, checked with
 * plain TCP echo servers and small child processes standing in for nodes
 * (so the /proc-based identification of the dialing process is exercised
 * for real). Runs without clustering.
 */

import assert from "node:assert/strict";
import { FaultProxy, Network, splitHostPort } from "./proxy.ts";

/** An echo server on a free port; `close()` closes it and every connection. */
function echoServer(): { addr: string; close(): Promise<void> } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  const tasks: Promise<void>[] = [];
  const loop = (async () => {
    try {
      for await (const conn of listener) {
        conns.add(conn);
        tasks.push((async () => {
          const buf = new Uint8Array(4096);
          try {
            for (;;) {
              const n = await conn.read(buf);
              if (n === null) break;
              let off = 0;
              while (off < n) off += await conn.write(buf.subarray(off, n));
            }
          } catch {
            // closed
          } finally {
            conns.delete(conn);
            try {
              conn.close();
            } catch {
              // already closed
            }
          }
        })());
      }
    } catch {
      // listener closed
    }
  })();
  return {
    addr: `127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    close: async () => {
      listener.close();
      for (const c of conns) {
        try {
          c.close();
        } catch {
          // already closed
        }
      }
      await loop;
      await Promise.all(tasks);
    },
  };
}

type Probe = "ok" | "closed" | "timeout";

/** Connects to `addr`, sends `text`, and reports whether the echo came back within `timeoutMs`. */
async function probe(addr: string, text = "ping", timeoutMs = 400): Promise<Probe> {
  let conn: Deno.TcpConn;
  try {
    conn = await Deno.connect(splitHostPort(addr));
  } catch {
    return "closed";
  }
  try {
    return await echoOn(conn, text, timeoutMs);
  } finally {
    try {
      conn.close();
    } catch {
      // closed
    }
  }
}

/** Sends `text` on an open connection and waits for its echo. */
async function echoOn(conn: Deno.TcpConn, text: string, timeoutMs: number): Promise<Probe> {
  const data = new TextEncoder().encode(text);
  try {
    await conn.write(data);
  } catch {
    return "closed";
  }
  const got = new Uint8Array(data.length);
  let have = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<"timeout">((
    r,
  ) => (timer = setTimeout(() => r("timeout"), timeoutMs)));
  const read = (async (): Promise<Probe> => {
    try {
      while (have < got.length) {
        const n = await conn.read(got.subarray(have));
        if (n === null) return "closed";
        have += n;
      }
      return new TextDecoder().decode(got) === text ? "ok" : "closed";
    } catch {
      return "closed";
    }
  })();
  const result = await Promise.race([read, timeout]);
  clearTimeout(timer);
  if (result === "timeout") {
    // Unblock the pending read so no op leaks.
    try {
      conn.close();
    } catch {
      // closed
    }
    await read;
  }
  return result;
}

Deno.test("proxy: forwards both ways, passes a half-close on, counts bytes", async () => {
  const echo = echoServer();
  const proxy = FaultProxy.start({ name: "x", target: echo.addr });
  try {
    assert.equal(await probe(proxy.addr, "hello"), "ok");
    // Half-close: the echo server sees EOF after our data and closes; we still get the echo.
    const conn = await Deno.connect(splitHostPort(proxy.addr));
    await conn.write(new TextEncoder().encode("bye"));
    await conn.closeWrite();
    const buf = new Uint8Array(16);
    let text = "";
    for (;;) {
      const n = await conn.read(buf);
      if (n === null) break;
      text += new TextDecoder().decode(buf.subarray(0, n));
    }
    conn.close();
    assert.equal(text, "bye");
    assert.equal(proxy.stats.forwarded, 2);
    assert.equal(proxy.stats.bytesIn, 8);
    assert.equal(proxy.stats.bytesOut, 8);
  } finally {
    await proxy.close();
    await echo.close();
  }
});

Deno.test("proxy: block(reset) closes open connections and refuses new ones; unblock restores", async () => {
  const echo = echoServer();
  const proxy = FaultProxy.start({ name: "x", target: echo.addr });
  try {
    const open = await Deno.connect(splitHostPort(proxy.addr));
    assert.equal(await echoOn(open, "a", 1000), "ok");
    proxy.block("reset");
    assert.equal(await echoOn(open, "b", 1000), "closed");
    open.close();
    assert.equal(await probe(proxy.addr), "closed");
    proxy.unblock();
    assert.equal(await probe(proxy.addr), "ok");
    // Closed connections are forgotten (their tear-down is asynchronous).
    for (let i = 0; i < 100 && proxy.openConnections > 0; i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.equal(proxy.openConnections, 0);
  } finally {
    await proxy.close();
    await echo.close();
  }
});

Deno.test("proxy: block(stall) freezes open and new connections; at unblock they are closed", async () => {
  const echo = echoServer();
  const proxy = FaultProxy.start({ name: "x", target: echo.addr });
  try {
    const open = await Deno.connect(splitHostPort(proxy.addr));
    assert.equal(await echoOn(open, "a", 1000), "ok");
    proxy.block("stall");
    const frozen = echoOn(open, "b", 5_000);
    // A new connection is accepted but nothing flows.
    assert.equal(await probe(proxy.addr, "c", 300), "timeout");
    await new Promise((r) => setTimeout(r, 200));
    proxy.unblock();
    // The frozen connection is closed at heal, never resumed.
    assert.equal(await frozen, "closed");
    open.close();
    assert.equal(await probe(proxy.addr), "ok");
  } finally {
    await proxy.close();
    await echo.close();
  }
});

Deno.test("proxy: a dead target closes the dialer's connection", async () => {
  const echo = echoServer();
  const proxy = FaultProxy.start({ name: "x", target: echo.addr });
  try {
    await echo.close();
    assert.equal(await probe(proxy.addr), "closed");
    assert.equal(proxy.stats.targetDown, 1);
  } finally {
    await proxy.close();
  }
});

Deno.test("proxy: setDelay adds latency to each direction, in order", async () => {
  const echo = echoServer();
  const proxy = FaultProxy.start({ name: "x", target: echo.addr });
  try {
    proxy.setDelay(60, 20);
    const conn = await Deno.connect(splitHostPort(proxy.addr));
    const t0 = performance.now();
    assert.equal(await echoOn(conn, "abc", 2000), "ok");
    const rtt = performance.now() - t0;
    assert.ok(rtt >= 115, `round trip ${rtt.toFixed(0)} ms should include 2 x 60 ms`);
    // Many small writes keep their order.
    const parts = Array.from({ length: 50 }, (_, i) => `<${i}>`);
    for (const p of parts) await conn.write(new TextEncoder().encode(p));
    const want = parts.join("");
    const got = new Uint8Array(want.length);
    let have = 0;
    while (have < got.length) {
      const n = await conn.read(got.subarray(have));
      if (n === null) break;
      have += n;
    }
    assert.equal(new TextDecoder().decode(got), want);
    conn.close();
  } finally {
    await proxy.close();
    await echo.close();
  }
});

// ---------------------------------------------------------------------------
// Link-level partitions with child processes as nodes.

/**
 * A child process that, for each line "addr" on stdin, probes addr (send,
 * wait for the echo, 400 ms bound) on a fresh connection and prints the
 * outcome. It stands in for a node dialing its peers' proxies.
 */
class FakeNode {
  readonly child: Deno.ChildProcess;
  #writer: WritableStreamDefaultWriter<Uint8Array>;
  #lines: AsyncIterator<string>;
  #buffered = "";
  #reader: ReadableStreamDefaultReader<Uint8Array>;

  constructor() {
    const script = `
      const dec = new TextDecoder();
      let pending = "";
      for await (const chunk of Deno.stdin.readable) {
        pending += dec.decode(chunk);
        let i;
        while ((i = pending.indexOf("\\n")) >= 0) {
          const addr = pending.slice(0, i); pending = pending.slice(i + 1);
          const [h, p] = addr.split(":");
          let out = "closed";
          try {
            const c = await Deno.connect({ hostname: h, port: Number(p) });
            try {
              await c.write(new TextEncoder().encode("ping"));
              const buf = new Uint8Array(4);
              let timer;
              const r = await Promise.race([
                c.read(buf).then((n) => n === 4 ? "ok" : "closed", () => "closed"),
                new Promise((res) => timer = setTimeout(() => res("timeout"), 400)),
              ]);
              clearTimeout(timer);
              out = r;
            } finally { try { c.close(); } catch {} }
          } catch { out = "closed"; }
          console.log(out);
        }
      }`;
    this.child = new Deno.Command(Deno.execPath(), {
      args: ["eval", script],
      stdin: "piped",
      stdout: "piped",
      stderr: "null",
    }).spawn();
    this.#writer = this.child.stdin.getWriter();
    this.#reader = this.child.stdout.getReader();
    this.#lines = this.#readLines();
  }

  async *#readLines(): AsyncGenerator<string> {
    const dec = new TextDecoder();
    for (;;) {
      const i = this.#buffered.indexOf("\n");
      if (i >= 0) {
        const line = this.#buffered.slice(0, i);
        this.#buffered = this.#buffered.slice(i + 1);
        yield line;
        continue;
      }
      const { value, done } = await this.#reader.read();
      if (done) return;
      this.#buffered += dec.decode(value);
    }
  }

  async probe(addr: string): Promise<Probe> {
    await this.#writer.write(new TextEncoder().encode(addr + "\n"));
    const { value, done } = await this.#lines.next();
    if (done) throw new Error("fake node exited");
    return value as Probe;
  }

  async close(): Promise<void> {
    await this.#writer.close().catch(() => {});
    try {
      this.child.kill("SIGKILL");
    } catch {
      // gone
    }
    await this.#reader.cancel().catch(() => {});
    await this.child.status;
  }
}

Deno.test("network: per-link cuts identify the dialing process; isolate, partition, heal", async () => {
  const echoes = { a: echoServer(), b: echoServer(), c: echoServer() };
  const net = new Network();
  const nodes = { a: new FakeNode(), b: new FakeNode(), c: new FakeNode() };
  try {
    for (const [name, e] of Object.entries(echoes)) net.addNode(name, e.addr);
    for (const [name, n] of Object.entries(nodes)) net.setPid(name, n.child.pid);
    const p = (name: string) => net.proxy(name).addr;
    /** Matrix of probe outcomes "from>to". */
    const matrix = async () => {
      const out: Record<string, Probe> = {};
      for (const [from, node] of Object.entries(nodes)) {
        for (const to of ["a", "b", "c"]) {
          if (to !== from) out[`${from}>${to}`] = await node.probe(p(to));
        }
      }
      return out;
    };
    const all = (v: Probe) => ({
      "a>b": v,
      "a>c": v,
      "b>a": v,
      "b>c": v,
      "c>a": v,
      "c>b": v,
    });

    assert.deepEqual(await matrix(), all("ok"));
    assert.equal(net.proxy("b").stats.bySource["a"], 1, "P(b) identified node a");
    assert.equal(net.proxy("a").stats.bySource["?"], undefined, "no unidentified dialer");

    net.cut("a", "b", "reset");
    assert.equal(net.describe(), "a-b");
    assert.deepEqual(await matrix(), { ...all("ok"), "a>b": "closed", "b>a": "closed" });
    // An outsider (this process) still gets through a cut link's proxy.
    assert.equal(await probe(p("b")), "ok");

    net.heal();
    net.isolate("c", "stall");
    assert.deepEqual(await matrix(), {
      ...all("ok"),
      "a>c": "timeout",
      "b>c": "timeout",
      "c>a": "timeout",
      "c>b": "timeout",
    });

    net.heal();
    net.partition([["a"], ["b", "c"]], "reset");
    assert.deepEqual(await matrix(), {
      ...all("ok"),
      "a>b": "closed",
      "a>c": "closed",
      "b>a": "closed",
      "c>a": "closed",
    });

    net.heal();
    net.proxy("a").block("reset");
    const m = await matrix();
    assert.equal(m["b>a"], "closed");
    assert.equal(m["c>a"], "closed");
    assert.equal(m["a>b"], "ok");
    assert.equal(await probe(p("a")), "closed", "block() refuses outsiders too");

    net.heal();
    assert.deepEqual(await matrix(), all("ok"));
    assert.equal(net.describe(), "");
  } finally {
    await Promise.all(Object.values(nodes).map((n) => n.close()));
    await net.close();
    await Promise.all(Object.values(echoes).map((e) => e.close()));
  }
});

Deno.test("network: an open connection between two nodes freezes at a cut and closes at heal", async () => {
  const echo = echoServer();
  const net = new Network();
  // This process plays node "a" (its own pid), dialing node b's proxy.
  try {
    net.addNode("a", "127.0.0.1:1");
    net.addNode("b", echo.addr);
    net.setPid("a", Deno.pid);
    const conn = await Deno.connect(splitHostPort(net.proxy("b").addr));
    assert.equal(await echoOn(conn, "1", 1000), "ok");
    net.isolate("a", "stall");
    const frozen = echoOn(conn, "2", 5_000);
    await new Promise((r) => setTimeout(r, 300));
    net.heal();
    assert.equal(await frozen, "closed");
    conn.close();
    assert.equal(net.proxy("b").stats.bySource["a"], 1);
  } finally {
    await net.close();
    await echo.close();
  }
});
