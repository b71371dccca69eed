/**
 * lib/server/v8_flags.ts: the V8 flags are the same wherever raftlite is
 * started (deno.json tasks, compile.sh, test and bench spawns), they take
 * effect, and a node started without them says so.
 */

import assert from "node:assert/strict";
import { DENO_V8_FLAGS_ARG, V8_FLAGS, v8FlagsNote } from "../../lib/server/v8_flags.ts";

const ROOT = new URL("../../", import.meta.url);

Deno.test("deno task start and deno task node run main.ts with the V8 flags", async () => {
  const config = JSON.parse(await Deno.readTextFile(new URL("deno.json", ROOT)));
  for (const task of ["start", "node"]) {
    const command: string = config.tasks[task].command;
    assert.ok(command.includes(`${DENO_V8_FLAGS_ARG} main.ts`), `task ${task}: ${command}`);
  }
});

Deno.test("compile.sh bakes the same V8 flags into the binary", async () => {
  const script = await Deno.readTextFile(new URL("compile.sh", ROOT));
  assert.ok(script.includes(`V8_FLAGS="${V8_FLAGS}"`), script);
  assert.ok(script.includes(`"--v8-flags=$V8_FLAGS"`), script);
});

Deno.test("the flags lower the heap limit, and only an unflagged process gets the note", async () => {
  const probe = [
    'import { heapLimitMiB, v8FlagsNote } from "' +
    new URL("lib/server/v8_flags.ts", ROOT).href +
    '"; console.log(JSON.stringify({ limit: heapLimitMiB(), note: v8FlagsNote() ?? null }))',
  ];
  const run = async (extra: string[]) => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["eval", ...extra, ...probe],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.ok(out.success, new TextDecoder().decode(out.stderr));
    return JSON.parse(new TextDecoder().decode(out.stdout)) as { limit: number; note: string };
  };
  const flagged = await run([DENO_V8_FLAGS_ARG]);
  assert.ok(flagged.limit > 1000 && flagged.limit < 1100, `heap limit ${flagged.limit} MiB`);
  assert.equal(flagged.note, null);
  const plain = await run([]);
  // V8's default depends on the machine's memory; on a large one it is several GiB.
  if (plain.limit > 1536) assert.ok(plain.note.includes(DENO_V8_FLAGS_ARG), plain.note);
  else assert.equal(plain.note, null);
});

Deno.test("v8FlagsNote: quiet at or below the flagged limit, a how-to above it", () => {
  assert.equal(v8FlagsNote(1030), undefined);
  assert.equal(v8FlagsNote(1536), undefined);
  const note = v8FlagsNote(4192)!;
  assert.ok(note.includes("4192 MiB"), note);
  assert.ok(note.includes("deno task node"), note);
});
