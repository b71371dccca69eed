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
