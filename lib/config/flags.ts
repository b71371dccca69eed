/**
 * rqlited-compatible command line parsing (rqlite-api.md §8).
 *
 * Go's `flag` syntax: `-name value`, `-name=value`, `--name`; booleans take
 * no value or `-name=true|false`; flags precede the data directory, which
 * comes last. Every rqlited flag is known here: the ones raftlite
 * implements are parsed into {@link Config}; the others are refused with
 * `flag -x is not supported yet` when given, so nothing is silently ignored.
 *
 * @module
 */

import { nsToMs, parseGoDuration } from "../sql/duration.ts";

/** Kinds of flag values. */
type FlagKind = "bool" | "string" | "int" | "duration";

interface FlagSpec {
  readonly kind: FlagKind;
  readonly default: string;
  /** False: known rqlited flag that raftlite refuses for now. */
  readonly supported: boolean;
  readonly help: string;
}

const S = true;
const N = false;

/** Every rqlited flag (plus raftlite's `-on-disk`), with defaults as rqlited's. */
export const FLAGS: Readonly<Record<string, FlagSpec>> = {
  "version": {
    kind: "bool",
    default: "false",
    supported: S,
    help: "Show version information and exit",
  },
  "extensions-path": {
    kind: "string",
    default: "",
    supported: N,
    help: "SQLite extensions to load",
  },
  "cdc-config": { kind: "string", default: "", supported: N, help: "Change-data-capture config" },
  "node-id": {
    kind: "string",
    default: "",
    supported: S,
    help: "Unique ID for node (default: advertised Raft address)",
  },
  "http-addr": {
    kind: "string",
    default: "localhost:4001",
    supported: S,
    help: "HTTP server bind address",
  },
  "http-adv-addr": {
    kind: "string",
    default: "",
    supported: S,
    help: "Advertised HTTP address (default: -http-addr)",
  },
  "http-allow-origin": {
    kind: "string",
    default: "",
    supported: S,
    help: "Value of Access-Control-Allow-Origin",
  },
  "http-ca-cert": {
    kind: "string",
    default: "",
    supported: S,
    help: "PEM CA that signs client certificates and other nodes' HTTPS certificates",
  },
  "http-cert": {
    kind: "string",
    default: "",
    supported: S,
    help: "PEM certificate: serve HTTPS (with -http-key)",
  },
  "http-key": { kind: "string", default: "", supported: S, help: "PEM private key of -http-cert" },
  "http-verify-client": {
    kind: "bool",
    default: "false",
    supported: S,
    help: "Require HTTPS client certificates signed by -http-ca-cert",
  },
  "http-verify-common-name": {
    kind: "string",
    default: "",
    supported: S,
    help: "Required common name of HTTPS client certificates",
  },
  "auth": { kind: "string", default: "", supported: S, help: "Path to the users file" },
  "join-as": { kind: "string", default: "", supported: S, help: "User for join/notify/remove" },
  "node-ca-cert": {
    kind: "string",
    default: "",
    supported: S,
    help: "PEM CA that signs the nodes' certificates",
  },
  "node-cert": {
    kind: "string",
    default: "",
    supported: S,
    help: "PEM certificate: internode TLS (with -node-key)",
  },
  "node-key": { kind: "string", default: "", supported: S, help: "PEM private key of -node-cert" },
  "node-no-verify": {
    kind: "bool",
    default: "false",
    supported: S,
    help: "Do not verify other nodes' certificates when dialing them",
  },
  "node-verify-client": {
    kind: "bool",
    default: "false",
    supported: S,
    help: "Require client certificates from other nodes (mutual TLS)",
  },
  "node-verify-server-name": {
    kind: "string",
    default: "",
    supported: S,
    help: "Verify other nodes' certificates against this name, not the dialled host",
  },
  "node-verify-common-name": {
    kind: "string",
    default: "",
    supported: S,
    help: "Required common name of other nodes' client certificates",
  },
  "raft-addr": {
    kind: "string",
    default: "localhost:4002",
    supported: S,
    help: "Raft (internode) bind address",
  },
  "raft-adv-addr": {
    kind: "string",
    default: "",
    supported: S,
    help: "Advertised Raft address (default: -raft-addr)",
  },
  "compress-snap-transport": {
    kind: "bool",
    default: "false",
    supported: N,
    help: "Compress snapshots in transit",
  },
  "cluster-connect-timeout": {
    kind: "duration",
    default: "30s",
    supported: S,
    help: "Internode dial timeout",
  },
  "join": { kind: "string", default: "", supported: S, help: "Raft addresses of nodes to join" },
  "join-attempts": {
    kind: "int",
    default: "5",
    supported: S,
    help: "Join attempts per address pass",
  },
  "join-interval": {
    kind: "duration",
    default: "3s",
    supported: S,
    help: "Pause between join attempts",
  },
  "bootstrap-expect": {
    kind: "int",
    default: "0",
    supported: S,
    help: "Voters to wait for before bootstrapping",
  },
  "bootstrap-expect-timeout": {
    kind: "duration",
    default: "120s",
    supported: S,
    help: "Bootstrap wait bound",
  },
  "disco-mode": {
    kind: "string",
    default: "",
    supported: S,
    help: "Discovery: dns or dns-srv (consul-kv, etcd-kv not supported)",
  },
  "disco-key": { kind: "string", default: "rqlite", supported: N, help: "Discovery key prefix" },
  "disco-config": {
    kind: "string",
    default: "",
    supported: S,
    help: 'Discovery config, JSON or a file: {"name": ..., "port": ...} / {"name", "service"}',
  },
  "raft-log-level": {
    kind: "string",
    default: "WARN",
    supported: S,
    help: "Log level of the raft, cluster, transport, storage components: ERROR, WARN, INFO, DEBUG",
  },
  "raft-non-voter": {
    kind: "bool",
    default: "false",
    supported: S,
    help: "Run as a read-only node",
  },
  "raft-snap": {
    kind: "int",
    default: "8192",
    supported: S,
    help: "Log entries between snapshots",
  },
  "raft-snap-wal-size": {
    kind: "int",
    default: "4194304",
    supported: N,
    help: "WAL bytes that trigger a snapshot",
  },
  "raft-snap-int": {
    kind: "duration",
    default: "10s",
    supported: S,
    help: "Snapshot check interval",
  },
  "raft-leader-lease-timeout": {
    kind: "duration",
    default: "0s",
    supported: N,
    help: "Leader lease",
  },
  "raft-heartbeat-timeout": {
    kind: "duration",
    default: "1s",
    supported: S,
    help: "Raft heartbeat timeout",
  },
  "raft-election-timeout": {
    kind: "duration",
    default: "1s",
    supported: S,
    help: "Raft election timeout",
  },
  "raft-commit-timeout": {
    kind: "duration",
    default: "50ms",
    supported: N,
    help: "Raft commit timeout",
  },
  "raft-apply-timeout": {
    kind: "duration",
    default: "10s",
    supported: S,
    help: "Time to wait for a write to apply",
  },
  "raft-remove-shutdown": {
    kind: "bool",
    default: "false",
    supported: N,
    help: "Shut down when removed",
  },
  "raft-cluster-remove-shutdown": {
    kind: "bool",
    default: "false",
    supported: S,
    help: "Leave cluster on shutdown",
  },
  "raft-shutdown-stepdown": {
    kind: "bool",
    default: "true",
    supported: S,
    help: "Transfer leadership on shutdown",
  },
  "raft-reap-node-timeout": {
    kind: "duration",
    default: "0h",
    supported: N,
    help: "Reap unreachable voters",
  },
  "raft-reap-read-only-node-timeout": {
    kind: "duration",
    default: "0h",
    supported: N,
    help: "Reap unreachable non-voters",
  },
  "fk": {
    kind: "bool",
    default: "false",
    supported: S,
    help: "Enable SQLite foreign key constraints",
  },
  "db-max-ro-conns": {
    kind: "int",
    default: "256",
    supported: N,
    help: "Read-only connection pool size",
  },
  "auto-vacuum-int": { kind: "duration", default: "0s", supported: N, help: "Periodic VACUUM" },
  "auto-optimize-int": {
    kind: "duration",
    default: "24h",
    supported: N,
    help: "Periodic PRAGMA optimize",
  },
  "write-queue-capacity": {
    kind: "int",
    default: "1024",
    supported: S,
    help: "Queued-write capacity in requests (>= 1)",
  },
  "write-queue-batch-size": {
    kind: "int",
    default: "128",
    supported: S,
    help: "Queued requests written as one Raft entry at most (>= 1)",
  },
  "write-queue-timeout": {
    kind: "duration",
    default: "50ms",
    supported: S,
    help: "Longest a queued write waits for its batch to fill (> 0)",
  },
  "write-queue-tx": {
    kind: "bool",
    default: "false",
    supported: S,
    help: "Write each queued batch in one transaction (one error rolls the batch back)",
  },
  "auto-backup": {
    kind: "string",
    default: "",
    supported: S,
    help: "Path of the automatic backup config (JSON)",
  },
  "auto-restore": {
    kind: "string",
    default: "",
    supported: S,
    help: "Path of the automatic restore config (JSON)",
  },
  "otlp-endpoint": { kind: "string", default: "", supported: N, help: "OTLP collector" },
  "otlp-interval": { kind: "duration", default: "30s", supported: N, help: "OTLP export interval" },
  "otlp-insecure": { kind: "bool", default: "false", supported: N, help: "OTLP without TLS" },
  "otlp-no-verify": { kind: "bool", default: "false", supported: N, help: "OTLP skip verify" },
  "otlp-ca-cert": { kind: "string", default: "", supported: N, help: "OTLP CA" },
  "otlp-cert": { kind: "string", default: "", supported: N, help: "OTLP client cert" },
  "otlp-key": { kind: "string", default: "", supported: N, help: "OTLP client key" },
  "cpu-profile": { kind: "string", default: "", supported: N, help: "CPU profile path" },
  "mem-profile": { kind: "string", default: "", supported: N, help: "Memory profile path" },
  "trace-profile": { kind: "string", default: "", supported: N, help: "Trace profile path" },
  "on-disk": {
    kind: "bool",
    default: "false",
    supported: S,
    help: "Keep SQLite in <data-dir>/db.sqlite instead of memory (raftlite)",
  },
  "max-statements": {
    kind: "int",
    default: "100000",
    supported: S,
    help: "Most statements accepted in one request (raftlite)",
  },
  "log-level": {
    kind: "string",
    default: "INFO",
    supported: S,
    help:
      "Log level of all but the raft, cluster, transport, storage components: ERROR, WARN, INFO, DEBUG (raftlite)",
  },
  "max-body-bytes": {
    kind: "int",
    default: "67108864",
    supported: S,
    help: "Largest accepted HTTP request body (raftlite)",
  },
  "max-concurrent-requests": {
    kind: "int",
    default: "1024",
    supported: S,
    help: "HTTP requests handled at once; beyond, 503 with Retry-After (raftlite)",
  },
  "http-read-timeout": {
    kind: "duration",
    default: "60s",
    supported: S,
    help: "Time a client has to send a request body; beyond, 408 (raftlite)",
  },
  "raft-max-frame-bytes": {
    kind: "int",
    default: "0",
    supported: S,
    help: "Largest frame on the Raft port; 0: 80 MiB or -max-body-bytes + 1 MiB (raftlite)",
  },
  "raft-idle-timeout": {
    kind: "duration",
    default: "30s",
    supported: S,
    help: "Raft-port connections that complete no frame for this long are closed (raftlite)",
  },
  "raft-max-conns": {
    kind: "int",
    default: "512",
    supported: S,
    help: "Connections open at once on the Raft port; beyond, closed at once (raftlite)",
  },
};

/** A configuration error: printed as `fatal: <message>`, exit 1. */
export class FlagError extends Error {
  override readonly name = "FlagError";
}

/** Parsed flag values by name plus the data directory. */
export interface ParsedFlags {
  readonly values: ReadonlyMap<string, string>;
  /** Flags given explicitly on the command line. */
  readonly given: ReadonlySet<string>;
  readonly dataDir: string;
}

/** Parses argv the way Go's flag package and rqlited do. */
export function parseFlags(
  argv: readonly string[],
  env: (variable: string) => string | undefined = () => undefined,
): ParsedFlags {
  const values = new Map<string, string>();
  for (const [name, spec] of Object.entries(FLAGS)) values.set(name, spec.default);
  const given = new Set<string>();
  let i = 0;
  for (; i < argv.length; i++) {
    const arg = argv[i] ?? "";
    if (arg === "--") {
      i++;
      break;
    }
    if (!arg.startsWith("-") || arg === "-") break;
    const body = arg.replace(/^--?/, "");
    const eq = body.indexOf("=");
    const name = eq >= 0 ? body.slice(0, eq) : body;
    const spec = FLAGS[name];
    if (spec === undefined) throw new FlagError(`flag provided but not defined: -${name}`);
    let value: string;
    if (eq >= 0) value = body.slice(eq + 1);
    else if (spec.kind === "bool") value = "true";
    else {
      const next = argv[i + 1];
      if (next === undefined) throw new FlagError(`flag needs an argument: -${name}`);
      value = next;
      i++;
    }
    values.set(name, checkValue(name, spec, value));
    given.add(name);
  }
  fromEnvironment(env, values, given);
  const rest = argv.slice(i);
  const envDir = env(ENV_DATA_DIR);
  if (rest.length === 0 && envDir !== undefined && envDir !== "") rest.push(envDir);
  if (values.get("version") === "true") return { values, given, dataDir: rest[0] ?? "" };
  if (rest.length === 0) throw new FlagError("no data directory set");
  if (rest.length > 1) {
    throw new FlagError(
      `arguments after data directory (${rest.slice(1).join(" ")}) are not accepted`,
    );
  }
  for (const name of given) {
    if (FLAGS[name]?.supported === false) {
      throw new FlagError(`flag -${name} is not supported yet`);
    }
  }
  return { values, given, dataDir: rest[0] ?? "" };
}

/** Prefix of the environment variables that set flags: `-http-addr` is `RAFTLITE_HTTP_ADDR`. */
export const ENV_PREFIX = "RAFTLITE_";

/** The variable that gives the data directory when the command line has none. */
export const ENV_DATA_DIR = "RAFTLITE_DATA_DIR";

/** The environment variable of flag `name`. */
export function envVariable(name: string): string {
  return ENV_PREFIX + name.toUpperCase().replace(/-/g, "_");
}

/**
 * Flags not given on the command line take `RAFTLITE_<FLAG>` from the
 * environment (the command line wins; an empty variable counts as unset).
 * Values are checked as on the command line, and the message names the
 * variable.
 */
function fromEnvironment(
  env: (variable: string) => string | undefined,
  values: Map<string, string>,
  given: Set<string>,
): void {
  for (const [name, spec] of Object.entries(FLAGS)) {
    if (given.has(name)) continue;
    const variable = envVariable(name);
    const raw = env(variable);
    if (raw === undefined || raw === "") continue;
    try {
      values.set(name, checkValue(name, spec, raw));
    } catch (err) {
      if (err instanceof FlagError) throw new FlagError(`${variable}: ${err.message}`);
      throw err;
    }
    given.add(name);
  }
}

function checkValue(name: string, spec: FlagSpec, value: string): string {
  switch (spec.kind) {
    case "bool": {
      const v = value.toLowerCase();
      if (["1", "t", "true"].includes(v)) return "true";
      if (["0", "f", "false"].includes(v)) return "false";
      throw new FlagError(`invalid boolean value "${value}" for -${name}`);
    }
    case "int":
      if (!/^-?\d+$/.test(value)) {
        throw new FlagError(`invalid value "${value}" for -${name}: not an integer`);
      }
      return value;
    case "duration":
      if (parseDurationMs(value) === undefined) {
        throw new FlagError(
          `invalid value "${value}" for -${name}: not a duration such as 500ms or 2s`,
        );
      }
      return value;
    case "string":
      return value;
  }
}

/** Parses a Go duration (`1.5s`, `2m30s`, `0`) into milliseconds; undefined when invalid. */
export function parseDurationMs(text: string): number | undefined {
  const parsed = parseGoDuration(text);
  return parsed.ok ? nsToMs(parsed.ns) : undefined;
}

/** Usage text listing every flag. */
export function usage(): string {
  const lines = ["Usage: raftlite [flags] <data directory>", ""];
  for (const [name, spec] of Object.entries(FLAGS)) {
    const note = spec.supported ? "" : " (not supported yet)";
    const def = spec.default === "" || spec.kind === "bool" && spec.default === "false"
      ? ""
      : ` (default ${spec.default})`;
    lines.push(`  -${name}${spec.kind === "bool" ? "" : ` ${spec.kind}`}`);
    lines.push(`        ${spec.help}${def}${note}`);
  }
  return lines.join("\n");
}
