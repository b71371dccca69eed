import assert from "node:assert/strict";
import {
  type Command,
  COMMAND_VERSION,
  CommandDecodeError,
  CommandEncodeError,
  decodeCommand,
  encodeCommand,
} from "../../lib/db/command.ts";

const FULL: Command = {
  kind: "request",
  transaction: true,
  rollbackOnError: true,
  dbTimeoutMs: 1500,
  qualifyColumns: true,
  timings: true,
  statements: [
    {
      sql: "INSERT INTO t VALUES(?, ?, ?, ?, ?, ?, ?, :name, @n2)",
      params: [
        { value: null },
        { value: 0n },
        { value: -1n },
        { value: 2147483647n },
        { value: -2147483648n },
        { value: 2147483648n },
        { value: -9223372036854775808n },
        { name: "name", value: "fiona ☃ 😀" },
        { name: "n2", value: 9223372036854775807n },
      ],
    },
    {
      sql: "SELECT ?, ?, ?, ?, ?, ?",
      params: [
        { value: 1.5 },
        { value: -0 },
        { value: Number.MAX_VALUE },
        { value: true },
        { value: false },
        { value: new Uint8Array([0, 1, 2, 255]) },
      ],
      forceQuery: true,
    },
    { sql: "EXPLAIN SELECT 1", params: [], explain: true },
    { sql: "", params: [{ value: "" }, { value: new Uint8Array(0) }, { name: "", value: NaN }] },
    { sql: "\uFEFFSELECT 'bom kept'", params: [] },
  ],
};

Deno.test("codec: round trip of every field and value kind, exactly", () => {
  const bytes = encodeCommand(FULL);
  assert.equal(bytes[0], COMMAND_VERSION);
  const back = decodeCommand(bytes);
  assert.deepEqual(back, FULL);
  assert.ok(Object.is(back.statements[1]!.params[1]!.value as number, -0));
  assert.ok(Number.isNaN(back.statements[3]!.params[2]!.value as number));
  // Re-encoding the decoded command gives the same bytes.
  assert.deepEqual(encodeCommand(back), bytes);
});

Deno.test("codec: minimal commands, load data, and compactness", () => {
  for (const kind of ["execute", "query", "request", "noop"] as const) {
    const c: Command = { kind, statements: [], transaction: false };
    assert.deepEqual(decodeCommand(encodeCommand(c)), c);
  }
  const data = new Uint8Array(70_000).map((_, i) => i * 7);
  const load: Command = { kind: "load", statements: [], transaction: false, data };
  assert.deepEqual(decodeCommand(encodeCommand(load)), load);
  const insert: Command = {
    kind: "execute",
    transaction: false,
    statements: [{ sql: "INSERT INTO foo(name) VALUES(?)", params: [{ value: "fiona" }] }],
  };
  // version, kind, flags, count, stmt flags, sql len, sql, param count, tag, len, "fiona"
  assert.equal(encodeCommand(insert).length, 4 + 2 + 31 + 1 + 2 + 5);
});

Deno.test("codec: long strings with multi-byte characters (varint length resizing)", () => {
  for (const n of [0, 1, 42, 43, 127, 128, 5000, 16384, 100_000]) {
    const sql = "é".repeat(n) + "x".repeat(n % 7);
    const c: Command = {
      kind: "execute",
      transaction: false,
      statements: [{ sql, params: [{ value: sql }] }],
    };
    assert.deepEqual(decodeCommand(encodeCommand(c)), c);
  }
});

Deno.test("codec: encode refuses values it cannot represent", () => {
  const bad = (value: unknown) => ({
    kind: "execute",
    transaction: false,
    statements: [{ sql: "SELECT ?", params: [{ value }] }],
  } as unknown as Command);
  assert.throws(() => encodeCommand(bad(2n ** 63n)), CommandEncodeError);
  assert.throws(() => encodeCommand(bad(-(2n ** 63n) - 1n)), CommandEncodeError);
  assert.throws(() => encodeCommand(bad({})), CommandEncodeError);
  assert.throws(() => encodeCommand(bad(undefined)), CommandEncodeError);
  assert.throws(
    () => encodeCommand({ kind: "nope", statements: [], transaction: false } as unknown as Command),
    CommandEncodeError,
  );
  assert.throws(
    () => encodeCommand({ kind: "execute", statements: [], transaction: false, dbTimeoutMs: 1.5 }),
    CommandEncodeError,
  );
});

Deno.test("codec: garbage and every truncation throw CommandDecodeError only", () => {
  const good = encodeCommand(FULL);
  for (let n = 0; n < good.length; n++) {
    assert.throws(() => decodeCommand(good.subarray(0, n)), CommandDecodeError, `prefix ${n}`);
  }
  assert.throws(() => decodeCommand(new Uint8Array([...good, 0])), /1 trailing bytes/);
  assert.throws(() => decodeCommand(new Uint8Array([2, 0, 0, 0])), /unknown version 2/);
  assert.throws(() => decodeCommand(new Uint8Array([1, 9, 0, 0])), /unknown kind 9/);
  assert.throws(() => decodeCommand(new Uint8Array([1, 0, 0x80, 0])), /bad flags/);
  // A statement count far beyond the input must not allocate.
  assert.throws(
    () => decodeCommand(new Uint8Array([1, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f])),
    /exceeds input/,
  );
  // Overlong and oversized varints.
  assert.throws(() => decodeCommand(new Uint8Array([1, 0, 0, 0x80, 0x00])), /overlong varint/);
  assert.throws(
    () =>
      decodeCommand(
        new Uint8Array([1, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]),
      ),
    /varint/,
  );
  // Invalid UTF-8 in the SQL.
  assert.throws(
    () => decodeCommand(new Uint8Array([1, 0, 0, 1, 0, 2, 0xc3, 0x28, 0])),
    /invalid UTF-8/,
  );
  // Unknown parameter type.
  assert.throws(
    () => decodeCommand(new Uint8Array([1, 0, 0, 1, 0, 0, 1, 0x0e])),
    /bad parameter type/,
  );
  assert.throws(() => decodeCommand("nope" as unknown as Uint8Array), CommandDecodeError);

  // Random bytes and random mutations of a valid command: typed error or a valid command.
  let seed = 12345;
  const rnd = () => (seed = (seed * 1103515245 + 12345) >>> 0) >>> 8;
  for (let i = 0; i < 20_000; i++) {
    let input: Uint8Array;
    if (i % 2 === 0) {
      input = new Uint8Array(rnd() % 64).map(() => rnd() & 0xff);
      if (input.length > 0 && i % 4 === 0) input[0] = 1;
    } else {
      input = good.slice();
      for (let k = 0; k < 1 + (rnd() % 4); k++) input[rnd() % input.length] = rnd() & 0xff;
    }
    try {
      const c = decodeCommand(input);
      assert.deepEqual(encodeCommand(c).length, input.length);
    } catch (e) {
      assert.ok(e instanceof CommandDecodeError, `unexpected ${e}`);
    }
  }
});

Deno.test("codec: speed of a typical single-row insert", () => {
  const c: Command = {
    kind: "execute",
    transaction: false,
    statements: [{
      sql: "INSERT INTO foo(id, name, score) VALUES(?, ?, ?)",
      params: [{ value: 123456n }, { value: "a name of moderate length" }, { value: 98.6 }],
    }],
  };
  const n = 50_000;
  const t0 = performance.now();
  let bytes = 0;
  for (let i = 0; i < n; i++) bytes += decodeCommand(encodeCommand(c)).statements.length;
  const ms = performance.now() - t0;
  assert.equal(bytes, n);
  assert.ok(ms < 2000, `${n} round trips took ${ms} ms`);
});
