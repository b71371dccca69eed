/**
 * The shell's command line, as rqlite's `rqlite` CLI spells it
 * (rqlite-api.md §14): `-H/--host`, `-p/--port`, `-s/--scheme`,
 * `-P/--prefix`, `-a/--alternatives`, `-u/--user`, `-c/--ca-cert`,
 * `-d/--client-cert`, `-k/--client-key`, `-i/--insecure`,
 * `-t/--http-timeout`, `-v/--version`, `-h/--help`, plus the `RQLITE_HOST`
 * environment variable (`[scheme://]host[:port]`), used only when none of
 * host, port and scheme is given on the command line.
 *
 * Parsing is pure (arguments and an environment lookup in, options out) so
 * it is unit-tested without a process. Mistakes throw {@link ShellArgError}
 * with a message that names the flag and what it expects.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { nsToMs, parseGoDuration } from "../sql/duration.ts";

/** One node the shell can talk to. */
export interface HostAddr {
  readonly scheme: "http" | "https";
  /** Host name or IP address (IPv6 without brackets). */
  readonly host: string;
  readonly port: number;
}

/** Everything the command line decides. */
export interface ShellOptions {
  /** The first host, then the `-a` alternatives in order (failover order). */
  readonly hosts: readonly HostAddr[];
  /** URL path prefix in front of every API path: "" or "/something" (no trailing slash). */
  readonly prefix: string;
  /** Basic-auth credentials from `-u user:pass`. */
  readonly user?: { readonly username: string; readonly password: string };
  /** PEM file of a CA to trust for https (`-c`). */
  readonly caCert?: string;
  /** PEM files of a client certificate and its key for mutual TLS (`-d`, `-k`). */
  readonly clientCert?: string;
  readonly clientKey?: string;
  /** `-i`: do not verify the server's certificate (see insecure.ts for how). */
  readonly insecure: boolean;
  /** Bound on waiting for a response's headers (`-t`, Go duration, default 30s). */
  readonly httpTimeoutMs: number;
}

/** What the command line asks for. */
export type ShellArgs =
  | { readonly kind: "run"; readonly options: ShellOptions }
  | { readonly kind: "help" }
  | { readonly kind: "version" };

/** A command-line mistake; the message says what to write instead. */
export class ShellArgError extends Error {
  override name = "ShellArgError";
}

/** Environment lookup (Deno.env in production, a map in tests). */
export type EnvLookup = (name: string) => string | undefined;

const DEFAULT_HOST = "127.0.0.1";
const DEFAULT_PORT = 4001;
const DEFAULT_TIMEOUT = "30s";

const SPEC = {
  alternatives: { type: "string", short: "a" },
  scheme: { type: "string", short: "s" },
  host: { type: "string", short: "H" },
  port: { type: "string", short: "p" },
  prefix: { type: "string", short: "P" },
  insecure: { type: "boolean", short: "i" },
  "ca-cert": { type: "string", short: "c" },
  "client-cert": { type: "string", short: "d" },
  "client-key": { type: "string", short: "k" },
  user: { type: "string", short: "u" },
  version: { type: "boolean", short: "v" },
  "http-timeout": { type: "string", short: "t" },
  help: { type: "boolean", short: "h" },
} as const;

/** The `-h` text. */
export function shellUsage(): string {
  return [
    "Usage: raftlite shell [options]   (deno task shell [options])",
    "",
    "Options:",
    "  -h, --help                  display help information",
    "  -a, --alternatives          comma separated list of 'host:port' pairs to use as fallback",
    "  -s, --scheme[=http]         protocol scheme (http or https)",
    "  -H, --host[=127.0.0.1]      rqlite/raftlite host address",
    "  -p, --port[=4001]           rqlite/raftlite host port",
    "  -P, --prefix[=/]            rqlite/raftlite HTTP URL prefix",
    "  -i, --insecure              do not verify the server's TLS certificate",
    "  -c, --ca-cert               path to trusted X.509 root CA certificate (PEM)",
    "  -d, --client-cert           path to client X.509 certificate for mutual TLS (PEM)",
    "  -k, --client-key            path to client X.509 key for mutual TLS (PEM)",
    "  -u, --user                  set basic auth credentials in form username:password",
    "  -v, --version               display CLI version",
    "  -t, --http-timeout[=30s]    set timeout on HTTP requests (Go duration, e.g. 10s, 1m)",
    "",
    "Environment: RQLITE_HOST=[scheme://]host[:port] is used when none of -H, -p, -s is given.",
    "History: ~/.raftlite_history (RAFTLITE_HISTFILE to move it, empty to turn it off).",
  ].join("\n");
}

/** Parses the shell's arguments (everything after `shell`). Throws {@link ShellArgError}. */
export function parseShellArgs(args: readonly string[], env: EnvLookup): ShellArgs {
  let parsed;
  try {
    parsed = parseArgs({
      args: args.map(normaliseShortEquals),
      options: SPEC,
      strict: true,
      allowPositionals: false,
    });
  } catch (err) {
    throw new ShellArgError(`${(err as Error).message}; see raftlite shell --help`);
  }
  const v = parsed.values;
  if (v.help === true) return { kind: "help" };
  if (v.version === true) return { kind: "version" };
  const primary = primaryHost(v, env);
  const alternatives = (v.alternatives ?? "").split(",").map((s) => s.trim()).filter((s) =>
    s !== ""
  ).map((s) => parseHostSpec(s, primary.scheme, "-a/--alternatives"));
  const options: ShellOptions = {
    hosts: [primary, ...alternatives],
    prefix: normalisePrefix(v.prefix ?? "/"),
    insecure: v.insecure === true,
    httpTimeoutMs: parseTimeout(v["http-timeout"] ?? DEFAULT_TIMEOUT),
    ...(v.user === undefined ? {} : { user: parseUser(v.user) }),
    ...(v["ca-cert"] === undefined ? {} : { caCert: v["ca-cert"] }),
    ...(v["client-cert"] === undefined ? {} : { clientCert: v["client-cert"] }),
    ...(v["client-key"] === undefined ? {} : { clientKey: v["client-key"] }),
  };
  if ((options.clientCert === undefined) !== (options.clientKey === undefined)) {
    throw new ShellArgError("-d/--client-cert and -k/--client-key must be given together");
  }
  return { kind: "run", options };
}

/**
 * mkideal/cli accepts `-p=4001`; node's parseArgs would read the value as
 * "=4001". Rewrite `-x=value` to `-x value` form (`-xvalue` is native).
 */
function normaliseShortEquals(arg: string): string {
  return /^-[a-zA-Z]=/.test(arg) ? arg.slice(0, 2) + arg.slice(3) : arg;
}

function primaryHost(
  v: { host?: string; port?: string; scheme?: string },
  env: EnvLookup,
): HostAddr {
  const fromEnv = env("RQLITE_HOST");
  if (v.host === undefined && v.port === undefined && v.scheme === undefined && fromEnv) {
    return parseHostSpec(fromEnv, "http", "RQLITE_HOST");
  }
  const scheme = parseScheme(v.scheme ?? "http", "-s/--scheme");
  const host = stripBrackets(v.host ?? DEFAULT_HOST);
  if (host === "") throw new ShellArgError("-H/--host must not be empty");
  return { scheme, host, port: v.port === undefined ? DEFAULT_PORT : parsePort(v.port, "-p") };
}

/**
 * `[scheme://]host[:port]` (IPv6 as `[::1]:4001`). `where` names the flag
 * or variable in errors.
 */
export function parseHostSpec(
  spec: string,
  defaultScheme: "http" | "https",
  where: string,
): HostAddr {
  let rest = spec.trim();
  let scheme = defaultScheme;
  const sep = rest.indexOf("://");
  if (sep >= 0) {
    scheme = parseScheme(rest.slice(0, sep), where);
    rest = rest.slice(sep + 3);
  }
  rest = rest.replace(/\/+$/, "");
  let host = rest;
  let port = DEFAULT_PORT;
  const bracket = /^\[([^\]]+)\](?::(.*))?$/.exec(rest);
  if (bracket) {
    host = bracket[1]!;
    if (bracket[2] !== undefined) port = parsePort(bracket[2], where);
  } else if (rest.split(":").length === 2) {
    const [h, p] = rest.split(":") as [string, string];
    host = h;
    port = parsePort(p, where);
  }
  if (host === "" || /[\s/]/.test(host)) {
    throw new ShellArgError(`${where}: "${spec}" is not [scheme://]host[:port]`);
  }
  return { scheme, host, port };
}

function parseScheme(s: string, where: string): "http" | "https" {
  const lower = s.toLowerCase();
  if (lower === "http" || lower === "https") return lower;
  throw new ShellArgError(`${where}: scheme must be http or https, not "${s}"`);
}

function parsePort(s: string, where: string): number {
  const n = Number(s);
  if (!/^\d+$/.test(s) || n < 1 || n > 65535) {
    throw new ShellArgError(`${where}: port must be a number from 1 to 65535, not "${s}"`);
  }
  return n;
}

function stripBrackets(host: string): string {
  return host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
}

function normalisePrefix(p: string): string {
  const trimmed = p.trim().replace(/^\/+|\/+$/g, "");
  return trimmed === "" ? "" : `/${trimmed}`;
}

function parseUser(s: string): { username: string; password: string } {
  const i = s.indexOf(":");
  if (i <= 0) throw new ShellArgError(`-u/--user expects username:password, not "${s}"`);
  return { username: s.slice(0, i), password: s.slice(i + 1) };
}

function parseTimeout(s: string): number {
  const d = parseGoDuration(s);
  if (!d.ok) throw new ShellArgError(`-t/--http-timeout: ${d.error} (write e.g. 10s or 1m30s)`);
  const ms = nsToMs(d.ns);
  if (ms <= 0) throw new ShellArgError(`-t/--http-timeout must be positive, not "${s}"`);
  return ms;
}

/** `host:port` as the prompt and messages show it (IPv6 in brackets), like rqlite's address6. */
export function hostPort(h: HostAddr): string {
  return h.host.includes(":") ? `[${h.host}]:${h.port}` : `${h.host}:${h.port}`;
}

/** `scheme://host:port` */
export function baseUrl(h: HostAddr): string {
  return `${h.scheme}://${hostPort(h)}`;
}
