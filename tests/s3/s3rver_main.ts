/**
 * A real S3-compatible server for the backup tests: the npm package
 * s3rver (3.7.1, unmodified), behind a front that checks AWS Signature
 * Version 4 with the npm package aws4 (1.13.2, unmodified). Run by
 * tests/util/s3_server.ts as
 * `deno run -A --config tests/s3/deno.json --lock tests/s3/deno.lock --frozen tests/s3/s3rver_main.ts <dir> <bucket>...`.
 *
 * Why the front: s3rver 3.7.1 checks SigV2 signatures but accepts any SigV4
 * signature unchecked ("Signature version 4 calculation is unimplemented"
 * in its lib/middleware/authentication.js), and does not compare the body
 * with `x-amz-content-sha256`. The front does both, as S3 does: it
 * recomputes each SigV4-signed request's signature over the headers the
 * request lists in SignedHeaders with aws4 (an implementation independent
 * of lib/backup/sigv4.ts, whose S3 canonical path and query rules it
 * shares), answering 403 SignatureDoesNotMatch on a mismatch and 400
 * XAmzContentSHA256Mismatch when the body's SHA-256 differs from the
 * signed one; everything else is passed to s3rver untouched. Requests
 * with another access key (or none) go to s3rver as they are, so its own
 * InvalidAccessKeyId / anonymous handling applies.
 *
 * s3rver's ListObjectsV2 continuation tokens use single DES, which Deno's
 * node:crypto lacks; it is provided here as triple DES with equal keys
 * (the same cipher).
 *
 * Its own config because s3rver is CommonJS with many dependencies and
 * needs a node_modules directory (`nodeModulesDir: "auto"`), which the
 * project itself does not want. Listens on 127.0.0.1 only, ports chosen by
 * the OS; prints `S3RVER_PORT <port>` (the front's) on one stdout line once
 * it accepts connections, then runs until killed. Access key `S3RVER`,
 * secret `S3RVER`.
 *
 * @module
 */

import crypto, { createHash } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";

/** The part of s3rver's API used here. */
interface S3rverInstance {
  run(): Promise<{ port: number }>;
}
type S3rverClass = new (opts: Record<string, unknown>) => S3rverInstance;

/** The part of aws4's API used here: signs `request` in place, setting headers.Authorization. */
type Aws4Sign = (
  request: { headers: Record<string, string> } & Record<string, unknown>,
  credentials: { accessKeyId: string; secretAccessKey: string },
) => { headers: Record<string, string> };

// s3rver makes ListObjectsV2 continuation tokens with single DES
// (`createCipheriv("des", key8, iv8)`), a cipher Deno's node:crypto does
// not have. Triple DES (EDE3) with three equal keys is single DES, and
// Deno has "des-ede3-cbc": map one onto the other for this process.
type CipherFactory = (alg: string, key: Buffer, iv: Buffer) => unknown;
const c = crypto as unknown as Record<
  "createCipheriv" | "createDecipheriv",
  CipherFactory
>;
for (const name of ["createCipheriv", "createDecipheriv"] as const) {
  const real = c[name].bind(crypto);
  c[name] = (alg, key, iv) =>
    alg === "des" && key.length === 8
      ? real("des-ede3-cbc", Buffer.concat([key, key, key]), iv)
      : real(alg, key, iv);
}

// Computed specifiers, resolved through tests/s3/deno.json's import map at
// run time: the root `deno check` (which has its own frozen lock without
// these packages) then neither resolves nor downloads them.
const names = ["s3rver", "aws4"];
const S3rver: S3rverClass = (await import(names[0]!)).default;
const aws4Sign: Aws4Sign = (await import(names[1]!)).default.sign;

const ACCESS_KEY = "S3RVER";
const SECRET_KEY = "S3RVER";
/** The front holds a request body in memory to hash it; the tests send far less. */
const MAX_BODY = 256 * 1024 * 1024;

const [dir, ...buckets] = Deno.args;
if (!dir) {
  console.error("usage: s3rver_main.ts <dir> <bucket>...");
  Deno.exit(2);
}

const inner = await new S3rver({
  port: 0,
  address: "127.0.0.1",
  silent: true,
  directory: dir,
  configureBuckets: buckets.map((name) => ({ name })),
}).run();

function s3ErrorXml(code: string, message: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message></Error>`;
}

function reject(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  status: number,
  code: string,
  message: string,
) {
  const body = req.method === "HEAD" ? "" : s3ErrorXml(code, message);
  res.writeHead(status, {
    "content-type": "application/xml",
    "content-length": Buffer.byteLength(body),
  });
  res.end(body);
}

const AUTH =
  /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/s3\/aws4_request, ?SignedHeaders=([a-z0-9;_-]+), ?Signature=([0-9a-f]{64})$/;

/** Undefined when the request may go on, else why not: [status, code, message]. */
function check(
  req: http.IncomingMessage,
  body: Buffer,
): [number, string, string] | undefined {
  const auth = req.headers.authorization;
  if (!auth || !auth.startsWith("AWS4-HMAC-SHA256 ")) return undefined;
  const m = AUTH.exec(auth);
  if (!m) {
    return [
      400,
      "AuthorizationHeaderMalformed",
      "The authorization header is malformed",
    ];
  }
  const [, accessKey, day, region, signedHeaders, signature] = m;
  if (accessKey !== ACCESS_KEY) return undefined; // s3rver answers InvalidAccessKeyId
  const amzDate = String(req.headers["x-amz-date"] ?? "");
  if (!amzDate.startsWith(day!)) {
    return [
      403,
      "SignatureDoesNotMatch",
      "x-amz-date does not match the credential scope",
    ];
  }
  const payloadHash = String(req.headers["x-amz-content-sha256"] ?? "");
  if (payloadHash !== "UNSIGNED-PAYLOAD") {
    const actual = createHash("sha256").update(body).digest("hex");
    if (actual !== payloadHash) {
      return [
        400,
        "XAmzContentSHA256Mismatch",
        "The provided 'x-amz-content-sha256' header does not match what was computed.",
      ];
    }
  }
  const headers: Record<string, string> = {};
  const include: Record<string, boolean> = {};
  for (const name of signedHeaders!.split(";")) {
    const v = req.headers[name];
    headers[name] = Array.isArray(v) ? v.join(",") : String(v ?? "");
    include[name] = true;
  }
  // aws4.sign takes the date from the x-amz-date header given (aws4's
  // RequestSigner.signature() alone would use the current time instead).
  const signed = aws4Sign({
    service: "s3",
    region,
    method: req.method,
    path: req.url,
    headers,
    extraHeadersToInclude: include,
  }, { accessKeyId: ACCESS_KEY, secretAccessKey: SECRET_KEY });
  const expected = /Signature=([0-9a-f]{64})$/.exec(
    signed.headers.Authorization ?? "",
  )?.[1];
  if (expected !== signature) {
    return [
      403,
      "SignatureDoesNotMatch",
      "The request signature we calculated does not match the signature you provided. " +
      "Check your key and signing method.",
    ];
  }
  return undefined;
}

const front = http.createServer((req, res) => {
  const chunks: Buffer[] = [];
  let size = 0;
  let tooLarge = false;
  req.on("data", (c: Buffer) => {
    size += c.length;
    if (size > MAX_BODY) tooLarge = true;
    else chunks.push(c);
  });
  req.on("end", () => {
    if (tooLarge) {
      return reject(
        req,
        res,
        400,
        "EntityTooLarge",
        "Body over the test limit",
      );
    }
    const body = Buffer.concat(chunks);
    const bad = check(req, body);
    if (bad) return reject(req, res, ...bad);
    const up = http.request({
      host: "127.0.0.1",
      port: inner.port,
      method: req.method,
      path: req.url,
      headers: req.headers,
    }, (upRes) => {
      res.writeHead(upRes.statusCode ?? 502, upRes.headers);
      upRes.pipe(res);
    });
    up.on("error", (e) => {
      if (!res.headersSent) reject(req, res, 502, "BadGateway", String(e));
      else res.destroy();
    });
    up.end(body);
  });
});
await new Promise<void>((resolve) => front.listen(0, "127.0.0.1", resolve));
console.log(`S3RVER_PORT ${(front.address() as AddressInfo).port}`);
