/**
 * lib/backup/s3.ts against a real S3-compatible server: s3rver (npm,
 * unmodified) in a child process on 127.0.0.1 (tests/util/s3_server.ts),
 * which checks SigV4 signatures and payload hashes. Each test starts its
 * own server with a fresh directory and stops it. Skipped, with the
 * reason, only when s3rver cannot be installed because npm is unreachable.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { S3Client, S3Error, type S3Options } from "../../lib/backup/s3.ts";
import { sha256Hex, signRequest } from "../../lib/backup/sigv4.ts";
import { type S3Server, s3Unavailable, startS3Server } from "../util/s3_server.ts";

const unavailable = await s3Unavailable();
if (unavailable) console.log(`SKIP S3 client tests (tests/backup/s3_test.ts): ${unavailable}`);
const ignore = unavailable !== undefined;

function clientFor(s: S3Server, over: Partial<S3Options> = {}): S3Client {
  return new S3Client({
    endpoint: s.endpoint,
    region: "",
    bucket: "b1",
    accessKeyId: s.accessKeyId,
    secretAccessKey: s.secretAccessKey,
    forcePathStyle: true,
    ...over,
  });
}

async function withS3(
  fn: (s: S3Server, tmp: string) => Promise<void>,
  buckets = ["b1"],
): Promise<void> {
  const s = await startS3Server({ buckets });
  const tmp = await Deno.makeTempDir({ prefix: "raftlite-s3-test-" });
  try {
    await fn(s, tmp);
  } finally {
    await s.close();
    await Deno.remove(tmp, { recursive: true });
  }
}

function randomBytes(n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let off = 0; off < n; off += 65536) crypto.getRandomValues(b.subarray(off, off + 65536));
  return b;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/** Records each request's method and URL while `fn` runs; requests still go to the real server. */
async function recordingRequests(fn: () => Promise<void>): Promise<string[]> {
  const seen: string[] = [];
  const real = globalThis.fetch;
  globalThis.fetch = (input, init) => {
    seen.push(`${init?.method ?? "GET"} ${input instanceof URL ? input.href : String(input)}`);
    return real(input, init);
  };
  try {
    await fn();
  } finally {
    globalThis.fetch = real;
  }
  return seen;
}

async function assertS3Error(
  p: Promise<unknown>,
  status: number,
  code: string,
  message?: RegExp,
): Promise<S3Error> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof S3Error, `expected an S3Error, got ${e}`);
    assert.equal(e.code, code, e.message);
    assert.equal(e.status, status, e.message);
    if (message) assert.match(e.message, message);
    return e;
  }
  assert.fail(`expected S3Error ${status} ${code}`);
}

Deno.test({
  name: "S3: put, head and get a small file with metadata (path-style, http endpoint)",
  ignore,
  fn: () =>
    withS3(async (s, tmp) => {
      const c = clientFor(s);
      const src = join(tmp, "src.db");
      const data = randomBytes(10_000);
      await Deno.writeFile(src, data);
      const key = "backups/node-1/db.sqlite";
      const seen = await recordingRequests(() =>
        c.putFile(key, src, { "raft-index": "42", "node_id": "n-1", "sum": "abc def" })
      );
      assert.deepEqual(seen, [`PUT ${s.endpoint}/b1/backups/node-1/db.sqlite`], "one PUT");

      const h = await c.head(key);
      assert.deepEqual(h, {
        sizeBytes: 10_000,
        metadata: { "raft-index": "42", "node_id": "n-1", "sum": "abc def" },
      });

      const dst = join(tmp, "dst.db");
      assert.equal(await c.getToFile(key, dst, 10_000), true);
      assert.deepEqual(await Deno.readFile(dst), data);
      // Downloading again replaces the file.
      await Deno.writeFile(dst, randomBytes(50_000));
      assert.equal(await c.getToFile(key, dst, 1 << 20), true);
      assert.deepEqual(await Deno.readFile(dst), data);

      // An empty file, and overwriting a key.
      await Deno.writeFile(src, new Uint8Array());
      await c.putFile(key, src, {});
      assert.deepEqual(await c.head(key), { sizeBytes: 0, metadata: {} });
      assert.equal(await c.getToFile(key, dst, 0), true);
      assert.equal((await Deno.readFile(dst)).length, 0);

      assert.equal(c.describe(key), "s3://b1/backups/node-1/db.sqlite");
    }),
});

Deno.test({
  name: "S3: a file larger than the part size goes up as a multipart upload, bytes identical",
  ignore,
  fn: () =>
    withS3(async (s, tmp) => {
      const c = clientFor(s, { partSizeBytes: 64 * 1024 });
      const src = join(tmp, "big.db");
      const data = randomBytes(300 * 1024 + 123);
      await Deno.writeFile(src, data);
      const seen = await recordingRequests(() => c.putFile("big.db", src, { "raft-index": "7" }));
      const base = `${s.endpoint}/b1/big.db`;
      assert.equal(seen[0], `POST ${base}?uploads=`);
      const parts = seen.filter((r) => r.startsWith(`PUT ${base}?partNumber=`));
      assert.equal(parts.length, 5, "300 KiB + 123 bytes in 64 KiB parts");
      assert.match(seen.at(-1)!, new RegExp(`^POST ${base}\\?uploadId=`));
      assert.equal(seen.length, 7);

      assert.deepEqual(await c.head("big.db"), {
        sizeBytes: data.length,
        metadata: { "raft-index": "7" },
      });
      const dst = join(tmp, "big.out");
      assert.equal(await c.getToFile("big.db", dst, data.length), true);
      assert.deepEqual(await Deno.readFile(dst), data);

      // Exactly one part's size is still a single PUT.
      await Deno.writeFile(src, data.subarray(0, 64 * 1024));
      const one = await recordingRequests(() => c.putFile("exact.db", src, {}));
      assert.deepEqual(one, [`PUT ${s.endpoint}/b1/exact.db`]);
    }),
});

Deno.test({
  name:
    "S3: missing key → head undefined, getToFile false and no file; over maxBytes → error, no file",
  ignore,
  fn: () =>
    withS3(async (s, tmp) => {
      const c = clientFor(s);
      const dst = join(tmp, "out.db");
      assert.equal(await c.head("nope"), undefined);
      assert.equal(await c.getToFile("nope", dst, 1000), false);
      assert.equal(await exists(dst), false);

      const src = join(tmp, "src.db");
      await Deno.writeFile(src, randomBytes(5000));
      await c.putFile("five", src, {});
      await assertS3Error(c.getToFile("five", dst, 4999), 200, "ObjectTooLarge", /4999/);
      assert.equal(await exists(dst), false, "no file left");
      // A file already at the path is removed too: it would be a partial object.
      await Deno.writeFile(dst, new Uint8Array([1, 2, 3]));
      await assertS3Error(c.getToFile("five", dst, 10), 200, "ObjectTooLarge");
      assert.equal(await exists(dst), false);
    }),
});

Deno.test({
  name: "S3: list follows continuation tokens, stops at maxKeys, honours the prefix",
  ignore,
  fn: () =>
    withS3(async (s, tmp) => {
      const c = clientFor(s, { listPageSize: 2 });
      const src = join(tmp, "x");
      await Deno.writeFile(src, new Uint8Array([1]));
      const want: string[] = [];
      for (let i = 0; i < 7; i++) {
        const key = `backups/db-${String(i).padStart(2, "0")}`;
        await c.putFile(key, src, {});
        want.push(key);
      }
      await c.putFile("other/db-99", src, {});
      await c.putFile("backupsX", src, {});

      const seen: string[] = [];
      const all = await (async () => {
        let keys: string[] = [];
        seen.push(
          ...await recordingRequests(async () => {
            keys = await c.list("backups/", 100);
          }),
        );
        return keys;
      })();
      assert.deepEqual(all, want);
      assert.equal(seen.length, 4, "7 keys in pages of 2");
      assert.ok(seen.slice(1).every((r) => r.includes("continuation-token=")), seen.join("\n"));

      assert.deepEqual(await c.list("backups/", 3), want.slice(0, 3));
      assert.deepEqual(await c.list("backups/", 0), []);
      assert.deepEqual(await c.list("nothing/", 10), []);
      assert.equal((await c.list("", 100)).length, 9);
    }),
});

Deno.test({
  name: "S3: a wrong secret is 403 SignatureDoesNotMatch with a hint, and stores nothing",
  ignore,
  fn: () =>
    withS3(async (s, tmp) => {
      const src = join(tmp, "src.db");
      await Deno.writeFile(src, randomBytes(1000));
      const bad = clientFor(s, { secretAccessKey: "WRONG" });
      const e = await assertS3Error(
        bad.putFile("k", src, {}),
        403,
        "SignatureDoesNotMatch",
        /^S3 PUT s3:\/\/b1\/k failed: 403 SignatureDoesNotMatch: .+; check secret_access_key$/,
      );
      assert.ok(e.message.length < 1000, e.message);
      // The multipart path fails at its first request, leaving nothing either.
      const badParts = clientFor(s, { secretAccessKey: "WRONG", partSizeBytes: 100 });
      await assertS3Error(badParts.putFile("k2", src, {}), 403, "SignatureDoesNotMatch");
      await assertS3Error(bad.list("", 10), 403, "SignatureDoesNotMatch");
      // HEAD has no body: the code comes from the status.
      await assertS3Error(bad.head("k"), 403, "Forbidden");

      const good = clientFor(s);
      assert.equal(await good.head("k"), undefined);
      assert.deepEqual(await good.list("", 10), []);

      const badKey = clientFor(s, { accessKeyId: "NOBODY" });
      await assertS3Error(badKey.list("", 10), 403, "InvalidAccessKeyId", /check access_key_id/);
    }),
});

Deno.test({
  name:
    "S3 test server: it rejects a body whose SHA-256 is not the signed one, accepts the right one",
  ignore,
  fn: () =>
    withS3(async (s) => {
      const put = async (signedBody: string, sentBody: string) => {
        const url = new URL(`${s.endpoint}/b1/raw`);
        const headers = new Headers();
        signRequest(
          { method: "PUT", url, headers, payloadSha256Hex: sha256Hex(signedBody) },
          { accessKeyId: s.accessKeyId, secretAccessKey: s.secretAccessKey },
          "us-east-1",
          "s3",
          new Date(),
        );
        const res = await fetch(url, { method: "PUT", headers, body: sentBody });
        return [res.status, await res.text()] as const;
      };
      const [status, body] = await put("hello", "hellO");
      assert.equal(status, 400);
      assert.match(body, /<Code>XAmzContentSHA256Mismatch<\/Code>/);
      assert.equal(await clientFor(s).head("raw"), undefined);
      assert.equal((await put("hello", "hello"))[0], 200);
      assert.equal((await clientFor(s).head("raw"))?.sizeBytes, 5);
    }),
});

Deno.test({
  name: "S3: a missing bucket is 404 NoSuchBucket naming the bucket, for put, get and list",
  ignore,
  fn: () =>
    withS3(async (s, tmp) => {
      const c = clientFor(s, { bucket: "no-such-bucket" });
      const src = join(tmp, "src.db");
      await Deno.writeFile(src, randomBytes(100));
      await assertS3Error(
        c.putFile("k", src, {}),
        404,
        "NoSuchBucket",
        /^S3 PUT s3:\/\/no-such-bucket\/k failed: 404 NoSuchBucket: .+; check bucket/,
      );
      await assertS3Error(
        c.list("", 10),
        404,
        "NoSuchBucket",
        /^S3 ListObjectsV2 s3:\/\/no-such-bucket failed: 404 NoSuchBucket/,
      );
      const dst = join(tmp, "out");
      await assertS3Error(c.getToFile("k", dst, 1000), 404, "NoSuchBucket");
      assert.equal(await exists(dst), false);
    }),
});

Deno.test({
  name: "S3: keys with spaces, unicode, '+' and other reserved characters round-trip",
  ignore,
  fn: () =>
    withS3(async (s, tmp) => {
      const c = clientFor(s);
      const src = join(tmp, "src");
      const keys = [
        "with space/a b.db",
        "unicode/ünïcödé 日本語 😀.db",
        "plus/a+b=c&d.db",
        "odd/!'()*$,;:@~%25[x]{y}.db",
      ];
      for (const [i, key] of keys.entries()) {
        await Deno.writeFile(src, new TextEncoder().encode(`object ${i}`));
        await c.putFile(key, src, { "i": String(i) });
      }
      // "+" is a plus, not a space: "plus/a b=c&d.db" must not exist.
      assert.equal(await c.head("plus/a b=c&d.db"), undefined);
      for (const [i, key] of keys.entries()) {
        assert.deepEqual(await c.head(key), {
          sizeBytes: `object ${i}`.length,
          metadata: { i: String(i) },
        }, key);
        const dst = join(tmp, `out${i}`);
        assert.equal(await c.getToFile(key, dst, 100), true, key);
        assert.equal(await Deno.readTextFile(dst), `object ${i}`, key);
      }
      assert.deepEqual((await c.list("", 100)).sort(), [...keys].sort());
      assert.deepEqual(await c.list("unicode/ünï", 100), [keys[1]]);
      assert.deepEqual(await c.list("plus/a+", 100), [keys[2]]);
    }),
});

Deno.test({
  name: "S3: a caller's abort rejects with its reason; no server → NetworkError",
  ignore,
  fn: () =>
    withS3(async (s, tmp) => {
      const c = clientFor(s);
      const src = join(tmp, "src");
      await Deno.writeFile(src, new Uint8Array(10));
      const ac = new AbortController();
      const reason = new Error("shutting down");
      ac.abort(reason);
      await assert.rejects(c.putFile("k", src, {}, ac.signal), (e) => e === reason);
      await assert.rejects(c.list("", 10, ac.signal), (e) => e === reason);
      assert.equal(await clientFor(s).head("k"), undefined);

      // A port nothing listens on.
      const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      const port = l.addr.port;
      l.close();
      const dead = clientFor(s, { endpoint: `http://127.0.0.1:${port}` });
      await assertS3Error(dead.head("k"), 0, "NetworkError", /check endpoint/);
    }),
});

Deno.test("S3: a server that never answers → Timeout after requestTimeoutMs", async () => {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns: Deno.Conn[] = [];
  const accepting = (async () => {
    try {
      for await (const conn of l) conns.push(conn);
    } catch { /* closed */ }
  })();
  try {
    const c = new S3Client({
      endpoint: `http://127.0.0.1:${l.addr.port}`,
      region: "us-east-1",
      bucket: "b1",
      accessKeyId: "a",
      secretAccessKey: "s",
      forcePathStyle: true,
      requestTimeoutMs: 200,
    });
    const t0 = performance.now();
    await assertS3Error(c.head("k"), 0, "Timeout", /no response within 200 ms/);
    assert.ok(performance.now() - t0 < 5000);
  } finally {
    l.close();
    await accepting;
    for (const conn of conns) conn.close();
  }
});

Deno.test("S3: options and keys are checked before any request", () => {
  const base: S3Options = {
    endpoint: "",
    region: "",
    bucket: "b1",
    accessKeyId: "a",
    secretAccessKey: "s",
    forcePathStyle: false,
  };
  assert.equal(new S3Client(base).describe("x/y"), "s3://b1/x/y");
  new S3Client({ ...base, endpoint: "minio.internal:9000" });
  new S3Client({ ...base, endpoint: "https://s3.example.com/" });
  assert.throws(() => new S3Client({ ...base, bucket: "" }), /invalid bucket/);
  assert.throws(() => new S3Client({ ...base, secretAccessKey: "" }), /secret_access_key/);
  assert.throws(() => new S3Client({ ...base, endpoint: "ftp://h" }), /http or https/);
  assert.throws(() => new S3Client({ ...base, endpoint: "http://h/path" }), /host and port only/);
  assert.throws(() => new S3Client({ ...base, partSizeBytes: 0 }), /part size/);
  assert.throws(() => new S3Client({ ...base, listPageSize: 1001 }), /page size/);
  assert.throws(() => new S3Client({ ...base, requestTimeoutMs: 0 }), /timeout/);
});

Deno.test("S3: bad keys and metadata are refused without a request", async () => {
  const c = new S3Client({
    endpoint: "http://127.0.0.1:9",
    region: "",
    bucket: "b1",
    accessKeyId: "a",
    secretAccessKey: "s",
    forcePathStyle: true,
  });
  await assert.rejects(c.head("a/../b"), /"\." or "\.\." segment/);
  await assert.rejects(c.head("./b"), /segment/);
  await assert.rejects(c.head(""), /1 to 1024 bytes/);
  await assert.rejects(c.head("x".repeat(1025)), /1 to 1024 bytes/);
  await assert.rejects(c.head("a\nb"), /control characters/);
  await assert.rejects(c.putFile("k", "/nonexistent", { "Upper": "x" }), /metadata name/);
  await assert.rejects(c.putFile("k", "/nonexistent", { "k": "é" }), /printable ASCII/);
  await assert.rejects(c.putFile("k", "/nonexistent", { "k": "x".repeat(3000) }), /2048/);
});
