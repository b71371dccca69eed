/**
 * lib/server/snapshot_recovery.ts against real stores in temp directories:
 * a corrupt or truncated snapshot is detected, never used, moved aside and
 * reported; a node with no usable snapshot recovers from the leader (or,
 * alone, refuses to start with a clear error).
 */

import assert from "node:assert/strict";
import {
  applyConfChange,
  bootstrapEntries,
  decodeConfChange,
  EMPTY_CONF,
  encodeConfChange,
} from "../../lib/raft/confchange.ts";
import type { ConfState, Entry, SnapshotMeta } from "../../lib/raft/types.ts";
import {
  checkSnapshotsAtStart,
  clearRecoveryIfCaughtUp,
  readRecoveryMarker,
  recoveryMarkerPath,
  recoveryWatcher,
} from "../../lib/server/snapshot_recovery.ts";
import { openStorage, type Storage } from "../../lib/storage/mod.ts";
import { call, flipByte, withTempDir } from "../storage/helpers.ts";
import { NO_LOG } from "../../lib/log/mod.ts";
import { linesLog } from "../util/log.ts";

const LAST = 30;
const PEERS = { b: "b.test:4002", c: "c.test:4002" };

interface Layout {
  readonly voters: readonly string[];
  /** Snapshot indexes to write (ascending). */
  readonly snapshots: readonly number[];
  /** Compact the log through this index. */
  readonly compactTo: number;
  /** Extra config entries appended after the bootstrap ones (at index 4, 5, ...). */
  readonly extraConf?: readonly string[];
}

/** Writes a data dir of node "a": log 1..30 (terms 1 then 2), the snapshots, compaction. */
async function makeDataDir(dir: string, layout: Layout): Promise<void> {
  const s = await openStorage(dir);
  try {
    const addresses = Object.fromEntries(layout.voters.map((id) => [id, `${id}.test:4002`]));
    const entries: Entry[] = bootstrapEntries(layout.voters, addresses);
    for (const id of layout.extraConf ?? []) {
      entries.push({
        index: entries.length + 1,
        term: 1,
        kind: "config",
        data: encodeConfChange({ kind: "addVoter", node: id }),
      });
    }
    while (entries.length < LAST) {
      const index = entries.length + 1;
      entries.push({
        index,
        term: termOf(index),
        kind: "normal",
        data: new TextEncoder().encode(`e${index}`),
      });
    }
    await call((done) => s.log.append(entries, done));
    await call((done) => s.stable.setHardState({ term: 2, vote: "a", commit: LAST }, done));
    for (const index of layout.snapshots) {
      const meta: SnapshotMeta = { index, term: termOf(index), conf: confAt(entries, index) };
      const bytes = Uint8Array.from({ length: 4096 }, (_, i) => (i * index) & 0xff);
      await call((done) => s.snapshots.write(meta, bytes, done));
    }
    await call((done) => s.log.compact(layout.compactTo, termOf(layout.compactTo), done));
  } finally {
    await s.close();
  }
}

function termOf(index: number): number {
  return index > 20 ? 2 : 1;
}

/** The membership after the config entries up to `index`. */
function confAt(entries: readonly Entry[], index: number): ConfState {
  let conf: ConfState = EMPTY_CONF;
  for (const e of entries) {
    if (e.index > index) break;
    if (e.kind === "config") conf = applyConfChange(conf, decodeConfChange(e.data));
  }
  return conf;
}

function snapFile(dir: string, index: number): string {
  return `${dir}/snapshots/${termOf(index)}-${index}.snap`;
}

async function names(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) out.push(e.name);
  return out.sort();
}

async function withStorage<T>(dir: string, fn: (s: Storage) => Promise<T>): Promise<T> {
  const s = await openStorage(dir);
  try {
    return await fn(s);
  } finally {
    await s.close();
  }
}

Deno.test("snapshot recovery: a corrupt newest snapshot is moved aside and the older one used", async () => {
  await withTempDir(async (dir) => {
    await makeDataDir(dir, { voters: ["a"], snapshots: [10, 25], compactTo: 5 });
    await flipByte(snapFile(dir, 25), 2048, 0xff);
    const lines: string[] = [];
    const result = await withStorage(dir, async (s) => {
      const r = await checkSnapshotsAtStart(s, dir, linesLog(lines), "a");
      assert.deepEqual(s.snapshots.latest()?.index, 10, "the older snapshot is now the newest");
      assert.equal(s.log.firstIndex(), 6, "log untouched");
      assert.equal(s.log.lastIndex(), LAST);
      return r;
    });
    assert.equal(result.voteFloorIndex, 0);
    assert.equal(result.logReset, false);
    assert.deepEqual(await names(`${dir}/snapshots`), [
      "1-10.meta",
      "1-10.snap",
      "2-25.meta.corrupt",
      "2-25.snap.corrupt",
    ]);
    assert.equal(lines.length, 1, lines.join("\n"));
    assert.match(lines[0] ?? "", /snapshot .*\/snapshots\/2-25\.snap is corrupt/);
    assert.match(lines[0] ?? "", /CRC32C/);
    assert.match(lines[0] ?? "", /2-25\.snap\.corrupt/);
    assert.match(lines[0] ?? "", /using the older snapshot 1-10/);
    assert.equal(await readRecoveryMarker(dir), undefined);
  });
});

Deno.test("snapshot recovery: a truncated snapshot is detected, moved aside and never used", async () => {
  await withTempDir(async (dir) => {
    await makeDataDir(dir, { voters: ["a"], snapshots: [10, 25], compactTo: 5 });
    await Deno.truncate(snapFile(dir, 25), 1000);
    const lines: string[] = [];
    await withStorage(dir, async (s) => {
      const r = await checkSnapshotsAtStart(s, dir, linesLog(lines), "a");
      assert.equal(r.voteFloorIndex, 0);
      assert.equal(s.snapshots.latest()?.index, 10);
    });
    assert.deepEqual((await names(`${dir}/snapshots`)).filter((n) => n.startsWith("2-25")), [
      "2-25.meta.corrupt",
      "2-25.snap.corrupt",
    ]);
    assert.match(lines.join("\n"), /2-25\.snap is corrupt .*1000 bytes but the meta says 4096/);
    // The next start finds nothing wrong.
    const again: string[] = [];
    await withStorage(dir, (s) => checkSnapshotsAtStart(s, dir, linesLog(again), "a"));
    assert.deepEqual(again, []);
  });
});

Deno.test("snapshot recovery: intact snapshots pass untouched and nothing is logged", async () => {
  await withTempDir(async (dir) => {
    await makeDataDir(dir, { voters: ["a", "b", "c"], snapshots: [10, 25], compactTo: 18 });
    const lines: string[] = [];
    const r = await withStorage(dir, (s) => checkSnapshotsAtStart(s, dir, linesLog(lines)));
    assert.deepEqual(r, { voteFloorIndex: 0, quarantined: [], logReset: false, peerAddresses: {} });
    assert.deepEqual(lines, []);
    assert.equal((await names(`${dir}/snapshots`)).length, 4);
  });
});

Deno.test("snapshot recovery: alone with no usable snapshot, start fails with a clear error", async () => {
  await withTempDir(async (dir) => {
    // The older snapshot is intact but the log starts after it: no state is complete.
    await makeDataDir(dir, { voters: ["a"], snapshots: [10, 25], compactTo: 18 });
    await flipByte(snapFile(dir, 25), 100);
    const lines: string[] = [];
    await withStorage(dir, async (s) => {
      await assert.rejects(
        checkSnapshotsAtStart(s, dir, linesLog(lines), "a"),
        /cannot start: .*too old: the log starts at 19/,
      );
      assert.equal(s.log.firstIndex(), 19, "nothing was reset");
      assert.equal(s.log.lastIndex(), LAST);
    });
    assert.equal(await readRecoveryMarker(dir), undefined);
    assert.ok((await names(`${dir}/snapshots`)).includes("2-25.snap.corrupt"));
    assert.match(lines.join("\n"), /2-25\.snap is corrupt/);
  });
});

Deno.test("snapshot recovery: the single-node error names the damage, the gap and the way out", async () => {
  await withTempDir(async (dir) => {
    await makeDataDir(dir, { voters: ["a"], snapshots: [10, 25], compactTo: 18 });
    await flipByte(snapFile(dir, 25), 100);
    await flipByte(snapFile(dir, 10), 100);
    await withStorage(dir, async (s) => {
      let message = "";
      try {
        await checkSnapshotsAtStart(s, dir, NO_LOG, "a");
      } catch (e) {
        message = (e as Error).message;
      }
      assert.match(message, /^cannot start: /);
      assert.match(message, /2-25\.snap .*and .*1-10\.snap .* are corrupt/);
      assert.match(message, /compacted through index 18/);
      assert.match(message, /only voter/);
      assert.match(message, /\/db\/load/);
      assert.match(message, /\*\.corrupt/);
    });
  });
});

Deno.test("snapshot recovery: with peers and no usable snapshot the log is emptied behind a durable vote floor", async () => {
  await withTempDir(async (dir) => {
    await makeDataDir(dir, { voters: ["a", "b", "c"], snapshots: [10, 25], compactTo: 18 });
    await flipByte(snapFile(dir, 25), 2000);
    await flipByte(snapFile(dir, 10), 2000);
    const lines: string[] = [];
    await withStorage(dir, async (s) => {
      const r = await checkSnapshotsAtStart(s, dir, linesLog(lines), "a");
      assert.equal(r.voteFloorIndex, LAST);
      assert.equal(r.logReset, true);
      assert.equal(r.quarantined.length, 4);
      assert.equal(s.log.firstIndex(), 1);
      assert.equal(s.log.lastIndex(), 0);
      assert.deepEqual(s.stable.hardState(), { term: 2, vote: "a", commit: 0 });
      assert.equal(s.snapshots.latest(), undefined);
      assert.deepEqual(
        r.peerAddresses,
        PEERS,
        "addresses to reach the leader without a configuration",
      );
    });
    const marker = await readRecoveryMarker(dir);
    assert.equal(marker?.voteFloorIndex, LAST);
    assert.deepEqual(marker?.peers, PEERS);
    assert.match(marker?.reason ?? "", /2-25\.snap is corrupt .*compacted through index 18/);
    const text = lines.join("\n");
    assert.match(text, /2-25\.snap is corrupt .*trying the next older snapshot/);
    assert.match(text, /1-10\.snap is corrupt .*fetch one from the leader/);
    assert.match(text, /will not vote or campaign/);
    assert.match(text, /\(b, c\)/);

    // Durable: after a restart (say the recovery was interrupted) the floor still holds.
    const again: string[] = [];
    await withStorage(dir, async (s) => {
      assert.equal(s.log.lastIndex(), 0);
      assert.equal(s.stable.hardState().term, 2);
      const r = await checkSnapshotsAtStart(s, dir, linesLog(again), "a");
      assert.deepEqual(r, {
        voteFloorIndex: LAST,
        quarantined: [],
        logReset: false,
        peerAddresses: PEERS,
      });
    });
    assert.match(again.join("\n"), /still in progress.*index 30 \(now 0\)/);

    // Caught up: the marker goes.
    assert.equal(await clearRecoveryIfCaughtUp(dir, LAST - 1), false);
    assert.equal(await clearRecoveryIfCaughtUp(dir, LAST), true);
    assert.equal(await readRecoveryMarker(dir), undefined);
    assert.equal(await clearRecoveryIfCaughtUp(dir, 0), true, "no marker: nothing to do");
  });
});

Deno.test("snapshot recovery: an intact but too old snapshot stays the base of the emptied log", async () => {
  await withTempDir(async (dir) => {
    await makeDataDir(dir, { voters: ["a", "b", "c"], snapshots: [10, 25], compactTo: 18 });
    await flipByte(snapFile(dir, 25), 10);
    await withStorage(dir, async (s) => {
      const r = await checkSnapshotsAtStart(s, dir, NO_LOG, "b");
      assert.equal(r.voteFloorIndex, LAST);
      assert.equal(s.snapshots.latest()?.index, 10);
      assert.equal(s.log.firstIndex(), 11);
      assert.equal(s.log.lastIndex(), 10);
      assert.equal(s.log.term(10), 1);
    });
  });
});

Deno.test("snapshot recovery: members added by config entries in the remaining log count as peers", async () => {
  await withTempDir(async (dir) => {
    // The snapshot's configuration is {a}; the log after it adds b (index 2).
    await makeDataDir(dir, { voters: ["a"], snapshots: [1], compactTo: 1, extraConf: ["b"] });
    await flipByte(snapFile(dir, 1), 10);
    await withStorage(dir, async (s) => {
      assert.deepEqual(s.snapshots.latest()?.conf.voters, ["a"]);
      const r = await checkSnapshotsAtStart(s, dir, NO_LOG, "a");
      assert.equal(r.logReset, true);
      assert.equal(r.voteFloorIndex, LAST);
    });
  });
});

Deno.test("snapshot recovery: a marker left by an interrupted recovery is removed at start once the log reached it", async () => {
  await withTempDir(async (dir) => {
    await makeDataDir(dir, { voters: ["a", "b", "c"], snapshots: [25], compactTo: 18 });
    const path = recoveryMarkerPath(dir);
    await Deno.writeTextFile(path, JSON.stringify({ voteFloorIndex: 12, reason: "test" }));
    const lines: string[] = [];
    const r = await withStorage(dir, (s) => checkSnapshotsAtStart(s, dir, linesLog(lines)));
    assert.equal(r.voteFloorIndex, 0);
    assert.equal(await readRecoveryMarker(dir), undefined);
    assert.match(lines.join("\n"), /recovery finished/);
    // A damaged marker stops the start instead of guessing the floor.
    await Deno.writeTextFile(path, "{not json");
    await withStorage(dir, async (s) => {
      await assert.rejects(checkSnapshotsAtStart(s, dir, NO_LOG), /recovery marker is damaged/);
    });
  });
});

Deno.test("snapshot recovery: the watcher removes the marker once, when the index reaches the floor", async () => {
  await withTempDir(async (dir) => {
    await Deno.mkdir(`${dir}/raft`, { recursive: true });
    await Deno.writeTextFile(
      recoveryMarkerPath(dir),
      JSON.stringify({ voteFloorIndex: 7, reason: "" }),
    );
    const lines: string[] = [];
    const watch = recoveryWatcher(dir, 7, linesLog(lines));
    watch(3);
    await new Promise((r) => setTimeout(r, 20));
    assert.notEqual(await readRecoveryMarker(dir), undefined);
    watch(7);
    watch(8);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(await readRecoveryMarker(dir), undefined);
    assert.equal(lines.length, 1);
    assert.match(lines[0] ?? "", /recovery finished/);
  });
});
