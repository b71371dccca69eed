/**
 * A node with too many writes pending refuses new ones with 503 and a
 * Retry-After hint (nothing is proposed) instead of queueing without bound.
 */

import assert from "node:assert/strict";
import { StoreBusyError } from "../../lib/store/store.ts";
import { post, withNode } from "./helpers.ts";

Deno.test("busy: a full proposal queue answers 503 with Retry-After, nothing written", async () => {
  await withNode([], async (n) => {
    assert.equal((await post(n, "/db/execute", ["CREATE TABLE t(x)"])).status, 200);
    const store = n.node.store();
    assert.ok(store !== undefined);
    // The driver refuses beyond its bound of pending proposals; stand in for it.
    const execute = store.execute.bind(store);
    store.execute = () =>
      Promise.reject(new StoreBusyError("10000 proposals pending; retry shortly"));
    try {
      const r = await post(n, "/db/execute", [["INSERT INTO t VALUES(?)", 1]]);
      assert.equal(r.status, 503);
      assert.equal(r.headers.get("Retry-After"), "1");
      assert.match(r.text, /node busy: 10000 proposals pending.*nothing was written/);
    } finally {
      store.execute = execute;
    }
    const rows = await post(n, "/db/query", ["SELECT count(*) FROM t"]);
    assert.match(rows.text, /"values":\[\[0\]\]/);
  });
});
