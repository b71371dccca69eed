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
 * - `GET /readyz`: `[+]node ok`.
 *
 * Run: `deno run --allow-net bench/lib/ceiling_server.ts <port>` (127.0.0.1).
 *
 * @module
 */

const EXECUTE_RESULT = { results: [{ last_insert_id: 1, rows_affected: 1 }] };

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
  if (url.pathname === "/readyz") return new Response("[+]node ok\n");
  return new Response(null, { status: 404 });
}

if (import.meta.main) {
  const port = Number(Deno.args[0]);
  if (!Number.isInteger(port) || port <= 0) {
    console.error("usage: ceiling_server.ts <port>");
    Deno.exit(2);
  }
  Deno.serve({ hostname: "127.0.0.1", port, onListen: () => {} }, handle);
}
