/**
 * Serves the web console under /console/ from the files embedded in the
 * program (assets.gen.ts), never from the disk: the same bytes in
 * `deno run` and in a compiled binary, and no path ever reaches the file
 * system, so `..` or encoded separators can only miss the table (404).
 *
 * Caching: every file carries a strong ETag (content hash) and
 * `Cache-Control: no-cache`, so browsers revalidate and get 304 until an
 * upgrade changes a file; names are not fingerprinted, so nothing may be
 * cached without revalidation. The page only talks to its own origin, which
 * the Content-Security-Policy enforces (no CDN, no inline script).
 *
 * @module
 */

import { ASSETS } from "./assets.gen.ts";
import type { EmbeddedAsset } from "./embedded.ts";

/** The URL prefix the console lives under. */
export const CONSOLE_PREFIX = "/console/";

const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  "X-Content-Type-Options": "nosniff",
  "X-Frame-Options": "DENY",
  "Referrer-Policy": "no-referrer",
  "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; " +
    "style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; " +
    "base-uri 'none'; form-action 'none'",
};

interface Prepared {
  readonly asset: EmbeddedAsset;
  readonly bytes: Uint8Array<ArrayBuffer>;
}

/** Encoded once at start: requests only copy headers. */
const FILES = new Map<string, Prepared>(
  Object.entries(ASSETS).map((
    [name, asset],
  ) => [name, { asset, bytes: new TextEncoder().encode(asset.text) }]),
);

/** Names of the embedded files (for tests and diagnostics). */
export function consoleFileNames(): string[] {
  return [...FILES.keys()];
}

/**
 * GET|HEAD /console/<file>: the embedded file, `index.html` for the bare
 * prefix; 304 when If-None-Match names the current ETag; 404 for anything
 * not embedded; 405 (empty, as rqlite) for other methods.
 */
export function handleConsole(req: Request): Response {
  if (req.method !== "GET" && req.method !== "HEAD") return new Response(null, { status: 405 });
  const path = new URL(req.url).pathname;
  const name = path === CONSOLE_PREFIX ? "index.html" : path.slice(CONSOLE_PREFIX.length);
  const file = path.startsWith(CONSOLE_PREFIX) ? FILES.get(name) : undefined;
  if (file === undefined) {
    return new Response("404 page not found\n", {
      status: 404,
      headers: { "Content-Type": "text/plain; charset=utf-8", "X-Content-Type-Options": "nosniff" },
    });
  }
  const headers = new Headers(SECURITY_HEADERS);
  headers.set("ETag", file.asset.etag);
  headers.set("Cache-Control", "no-cache");
  if (etagMatches(req.headers.get("If-None-Match"), file.asset.etag)) {
    return new Response(null, { status: 304, headers });
  }
  headers.set("Content-Type", file.asset.type);
  headers.set("Content-Length", String(file.bytes.length));
  return new Response(req.method === "HEAD" ? null : file.bytes, { headers });
}

/**
 * If-None-Match holds `*` or a list of tags; weak tags match too (RFC 9110
 * weak comparison), which matters because Deno.serve weakens our ETag when
 * it compresses the body.
 */
function etagMatches(header: string | null, etag: string): boolean {
  if (header === null) return false;
  if (header.trim() === "*") return true;
  return header.split(",").some((t) => t.trim().replace(/^W\//, "") === etag);
}
