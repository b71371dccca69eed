/** lib/server/discovery.ts: -disco-mode dns/dns-srv settings, lookups and the RQLITE_DISCO_DNS_HOSTS override. */

import assert from "node:assert/strict";
import { FlagError, parseFlags } from "../../lib/config/flags.ts";
import { configFromFlags } from "../../lib/server/config.ts";
import {
  discoverAddresses,
  discoveryFromFlags,
  type DnsResolver,
  waitForAddresses,
} from "../../lib/server/discovery.ts";
import { startDnsServer } from "../util/dns_server.ts";

const noEnv = () => undefined;

Deno.test("discovery settings: JSON or a file, defaults, and clear errors", async () => {
  assert.equal(discoveryFromFlags("", ""), undefined);
  assert.deepEqual(discoveryFromFlags("dns", '{"name":"db.example"}'), {
    mode: "dns",
    name: "db.example",
    port: 4002,
  });
  assert.deepEqual(discoveryFromFlags("dns-srv", '{"name":"example","service":"raft"}'), {
    mode: "dns-srv",
    name: "example",
    service: "raft",
  });
  const file = await Deno.makeTempFile({ suffix: ".json" });
  try {
    await Deno.writeTextFile(file, '{"name":"f.example","port":5002}');
    assert.deepEqual(discoveryFromFlags("dns", file), {
      mode: "dns",
      name: "f.example",
      port: 5002,
    });
  } finally {
    await Deno.remove(file);
  }
  const bad: [string, string, RegExp][] = [
    ["consul-kv", "{}", /not supported: use dns or dns-srv/],
    ["dns", "", /needs -disco-config/],
    ["dns", "{nope", /cannot read it|not valid JSON/],
    ["dns", "[1]", /cannot read it|must be a JSON object/],
    ["dns", '{"port":1}', /needs "name"/],
    ["dns", '{"name":"x","port":70000}', /"port" must be a TCP port/],
    ["dns-srv", '{"name":"x","service":"_bad service"}', /"service" must be an SRV service name/],
    ["", '{"name":"x"}', /needs -disco-mode/],
  ];
  for (const [mode, config, message] of bad) {
    assert.throws(() => discoveryFromFlags(mode, config), (e: unknown) => {
      assert.ok(e instanceof FlagError, String(e));
      assert.match(e.message, message, `${mode} ${config}`);
      return true;
    });
  }
});

Deno.test("discovery flags: -join conflicts, voters need -bootstrap-expect", () => {
  const cfg = (args: string[]) => () => configFromFlags(parseFlags([...args, "d"]));
  assert.throws(
    cfg(["-disco-mode", "dns", "-disco-config", '{"name":"x"}', "-join", "a:1"]),
    /cannot be used together/,
  );
  assert.throws(
    cfg(["-disco-mode", "dns", "-disco-config", '{"name":"x"}']),
    /needs -bootstrap-expect/,
  );
  const ok = configFromFlags(
    parseFlags([
      "-disco-mode",
      "dns",
      "-disco-config",
      '{"name":"x"}',
      "-bootstrap-expect",
      "3",
      "d",
    ]),
  );
  assert.deepEqual(ok.discovery, { mode: "dns", name: "x", port: 4002 });
});

const fake = (
  a: string[],
  srv: { target: string; port: number }[],
): DnsResolver & { asked: string[] } => {
  const asked: string[] = [];
  return {
    asked,
    addresses: (name) => {
      asked.push(`A ${name}`);
      return Promise.resolve(a);
    },
    srv: (name) => {
      asked.push(`SRV ${name}`);
      return Promise.resolve(srv);
    },
  };
};

Deno.test("lookups: A/AAAA records with the port, SRV targets and ports, the override wins", async () => {
  const r = fake(["10.0.0.2", "10.0.0.1", "fd00::1", "10.0.0.1"], [
    { target: "n2.example.", port: 4102 },
    { target: "n1.example.", port: 4002 },
  ]);
  const dns = { mode: "dns", name: "db.example", port: 4002 } as const;
  assert.deepEqual(await discoverAddresses(dns, noEnv, r), [
    "10.0.0.1:4002",
    "10.0.0.2:4002",
    "[fd00::1]:4002",
  ]);
  const srv = { mode: "dns-srv", name: "example", service: "rqlite-raft" } as const;
  assert.deepEqual(await discoverAddresses(srv, noEnv, r), ["n1.example:4002", "n2.example:4102"]);
  assert.deepEqual(r.asked, ["A db.example", "SRV _rqlite-raft._tcp.example"]);
  const env = (v: string) => v === "RQLITE_DISCO_DNS_HOSTS" ? "h2:5002, h1 ,h3:6002" : undefined;
  assert.deepEqual(await discoverAddresses(dns, env, r), ["h1:4002", "h2:5002", "h3:6002"]);
  assert.equal(r.asked.length, 2, "the override replaces the lookup");
});

Deno.test("waitForAddresses: polls until enough nodes are named, bounded in time", async () => {
  let calls = 0;
  const growing: DnsResolver = {
    addresses: () => Promise.resolve(["10.0.0.1", "10.0.0.2", "10.0.0.3"].slice(0, ++calls)),
    srv: () => Promise.resolve([]),
  };
  const dns = { mode: "dns", name: "x", port: 1 } as const;
  assert.equal((await waitForAddresses(dns, 3, 5_000, 10, noEnv, growing)).length, 3);
  assert.equal(calls, 3);
  const never: DnsResolver = {
    addresses: () => Promise.resolve([]),
    srv: () => Promise.resolve([]),
  };
  const t0 = performance.now();
  assert.deepEqual(await waitForAddresses(dns, 3, 100, 10, noEnv, never), []);
  assert.ok(performance.now() - t0 < 2_000);
});

Deno.test('discovery settings: "nameserver" is an IP address and port, else a clear error', () => {
  assert.deepEqual(discoveryFromFlags("dns", '{"name":"x","nameserver":"127.0.0.1:8600"}'), {
    mode: "dns",
    name: "x",
    port: 4002,
    nameServer: { ipAddr: "127.0.0.1", port: 8600 },
  });
  assert.deepEqual(
    discoveryFromFlags("dns-srv", '{"name":"x","service":"raft","nameserver":"[::1]:53"}'),
    { mode: "dns-srv", name: "x", service: "raft", nameServer: { ipAddr: "::1", port: 53 } },
  );
  for (const bad of ['"localhost:53"', '"127.0.0.1"', '"300.0.0.1:53"', '"127.0.0.1:0"', "53"]) {
    assert.throws(
      () => discoveryFromFlags("dns", `{"name":"x","nameserver":${bad}}`),
      /"nameserver" must be an IP address and port/,
      bad,
    );
  }
});

Deno.test("lookups through Deno.resolveDns against a real DNS server on 127.0.0.1", async () => {
  const server = await startDnsServer({
    a: { "db.test": ["127.0.0.3", "127.0.0.1", "127.0.0.3"] },
    aaaa: { "db.test": ["fd00::1"] },
    srv: {
      "_rqlite-raft._tcp.test": [
        { target: "n2.test.", port: 4102 },
        { target: "n1.test", port: 4002 },
      ],
    },
  });
  try {
    const nameServer = { ipAddr: "127.0.0.1", port: server.port };
    const dns = { mode: "dns", name: "db.test", port: 4002, nameServer } as const;
    assert.deepEqual(await discoverAddresses(dns, noEnv), [
      "127.0.0.1:4002",
      "127.0.0.3:4002",
      "[fd00::1]:4002",
    ]);
    const srv = { mode: "dns-srv", name: "test", service: "rqlite-raft", nameServer } as const;
    assert.deepEqual(await discoverAddresses(srv, noEnv), ["n1.test:4002", "n2.test:4102"]);
    // A name without records (NXDOMAIN) is no nodes, not an error.
    assert.deepEqual(await discoverAddresses({ ...dns, name: "none.test" }, noEnv), []);
    // The table changes: the next lookup sees it (TTL 0).
    server.setTable({ a: { "db.test": ["127.0.0.9"] } });
    assert.deepEqual(await discoverAddresses(dns, noEnv), ["127.0.0.9:4002"]);
    assert.ok(server.asked.includes("SRV _rqlite-raft._tcp.test"), server.asked.join(", "));
  } finally {
    await server.close();
  }
});
