/**
 * AWS Signature Version 4 ("AWS4-HMAC-SHA256") for requests to S3 and
 * S3-compatible servers, written from AWS's published description of the
 * algorithm (canonical request → string to sign → HMAC chain), with the
 * synchronous `node:crypto` primitives.
 *
 * S3 specifics: the canonical URI is the path with every segment
 * URI-encoded once (S3 does not double-encode and does not normalize `.`
 * or `..`), and the payload hash is always sent in `x-amz-content-sha256`.
 * Callers pass the real SHA-256 of the body, so the server checks the
 * bytes it received against the signature (no `UNSIGNED-PAYLOAD`).
 *
 * Signed headers: `host`, every `x-amz-*` header, and `content-type`,
 * `content-md5`, `date` and `range` when present. Headers a client library
 * or proxy may add or rewrite (user-agent, accept-encoding, content-length,
 * connection) are left unsigned on purpose.
 *
 * @module
 */

import { createHash, createHmac } from "node:crypto";

/** Credentials for signing: an access key pair and, for temporary credentials, a session token. */
export interface SigV4Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  /** STS session token; sent (and signed) as `x-amz-security-token` when set. */
  sessionToken?: string;
}

/** SHA-256 of the empty string, the payload hash of GET, HEAD and DELETE requests. */
export const EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/** Lowercase hex SHA-256 of `bytes` (a string is hashed as UTF-8). */
export function sha256Hex(bytes: Uint8Array | string): string {
  return createHash("sha256").update(bytes).digest("hex");
}

function hmac(key: Uint8Array | string, data: string): Uint8Array {
  return createHmac("sha256", key).update(data, "utf8").digest();
}

const UNRESERVED = /[A-Za-z0-9\-._~]/;
const utf8 = new TextEncoder();

/**
 * URI-encodes `s` the way SigV4 requires: every byte of its UTF-8 form
 * except the unreserved characters `A-Z a-z 0-9 - . _ ~` becomes `%XX`
 * (uppercase hex); `/` is kept when `keepSlash` (object key paths).
 * Unlike `encodeURIComponent`, this also encodes `! ' ( ) *`.
 */
export function awsUriEncode(s: string, keepSlash: boolean): string {
  let out = "";
  for (const ch of s) {
    if (UNRESERVED.test(ch) || (keepSlash && ch === "/")) {
      out += ch;
      continue;
    }
    for (const b of utf8.encode(ch)) out += "%" + b.toString(16).toUpperCase().padStart(2, "0");
  }
  return out;
}

/** Percent-decodes `s`, leaving it unchanged when it is not valid percent-encoded UTF-8. */
function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** The canonical URI: each segment of the (already percent-encoded) path decoded, then encoded once. */
function canonicalUri(url: URL): string {
  const path = url.pathname === "" ? "/" : url.pathname;
  return path.split("/").map((seg) => awsUriEncode(safeDecode(seg), false)).join("/");
}

/** The canonical query string: encoded `key=value` pairs sorted by key, then by value. */
function canonicalQuery(url: URL): string {
  if (url.search === "" || url.search === "?") return "";
  const pairs: [string, string][] = [];
  for (const part of url.search.slice(1).split("&")) {
    if (part === "") continue;
    const eq = part.indexOf("=");
    const k = eq < 0 ? part : part.slice(0, eq);
    const v = eq < 0 ? "" : part.slice(eq + 1);
    // A "+" in a query is a literal plus for S3 (callers encode spaces as %20).
    pairs.push([awsUriEncode(safeDecode(k), false), awsUriEncode(safeDecode(v), false)]);
  }
  pairs.sort((
    a,
    b,
  ) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
  return pairs.map(([k, v]) => `${k}=${v}`).join("&");
}

function isSigned(name: string): boolean {
  return name.startsWith("x-amz-") || name === "content-type" || name === "content-md5" ||
    name === "date" || name === "range";
}

/** `20130524T000000Z` */
function amzDate(now: Date): string {
  return now.toISOString().replace(/[-:]/g, "").replace(/\.\d{3}/, "");
}

/**
 * Signs `req` in place with SigV4: sets `x-amz-date` (from `now`),
 * `x-amz-content-sha256` (= `payloadSha256Hex`), `x-amz-security-token`
 * (when `creds.sessionToken`) and `authorization` on `req.headers`.
 *
 * `req.url` must be the URL the request is sent to, its path already
 * percent-encoded the way it goes on the wire; the `host` header is signed
 * as `req.headers.get("host")` or else `req.url.host` (which is what
 * `fetch` sends). Only `authorization` may be changed afterwards.
 */
export function signRequest(
  req: { method: string; url: URL; headers: Headers; payloadSha256Hex: string },
  creds: SigV4Credentials,
  region: string,
  service: string,
  now: Date,
): void {
  const dateTime = amzDate(now);
  const day = dateTime.slice(0, 8);
  const h = req.headers;
  h.delete("authorization");
  h.set("x-amz-date", dateTime);
  h.set("x-amz-content-sha256", req.payloadSha256Hex);
  if (creds.sessionToken) h.set("x-amz-security-token", creds.sessionToken);

  const signed = new Map<string, string>();
  signed.set("host", h.get("host") ?? req.url.host);
  for (const [name, value] of h) {
    if (isSigned(name)) signed.set(name, value.trim().replace(/\s+/g, " "));
  }
  const names = [...signed.keys()].sort();
  const signedHeaders = names.join(";");
  const canonicalHeaders = names.map((n) => `${n}:${signed.get(n)}\n`).join("");

  const canonicalRequest = [
    req.method.toUpperCase(),
    canonicalUri(req.url),
    canonicalQuery(req.url),
    canonicalHeaders,
    signedHeaders,
    req.payloadSha256Hex,
  ].join("\n");

  const scope = `${day}/${region}/${service}/aws4_request`;
  const stringToSign = ["AWS4-HMAC-SHA256", dateTime, scope, sha256Hex(canonicalRequest)].join(
    "\n",
  );
  let key = hmac("AWS4" + creds.secretAccessKey, day);
  key = hmac(key, region);
  key = hmac(key, service);
  key = hmac(key, "aws4_request");
  const signature = createHmac("sha256", key).update(stringToSign, "utf8").digest("hex");
  h.set(
    "authorization",
    `AWS4-HMAC-SHA256 Credential=${creds.accessKeyId}/${scope}, SignedHeaders=${signedHeaders}, Signature=${signature}`,
  );
}
