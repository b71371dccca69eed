/**
 * Talking to the node that served the page: every request goes to the same
 * origin, carries the signed-in user's Basic credentials when there are
 * some, and is bounded in time. A 401 asks the person for credentials (one
 * dialog at a time, however many requests hit it) and retries; background
 * refreshes never open the dialog, they just report that sign-in is needed.
 */

import { parseJson } from "./format.js";

const CREDENTIALS_KEY = "raftlite.console.credentials";
const DEFAULT_TIMEOUT_MS = 30_000;
/** A request retried after sign-in at most this many times (then the 401 stands). */
const SIGN_IN_ATTEMPTS_MAX = 3;

/** A reply that is not what the caller needs; `message` is the server's text. */
export class ApiError extends Error {
  /**
   * @param {number} status HTTP status (0 when the node could not be reached)
   * @param {string} message
   */
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** @type {{user: string, header: string} | null} */
let credentials = loadCredentials();
/** @type {(() => Promise<boolean>) | null} */
let askCredentials = null;
/** @type {Promise<boolean> | null} */
let asking = null;
/** @type {Set<() => void>} */
const listeners = new Set();

function loadCredentials() {
  try {
    const saved = JSON.parse(sessionStorage.getItem(CREDENTIALS_KEY) ?? "null");
    return saved && typeof saved.header === "string" ? saved : null;
  } catch {
    return null;
  }
}

/**
 * Sets who the console signs in as (kept for this browser tab only).
 * @param {string} user
 * @param {string} password
 */
export function signIn(user, password) {
  const bytes = new TextEncoder().encode(`${user}:${password}`);
  const header = `Basic ${btoa(String.fromCharCode(...bytes))}`;
  credentials = { user, header };
  sessionStorage.setItem(CREDENTIALS_KEY, JSON.stringify(credentials));
  for (const f of listeners) f();
}

/** Forgets the credentials. */
export function signOut() {
  credentials = null;
  sessionStorage.removeItem(CREDENTIALS_KEY);
  for (const f of listeners) f();
}

/** The signed-in user name, or "" when none. */
export function currentUser() {
  return credentials?.user ?? "";
}

/**
 * Called when credentials change.
 * @param {() => void} f
 */
export function onCredentialsChange(f) {
  listeners.add(f);
}

/**
 * Installs the function that asks the person for credentials (the sign-in
 * dialog); it resolves true once they signed in, false if they cancelled.
 * @param {() => Promise<boolean>} f
 */
export function setCredentialPrompt(f) {
  askCredentials = f;
}

/**
 * @typedef {object} RequestOptions
 * @property {string} [method]
 * @property {unknown} [json] body, sent as JSON
 * @property {AbortSignal} [signal] cancels the request
 * @property {number} [timeoutMs]
 * @property {boolean} [interactive] may open the sign-in dialog on 401 (default true)
 */

/**
 * @typedef {object} Reply
 * @property {number} status
 * @property {string} text
 * @property {Headers} headers
 * @property {number} ms round-trip time
 */

/**
 * Sends a request to this node; resolves with the whole reply for any HTTP
 * status except 401 (signs in and retries, or rejects with ApiError 401).
 * Network failures and timeouts reject with ApiError status 0.
 * @param {string} path
 * @param {RequestOptions} [options]
 * @returns {Promise<Reply>}
 */
export async function request(path, options = {}) {
  for (let attempt = 0;; attempt++) {
    const reply = await send(path, options);
    if (reply.status !== 401) return reply;
    const interactive = options.interactive ?? true;
    if (!interactive || attempt >= SIGN_IN_ATTEMPTS_MAX || !(await promptOnce())) {
      throw new ApiError(
        401,
        credentials
          ? `user "${credentials.user}" is not allowed to do this (401)`
          : "this node requires you to sign in (401)",
      );
    }
  }
}

/**
 * GET or POST and parse the JSON reply; non-200 replies reject with the
 * server's text (rqlite's plain-text errors).
 * @param {string} path
 * @param {RequestOptions} [options]
 */
export async function requestJson(path, options = {}) {
  const reply = await request(path, options);
  if (reply.status !== 200) throw new ApiError(reply.status, describeFailure(reply));
  return { reply, body: parseJson(reply.text) };
}

/**
 * A one-line description of a failed reply.
 * @param {Reply} reply
 */
export function describeFailure(reply) {
  const text = reply.text.trim();
  return `HTTP ${reply.status}${text ? `: ${text}` : ""}`;
}

async function send(path, options) {
  const headers = new Headers();
  if (credentials) headers.set("Authorization", credentials.header);
  let body;
  if (options.json !== undefined) {
    headers.set("Content-Type", "application/json");
    body = JSON.stringify(options.json);
  }
  const timeout = AbortSignal.timeout(options.timeoutMs ?? DEFAULT_TIMEOUT_MS);
  const signal = options.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
  const t0 = performance.now();
  try {
    const res = await fetch(path, {
      method: options.method ?? (body === undefined ? "GET" : "POST"),
      headers,
      body,
      signal,
      cache: "no-store",
    });
    const text = await res.text();
    return { status: res.status, text, headers: res.headers, ms: performance.now() - t0 };
  } catch (err) {
    if (options.signal?.aborted) throw new ApiError(0, "cancelled");
    if (timeout.aborted) throw new ApiError(0, "the node did not answer in time");
    throw new ApiError(0, `cannot reach the node (${err instanceof Error ? err.message : err})`);
  }
}

function promptOnce() {
  if (askCredentials === null) return Promise.resolve(false);
  asking ??= askCredentials().finally(() => (asking = null));
  return asking;
}
