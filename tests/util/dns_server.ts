/**
 * A small authoritative DNS server for tests: UDP on 127.0.0.1 (a port the
 * OS picks), answering A, AAAA and SRV questions from a table the test can
 * change while it runs (so a name can come to name a replacement node).
 * A name it does not know gets NXDOMAIN; a known name without records of
 * the asked type gets an empty answer. Anything that is not a well-formed
 * query of one question is ignored. TTLs are 0 so nothing is cached.
 *
 * It runs on node:dgram (Deno's UDP listener is behind --unstable-net).
 *
 * @module
 */

import { createSocket, type Socket } from "node:dgram";

/** What the server answers, by lower-case name without the trailing dot. */
export interface DnsTable {
  a?: Record<string, string[]>;
  aaaa?: Record<string, string[]>;
  srv?: Record<string, { target: string; port: number }[]>;
}

/** A running server. */
export interface DnsServer {
  readonly port: number;
  /** `127.0.0.1:<port>`, as -disco-config's "nameserver" takes it. */
  readonly address: string;
  /** Replaces the table (takes effect for the next question). */
  setTable(table: DnsTable): void;
  /** Questions answered so far, as `TYPE name`. */
  readonly asked: string[];
  close(): Promise<void>;
}

const TYPE_A = 1;
const TYPE_AAAA = 28;
const TYPE_SRV = 33;
const CLASS_IN = 1;
/** DNS over UDP without EDNS: 512 bytes per message. */
const MAX_UDP_BYTES = 512;
/** Bound on the remembered questions. */
const MAX_ASKED = 1_000;

/** Starts the server with `table`. */
export async function startDnsServer(table: DnsTable): Promise<DnsServer> {
  let current = table;
  const asked: string[] = [];
  const socket: Socket = createSocket("udp4");
  socket.on("message", (msg: Uint8Array, rinfo: { address: string; port: number }) => {
    const reply = answer(new Uint8Array(msg), current, asked);
    if (reply !== undefined) socket.send(reply, rinfo.port, rinfo.address);
  });
  await new Promise<void>((resolve, reject) => {
    socket.once("error", reject);
    socket.bind(0, "127.0.0.1", () => resolve());
  });
  const port = socket.address().port;
  return {
    port,
    address: `127.0.0.1:${port}`,
    setTable: (t) => current = t,
    asked,
    close: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  };
}

interface Question {
  id: number;
  name: string;
  type: number;
  /** The question section's bytes (echoed in the reply). */
  section: Uint8Array;
  /** Whether the client asked for recursion (echoed). */
  rd: boolean;
}

/** Parses a query of exactly one question; undefined for anything else. */
export function parseQuery(msg: Uint8Array): Question | undefined {
  if (msg.length < 12 || msg.length > MAX_UDP_BYTES) return undefined;
  const view = new DataView(msg.buffer, msg.byteOffset, msg.byteLength);
  const flags = view.getUint16(2);
  if ((flags & 0x8000) !== 0 || ((flags >> 11) & 0xf) !== 0) return undefined; // a response, or not QUERY
  if (view.getUint16(4) !== 1) return undefined;
  const labels: string[] = [];
  let at = 12;
  for (let n = 0; n < 128; n++) {
    const len = msg[at];
    if (len === undefined || len > 63) return undefined; // truncated, or a pointer
    at++;
    if (len === 0) break;
    if (at + len > msg.length) return undefined;
    labels.push(new TextDecoder().decode(msg.subarray(at, at + len)));
    at += len;
  }
  if (at + 4 > msg.length) return undefined;
  const type = view.getUint16(at);
  if (view.getUint16(at + 2) !== CLASS_IN) return undefined;
  return {
    id: view.getUint16(0),
    name: labels.join(".").toLowerCase(),
    type,
    section: msg.subarray(12, at + 4),
    rd: (flags & 0x0100) !== 0,
  };
}

function answer(msg: Uint8Array, table: DnsTable, asked: string[]): Uint8Array | undefined {
  const q = parseQuery(msg);
  if (q === undefined) return undefined;
  const typeName = q.type === TYPE_A
    ? "A"
    : q.type === TYPE_AAAA
    ? "AAAA"
    : q.type === TYPE_SRV
    ? "SRV"
    : String(q.type);
  if (asked.length < MAX_ASKED) asked.push(`${typeName} ${q.name}`);
  const known = [table.a, table.aaaa, table.srv].some((t) => t?.[q.name] !== undefined);
  const records = recordsFor(q, table);
  const header = new Uint8Array(12);
  const hv = new DataView(header.buffer);
  hv.setUint16(0, q.id);
  // QR=1, AA=1, RD echoed, RCODE 3 (NXDOMAIN) for unknown names.
  hv.setUint16(2, 0x8000 | 0x0400 | (q.rd ? 0x0100 : 0) | (known ? 0 : 3));
  hv.setUint16(4, 1);
  hv.setUint16(6, records.length);
  const parts = [header, q.section, ...records];
  const total = parts.reduce((n, p) => n + p.length, 0);
  if (total > MAX_UDP_BYTES) throw new Error(`test DNS answer for ${q.name} exceeds 512 bytes`);
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Resource records answering `q`, each naming the question by pointer (0xC00C). */
function recordsFor(q: Question, table: DnsTable): Uint8Array[] {
  if (q.type === TYPE_A) return (table.a?.[q.name] ?? []).map((ip) => rr(TYPE_A, ipv4(ip)));
  if (q.type === TYPE_AAAA) {
    return (table.aaaa?.[q.name] ?? []).map((ip) => rr(TYPE_AAAA, ipv6(ip)));
  }
  if (q.type === TYPE_SRV) {
    return (table.srv?.[q.name] ?? []).map(({ target, port }) => {
      const name = encodeName(target);
      const data = new Uint8Array(6 + name.length);
      const v = new DataView(data.buffer);
      v.setUint16(0, 10); // priority
      v.setUint16(2, 10); // weight
      v.setUint16(4, port);
      data.set(name, 6);
      return rr(TYPE_SRV, data);
    });
  }
  return [];
}

function rr(type: number, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const v = new DataView(out.buffer);
  v.setUint16(0, 0xc00c); // the question's name
  v.setUint16(2, type);
  v.setUint16(4, CLASS_IN);
  v.setUint32(6, 0); // TTL 0: never cached
  v.setUint16(10, data.length);
  out.set(data, 12);
  return out;
}

function encodeName(name: string): Uint8Array {
  const bytes: number[] = [];
  for (const label of name.replace(/\.$/, "").split(".")) {
    const l = new TextEncoder().encode(label);
    bytes.push(l.length, ...l);
  }
  bytes.push(0);
  return new Uint8Array(bytes);
}

function ipv4(ip: string): Uint8Array {
  return new Uint8Array(ip.split(".").map(Number));
}

/** `fd00::1` → 16 bytes (handles one `::`). */
function ipv6(ip: string): Uint8Array {
  const [head, tail] = ip.split("::") as [string, string | undefined];
  const h = head === "" ? [] : head.split(":");
  const t = tail === undefined || tail === "" ? [] : tail.split(":");
  const groups = [...h, ...new Array(8 - h.length - t.length).fill("0"), ...t];
  const out = new Uint8Array(16);
  groups.forEach((g, i) => new DataView(out.buffer).setUint16(i * 2, parseInt(g, 16)));
  return out;
}
