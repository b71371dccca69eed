import assert from "node:assert/strict";
import type { HostAddr, ShellOptions } from "../../lib/shell/args.ts";
import { CancelledError, Connection, MAX_REDIRECTS } from "../../lib/shell/connection.ts";
import { freePort } from "../util/node.ts";

/** A Deno.serve on 127.0.0.1:0 for one test; `stop()` shuts it down. */
function serve(handler: (req: Request) => Response | Promise<Response>) {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, handler);
  const host: HostAddr = { scheme: "http", host: "127.0.0.1", port: server.addr.port };
  return { host, stop: () => server.shutdown() };
}

function options(hosts: HostAddr[], extra: Partial<ShellOptions> = {}): ShellOptions {
  return { hosts, prefix: "", insecure: false, httpTimeoutMs: 5_000, ...extra };
}

Deno.test("failover: an unreachable first host is skipped and the live one becomes current", async () => {
  const live = serve(() => new Response("ok", { headers: { "X-RQLITE-VERSION": "v9" } }));
  const dead: HostAddr = { scheme: "http", host: "127.0.0.1", port: freePort() };
  const moves: string[] = [];
  const conn = new Connection(
    options([dead, live.host]),
    undefined,
    (from, to, reason) => moves.push(`${from.port}->${to.port}: ${reason}`),
  );
  try {
    const r = await conn.fetchText("/status");
    assert.equal(r.text, "ok");
    assert.equal(conn.host, conn.options.hosts[1]);
    assert.equal(moves.length, 1);
    assert.match(moves[0]!, new RegExp(`^${dead.port}->${live.host.port}: .*[Cc]onnect`));
    // The next request goes straight to the current host: no second failover.
    await conn.fetchText("/status");
    assert.equal(moves.length, 1);
  } finally {
    await live.stop();
  }
});

Deno.test("failover: every host down is one error naming each of them", async () => {
  const a: HostAddr = { scheme: "http", host: "127.0.0.1", port: freePort() };
  const b: HostAddr = { scheme: "http", host: "127.0.0.1", port: freePort() };
  const conn = new Connection(options([a, b]));
  await assert.rejects(
    conn.fetchText("/status"),
    new RegExp(
      `could not reach any node: 127\\.0\\.0\\.1:${a.port}: .*; 127\\.0\\.0\\.1:${b.port}: `,
    ),
  );
  const single = new Connection(options([a]));
  await assert.rejects(single.fetchText("/status"), /could not reach the node: .*-a host:port/);
});

Deno.test("redirects are followed (with the body rebuilt), and stop after 21 hops", async () => {
  const bodies: string[] = [];
  const target = serve(async (req) => {
    bodies.push(await req.text());
    return new Response(`at ${new URL(req.url).pathname}${new URL(req.url).search}`);
  });
  let hops = 0;
  const redirecting = serve((req) => {
    const url = new URL(req.url);
    if (url.pathname === "/loop") {
      hops++;
      return new Response(null, { status: 301, headers: { Location: "/loop" } });
    }
    return new Response(null, {
      status: 301,
      headers: { Location: `http://127.0.0.1:${target.host.port}${url.pathname}${url.search}` },
    });
  });
  const conn = new Connection(options([redirecting.host]));
  try {
    const r = await conn.fetchText("/db/execute?redirect", {
      method: "POST",
      body: () => '["SELECT 1"]',
    });
    assert.equal(r.text, "at /db/execute?redirect");
    assert.deepEqual(bodies, ['["SELECT 1"]']);
    await assert.rejects(conn.fetchText("/loop"), /stopped after 21 redirects/);
    assert.equal(hops, MAX_REDIRECTS + 1);
  } finally {
    await target.stop();
    await redirecting.stop();
  }
});

Deno.test("-u sends Basic auth, -P prefixes every path", async () => {
  let seen = "";
  const s = serve((req) => {
    seen = `${req.headers.get("authorization")} ${new URL(req.url).pathname}`;
    return new Response("{}");
  });
  const conn = new Connection(
    options([s.host], { user: { username: "bob", password: "p:w" }, prefix: "/rq" }),
  );
  try {
    await conn.fetchText("/status");
    assert.equal(seen, `Basic ${btoa("bob:p:w")} /rq/status`);
  } finally {
    await s.stop();
  }
});

Deno.test("-t bounds the wait for headers; an abort is a CancelledError", async () => {
  const s = serve(async () => {
    await new Promise((r) => setTimeout(r, 400));
    return new Response("late");
  });
  try {
    const slow = new Connection(options([s.host], { httpTimeoutMs: 100 }));
    await assert.rejects(
      slow.fetchText("/x"),
      /no response from 127\.0\.0\.1:\d+ within 0\.1s.*-t/,
    );
    const conn = new Connection(options([s.host]));
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 50);
    await assert.rejects(conn.fetchText("/x", { signal: ac.signal }), CancelledError);
  } finally {
    await s.stop();
  }
});

Deno.test("JSON bodies keep integers beyond 2^53 exact", async () => {
  const s = serve(() => new Response('{"values":[[9223372036854775807]]}'));
  try {
    const r = await new Connection(options([s.host])).fetchText("/db/query");
    assert.deepEqual(r.json, { values: [[9223372036854775807n]] });
  } finally {
    await s.stop();
  }
});
