/**
 * Response helpers that reproduce rqlite's (Go net/http) bytes: plain-text
 * errors end with a newline and carry `nosniff`; JSON carries
 * `application/json; charset=utf-8`; empty-bodied statuses have no body.
 *
 * @module
 */

/** Headers every response carries, set by the server wrapper. */
export interface CommonHeaders {
  readonly version: string;
  readonly allowOrigin: string;
  readonly authEnabled: boolean;
}

/** A Go `http.Error` response: text body with a trailing newline. */
export function textError(status: number, message: string): Response {
  return new Response(`${message}\n`, {
    status,
    headers: {
      "Content-Type": "text/plain; charset=utf-8",
      "X-Content-Type-Options": "nosniff",
    },
  });
}

/** A status with an empty body (rqlite's 401/404/405 and friends). */
export function emptyStatus(status: number): Response {
  return new Response(null, { status });
}

/** A JSON text produced by lib/db's encoder (already exact bytes). */
export function jsonText(body: string, status = 200, headers: HeadersInit = {}): Response {
  const h = new Headers(headers);
  h.set("Content-Type", "application/json; charset=utf-8");
  return new Response(body, { status, headers: h });
}

/** Plain text with a given status (readyz). */
export function plainText(body: string, status = 200): Response {
  return new Response(body, {
    status,
    headers: { "Content-Type": "text/plain; charset=utf-8" },
  });
}

/** Adds the headers rqlite puts on every response. */
export function withCommonHeaders(res: Response, common: CommonHeaders): Response {
  const h = res.headers;
  h.set("X-RQLITE-VERSION", common.version);
  h.set("Access-Control-Allow-Methods", "OPTIONS, GET, POST");
  if (common.authEnabled) {
    h.set("Access-Control-Allow-Headers", "Content-Type, Authorization");
    h.set("Access-Control-Allow-Credentials", "true");
    h.set("WWW-Authenticate", 'Basic realm="rqlite"');
  } else {
    h.set("Access-Control-Allow-Headers", "Content-Type");
  }
  if (common.allowOrigin !== "") h.set("Access-Control-Allow-Origin", common.allowOrigin);
  return res;
}
