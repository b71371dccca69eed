/**
 * # lib/cluster — the cluster service (mux service byte 2)
 *
 * What it owns: how one raftlite node asks another to do something that is
 * not Raft replication itself (rqlite-api.md §9): forwarded execute / query
 * / request (leader forwarding, §11), node metadata (how /nodes, /leader,
 * /readyz and redirects learn a node's HTTP URL), join, bootstrap-expect
 * notify, remove and stepdown.
 *
 * - `protocol.ts` — the messages: a small binary header (version, type,
 *   request id, timeout, optional credentials) and a body of plain values,
 *   checked field by field on receipt. Commands travel as lib/db's command
 *   codec bytes, results as they come out of the store.
 * - `value_codec.ts` — the exact binary encoding of those plain values
 *   (`bigint` beyond 2^53, `Uint8Array`, -0 and NaN survive; garbage throws
 *   a typed error, never allocates beyond its input).
 * - `server.ts` — {@link ClusterServer}: persistent connections from the
 *   mux, pipelined requests answered by id, and the {@link ClusterHandlers}
 *   interface the node implements.
 * - `client.ts` — {@link ClusterClient}: pooled, pipelined connections per
 *   target, per-request deadlines, bounded in-flight requests.
 * - `frame_queue.ts` — per-connection outgoing frames, coalesced into one
 *   write per batch (internal).
 * - `errors.ts` — the client's errors ({@link RemoteError} keeps the remote
 *   text exactly, e.g. `not leader`, `stale read`) and the server's mapping
 *   of handler errors to codes.
 *
 * Invariants:
 * - One frame is one message; a frame that cannot be decoded closes that
 *   connection only; every decoded body is type-checked before it reaches a
 *   handler or a caller.
 * - Every request gets exactly one outcome: a response, a timeout, a
 *   connection error or a closed-client error — never silence. The server
 *   answers a request whose deadline passed with a `timeout` error and
 *   aborts its handler's signal.
 * - Everything is bounded: frame size (the transport's maximum), connections
 *   (server 512, client per target), in-flight requests per connection
 *   (server: back-pressure by not reading) and per target (client: busy
 *   error), idle connections (server 30 s, client 20 s).
 * - Nothing is retried here: a forwarded write whose connection broke may
 *   have applied; the caller decides (`ClusterConnectionError.sent`).
 *
 * Why not rqlite's wire format: raftlite nodes only talk to raftlite nodes,
 * so the commands and their semantics follow rqlite, the bytes need not.
 * Why not `node:v8` serialize (exact too): in Deno it walks values in
 * JavaScript with an op per value, about 10 µs per small message, several
 * times the cost of the tagged codec here, and its format is not ours.
 * lib/cluster sits below lib/store: it knows the store's errors by name
 * only, and the store (or the server wiring) implements the handlers.
 *
 * @module
 */

export * from "./protocol.ts";
export * from "./errors.ts";
export * from "./server.ts";
export * from "./client.ts";
export * from "./value_codec.ts";
