/** Shared helpers of the storage tests. */

import type { Done } from "../../lib/node/interfaces.ts";
import type { Entry } from "../../lib/raft/types.ts";

/** A temp dir removed after `fn`, even when it throws. */
export async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "raftlite-storage-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Runs a callback-style operation as a promise; rejects if `done` runs twice. */
export function call(start: (done: Done) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    let calls = 0;
    start((err) => {
      calls++;
      if (calls > 1) throw new Error("done called more than once");
      if (err) reject(err);
      else resolve();
    });
  });
}

/** Entries [from, from + n) with the given term and data `e<index>` padded to `size` bytes. */
export function makeEntries(from: number, n: number, term: number, size = 0): Entry[] {
  const out: Entry[] = [];
  for (let i = 0; i < n; i++) out.push(entry(from + i, term, size));
  return out;
}

export function entry(index: number, term: number, size = 0): Entry {
  const text = `e${index}t${term}`;
  const data = new Uint8Array(Math.max(size, text.length));
  data.set(new TextEncoder().encode(text));
  for (let i = text.length; i < data.length; i++) data[i] = (index * 7 + i) & 0xff;
  return { index, term, kind: index % 5 === 0 ? "config" : "normal", data };
}

/** Plain comparable form of entries. */
export function plain(entries: readonly Entry[]): { i: number; t: number; k: string; d: string }[] {
  return entries.map((e) => ({
    i: e.index,
    t: e.term,
    k: e.kind,
    d: Array.from(e.data).join(","),
  }));
}

/** The `.seg` files of a raft dir, sorted. */
export async function segmentFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) if (e.name.endsWith(".seg")) out.push(e.name);
  return out.sort();
}

/** XORs `mask` into byte `offset` of `path`. */
export async function flipByte(path: string, offset: number, mask = 0x01): Promise<void> {
  const bytes = await Deno.readFile(path);
  const old = bytes[offset];
  if (old === undefined) throw new Error(`${path} has no byte ${offset}`);
  bytes[offset] = old ^ mask;
  await Deno.writeFile(path, bytes);
}
