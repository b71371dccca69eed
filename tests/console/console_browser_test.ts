/**
 * The web console as a person uses it, in headless Chromium (Debian's
 * package, driven by playwright-core) against real raftlite processes:
 * type a query and read the table, create a table and insert from the page,
 * NULL and BLOB cells, errors, pagination, history, the consistency level,
 * sign-in on 401; then a 3-node cluster: the node list with the leader,
 * live reachability, and screenshots at 1280x800 and 390x844.
 *
 * Screenshots go to tests/console/screenshots/ (git-ignored) or to
 * $RAFTLITE_SCREENSHOTS_DIR; the path is printed. Skips, saying why, only
 * when Chromium is missing and cannot be installed.
 */

import assert from "node:assert/strict";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { ensureChromium, launchChromium } from "./chromium.ts";
import { spawnNode } from "../util/node.ts";
import { type ClusterNode, withCluster } from "../e2e/cluster/harness.ts";

const skipReason = await ensureChromium();
if (skipReason !== undefined) console.log(`SKIP console browser tests: ${skipReason}`);

const SCREENSHOTS = Deno.env.get("RAFTLITE_SCREENSHOTS_DIR") ??
  new URL("./screenshots/", import.meta.url).pathname;
const PAGE_TIMEOUT_MS = 15_000;

/** A page that records script errors and failed requests, so a test can assert there were none. */
async function openPage(
  context: BrowserContext,
  url: string,
): Promise<{ page: Page; problems: string[] }> {
  const page = await context.newPage();
  page.setDefaultTimeout(PAGE_TIMEOUT_MS);
  const problems: string[] = [];
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error") problems.push(`console error: ${m.text()}`);
  });
  await page.goto(url);
  await page.waitForSelector("#node-state.state-leader, #node-state.state-follower");
  return { page, problems };
}

/** Types `sql` into the editor (replacing its text) and runs it with Ctrl+Enter. */
async function runSql(page: Page, sql: string): Promise<void> {
  await page.fill("#sql", sql);
  await page.focus("#sql");
  const done = page.waitForResponse((r) => r.url().includes("/db/request"));
  await page.keyboard.press("Control+Enter");
  await done;
  await page.waitForSelector("#results[aria-busy=false]");
}

/** Column names and cell texts of the result table of statement `index` (0-based). */
async function readTable(page: Page, index = 0): Promise<{ columns: string[]; rows: string[][] }> {
  const card = page.locator("#results article.result").nth(index);
  const columns = await card.locator("thead th .col-name").allInnerTexts();
  const rows = await card.locator("tbody tr").evaluateAll((trs) =>
    trs.map((tr) => [...tr.querySelectorAll("td:not(.rownum)")].map((td) => td.textContent ?? ""))
  );
  return { columns, rows };
}

Deno.test({
  name:
    "console in Chromium against a node: query, write, NULL/BLOB, errors, pages, history, level, sign-in",
  ignore: skipReason !== undefined,
  async fn(t) {
    const dir = await Deno.makeTempDir({ prefix: "raftlite-console-" });
    const node = spawnNode(dir);
    let browser: Browser | undefined;
    try {
      await node.ready();
      browser = await launchChromium();
      const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
      const { page, problems } = await openPage(context, `${node.url}/console/`);

      await t.step("type a query, run it, read the table", async () => {
        await runSql(page, "SELECT 1 AS one, 'two' AS two, 2.5 AS three");
        const table = await readTable(page);
        assert.deepEqual(table.columns, ["one", "two", "three"]);
        assert.deepEqual(table.rows, [["1", "two", "2.5"]]);
        assert.match(await page.innerText("#results .result-meta"), /^1 row · /);
        assert.match(await page.innerText("#run-info"), /served by 127\.0\.0\.1:\d+/);
      });

      await t.step("create a table and insert from the page, then read it back", async () => {
        await runSql(
          page,
          "CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT, age INTEGER);\n" +
            "INSERT INTO people(name, age) VALUES ('fiona', 20);\n" +
            "INSERT INTO people(name, age) VALUES ('declan', 30), ('sinead', 40);",
        );
        const summaries = await page.locator("#results .write-summary").allInnerTexts();
        assert.equal(summaries.length, 3);
        assert.match(summaries[1]!, /^1 row affected · last insert id 1$/);
        assert.match(summaries[2]!, /^2 rows affected · last insert id 3$/);
        await runSql(page, "SELECT * FROM people ORDER BY id");
        assert.deepEqual(await readTable(page), {
          columns: ["id", "name", "age"],
          rows: [["1", "fiona", "20"], ["2", "declan", "30"], ["3", "sinead", "40"]],
        });
        // The rows are really in the database, not just on the page.
        const res = await fetch(
          `${node.url}/db/query?q=${encodeURIComponent("SELECT COUNT(*) FROM people")}`,
        );
        assert.match(await res.text(), /"values":\[\[3\]\]/);
      });

      await t.step("NULL and BLOB cells are shown distinctly from text", async () => {
        // A BLOB column (rqlite returns BLOB-valued expressions without a column as text).
        await runSql(
          page,
          "CREATE TABLE cells (n TEXT, b BLOB, t TEXT, e TEXT);\n" +
            "INSERT INTO cells VALUES (NULL, x'deadbeef', 'NULL', '');\n" +
            "SELECT * FROM cells",
        );
        const cells = page.locator("#results article.result").nth(2).locator(
          "tbody tr td:not(.rownum)",
        );
        assert.equal(await cells.nth(0).locator(".null-badge").innerText(), "NULL");
        assert.equal(await cells.nth(1).locator(".blob-badge").innerText(), "BLOB 4 B");
        assert.equal(await cells.nth(1).locator("code").innerText(), "x'deadbeef'");
        assert.equal(
          await cells.nth(2).locator(".null-badge").count(),
          0,
          "the text 'NULL' is text",
        );
        assert.equal(await cells.nth(2).innerText(), "NULL");
        assert.equal(await cells.nth(3).innerText(), "");
      });

      await t.step("errors are shown with rqlite's message, per statement", async () => {
        await runSql(page, "SELECT * FROM missing; SELEC 1; SELECT 7");
        const errors = await page.locator("#results .error-box").allInnerTexts();
        assert.deepEqual(errors, [
          "Error: no such table: missing",
          'Error: near "SELEC": syntax error',
        ]);
        assert.deepEqual((await readTable(page, 2)).rows, [["7"]]);
      });

      await t.step("long results are paginated, 100 rows a page", async () => {
        await runSql(
          page,
          "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 250) SELECT x FROM c",
        );
        assert.equal(await page.locator("#results tbody tr").count(), 100);
        assert.match(await page.innerText("#results .pager"), /Rows 1–100 of 250/);
        await page.click("#results .pager button:has-text('Next')");
        assert.match(await page.innerText("#results .pager"), /Rows 101–200 of 250/);
        assert.equal(await page.locator("#results tbody tr td.rownum").first().innerText(), "101");
        await page.click("#results .pager button[title='Last page']");
        assert.equal(await page.locator("#results tbody tr").count(), 50);
        assert.equal(
          await page.locator("#results tbody tr").last().locator("td").last().innerText(),
          "250",
        );
      });

      await t.step(
        "history: Alt+Up/Down and the buttons walk it, and it survives a reload",
        async () => {
          await page.fill("#sql", "SELECT 'draft'");
          await page.focus("#sql");
          await page.keyboard.press("Alt+ArrowUp");
          assert.match(await page.inputValue("#sql"), /^WITH RECURSIVE/);
          await page.keyboard.press("Alt+ArrowUp");
          assert.equal(await page.inputValue("#sql"), "SELECT * FROM missing; SELEC 1; SELECT 7");
          await page.keyboard.press("Alt+ArrowDown");
          await page.keyboard.press("Alt+ArrowDown");
          assert.equal(await page.inputValue("#sql"), "SELECT 'draft'", "the draft comes back");
          await page.reload();
          await page.click("#hist-prev");
          assert.match(await page.inputValue("#sql"), /^WITH RECURSIVE/);
          await page.click("#hist-toggle");
          const items = await page.locator("#history-list .history-item").allInnerTexts();
          assert.ok(items.length >= 6, `history has ${items.length} entries`);
          await page.click("#history-list .history-item >> text=SELECT * FROM people ORDER BY id");
          assert.equal(await page.inputValue("#sql"), "SELECT * FROM people ORDER BY id");
        },
      );

      await t.step("the consistency level is sent with the request and remembered", async () => {
        await page.selectOption("#level", "strong");
        const sent = page.waitForRequest((r) => r.url().includes("/db/request"));
        await runSql(page, "SELECT name FROM people WHERE id = 1");
        assert.match((await sent).url(), /[?&]level=strong(&|$)/);
        assert.deepEqual((await readTable(page)).rows, [["fiona"]]);
        await page.reload();
        assert.equal(await page.inputValue("#level"), "strong");
        await page.selectOption("#level", "weak");
      });

      await t.step("Run becomes Cancel while a request is out, and cancels it", async () => {
        let release: () => void = () => {};
        const held = new Promise<void>((r) => (release = r));
        await page.route("**/db/request*", async (route) => {
          let timer: ReturnType<typeof setTimeout> | undefined;
          await Promise.race([held, new Promise((r) => (timer = setTimeout(r, 10_000)))]);
          clearTimeout(timer);
          await route.continue().catch(() => {}); // the page has aborted it by then
        });
        await page.fill("#sql", "SELECT 'slow'");
        await page.click("#run");
        await page.waitForSelector("#run.busy");
        assert.equal(await page.innerText("#run-label"), "Cancel");
        await page.click("#run");
        await page.waitForSelector("#run:not(.busy)");
        assert.match(await page.innerText("#results .error-box"), /Error: cancelled/);
        assert.equal(await page.innerText("#run-label"), "Run");
        release();
        await page.unroute("**/db/request*");
      });

      await t.step(
        "a 401 asks for credentials, sends them, and says so when cancelled",
        async () => {
          const seen: (string | undefined)[] = [];
          let refuse = 2; // the cancelled attempt, then the one answered by signing in
          await page.route("**/db/request*", async (route) => {
            seen.push(route.request().headers()["authorization"]);
            if (refuse-- > 0) {
              await route.fulfill({
                status: 401,
                body: "",
                headers: { "WWW-Authenticate": 'Basic realm="rqlite"' },
              });
            } else await route.continue();
          });
          await page.fill("#sql", "SELECT 42");
          await page.click("#run");
          await page.waitForSelector("#login[open]");
          await page.click("#login button[value=cancel]");
          await page.waitForSelector("#run:not(.busy)");
          assert.match(
            await page.innerText("#results .error-box"),
            /requires you to sign in \(401\)/,
          );
          await page.click("#run");
          await page.waitForSelector("#login[open]");
          await page.fill("#login input[name=username]", "alice");
          await page.fill("#login input[name=password]", "s3cret:pw");
          await page.click("#login button[value=ok]");
          await page.waitForSelector("#results table");
          assert.deepEqual((await readTable(page)).rows, [["42"]]);
          assert.deepEqual(seen, [undefined, undefined, `Basic ${btoa("alice:s3cret:pw")}`]);
          assert.equal(await page.innerText("#who-name"), "alice");
          await page.click("#sign-out");
          assert.equal(await page.isVisible("#who"), false);
          await page.unroute("**/db/request*");
          // The refused requests logged "Failed to load resource: 401"; that is expected here.
          problems.splice(0, problems.length, ...problems.filter((p) => !p.includes("401")));
        },
      );

      await t.step("the status view shows /status as a tree and filters it", async () => {
        await page.click("#tab-status");
        await page.waitForSelector("#status-tree details");
        const top = await page.locator("#status-tree > ul > li > details > summary .key")
          .allInnerTexts();
        for (const key of ["build", "http", "node", "store"]) {
          assert.ok(top.includes(key), `${key} in ${top}`);
        }
        await page.fill("#status-filter", "commit_index");
        const leaves = await page.locator("#status-tree .leaf .key").allInnerTexts();
        assert.deepEqual(leaves, ["commit_index"]);
      });

      assert.deepEqual(problems, [], `the page logged errors: ${problems.join("; ")}`);
      await context.close();
    } finally {
      await browser?.close();
      await node.kill();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});

Deno.test({
  name:
    "console in Chromium against a 3-node cluster: node list with the leader, live reachability, screenshots",
  ignore: skipReason !== undefined,
  async fn() {
    await withCluster({ voters: 3, proxied: false, prefix: "console" }, async (cluster) => {
      const leader = await cluster.leader();
      const follower = cluster.followersOf(leader)[0]!;
      const other = cluster.followersOf(leader).find((n) => n !== follower)!;
      const browser = await launchChromium();
      try {
        await Deno.mkdir(SCREENSHOTS, { recursive: true });
        const sizes = [{ width: 1280, height: 800 }, { width: 390, height: 844 }];
        for (const viewport of sizes) {
          const context = await browser.newContext({ viewport, colorScheme: "light" });
          await showcase(context, follower, leader, `${viewport.width}x${viewport.height}`);
          await context.close();
        }
        const dark = await browser.newContext({ viewport: sizes[0], colorScheme: "dark" });
        await showcase(dark, follower, leader, "1280x800-dark");
        await dark.close();
        console.log(`console screenshots: ${SCREENSHOTS}`);

        // Live: a member that dies turns unreachable on the open page by itself.
        const context = await browser.newContext({ viewport: sizes[0] });
        const { page, problems } = await openPage(context, `${follower.url}/console/#cluster`);
        await page.waitForSelector(
          `#nodes-body tr[data-node-id="${other.name}"]:not(.unreachable)`,
        );
        await cluster.kill(other);
        await page.waitForSelector(`#nodes-body tr[data-node-id="${other.name}"].unreachable`, {
          timeout: 20_000,
        });
        await page.screenshot({ path: `${SCREENSHOTS}1280x800-cluster-node-down.png` });
        assert.deepEqual(problems, []);
        await context.close();
      } finally {
        await browser.close();
      }
    });
  },
});

/**
 * On `node`'s console: a write forwarded to the leader, a table with NULL
 * and BLOB cells, the cluster view checked against the real leader, the
 * status view; a screenshot of each, named `<tag>-<view>.png`.
 */
async function showcase(
  context: BrowserContext,
  node: ClusterNode,
  leader: ClusterNode,
  tag: string,
) {
  const { page, problems } = await openPage(context, `${node.url}/console/`);
  await runSql(
    page,
    "CREATE TABLE IF NOT EXISTS fruit (id INTEGER PRIMARY KEY, name TEXT NOT NULL, price REAL, photo BLOB);\n" +
      "INSERT INTO fruit(name, price, photo) VALUES ('apple', 0.5, x'89504e470d0a1a0a'), " +
      "('banana', NULL, NULL), ('cherry', 4.25, x'ffd8ffe000104a464946');\n" +
      "SELECT * FROM fruit ORDER BY id LIMIT 3;",
  );
  const table = await readTable(page, 2);
  assert.deepEqual(table.columns, ["id", "name", "price", "photo"]);
  assert.equal(table.rows[0]![1], "apple");
  await page.screenshot({ path: `${SCREENSHOTS}${tag}-query.png` });

  await page.click("#tab-cluster");
  await page.waitForSelector("#nodes-body tr[data-node-id] .badge.leader");
  const ids = await page.locator("#nodes-body tr[data-node-id]").evaluateAll((trs) =>
    trs.map((tr) => tr.getAttribute("data-node-id"))
  );
  assert.deepEqual(ids, ["n1", "n2", "n3"]);
  const leaderRow = page.locator("#nodes-body tr:has(.badge.leader)");
  assert.equal(await leaderRow.count(), 1);
  assert.equal(await leaderRow.getAttribute("data-node-id"), leader.name);
  assert.equal(await page.locator("#nodes-body tr .dot.ok").count(), 3, "all reachable");
  assert.match(
    await page.innerText("#cluster-summary"),
    new RegExp(`3 nodes · 3 reachable · leader ${leader.name}`),
  );
  assert.equal(await page.innerText("#leader-id"), leader.name);
  assert.match(await page.innerText(`#nodes-body tr[data-node-id="${node.name}"]`), /this node/);
  assert.match(await page.innerText("#raft-stats"), /Commit index\s+\d+/);
  await page.screenshot({ path: `${SCREENSHOTS}${tag}-cluster.png` });

  await page.click("#tab-status");
  await page.waitForSelector("#status-tree > ul > li > details[open]");
  await page.screenshot({ path: `${SCREENSHOTS}${tag}-status.png` });
  assert.deepEqual(problems, [], "the page logged errors");
  await page.close();
}
