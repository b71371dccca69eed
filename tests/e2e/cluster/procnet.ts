/**
 * Which local process owns the client end of an accepted loopback TCP
 * connection (Linux only, no privileges needed for our own children).
 *
 * Why: the fault proxy (proxy.ts) must tell which node a connection comes
 * from to cut single links, although every node connects from 127.0.0.1.
 * The kernel knows: the client socket appears in /proc/net/tcp (or tcp6)
 * with local address = the accepted connection's remote address and remote
 * address = the proxy's listening address, together with its inode; the
 * process that holds that inode has a `/proc/<pid>/fd/N -> socket:[inode]`
 * link.
 *
 * @module
 */

/** A TCP endpoint as Deno reports it. */
export interface Endpoint {
  hostname: string;
  port: number;
}

/**
 * Finds the inode of the socket whose local end is `local` and remote end is
 * `remote` (an established connection), or undefined.
 */
export async function socketInode(local: Endpoint, remote: Endpoint): Promise<string | undefined> {
  const want = `:${hex4(local.port)} `;
  const wantRemote = `:${hex4(remote.port)} `;
  for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text: string;
    try {
      text = await Deno.readTextFile(file);
    } catch {
      continue;
    }
    for (const line of text.split("\n")) {
      // "  sl  local_address rem_address   st ... uid  timeout inode"
      const f = line.trim().split(/\s+/);
      if (f.length < 10) continue;
      const [, localField, remoteField, state, , , , , , inode] = f;
      if (localField === undefined || remoteField === undefined || inode === undefined) continue;
      if (!(localField + " ").endsWith(want) || !(remoteField + " ").endsWith(wantRemote)) continue;
      if (state !== "01") continue; // ESTABLISHED
      if (!sameHost(localField, local.hostname) || !sameHost(remoteField, remote.hostname)) {
        continue;
      }
      if (inode !== "0") return inode;
    }
  }
  return undefined;
}

/** True when process `pid` holds an fd on socket `inode`. */
export async function pidHoldsSocket(pid: number, inode: string): Promise<boolean> {
  const target = `socket:[${inode}]`;
  try {
    for await (const entry of Deno.readDir(`/proc/${pid}/fd`)) {
      try {
        if ((await Deno.readLink(`/proc/${pid}/fd/${entry.name}`)) === target) return true;
      } catch {
        // fd closed meanwhile
      }
    }
  } catch {
    // process gone
  }
  return false;
}

/**
 * Returns which of `candidates` (name -> pid) owns the client end of a
 * connection accepted by a listener at `server` from `client`, or undefined
 * when none does (an outsider, or not Linux).
 */
export async function connectionOwner(
  client: Endpoint,
  server: Endpoint,
  candidates: ReadonlyMap<string, number>,
): Promise<string | undefined> {
  // The client socket may be listed a moment after accept() returns on a busy machine.
  for (let attempt = 0; attempt < 3; attempt++) {
    const inode = await socketInode(client, server);
    if (inode !== undefined) {
      for (const [name, pid] of candidates) {
        if (await pidHoldsSocket(pid, inode)) return name;
      }
      return undefined;
    }
    await new Promise((r) => setTimeout(r, 5));
  }
  return undefined;
}

function hex4(port: number): string {
  return port.toString(16).toUpperCase().padStart(4, "0");
}

/** Compares the address part of a /proc/net/tcp field with a dotted IPv4 or IPv6 text. */
function sameHost(field: string, hostname: string): boolean {
  const addr = field.slice(0, field.indexOf(":"));
  const v4 = /^(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(hostname);
  if (v4 !== null) {
    // IPv4 is printed as one little-endian 32-bit word; an IPv4-mapped IPv6 address ends with it.
    const word = [4, 3, 2, 1].map((i) => Number(v4[i]).toString(16).toUpperCase().padStart(2, "0"))
      .join("");
    return addr === word || addr.endsWith(word);
  }
  return true; // IPv6 peers: the ports and the state already pin the socket down.
}

/**
 * Inodes of established TCP sockets whose remote end is `hostname:port`
 * (e.g. every client connection to a node's bound Raft port).
 */
export async function socketsTo(remote: Endpoint): Promise<string[]> {
  const want = `:${hex4(remote.port)}`;
  const inodes: string[] = [];
  for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text: string;
    try {
      text = await Deno.readTextFile(file);
    } catch {
      continue;
    }
    for (const line of text.split("\n")) {
      const f = line.trim().split(/\s+/);
      const [, , remoteField, state, , , , , , inode] = f;
      if (remoteField === undefined || inode === undefined || state !== "01") continue;
      if (!remoteField.endsWith(want) || !sameHost(remoteField, remote.hostname)) continue;
      if (inode !== "0") inodes.push(inode);
    }
  }
  return inodes;
}
