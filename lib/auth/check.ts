/**
 * Who may do what: rqlite's permission rule (rqlite-api.md §10) over a
 * parsed users file.
 *
 * A request may use permission P when the user `*` has P or `all`; else it
 * needs Basic credentials whose username is not empty, whose password
 * matches, and whose user has P or `all`. A request needing several
 * permissions (e.g. /db/request: query and execute) needs each.
 *
 * Passwords: plaintext ones are compared as SHA-256 digests with
 * `timingSafeEqual`, so the time taken says nothing about how much of a
 * guess was right or how long the password is; an unknown user costs the
 * same comparison. Bcrypt hashes (`$2a$`/`$2b$`/`$2y$`, raftlite's
 * addition: rqlite keeps plaintext) are checked with bcryptjs. A bcrypt
 * check costs tens of milliseconds by design, so a successful one is
 * remembered for a minute under a SHA-256 of user and password (bounded
 * number of entries, oldest dropped first); failures are never cached, so a
 * guess always pays the full cost. Concurrent checks of the same
 * credentials (a client opening many connections at once) share one bcrypt
 * run; such runs exist only while requests wait on them, so they are
 * bounded by the requests in flight. When the file holds bcrypt hashes, an
 * unknown username is checked against the costliest of them and refused,
 * so the time taken does not tell which usernames exist.
 *
 * @module
 */

import { createHash, timingSafeEqual } from "node:crypto";
import bcrypt from "npm:bcryptjs@3.0.3";
import { EVERYONE, isBcryptHash, type Permission, type UserEntry } from "./users.ts";

/** A username and password as sent with HTTP Basic auth or on the cluster service. */
export interface Credentials {
  readonly username: string;
  readonly password: string;
}

/** Options of {@link Authenticator}. */
export interface AuthenticatorOptions {
  /** How long a successful bcrypt check is remembered (default 60 s; 0 = never). */
  readonly bcryptCacheTtlMs?: number;
  /** Successful bcrypt checks remembered at most (default 1024). */
  readonly bcryptCacheMax?: number;
  /** Clock for the cache (default performance.now). */
  readonly nowMs?: () => number;
}

function sha256(text: string): Uint8Array {
  return createHash("sha256").update(text).digest();
}

/** Compares two strings in time independent of where they differ and of their lengths. */
export function constantTimeEquals(a: string, b: string): boolean {
  return timingSafeEqual(sha256(a), sha256(b));
}

/** The credentials of an `Authorization: Basic ...` header, or undefined when absent or malformed. */
export function basicCredentials(header: string | null | undefined): Credentials | undefined {
  if (header === null || header === undefined) return undefined;
  const m = /^Basic[ ]+([A-Za-z0-9+/=]+)\s*$/i.exec(header);
  if (m === null) return undefined;
  let text: string;
  try {
    const bytes = Uint8Array.from(atob(m[1]!), (c) => c.charCodeAt(0));
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    return undefined;
  }
  const colon = text.indexOf(":");
  if (colon < 0) return undefined;
  return { username: text.slice(0, colon), password: text.slice(colon + 1) };
}

/** The `Authorization` header value for `creds`. */
export function basicHeader(creds: Credentials): string {
  const bytes = new TextEncoder().encode(`${creds.username}:${creds.password}`);
  return `Basic ${btoa(String.fromCharCode(...bytes))}`;
}

/** Decides requests against one users file. */
export class Authenticator {
  readonly #users = new Map<string, UserEntry>();
  readonly #everyone: ReadonlySet<Permission>;
  readonly #verified = new Map<string, number>();
  /** bcrypt runs in progress by cache key: concurrent checks of the same credentials share one. */
  readonly #running = new Map<string, Promise<boolean>>();
  /** The costliest bcrypt hash of the file (what unknown users are timed against), if any. */
  readonly #decoyHash: string | undefined;
  readonly #ttlMs: number;
  readonly #cacheMax: number;
  readonly #nowMs: () => number;

  constructor(users: readonly UserEntry[], options: AuthenticatorOptions = {}) {
    for (const u of users) this.#users.set(u.username, u);
    this.#everyone = this.#users.get(EVERYONE)?.perms ?? new Set();
    this.#decoyHash = costliestHash(users);
    this.#ttlMs = options.bcryptCacheTtlMs ?? 60_000;
    this.#cacheMax = Math.max(0, options.bcryptCacheMax ?? 1024);
    this.#nowMs = options.nowMs ?? (() => performance.now());
  }

  /** Whether `creds` (undefined = anonymous) may use every one of `perms`. */
  async allowed(
    creds: Credentials | undefined,
    perms: readonly Permission[],
  ): Promise<boolean> {
    const open = (p: Permission) => this.#everyone.has(p) || this.#everyone.has("all");
    if (perms.every(open)) return true;
    if (creds === undefined || creds.username === "") return false;
    const user = this.#users.get(creds.username);
    const matches = await this.#passwordMatches(user, creds.password);
    if (!matches || user === undefined) return false;
    return perms.every((p) => open(p) || user.perms.has(p) || user.perms.has("all"));
  }

  /**
   * The plaintext password of `username`, for `-join-as`. Throws when the
   * user is missing or its password is a bcrypt hash (which cannot be sent).
   */
  passwordOf(username: string): string {
    const user = this.#users.get(username);
    if (user === undefined || user.password === undefined) {
      throw new Error(`-join-as ${username}: no such user with a password in the -auth file`);
    }
    if (isBcryptHash(user.password)) {
      throw new Error(
        `-join-as ${username}: the -auth file holds a bcrypt hash for this user, but joining ` +
          `sends the password itself; give the -join-as user a plaintext password (and only ` +
          `the join permissions)`,
      );
    }
    return user.password;
  }

  async #passwordMatches(user: UserEntry | undefined, given: string): Promise<boolean> {
    const stored = user?.password;
    if (user === undefined || stored === undefined) return await this.#unknownUser(given);
    if (!isBcryptHash(stored)) return constantTimeEquals(stored, given);
    const key = createHash("sha256").update(`${user.username}\u0000${given}`).digest("hex");
    const until = this.#verified.get(key);
    if (until !== undefined && until > this.#nowMs()) return true;
    if (until !== undefined) this.#verified.delete(key);
    return await this.#bcryptOnce(key, given, stored);
  }

  /** Takes as long as checking a real user would, then refuses. */
  async #unknownUser(given: string): Promise<false> {
    if (this.#decoyHash === undefined) constantTimeEquals("\u0000no user", given);
    else await bcrypt.compare(given, this.#decoyHash);
    return false;
  }

  /** One bcrypt run per key at a time; a success is remembered. */
  #bcryptOnce(key: string, given: string, hash: string): Promise<boolean> {
    const running = this.#running.get(key);
    if (running !== undefined) return running;
    const run = bcrypt.compare(given, hash)
      .then((ok) => {
        if (ok) this.#remember(key);
        return ok;
      })
      .finally(() => this.#running.delete(key));
    this.#running.set(key, run);
    return run;
  }

  #remember(key: string): void {
    if (this.#ttlMs <= 0 || this.#cacheMax === 0) return;
    while (this.#verified.size >= this.#cacheMax) {
      const oldest = this.#verified.keys().next().value;
      if (oldest === undefined) break;
      this.#verified.delete(oldest);
    }
    this.#verified.set(key, this.#nowMs() + this.#ttlMs);
  }
}

/** The bcrypt hash of the highest cost among `users`' passwords, or undefined when none is one. */
function costliestHash(users: readonly UserEntry[]): string | undefined {
  let best: string | undefined;
  for (const u of users) {
    const p = u.password;
    if (p === undefined || !isBcryptHash(p)) continue;
    if (best === undefined || Number(p.slice(4, 6)) > Number(best.slice(4, 6))) best = p;
  }
  return best;
}
