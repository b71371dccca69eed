/**
 * The shell as a person uses it, through a real terminal (tmux): one
 * node (a `main.ts` child process), one shell session stepping through
 * every dot-command, SQL typed over several lines, the four output modes,
 * the timer, consistency levels, backup -> restore, dump, boot, read,
 * output, sysdump, and Ctrl-C (cancelling a long query, clearing a line,
 * exiting). A second session checks that history persisted, and starts
 * from RQLITE_HOST.
 */

import assert from "node:assert/strict";
import { COMMAND_NAMES } from "../../lib/shell/commands.ts";
import { VERSION } from "../../lib/version.ts";
import { post } from "../e2e/helpers.ts";
import { type NodeProcess, spawnNode } from "../util/node.ts";
import { ensureTmux, TmuxShell } from "./tmux.ts";

const skip = await ensureTmux();
if (skip !== undefined) console.warn(`SKIPPED shell terminal tests: ${skip}`);

/** A count(*) over a recursive CTE of `n` rows: seconds of SQLite work. */
function countTo(n: number): string {
  return `WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ${n}) ` +
    "SELECT count(*) FROM c;";
}

/** n for a CTE of about `ms` on this machine (the faster of two calibration runs). */
async function calibrate(url: string, ms: number): Promise<number> {
  const probe = 1_000_000;
  let best = Infinity;
  for (let i = 0; i < 2; i++) {
    const a = await post(url, "/db/query?level=none", [countTo(probe).slice(0, -1)], 60_000);
    assert.equal(a.status, 200, a.text);
    best = Math.min(best, a.ms);
  }
  return Math.min(300_000_000, Math.max(5_000_000, Math.round(probe * ms / best)));
}

async function withNode(body: (node: NodeProcess, dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "raftlite-shell-" });
  await Deno.mkdir(`${dir}/data`);
  const node = spawnNode(`${dir}/data`);
  try {
    await node.ready();
    await body(node, dir);
  } catch (err) {
    console.error(`node stderr:\n${node.stderr().slice(-3000)}`);
    throw err;
  } finally {
    await node.kill();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** Lines of `text` without the progress meters (a TTY shows them; their timing varies). */
function withoutProgress(text: string): string {
  return text.split("\n").filter((l) => !/^(backup|dump|restore|boot): /.test(l)).join("\n");
}

Deno.test({
  name: "shell in a terminal: every dot-command, SQL, modes, transfers, Ctrl-C, history",
  ignore: skip !== undefined,
  fn: async (t) => {
    await withNode(async (node, dir) => {
      const hp = node.httpAddr;
      const P = `${hp}>`;
      const histfile = `${dir}/history`;
      const env = { RAFTLITE_HISTFILE: histfile };
      const [host, port] = hp.split(":") as [string, string];
      const sh = await TmuxShell.start(["-H", host, "-p", port], { env });
      try {
        await t.step("welcome, version and prompt", async () => {
          const text = await sh.waitFor((s) => s.split("\n").at(-1) === P);
          assert.deepEqual(text.split("\n"), [
            "Welcome to the rqlite CLI.",
            'Enter ".help" for usage hints.',
            `Connected to http://${hp} running version v${VERSION}`,
            P,
          ]);
        });

        await t.step(".help lists every command", async () => {
          const out = await sh.run(P, ".help");
          for (const name of COMMAND_NAMES) assert.match(out, new RegExp(`^\\.${name}\\b`, "m"));
          assert.match(out, /^\.backup <file> +Write database backup to SQLite file$/m);
        });

        await t.step("SQL: writes, multi-line statements, rows as a table", async () => {
          assert.equal(
            await sh.run(P, "CREATE TABLE foo (id INTEGER PRIMARY KEY, name TEXT, b BLOB);"),
            "0 rows affected",
          );
          assert.equal(
            await sh.run(P, `INSERT INTO foo(name) VALUES('fiona'), ('declan');`),
            "2 rows affected",
          );
          // Three lines, a ';' inside a string, the continuation prompt.
          const from = await sh.mark();
          const out = await sh.run(P, ["INSERT INTO foo(name, b)", "VALUES('a;b',", "x'0102');"]);
          assert.equal(out, "1 row affected");
          const screen = (await sh.lines()).slice(from);
          assert.equal(screen[1], `${" ".repeat(hp.length - 3)}...> VALUES('a;b',`);
          assert.equal(
            await sh.run(P, "SELECT id, name FROM foo ORDER BY id;"),
            [
              "+----+--------+",
              "| id | name   |",
              "+----+--------+",
              "|  1 | fiona  |",
              "|  2 | declan |",
              "|  3 | a;b    |",
              "+----+--------+",
            ].join("\n"),
          );
          assert.equal(await sh.run(P, "SELECT * FROM nope;"), "ERR! no such table: nope");
          // Two statements on one line: one request, both results in order.
          assert.equal(
            await sh.run(P, "SELECT count(*) AS n FROM foo; DELETE FROM foo WHERE id = 99;"),
            "+---+\n| n |\n+---+\n| 3 |\n+---+\n0 rows affected",
          );
        });

        await t.step(".mode csv, json, line, column", async () => {
          const q = "SELECT id, name FROM foo WHERE id <= 2 ORDER BY id;";
          assert.equal(await sh.run(P, ".mode"), "mode: column");
          await sh.run(P, ".mode csv");
          assert.equal(await sh.run(P, q), "id,name\n1,fiona\n2,declan");
          await sh.run(P, ".mode json");
          assert.equal(
            await sh.run(P, q),
            '[{"id":1,"name":"fiona"},\n{"id":2,"name":"declan"}]',
          );
          await sh.run(P, ".mode line");
          assert.equal(await sh.run(P, q), "  id = 1\nname = fiona\n\n  id = 2\nname = declan");
          await sh.run(P, ".mode column");
          assert.equal(
            await sh.run(P, ".mode bogus"),
            'ERR! invalid mode "bogus": use column, csv, json, line',
          );
        });

        await t.step(
          ".timer, .changes, .blobarray, .forcewrites, .consistency, .show",
          async () => {
            await sh.run(P, ".timer on");
            assert.match(
              await sh.run(P, "SELECT 1 AS one;"),
              /\| one \|[\s\S]*\nRun Time: \d+\.\d{6} seconds$/,
            );
            assert.match(
              await sh.run(P, "INSERT INTO foo(name) VALUES('t');"),
              /^1 row affected \(\d+\.\d{6} sec\)$/,
            );
            await sh.run(P, ".timer off");
            await sh.run(P, ".changes on");
            assert.equal(
              await sh.run(P, "INSERT INTO foo(id, name) VALUES(10, 'c');"),
              "1 row affected\nlast insert ID: 10",
            );
            await sh.run(P, ".changes off");
            await sh.run(P, ".blobarray on");
            assert.match(await sh.run(P, "SELECT b FROM foo WHERE id = 3;"), /\| \[1,2\] \|/);
            await sh.run(P, ".blobarray off");
            assert.match(await sh.run(P, "SELECT b FROM foo WHERE id = 3;"), /\| AQI= \|/);
            await sh.run(P, ".forcewrites on");
            assert.equal(await sh.run(P, "DELETE FROM foo WHERE id >= 10;"), "1 row affected");
            assert.equal(await sh.run(P, ".forcewrites"), "forcewrites: on");
            await sh.run(P, ".forcewrites off");
            assert.equal(await sh.run(P, ".consistency"), "weak");
            for (const level of ["none", "linearizable", "strong"]) {
              await sh.run(P, `.consistency ${level}`);
              assert.match(await sh.run(P, "SELECT count(*) FROM foo;"), /\|\s+4 \|/, level);
            }
            assert.equal(
              await sh.run(P, ".consistency eventual"),
              'ERR! invalid consistency level "eventual": use none, weak, linearizable, strong, auto',
            );
            assert.equal(
              await sh.run(P, ".timer maybe"),
              'ERR! .timer takes on or off, not "maybe"',
            );
            await sh.run(P, ".timer on");
            assert.equal(
              await sh.run(P, ".show"),
              [
                "  blobarray: off",
                "    changes: off",
                "consistency: strong",
                "forcewrites: off",
                `       host: http://${hp}`,
                "       mode: column",
                "     output: stdout",
                "      timer: on",
              ].join("\n"),
            );
            await sh.run(P, ".timer off");
            await sh.run(P, ".consistency weak");
          },
        );

        await t.step(".tables, .schema, .indexes", async () => {
          await sh.run(P, "CREATE INDEX foo_name ON foo(name);");
          assert.equal(
            await sh.run(P, ".tables"),
            "+------+\n| name |\n+------+\n| foo  |\n+------+",
          );
          assert.match(
            await sh.run(P, ".schema"),
            /\| CREATE TABLE foo \(id INTEGER PRIMARY KEY, name TEXT, b BLOB\) \|/,
          );
          assert.match(await sh.run(P, ".indexes"), /\| CREATE INDEX foo_name ON foo\(name\) \|/);
        });

        await t.step(".status, .expvar, .extensions, .ready, .nodes, .leader", async () => {
          const status = await sh.run(P, ".status");
          assert.match(status, /^\{\n {2}"build": \{/);
          assert.match(status, /"store": \{/);
          assert.match(await sh.run(P, ".status store.raft.state"), /^"Leader"$/);
          assert.match(await sh.run(P, ".expvar"), /"http": \{/);
          assert.equal(await sh.run(P, ".extensions"), "no extensions loaded");
          assert.equal(await sh.run(P, ".ready"), "ready");
          const nodes = await sh.run(P, ".nodes");
          assert.match(
            nodes,
            /\| id +\| api_addr +\| addr +\| voter \| reachable \| leader \| error \|/,
          );
          assert.match(
            nodes,
            new RegExp(
              `\\| ${node.raftAddr} +\\| http://${hp} +\\| ${node.raftAddr} \\| true +\\| true +\\| true +\\|`,
            ),
          );
          assert.equal(await sh.run(P, ".nodes all"), nodes);
          assert.equal(await sh.run(P, ".leader"), nodes);
          assert.equal(
            await sh.run(P, ".nodes some"),
            'ERR! .nodes takes nothing or "all", not "some"',
          );
        });

        await t.step(".snapshot, .reap, .remove, .stepdown (single node)", async () => {
          assert.match(await sh.run(P, ".snapshot"), /^(snapshot taken|nothing new to snapshot)$/);
          assert.match(
            await sh.run(P, ".snapshot 0"),
            /^(snapshot taken|nothing new to snapshot)$/,
          );
          assert.equal(
            await sh.run(P, ".snapshot x"),
            'ERR! .snapshot takes a number of log entries to keep, not "x"',
          );
          assert.match(await sh.run(P, ".reap"), /^snapshots reaped: \d+, WALs checkpointed: \d+$/);
          assert.match(
            await sh.run(P, ".remove ghost"),
            /^ERR! server responded with 500 .*ghost.*not found/,
          );
          assert.match(await sh.run(P, ".stepdown"), /^ERR! server responded with 500 .*stepdown/);
          assert.equal(await sh.run(P, ".remove"), "ERR! usage: .remove <node ID>");
        });

        await t.step(
          ".backup then .restore brings the data back (with progress on the terminal)",
          async () => {
            const file = `${dir}/backup.db`;
            const out = await sh.run(P, `.backup ${file}`);
            assert.match(
              out,
              /^backup: \d+(\.\d+)? (B|KiB) in \d+\.\d s \([^)]+\/s\)\nbackup file written successfully$/,
            );
            const head = new Uint8Array(16);
            const f = await Deno.open(file);
            await f.read(head);
            f.close();
            assert.equal(new TextDecoder().decode(head), "SQLite format 3\0");
            await sh.run(P, "DELETE FROM foo;");
            assert.match(await sh.run(P, "SELECT count(*) FROM foo;"), /\|\s+0 \|/);
            const restored = await sh.run(P, `.restore ${file}`);
            assert.equal(withoutProgress(restored), "Database restored successfully");
            assert.match(restored, /^restore: /m);
            assert.match(await sh.run(P, "SELECT count(*) FROM foo;"), /\|\s+4 \|/);
            assert.match(await sh.run(P, `.restore ${dir}/missing.db`), /^ERR! .*No such file/);
          },
        );

        await t.step(".dump writes SQL text; .restore of the dump rebuilds the table", async () => {
          const file = `${dir}/dump.sql`;
          assert.equal(
            withoutProgress(await sh.run(P, `.dump ${file} foo`)),
            "SQL text file written successfully",
          );
          const sql = await Deno.readTextFile(file);
          assert.match(sql, /^PRAGMA foreign_keys=OFF;\nBEGIN TRANSACTION;\n/);
          assert.match(sql, /CREATE TABLE foo/);
          assert.match(sql, /INSERT INTO "?foo"? VALUES\(1,'fiona',NULL\);/);
          await sh.run(P, "DROP TABLE foo;");
          assert.equal(
            withoutProgress(await sh.run(P, `.restore ${file}`)),
            "Database restored successfully",
          );
          assert.match(await sh.run(P, "SELECT name FROM foo WHERE id = 2;"), /\| declan \|/);
        });

        await t.step(".boot loads a SQLite file into the single node", async () => {
          await sh.run(P, "CREATE TABLE extra (x);");
          assert.equal(
            withoutProgress(await sh.run(P, `.boot ${dir}/backup.db`)),
            "Node booted successfully",
          );
          assert.equal(
            await sh.run(P, ".tables"),
            "+------+\n| name |\n+------+\n| foo  |\n+------+",
          );
          assert.match(
            await sh.run(P, `.boot ${dir}/dump.sql`),
            /^ERR! .*is not a SQLite database file/,
          );
        });

        await t.step(
          ".read runs a file's statements and dot-commands; .output redirects",
          async () => {
            const script = `${dir}/script.sql`;
            await Deno.writeTextFile(
              script,
              [
                "-- a comment",
                "CREATE TABLE r (x INTEGER, s TEXT);",
                "INSERT INTO r VALUES (1, 'one'),",
                "  (2, 'two; still a string');",
                ".mode csv",
                "SELECT * FROM r ORDER BY x;",
                ".mode column",
                "",
              ].join("\n"),
            );
            assert.equal(
              await sh.run(P, `.read ${script}`),
              "0 rows affected\n2 rows affected\nx,s\n1,one\n2,two; still a string",
            );
            const outFile = `${dir}/out.txt`;
            assert.equal(await sh.run(P, `.output ${outFile}`), "");
            assert.equal(await sh.run(P, "SELECT s FROM r WHERE x = 1;"), "");
            assert.match(await sh.run(P, ".show"), /^$/);
            await sh.run(P, ".output");
            assert.match(await sh.run(P, ".show"), /output: stdout/);
            const written = await Deno.readTextFile(outFile);
            assert.ok(written.includes("| s   |\n+-----+\n| one |"), written);
            assert.match(written, new RegExp(`output: ${outFile.replace(/[.]/g, "\\.")}`));
          },
        );

        await t.step(".sysdump writes every node's diagnostics", async () => {
          const file = `${dir}/sysdump.txt`;
          assert.equal(
            await sh.run(P, `.sysdump ${file}`),
            `system diagnostics of 1 node written to ${file}`,
          );
          const text = await Deno.readTextFile(file);
          for (
            const path of ["/status?pretty", "/nodes?pretty&nonvoters", "/readyz", "/debug/vars"]
          ) {
            assert.ok(text.includes(`===== http://${hp}${path} =====\n200 OK\n`), path);
          }
          assert.match(text, /\[\+\]node ok/);
        });

        await t.step("unknown commands and bad arguments say what to do", async () => {
          assert.equal(
            await sh.run(P, ".frobnicate"),
            'ERR! unknown command ".frobnicate"; .help lists the commands',
          );
          assert.equal(await sh.run(P, ".BACKUP"), "ERR! usage: .backup <file>");
        });

        await t.step("Ctrl-C cancels a long query; the shell stays and works", async () => {
          const n = await calibrate(node.url, 8_000);
          const from = await sh.mark();
          await sh.line(countTo(n));
          await new Promise((r) => setTimeout(r, 1_000));
          // Still running: no prompt after the query line.
          assert.equal((await sh.lines()).slice(from).length, 1, await sh.screen());
          const t0 = performance.now();
          await sh.keys("C-c");
          const text = await sh.waitPrompt(P, from, 5_000);
          const ms = performance.now() - t0;
          assert.match(
            text,
            /\^C\nERR! interrupted: request cancelled \(the node may still complete it\)\n/,
          );
          assert.ok(ms < 3_000, `prompt back after ${ms} ms`);
          assert.equal(await sh.run(P, ".mode"), "mode: column");
          // The node is still busy with the cancelled query; the next one waits for it, then runs.
          assert.match(await sh.run(P, "SELECT 42 AS answer;", 120_000), /\|\s+42 \|/);
        });

        await t.step(
          "Ctrl-C clears a typed line or an open statement; twice at an empty prompt exits",
          async () => {
            let from = await sh.mark();
            await sh.type("SELECT 'abandoned'");
            await sh.waitFor("SELECT 'abandoned'", { from });
            await sh.keys("C-c");
            assert.match(await sh.waitPrompt(P, from), /SELECT 'abandoned'\^C\n/);
            from = await sh.mark();
            await sh.line("SELECT");
            await sh.waitFor("...>", { from });
            from = await sh.mark();
            await sh.keys("C-c");
            await sh.waitPrompt(P, from);
            // The open statement is gone: a new one runs on its own.
            assert.equal(
              await sh.run(P, "SELECT 7 AS seven;"),
              "+-------+\n| seven |\n+-------+\n|     7 |\n+-------+",
            );
            from = await sh.mark();
            await sh.keys("C-c");
            await sh.waitFor("(To exit, press Ctrl-C again or Ctrl-D, or type .exit)", { from });
            await sh.keys("C-c");
            await sh.waitFor("bye~", { from });
            await sh.waitExited();
          },
        );
      } finally {
        await sh.close();
      }

      await t.step("history persists; RQLITE_HOST picks the node", async () => {
        const history = (await Deno.readTextFile(histfile)).split("\n");
        // The three-line statement is one entry.
        assert.ok(
          history.includes("INSERT INTO foo(name, b) VALUES('a;b', x'0102');"),
          history.join("\n"),
        );
        assert.ok(history.includes(".mode csv"));
        const sh2 = await TmuxShell.start([], { env: { ...env, RQLITE_HOST: `http://${hp}` } });
        try {
          await sh2.waitFor(`Connected to http://${hp} running version v${VERSION}\n${P}`);
          const from = await sh2.mark();
          await sh2.keys("Up");
          await sh2.waitFor(`${P} SELECT 7 AS seven;`, { from });
          await sh2.keys("Up");
          await sh2.waitFor(`${P} SELECT 42 AS answer;`, { from });
          await sh2.keys("C-c");
          assert.equal(
            await sh2.run(P, "SELECT name FROM foo WHERE id = 1;"),
            "+-------+\n| name  |\n+-------+\n| fiona |\n+-------+",
          );
          const end = await sh2.mark();
          await sh2.line(".exit");
          await sh2.waitFor("bye~", { from: end });
          await sh2.waitExited();
        } finally {
          await sh2.close();
        }
      });
    });
  },
});
