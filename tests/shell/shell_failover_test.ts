/**
 * The shell against a 3-node cluster through a real terminal (tmux):
 * connected to n1 with `-a n2,n3`, it keeps working when n1 is killed —
 * the next statement reaches n2, the prompt follows — and the cluster
 * commands (.nodes, .leader, .stepdown to a named node, .remove, .sysdump
 * of every node) act on the live cluster.
 */

import assert from "node:assert/strict";
import { withCluster } from "../e2e/cluster/harness.ts";
import { ensureTmux, TmuxShell } from "./tmux.ts";

const skip = await ensureTmux();
if (skip !== undefined) console.warn(`SKIPPED shell failover test: ${skip}`);

Deno.test({
  name: "shell fails over to an alternative host (-a) when its node is killed",
  ignore: skip !== undefined,
  fn: async () => {
    await withCluster({ voters: 3, proxied: false, prefix: "shell" }, async (c) => {
      const [n1, n2, n3] = [c.node("n1"), c.node("n2"), c.node("n3")];
      const [host, port] = n1.httpAddr.split(":") as [string, string];
      const dir = await Deno.makeTempDir({ prefix: "raftlite-shell-failover-" });
      const sh = await TmuxShell.start(
        ["-H", host, "-p", port, "-a", `${n2.httpAddr},${n3.httpAddr}`],
        { env: { RAFTLITE_HISTFILE: "" } },
      );
      try {
        const P1 = `${n1.httpAddr}>`;
        await sh.waitFor((s) => s.split("\n").at(-1) === P1);
        assert.equal(
          await sh.run(P1, "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);"),
          "0 rows affected",
        );
        assert.equal(await sh.run(P1, "INSERT INTO t(v) VALUES ('before');"), "1 row affected");
        const nodes = await sh.run(P1, ".nodes");
        for (const n of [n1, n2, n3]) {
          assert.match(nodes, new RegExp(`\\| ${n.name} +\\| http://${n.httpAddr} +\\| `), nodes);
        }
        assert.equal(nodes.split("\n").length, 7, nodes); // rule, header, rule, 3 rows, rule

        await c.kill(n1);
        await c.waitForLeader({ timeoutMs: 30_000 });

        // The next statement goes to n2 and says so; the prompt follows.
        const P2 = `${n2.httpAddr}>`;
        const from = await sh.mark();
        await sh.line("SELECT v FROM t;");
        const text = await sh.waitPrompt(P2, from, 30_000);
        assert.match(
          text,
          new RegExp(`${n1.httpAddr} is unreachable \\(.*\\); now connected to ${n2.httpAddr}`),
        );
        assert.match(text, /\| before \|/);
        assert.equal(await sh.run(P2, "INSERT INTO t(v) VALUES ('after');"), "1 row affected");

        const leader = await c.leader();
        const other = leader === n2 ? n3 : n2;
        assert.match(
          await sh.run(P2, ".leader"),
          new RegExp(`\\| ${leader.name} +\\| http://${leader.httpAddr} `),
        );
        assert.equal(
          await sh.run(P2, `.stepdown ${other.name}`, 30_000),
          `leadership transferred; the leader is now ${other.name} (http://${other.httpAddr})`,
        );
        assert.equal(await sh.run(P2, ".remove n1", 30_000), "node n1 removed from the cluster");
        const after = await sh.run(P2, ".nodes");
        assert.equal(after.split("\n").length, 6, after);
        assert.doesNotMatch(after, /\| n1 /);
        const dump = `${dir}/sysdump.txt`;
        assert.equal(
          await sh.run(P2, `.sysdump ${dump}`),
          `system diagnostics of 2 nodes written to ${dump}`,
        );
        const sysdump = await Deno.readTextFile(dump);
        for (const n of [n2, n3]) {
          assert.ok(sysdump.includes(`===== http://${n.httpAddr}/readyz =====\n200 OK`), n.name);
        }
        assert.equal(
          await sh.run(P2, "SELECT v FROM t ORDER BY id;"),
          "+--------+\n| v      |\n+--------+\n| before |\n| after  |\n+--------+",
        );
      } catch (err) {
        console.error(await sh.screen().catch(() => ""));
        throw err;
      } finally {
        await sh.close();
        await Deno.remove(dir, { recursive: true }).catch(() => {});
      }
    });
  },
});
