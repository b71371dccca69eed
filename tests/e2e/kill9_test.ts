/**
 * Crash durability (issue [2/8]): 16 clients write to a real node process,
 * it gets SIGKILL mid-load, and a restart on the same data directory must
 * show every acknowledged write, nothing that was never sent, no
 * duplicates, and every multi-statement transaction all or nothing.
 * Run in the default (in-memory SQLite) mode and with `-on-disk`.
 */

import assert from "node:assert/strict";
import { respawnNode, spawnNode } from "../util/node.ts";
import {
  acknowledged,
  mustExecute,
  post,
  queryRows,
  sleep,
  startTracked,
  withNodes,
} from "./helpers.ts";

const CLIENTS = 16;
/** Client 15 sends 3-row transactions; the others single-row INSERTs. */
const TX_CLIENT = CLIENTS - 1;
const TX_ROWS = 3;
const LOAD_BEFORE_KILL_MS = 1_750;
/** How long clients keep trying after the kill (they see failures). */
const LOAD_AFTER_KILL_MS = 300;
/** Bound on requests per client, so a fast machine cannot run away. */
const MAX_REQUESTS_PER_CLIENT = 20_000;

const INSERT = "INSERT INTO t(id, client, seq) VALUES(?,?,?)";

/** id of row `k` of request `seq` of `client`: unique and decodable. */
function rowId(client: number, seq: number, k = 0): number {
  return client * 10_000_000 + seq * TX_ROWS + k;
}

/**
 * acked: HTTP 200, no error, rows_affected 1 for each statement.
 * unacked: anything else while the node may have been alive (it may or may not be applied).
 * unsent: failed and started after the node's death was observed, so no server can have it.
 * (A "connection refused" alone proves nothing: Deno's fetch silently retries a POST whose
 * pooled connection closed without an answer, and reports the retry's refusal although the
 * first attempt reached the server — seen in this test's first runs.)
 */
type Outcome = "acked" | "unacked" | "unsent";

interface ClientLog {
  client: number;
  /** Outcome per request seq (index = seq). */
  outcomes: Outcome[];
}

/** One client: sends requests one after the other until `stop()` is true, recording each outcome. */
async function runClient(
  url: string,
  client: number,
  stop: () => boolean,
  dead: () => boolean,
): Promise<ClientLog> {
  const outcomes: Outcome[] = [];
  for (let seq = 0; seq < MAX_REQUESTS_PER_CLIENT && !stop(); seq++) {
    const tx = client === TX_CLIENT;
    const stmts: [string, ...unknown[]][] = tx
      ? Array.from({ length: TX_ROWS }, (_, k) => [INSERT, rowId(client, seq, k), client, seq])
      : [[INSERT, rowId(client, seq), client, seq]];
    let outcome: Outcome;
    const startedDead = dead();
    try {
      const a = await post(url, tx ? "/db/execute?transaction" : "/db/execute", stmts, 5_000);
      outcome = acknowledged(a, stmts.length) ? "acked" : "unacked";
    } catch {
      outcome = startedDead ? "unsent" : "unacked";
      // Do not spin hot while the node is down.
      await sleep(10);
    }
    outcomes[seq] = outcome;
  }
  return { client, outcomes };
}

async function crashAndCheck(flags: string[]): Promise<void> {
  await withNodes("kill9", async (dir, track) => {
    const first = await startTracked(track, () => spawnNode(dir, flags));
    await mustExecute(first.url, [
      "CREATE TABLE t(id INTEGER PRIMARY KEY, client INTEGER NOT NULL, seq INTEGER NOT NULL)",
    ]);

    let stopped = false;
    let dead = false;
    const clients = Array.from(
      { length: CLIENTS },
      (_, c) => runClient(first.url, c, () => stopped, () => dead),
    );
    let logs: ClientLog[];
    try {
      await sleep(LOAD_BEFORE_KILL_MS);
      const status = await first.kill("SIGKILL");
      dead = true;
      assert.equal(status.signal, "SIGKILL", "the node died of the SIGKILL");
      await sleep(LOAD_AFTER_KILL_MS);
    } finally {
      stopped = true;
      logs = await Promise.all(clients);
    }

    // What every request ended as.
    const sent = new Map<number, { client: number; seq: number; outcome: Outcome }>();
    let acked = 0, unacked = 0, unsent = 0;
    for (const { client, outcomes } of logs) {
      for (const [seq, outcome] of outcomes.entries()) {
        const rows = client === TX_CLIENT ? TX_ROWS : 1;
        for (let k = 0; k < rows; k++) sent.set(rowId(client, seq, k), { client, seq, outcome });
        if (outcome === "acked") acked++;
        else if (outcome === "unacked") unacked++;
        else unsent++;
      }
    }
    assert(acked > 100, `the load ran before the kill (acknowledged ${acked})`);
    assert(unsent > 0, "clients kept going after the kill and saw failures");
    const txAcked = logs[TX_CLIENT]!.outcomes.filter((o) => o === "acked").length;
    assert(txAcked > 0, "some transactions were acknowledged");

    // Restart on the same data dir and addresses (same node id).
    const second = await startTracked(track, () => respawnNode(first, flags));
    const rows = await queryRows(second.url, "SELECT id, client, seq FROM t ORDER BY id", "strong");

    // No duplicate ids, every row was sent, and its columns are the ones sent.
    const present = new Set<number>();
    for (const row of rows) {
      const [id, client, seq] = row as [number, number, number];
      assert(!present.has(id), `duplicate id ${id}`);
      present.add(id);
      const s = sent.get(id);
      assert(s !== undefined, `row ${id} was never sent`);
      assert.deepEqual([client, seq], [s.client, s.seq], `row ${id} has the values sent`);
      assert(s.outcome !== "unsent", `row ${id} came from a request sent after the node died`);
    }
    // Every acknowledged row survived.
    const lost = [...sent].filter(([id, s]) => s.outcome === "acked" && !present.has(id));
    assert.equal(lost.length, 0, `acknowledged rows lost: ${lost.slice(0, 10).map(([id]) => id)}`);
    // Count = acknowledged rows + some of the in-flight unacknowledged ones.
    const ackedRows = [...sent.values()].filter((s) => s.outcome === "acked").length;
    const unackedRows = [...sent.values()].filter((s) => s.outcome === "unacked").length;
    assert(
      rows.length >= ackedRows && rows.length <= ackedRows + unackedRows,
      `row count ${rows.length} within [${ackedRows}, ${ackedRows + unackedRows}]`,
    );
    // Transactions: each batch has 0 or 3 rows; acknowledged ones have 3.
    const batches = await queryRows(
      second.url,
      `SELECT seq, count(*) FROM t WHERE client = ${TX_CLIENT} GROUP BY seq ORDER BY seq`,
      "strong",
    );
    for (const [seq, n] of batches as [number, number][]) {
      assert.equal(n, TX_ROWS, `transaction batch ${seq} is all or nothing`);
    }
    const presentBatches = new Set(batches.map(([seq]) => seq as number));
    for (const [seq, o] of logs[TX_CLIENT]!.outcomes.entries()) {
      if (o === "acked") assert(presentBatches.has(seq), `acknowledged batch ${seq} present`);
    }

    // The restarted node takes writes again.
    const after = await post(second.url, "/db/execute", [[INSERT, rowId(CLIENTS, 0), CLIENTS, 0]]);
    assert(acknowledged(after, 1), `write after restart: ${after.text}`);

    console.log(
      `kill9 ${flags.join(" ") || "(in-memory)"}: ${acked} acked, ${unacked} in flight ` +
        `(${
          rows.length - ackedRows
        } of their ${unackedRows} rows applied), ${unsent} sent after the kill`,
    );
    await second.kill("SIGKILL");
  });
}

Deno.test("kill -9 mid-load: acknowledged writes survive, nothing else appears (in-memory)", () =>
  crashAndCheck([]));

Deno.test("kill -9 mid-load: acknowledged writes survive, nothing else appears (-on-disk)", () =>
  crashAndCheck(["-on-disk"]));
