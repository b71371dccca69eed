/**
 * The HTTP ceiling: a trivial `Deno.serve` handler that speaks just enough of
 * rqlite's data API for the benchmark's wrk scripts, with no database and no
 * Raft behind it. What raftlite does per request is measured as a fraction of
 * what this does on the same machine in the same run.
 *
 * - `POST /db/execute`: parses the JSON body with `await req.json()` and
 *   answers `{"results":[{"last_insert_id":1,"rows_affected":1}]}`.
 * - `GET /db/query?q=...`: reads `q` from the URL and answers one row in
 *   rqlite's shape, `{"results":[{"columns":[...],"types":[...],"values":[[...]]}]}`.
 * - `POST /db/query`: parses the JSON body with `await req.json()` and
 *   answers one row in the same shape.
 * - `GET /readyz`: `[+]node ok`.
 * - `POST /upload?path=P`: streams the body into a new file P, fsyncs it and
 *   answers `{"bytes":N}` (the ceiling of an upload such as `POST /boot`);
 *   without `path` the body is only counted.
 * - `GET /download?path=P`: streams the file P (the ceiling of a download
 *   such as `GET /db/backup`).
 *
 * The file endpoints need read/write permission for the paths used; without
 * it they answer 500.
 *
 * Run: `deno run --allow-net bench/lib/ceiling_server.ts <port>` (127.0.0.1),
 * plus `--allow-read=<dir> --allow-write=<dir>` for the file endpoints.
 *
 * @module
 */

const EXECUTE_RESULT = { results: [{ last_insert_id: 1, rows_affected: 1 }] };
const QUERY_RESULT = {
  results: [{
    columns: ["value"],
    types: ["text"],
    values: [["0123456789abcdef0123456789abcdef"]],
  }],
};

/** Handles one request; exported so it can be exercised without a socket. */
export async function handle(req: Request): Promise<Response> {
  const url = new URL(req.url);
  if (url.pathname === "/db/execute" && req.method === "POST") {
    const body: unknown = await req.json();
    if (!Array.isArray(body) || body.length === 0) {
      return new Response("invalid request\n", { status: 400 });
    }
    return Response.json(EXECUTE_RESULT);
  }
  if (url.pathname === "/db/query" && req.method === "GET") {
    const q = url.searchParams.get("q") ?? "";
    const id = Number(/id=(\d+)/.exec(q)?.[1] ?? 0);
    return Response.json({
      results: [{
        columns: ["id", "v"],
        types: ["integer", "text"],
        values: [[id, "0123456789abcdef0123456789abcdef"]],
      }],
    });
  }
  if (url.pathname === "/db/query" && req.method === "POST") {
    const body: unknown = await req.json();
    if (!Array.isArray(body) || body.length === 0) {
      return new Response("invalid request\n", { status: 400 });
    }
    return Response.json(QUERY_RESULT);
  }
  if (url.pathname === "/readyz") return new Response("[+]node ok\n");
  if (url.pathname === "/upload" && req.method === "POST") {
    return await upload(req.body, url.searchParams.get("path"));
  }
  if (url.pathname === "/download" && req.method === "GET") {
    const path = url.searchParams.get("path");
    if (path === null) return new Response("path not specified\n", { status: 400 });
    try {
      const file = await Deno.open(path);
      return new Response(file.readable, {
        headers: { "Content-Type": "application/octet-stream" },
      });
    } catch (e) {
      return new Response(`${e}\n`, { status: 500 });
    }
  }
  return new Response(null, { status: 404 });
}

async function upload(
  body: ReadableStream<Uint8Array> | null,
  path: string | null,
): Promise<Response> {
  let bytes = 0;
  let file: Deno.FsFile | undefined;
  try {
    if (path !== null) file = await Deno.open(path, { write: true, createNew: true });
    if (body !== null) {
      for await (const chunk of body) {
        bytes += chunk.byteLength;
        // writeSync: in Deno 2.9, awaiting a file.write between reads of a
        // body sent by Deno's fetch makes the server buffer the body and slow
        // down more than linearly (256 MiB: ~45 s, vs ~1 s with writeSync).
        if (file !== undefined) {
          for (let off = 0; off < chunk.byteLength;) off += file.writeSync(chunk.subarray(off));
        }
      }
    }
    await file?.sync();
  } catch (e) {
    return new Response(`${e}\n`, { status: 500 });
  } finally {
    file?.close();
  }
  return Response.json({ bytes });
}

if (import.meta.main) {
  const port = Number(Deno.args[0]);
  if (!Number.isInteger(port) || port <= 0) {
    console.error("usage: ceiling_server.ts <port>");
    Deno.exit(2);
  }
  Deno.serve({ hostname: "127.0.0.1", port, onListen: () => {} }, handle);
}
