/**
 * The users file of `-auth` (rqlite-api.md §10): a JSON array of
 * `{"username": "...", "password": "...", "perms": ["...", ...]}`.
 *
 * Validation is strict, because a typo in a permission would otherwise lock
 * someone out (or in) silently: unknown fields, unknown permission names,
 * duplicate users, a missing password (except for `*`, everyone, which has
 * none), a username with a colon (Basic auth could never carry it) and
 * anything that is not the documented shape are refused with a message
 * naming the entry. A password may be plaintext (rqlite's format) or a
 * bcrypt hash (`$2a$`, `$2b$`, `$2y$`; raftlite's addition, see check.ts)
 * of a cost bcrypt accepts and that can be checked per request (at most
 * {@link MAX_BCRYPT_COST}).
 *
 * @module
 */

/** Every permission name of rqlite §10. */
export const PERMISSIONS = [
  "all",
  "execute",
  "query",
  "status",
  "ready",
  "backup",
  "load",
  "snapshot",
  "remove",
  "join",
  "join-read-only",
  "join-read-replica",
  "leader-ops",
  "ui",
] as const;

/** A permission name. */
export type Permission = typeof PERMISSIONS[number];

/** The user name that stands for everyone, including requests without credentials. */
export const EVERYONE = "*";

/** One entry of the users file. */
export interface UserEntry {
  readonly username: string;
  /** Plaintext or a bcrypt hash; undefined only for {@link EVERYONE}. */
  readonly password?: string;
  readonly perms: ReadonlySet<Permission>;
}

/** A users file that cannot be used; the message says which entry and why. */
export class UsersFileError extends Error {
  override name = "UsersFileError";
}

/** Largest users file read (a users file is a few KiB; this bounds a wrong path). */
export const MAX_USERS_FILE_BYTES = 1 << 20;

const KNOWN = new Set<string>(PERMISSIONS);
const FIELDS = new Set(["username", "password", "perms"]);

/** A bcrypt hash as written by htpasswd -B, bcryptjs and others. */
export function isBcryptHash(password: string): boolean {
  return /^\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}$/.test(password);
}

/**
 * Highest bcrypt cost accepted. Each step doubles the work: in bcryptjs on
 * a current x86 core cost 10 takes about 70 ms, 14 over a second; beyond,
 * every check not yet cached (each new client, each wrong password) would
 * hold a core for seconds to days.
 */
export const MAX_BCRYPT_COST = 14;

/** Refuses a bcrypt hash whose cost bcrypt rejects (4-31) or that is too slow to check per request. */
function checkBcryptCost(hash: string, who: string): void {
  const cost = Number(hash.slice(4, 6));
  if (cost < 4 || cost > 31) {
    throw new UsersFileError(
      `${who}: the password is a bcrypt hash of cost ${cost}, but bcrypt costs run from 4 to 31`,
    );
  }
  if (cost > MAX_BCRYPT_COST) {
    throw new UsersFileError(
      `${who}: the password is a bcrypt hash of cost ${cost}; checking it would take seconds or ` +
        `more of CPU for every request not already cached (each cost step doubles it, cost 10 ` +
        `takes about 70 ms). Make the hash with cost 10 to 12 (at most ${MAX_BCRYPT_COST}), e.g. ` +
        `htpasswd -bnBC 10 "" 'password' | tr -d ':\\n'`,
    );
  }
}

/** Parses and validates the users file's text. Throws {@link UsersFileError}. */
export function parseUsers(text: string, source = "users file"): UserEntry[] {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new UsersFileError(`${source}: not valid JSON: ${(err as Error).message}`);
  }
  if (!Array.isArray(raw)) {
    throw new UsersFileError(
      `${source}: expected a JSON array of {"username", "password", "perms"} objects`,
    );
  }
  const seen = new Set<string>();
  return raw.map((item, i) => {
    const entry = parseEntry(item, `${source}: entry ${i + 1}`);
    if (seen.has(entry.username)) {
      throw new UsersFileError(`${source}: user "${entry.username}" appears more than once`);
    }
    seen.add(entry.username);
    return entry;
  });
}

function parseEntry(item: unknown, where: string): UserEntry {
  if (typeof item !== "object" || item === null || Array.isArray(item)) {
    throw new UsersFileError(`${where}: expected an object`);
  }
  const obj = item as Record<string, unknown>;
  for (const key of Object.keys(obj)) {
    if (!FIELDS.has(key)) {
      throw new UsersFileError(`${where}: unknown field "${key}" (username, password, perms)`);
    }
  }
  const { username, password, perms } = obj;
  if (typeof username !== "string" || username === "") {
    throw new UsersFileError(`${where}: "username" must be a non-empty string`);
  }
  const who = `${where} (user "${username}")`;
  if (username.includes(":")) {
    throw new UsersFileError(
      `${who}: a username must not contain ":" (Basic auth ends the username at the first colon)`,
    );
  }
  if (username === EVERYONE) {
    if (password !== undefined) {
      throw new UsersFileError(`${who}: "*" stands for everyone and takes no password`);
    }
  } else if (typeof password !== "string" || password === "") {
    throw new UsersFileError(`${who}: "password" must be a non-empty string`);
  }
  if (typeof password === "string" && isBcryptHash(password)) checkBcryptCost(password, who);
  if (!Array.isArray(perms)) throw new UsersFileError(`${who}: "perms" must be an array`);
  const set = new Set<Permission>();
  for (const p of perms) {
    if (typeof p !== "string" || !KNOWN.has(p)) {
      throw new UsersFileError(
        `${who}: unknown permission ${JSON.stringify(p)} (known: ${PERMISSIONS.join(", ")})`,
      );
    }
    set.add(p as Permission);
  }
  return password === undefined
    ? { username, perms: set }
    : { username, password: password as string, perms: set };
}

/**
 * Reads and validates a users file (synchronously: it is read once, before
 * the node serves anything). Throws {@link UsersFileError} with the path in
 * the message.
 */
export function loadUsersFile(path: string): UserEntry[] {
  let bytes: Uint8Array;
  try {
    const info = Deno.statSync(path);
    if (!info.isFile) throw new UsersFileError(`-auth ${path}: not a file`);
    if (info.size > MAX_USERS_FILE_BYTES) {
      throw new UsersFileError(
        `-auth ${path}: ${info.size} bytes, more than a users file can be (${MAX_USERS_FILE_BYTES})`,
      );
    }
    bytes = Deno.readFileSync(path);
  } catch (err) {
    if (err instanceof UsersFileError) throw err;
    throw new UsersFileError(
      `-auth ${path}: cannot read the users file: ${(err as Error).message}`,
    );
  }
  return parseUsers(new TextDecoder().decode(bytes), `-auth ${path}`);
}
