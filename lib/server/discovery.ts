/**
 * DNS discovery (`-disco-mode dns|dns-srv`, rqlite-api.md §8): the Raft
 * addresses of the nodes come from DNS instead of `-join`.
 *
 * - `dns`: `-disco-config '{"name": "rqlite.example", "port": 4002}'` — every
 *   A (and AAAA) record of `name`, each with `port` (default 4002).
 * - `dns-srv`: `-disco-config '{"name": "example", "service": "rqlite-raft"}'`
 *   — the SRV records of `_<service>._tcp.<name>`, each its target and port.
 * - `RQLITE_DISCO_DNS_HOSTS=host:port,...` replaces the lookup (rqlite's test
 *   harness sets it), in either mode.
 * - `"nameserver": "127.0.0.1:8600"` (raftlite's addition, either mode): ask
 *   that DNS server instead of the system's, e.g. Consul's DNS interface or
 *   a resolver local to the VM. An IP address with a port (`[::1]:53`).
 *
 * `-disco-config` is a JSON string or the path of a file holding one. The
 * addresses found then serve as the `-join` list: with `-bootstrap-expect N`
 * the node waits until DNS names at least N nodes (bounded by
 * `-bootstrap-expect-timeout`), then bootstraps with them as with `-join`; a
 * new node whose peers already form a cluster joins it instead.
 *
 * @module
 */

import { FlagError } from "../config/flags.ts";

/** A DNS server to ask instead of the system's resolver. */
export interface NameServer {
  readonly ipAddr: string;
  readonly port: number;
}

/** Parsed discovery settings. */
export type DiscoveryConfig =
  & (
    | { readonly mode: "dns"; readonly name: string; readonly port: number }
    | { readonly mode: "dns-srv"; readonly name: string; readonly service: string }
  )
  & { readonly nameServer?: NameServer };

/** The variable that replaces DNS lookups with a fixed `host:port,...` list. */
export const DNS_HOSTS_ENV = "RQLITE_DISCO_DNS_HOSTS";

/**
 * Parses `-disco-mode` / `-disco-config` (JSON text, or a file path whose
 * contents are JSON). Throws FlagError with what to fix.
 */
export function discoveryFromFlags(mode: string, config: string): DiscoveryConfig | undefined {
  if (mode === "") {
    if (config !== "") throw new FlagError("-disco-config needs -disco-mode dns or dns-srv");
    return undefined;
  }
  if (mode !== "dns" && mode !== "dns-srv") {
    throw new FlagError(`-disco-mode ${mode} is not supported: use dns or dns-srv`);
  }
  const raw = readConfig(config);
  const nameServer = raw.nameserver === undefined
    ? {}
    : { nameServer: parseNameServer(raw.nameserver) };
  const name = raw.name;
  if (typeof name !== "string" || name === "") {
    throw new FlagError(`-disco-config for ${mode} needs "name" (a DNS name)`);
  }
  if (mode === "dns") {
    const port = raw.port ?? 4002;
    if (!Number.isInteger(port) || (port as number) < 1 || (port as number) > 65535) {
      throw new FlagError(`-disco-config "port" must be a TCP port, got ${JSON.stringify(port)}`);
    }
    return { mode, name, port: port as number, ...nameServer };
  }
  const service = raw.service ?? "rqlite-raft";
  if (typeof service !== "string" || !/^[A-Za-z0-9-]+$/.test(service)) {
    throw new FlagError(`-disco-config "service" must be an SRV service name such as rqlite-raft`);
  }
  return { mode, name, service, ...nameServer };
}

/** `"1.2.3.4:53"` or `"[::1]:53"` → the server; throws FlagError naming the field otherwise. */
function parseNameServer(value: unknown): NameServer {
  const text = typeof value === "string" ? value : "";
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|(\d{1,3}(?:\.\d{1,3}){3})):(\d{1,5})$/.exec(text);
  const port = Number(m?.[3]);
  const ipAddr = m?.[1] ?? m?.[2];
  const v4ok = m?.[2] === undefined || m[2].split(".").every((o) => Number(o) <= 255);
  if (ipAddr === undefined || !v4ok || !(port >= 1 && port <= 65535)) {
    throw new FlagError(
      `-disco-config "nameserver" must be an IP address and port such as "127.0.0.1:8600" ` +
        `or "[::1]:53", got ${JSON.stringify(value)}`,
    );
  }
  return { ipAddr, port };
}

function readConfig(config: string): Record<string, unknown> {
  if (config === "") throw new FlagError("-disco-mode dns/dns-srv needs -disco-config");
  let text = config;
  if (!config.trimStart().startsWith("{")) {
    try {
      text = Deno.readTextFileSync(config);
    } catch (err) {
      throw new FlagError(`-disco-config ${config}: cannot read it: ${(err as Error).message}`);
    }
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new FlagError(`-disco-config is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new FlagError("-disco-config must be a JSON object");
  }
  return value as Record<string, unknown>;
}

/** Looks names up (Deno.resolveDns by default; tests pass their own). */
export interface DnsResolver {
  addresses(name: string): Promise<string[]>;
  srv(name: string): Promise<{ target: string; port: number }[]>;
}

/** Bound on one DNS question (the caller polls again). */
const LOOKUP_TIMEOUT_MS = 5_000;

/**
 * Deno.resolveDns, through the system's resolver or `nameServer`; a name
 * without records yields none.
 */
export function dnsResolver(nameServer?: NameServer): DnsResolver {
  const options = () => ({
    ...(nameServer === undefined ? {} : { nameServer }),
    signal: AbortSignal.timeout(LOOKUP_TIMEOUT_MS),
  });
  return {
    async addresses(name) {
      const found: string[] = [];
      for (const type of ["A", "AAAA"] as const) {
        try {
          found.push(...await Deno.resolveDns(name, type, options()));
        } catch {
          // no records of this type (or not resolvable yet): the caller retries
        }
      }
      return found;
    },
    async srv(name) {
      try {
        return (await Deno.resolveDns(name, "SRV", options())).map((r) => ({
          target: r.target,
          port: r.port,
        }));
      } catch {
        return [];
      }
    },
  };
}

/** The Raft addresses DNS names now, sorted and without duplicates. */
export async function discoverAddresses(
  disco: DiscoveryConfig,
  env: (variable: string) => string | undefined,
  resolver: DnsResolver = dnsResolver(disco.nameServer),
): Promise<string[]> {
  const fixed = env(DNS_HOSTS_ENV);
  let found: string[];
  if (fixed !== undefined && fixed.trim() !== "") {
    found = fixed.split(",").map((h) => h.trim()).filter((h) => h !== "").map((h) =>
      disco.mode === "dns" && !/:\d+$/.test(h) ? `${h}:${disco.port}` : h
    );
  } else if (disco.mode === "dns") {
    found = (await resolver.addresses(disco.name)).map((ip) =>
      ip.includes(":") ? `[${ip}]:${disco.port}` : `${ip}:${disco.port}`
    );
  } else {
    const records = await resolver.srv(`_${disco.service}._tcp.${disco.name}`);
    found = records.map((r) => `${r.target.replace(/\.$/, "")}:${r.port}`);
  }
  return [...new Set(found)].sort();
}

/**
 * Polls DNS until it names at least `expect` nodes or `timeoutMs` passes;
 * returns what it found last (the caller decides what too few means).
 */
export async function waitForAddresses(
  disco: DiscoveryConfig,
  expect: number,
  timeoutMs: number,
  intervalMs: number,
  env: (variable: string) => string | undefined,
  resolver: DnsResolver = dnsResolver(disco.nameServer),
): Promise<string[]> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const found = await discoverAddresses(disco, env, resolver);
    if (found.length >= Math.max(1, expect) || performance.now() >= deadline) return found;
    await new Promise((r) => setTimeout(r, Math.max(10, intervalMs)));
  }
}
