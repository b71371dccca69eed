/**
 * Behaviour every request shares (rqlite-api.md §0, §1): rqlite's headers on
 * every response, OPTIONS, routing (404/405/302), query-string validation on
 * any path, CORS, the served-by header, and the request body bound.
 */

import assert from "node:assert/strict";
import {
  assertEmpty,
  assertJson,
  assertTextError,
  get,
  parse,
  post,
  queryPath,
  type Reply,
  send,
  type TestNode,
  withNode,
} from "./helpers.ts";

const noFollow: RequestInit = { redirect: "manual" };

Deno.test("global: headers, routing and query-string validation", async (t) => {
  await withNode([], async (node) => {
    const step = (name: string, fn: (n: TestNode) => Promise<void>) => t.step(name, () => fn(node));
    const version = parse(await get(node, "/status")).build.version as string;

    await step("X-RQLITE-VERSION on every response", async (n) => {
      assert.match(version, /^v\d+\.\d+\.\d+/);
      const replies: Reply[] = [
        await get(n, "/status"),
        await post(n, "/db/execute", ["CREATE TABLE g_v (x)"]),
        await get(n, queryPath("SELECT 1")),
        await get(n, "/no/such/path"),
        await get(n, "/db/execute"),
        await post(n, "/db/execute", "nope"),
        await get(n, "/status?timeout=bad"),
        await send(n, "/db/query", { method: "OPTIONS" }),
        await send(n, "/", noFollow),
        await get(n, "/readyz"),
        await get(n, "/debug/vars"),
      ];
      for (const r of replies) {
        assert.equal(r.headers.get("x-rqlite-version"), version, `${r.status} ${r.text}`);
      }
    });

    await step("OPTIONS on any path is 200 with an empty body, before anything else", async (n) => {
      for (
        const path of [
          "/",
          "/db/execute",
          "/db/query?q=",
          "/no/such",
          "/status?timeout=zz",
          "/leader",
        ]
      ) {
        const r = await send(n, path, { method: "OPTIONS" });
        assertEmpty(r, 200);
        assert.equal(r.headers.get("access-control-allow-methods"), "OPTIONS, GET, POST");
      }
    });

    await step("unknown paths are 404 with an empty body", async (n) => {
      for (
        const path of [
          "/nope",
          "/db",
          "/db/",
          "/db/nothing",
          "/leader/x",
          "/debug/vars/x",
          "/debug",
        ]
      ) {
        assertEmpty(await get(n, path), 404);
      }
      assertEmpty(await post(n, "/nope", ["SELECT 1"]), 404);
    });

    await step("/ redirects to /console/ (302), /console to /console/ (301)", async (n) => {
      const root = await send(n, "/", noFollow);
      assert.equal(root.status, 302);
      assert.equal(root.headers.get("location"), "/console/");
      const rootPost = await send(n, "/", { method: "POST", redirect: "manual" });
      assert.equal(rootPost.status, 302);
      const console = await send(n, "/console", noFollow);
      assert.equal(console.status, 301);
      assert.equal(console.headers.get("location"), "/console/");
    });

    await step("paths match by prefix as rqlite's mux does", async (n) => {
      assertJson(
        await get(n, "/db/query/extra?q=SELECT%201"),
        '{"results":[{"columns":["1"],"types":["integer"],"values":[[1]]}]}',
      );
      assert.equal((await get(n, "/status/x")).status, 200);
      assert.equal((await get(n, "/readyz/x")).status, 200);
    });

    await step("query-string validation errors on any path", async (n) => {
      const cases: [string, string][] = [
        ["freshness_strict", "freshness_strict requires freshness"],
        ["freshness_strict&level=none", "freshness_strict requires freshness"],
        ["timeout=5", "timeout is not a valid duration"],
        ["timeout=abc", "timeout is not a valid duration"],
        ["freshness=1", "freshness is not a valid duration"],
        ["db_timeout=1x", "db_timeout is not a valid duration"],
        ["linearizable_timeout=10", "linearizable_timeout is not a valid duration"],
        ["retries=x", "retries is not a valid integer"],
        ["retries=1.5", "retries is not a valid integer"],
        ["trailing_logs=many", "trailing_logs is not a valid integer"],
        ["q=", "query parameter not set"],
      ];
      for (const path of ["/db/query", "/db/execute", "/status", "/nope", "/", "/readyz"]) {
        for (const [qs, message] of cases) {
          const r = await send(n, `${path}?${qs}`, noFollow);
          assertTextError(r, 400, message);
          assert.equal(r.headers.get("x-rqlite-version"), version);
        }
      }
      // Valid durations and integers pass.
      for (
        const qs of [
          "timeout=0",
          "timeout=500ms",
          "timeout=1m30s",
          "freshness=1h&freshness_strict",
          "retries=3",
        ]
      ) {
        assert.equal((await get(n, `/status?${qs}`)).status, 200, qs);
      }
      assertJson(
        await post(n, "/db/query?db_timeout=2s&timeout=5s&level=none&freshness=10s", ["SELECT 1"]),
        '{"results":[{"columns":["1"],"types":["integer"],"values":[[1]]}]}',
      );
    });

    await step("flags are presence flags; the first value of a repeated key wins", async (n) => {
      const pretty =
        '{\n    "results": [\n        {\n            "columns": [\n                "1"\n' +
        '            ],\n            "types": [\n                "integer"\n            ],\n' +
        '            "values": [\n                [\n                    1\n                ]\n' +
        "            ]\n        }\n    ]\n}";
      assertJson(await get(n, queryPath("SELECT 1", "pretty=false")), pretty);
      assertJson(await get(n, queryPath("SELECT 1", "pretty=0")), pretty);
      assertJson(
        await get(n, "/db/query?q=SELECT%201&q=SELECT%202"),
        '{"results":[{"columns":["1"],"types":["integer"],"values":[[1]]}]}',
      );
      // Keys are case-sensitive: PRETTY is unknown and ignored.
      assertJson(
        await get(n, queryPath("SELECT 1", "PRETTY")),
        '{"results":[{"columns":["1"],"types":["integer"],"values":[[1]]}]}',
      );
    });

    await step("X-RQLITE-SERVED-BY on execute, query and request", async (n) => {
      const self = n.url.slice("http://".length);
      const replies = [
        await post(n, "/db/execute", ["CREATE TABLE g_served (x)"]),
        await get(n, queryPath("SELECT 1")),
        await post(n, "/db/query", ["SELECT 1"]),
        await post(n, "/db/request", ["SELECT 1"]),
        await post(n, "/db/request", ["INSERT INTO g_served VALUES(1)"]),
      ];
      for (const r of replies) {
        assert.equal(r.status, 200);
        assert.equal(r.headers.get("x-rqlite-served-by"), self);
      }
    });

    await step("CORS headers without -http-allow-origin", async (n) => {
      for (
        const r of [
          await get(n, "/status"),
          await send(n, "/db/execute", { method: "OPTIONS" }),
          await get(n, "/nope"),
          await get(n, queryPath("SELECT 1")),
        ]
      ) {
        assert.equal(r.headers.get("access-control-allow-methods"), "OPTIONS, GET, POST");
        assert.equal(r.headers.get("access-control-allow-headers"), "Content-Type");
        assert.equal(r.headers.get("access-control-allow-origin"), null);
        assert.equal(r.headers.get("access-control-allow-credentials"), null);
        assert.equal(r.headers.get("www-authenticate"), null);
      }
    });

    await step("content types: JSON and plain-text errors", async (n) => {
      const ok = await get(n, queryPath("SELECT 1"));
      assert.equal(ok.headers.get("content-type"), "application/json; charset=utf-8");
      const bad = await post(n, "/db/execute", "[");
      assertTextError(bad, 400, "invalid JSON body");
    });
  });
});

Deno.test("global: -http-allow-origin and -max-body-bytes", async (t) => {
  await withNode(
    ["-http-allow-origin", "https://example.com", "-max-body-bytes", "2048"],
    async (n) => {
      await t.step("Access-Control-Allow-Origin on every response", async () => {
        for (
          const r of [
            await get(n, "/status"),
            await send(n, "/anything", { method: "OPTIONS" }),
            await get(n, "/nope"),
            await get(n, "/db/execute"),
            await get(n, queryPath("SELECT 1")),
            await get(n, "/status?retries=x"),
          ]
        ) {
          assert.equal(r.headers.get("access-control-allow-origin"), "https://example.com");
          assert.equal(r.headers.get("access-control-allow-methods"), "OPTIONS, GET, POST");
          assert.equal(r.headers.get("access-control-allow-headers"), "Content-Type");
        }
        assert.equal(parse(await get(n, "/status")).http.allow_origin, "https://example.com");
      });

      await t.step("a body within the limit is served", async () => {
        const body = JSON.stringify([`SELECT '${"a".repeat(1900)}' AS s`]);
        assert.ok(body.length < 2048);
        const r = await post(n, "/db/query", body);
        assert.equal(parse(r).results[0].values[0][0].length, 1900);
      });

      await t.step("413 for a body over the limit (Content-Length)", async () => {
        const body = JSON.stringify([`SELECT '${"a".repeat(3000)}'`]);
        for (const path of ["/db/execute", "/db/query", "/db/request"]) {
          const r = await post(n, path, body);
          assert.equal(r.status, 413, path);
          assert.equal(r.headers.get("content-type"), "text/plain; charset=utf-8");
          assert.match(r.text, /too large/);
          assert.match(r.text, /2048/);
          assert.ok(r.text.endsWith("\n"));
        }
      });

      await t.step("413 for a chunked body that grows over the limit", async () => {
        const chunk = new TextEncoder().encode(" ".repeat(512));
        let sent = 0;
        const stream = new ReadableStream<Uint8Array>({
          pull(c) {
            if (sent >= 10) return c.close();
            sent++;
            c.enqueue(chunk);
          },
        });
        const r = await send(n, "/db/execute", {
          method: "POST",
          body: stream,
          headers: { "Content-Type": "application/json" },
        });
        assert.equal(r.status, 413);
        assert.match(r.text, /too large/);
        // The node still serves afterwards.
        assertJson(
          await post(n, "/db/query", ["SELECT 1"]),
          '{"results":[{"columns":["1"],"types":["integer"],"values":[[1]]}]}',
        );
      });
    },
  );
});
