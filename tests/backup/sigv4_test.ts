/**
 * lib/backup/sigv4.ts against the signatures AWS publishes in the S3
 * documentation ("Signature Calculations for the Authorization Header:
 * Transferring Payload in a Single Chunk"), plus path and query encoding.
 */

import assert from "node:assert/strict";
import { awsUriEncode, EMPTY_SHA256, sha256Hex, signRequest } from "../../lib/backup/sigv4.ts";

const creds = {
  accessKeyId: "AKIAIOSFODNN7EXAMPLE",
  secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
};
const NOW = new Date(Date.UTC(2013, 4, 24, 0, 0, 0));

function sign(method: string, url: string, headers: Record<string, string>, payload: string) {
  const h = new Headers(headers);
  signRequest(
    { method, url: new URL(url), headers: h, payloadSha256Hex: sha256Hex(payload) },
    creds,
    "us-east-1",
    "s3",
    NOW,
  );
  return h;
}

function signature(h: Headers): string {
  return /Signature=([0-9a-f]{64})$/.exec(h.get("authorization") ?? "")?.[1] ?? "";
}

Deno.test("sha256Hex and EMPTY_SHA256", () => {
  assert.equal(sha256Hex(""), EMPTY_SHA256);
  assert.equal(sha256Hex(new Uint8Array()), EMPTY_SHA256);
  assert.equal(
    sha256Hex("Welcome to Amazon S3."),
    "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072",
  );
});

Deno.test("AWS example: GET Object with a Range header", () => {
  const h = sign("GET", "https://examplebucket.s3.amazonaws.com/test.txt", {
    range: "bytes=0-9",
  }, "");
  assert.equal(h.get("x-amz-date"), "20130524T000000Z");
  assert.equal(h.get("x-amz-content-sha256"), EMPTY_SHA256);
  assert.equal(
    h.get("authorization"),
    "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, " +
      "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, " +
      "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
  );
});

Deno.test("AWS example: PUT Object (Date, storage class, '$' in the key)", () => {
  // The key is "test$file.text": the URL keeps '$' as is, the canonical URI encodes it.
  const h = sign("PUT", "https://examplebucket.s3.amazonaws.com/test$file.text", {
    "date": "Fri, 24 May 2013 00:00:00 GMT",
    "x-amz-storage-class": "REDUCED_REDUNDANCY",
  }, "Welcome to Amazon S3.");
  assert.match(
    h.get("authorization")!,
    /SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class, /,
  );
  assert.equal(signature(h), "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
  // Already percent-encoded on the wire: not encoded twice.
  const h2 = sign("PUT", "https://examplebucket.s3.amazonaws.com/test%24file.text", {
    "date": "Fri, 24 May 2013 00:00:00 GMT",
    "x-amz-storage-class": "REDUCED_REDUNDANCY",
  }, "Welcome to Amazon S3.");
  assert.equal(signature(h2), signature(h));
});

Deno.test("AWS example: GET Bucket lifecycle (a query parameter without a value)", () => {
  const h = sign("GET", "https://examplebucket.s3.amazonaws.com/?lifecycle", {}, "");
  assert.equal(signature(h), "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
});

Deno.test("AWS example: GET Bucket (List Objects) with a query sorted by key", () => {
  const h = sign("GET", "https://examplebucket.s3.amazonaws.com/?max-keys=2&prefix=J", {}, "");
  assert.equal(signature(h), "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
  const swapped = sign(
    "GET",
    "https://examplebucket.s3.amazonaws.com/?prefix=J&max-keys=2",
    {},
    "",
  );
  assert.equal(signature(swapped), signature(h));
});

/** Signs a GET of /b/k with a session token at NOW. */
function signWithToken(headers: Headers): void {
  signRequest(
    {
      method: "GET",
      url: new URL("http://127.0.0.1:9000/b/k"),
      headers,
      payloadSha256Hex: EMPTY_SHA256,
    },
    { ...creds, sessionToken: "TOKEN" },
    "us-east-1",
    "s3",
    NOW,
  );
}

Deno.test("session token is set and signed; header values are trimmed and collapsed", () => {
  const h = new Headers({ "x-amz-meta-note": "  a   b  c " });
  signRequest(
    {
      method: "get",
      url: new URL("http://127.0.0.1:9000/b/k"),
      headers: h,
      payloadSha256Hex: EMPTY_SHA256,
    },
    { ...creds, sessionToken: "TOKEN" },
    "us-east-1",
    "s3",
    NOW,
  );
  assert.equal(h.get("x-amz-security-token"), "TOKEN");
  assert.match(
    h.get("authorization")!,
    /SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-meta-note;x-amz-security-token, /,
  );
  // The same request with the value already in canonical form signs the same.
  const h2 = new Headers({ "x-amz-meta-note": "a b c" });
  signWithToken(h2);
  assert.equal(h2.get("authorization"), h.get("authorization"));
  // Signing again replaces the old authorization instead of adding to it.
  const before = h2.get("authorization");
  signWithToken(h2);
  assert.equal(h2.get("authorization"), before);
});

Deno.test("awsUriEncode: unreserved kept, everything else %XX of UTF-8, '/' only in paths", () => {
  assert.equal(awsUriEncode("AZaz09-._~", false), "AZaz09-._~");
  assert.equal(awsUriEncode("a b+c", false), "a%20b%2Bc");
  assert.equal(awsUriEncode("!'()*$&=,;:@", false), "%21%27%28%29%2A%24%26%3D%2C%3B%3A%40");
  assert.equal(awsUriEncode("dir/x y", true), "dir/x%20y");
  assert.equal(awsUriEncode("dir/x y", false), "dir%2Fx%20y");
  assert.equal(awsUriEncode("é", false), "%C3%A9");
  assert.equal(awsUriEncode("日本", true), "%E6%97%A5%E6%9C%AC");
  assert.equal(awsUriEncode("😀", false), "%F0%9F%98%80");
  assert.equal(awsUriEncode("%", false), "%25");
});

Deno.test("canonical URI: a raw, a WHATWG-encoded and an AWS-encoded path sign the same", () => {
  const sig = (url: string) => signature(sign("GET", url, {}, ""));
  const aws = sig("http://h/b/" + awsUriEncode("a b+c/é!(x)", true));
  assert.equal(sig("http://h/b/a b+c/é!(x)"), aws);
  assert.equal(sig("http://h/b/a%20b%2Bc/%C3%A9%21%28x%29"), aws);
  // A different key signs differently ('+' is a plus, not a space).
  assert.notEqual(sig("http://h/b/a%20b%20c/%C3%A9%21%28x%29"), aws);
  // Empty segments are kept (S3 does not normalize paths).
  assert.notEqual(sig("http://h/b//k"), sig("http://h/b/k"));
});

Deno.test("canonical query: '+' is a literal plus, values encoded once", () => {
  const sig = (url: string) => signature(sign("GET", url, {}, ""));
  assert.equal(sig("http://h/b?prefix=a%2Bb"), sig("http://h/b?prefix=a+b"));
  assert.notEqual(sig("http://h/b?prefix=a%20b"), sig("http://h/b?prefix=a+b"));
  assert.equal(sig("http://h/b?uploads"), sig("http://h/b?uploads="));
});
