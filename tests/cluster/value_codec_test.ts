import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import {
  decodeValue,
  encodeValue,
  VALUE_MAX_DEPTH,
  ValueDecodeError,
  ValueEncodeError,
} from "../../lib/cluster/value_codec.ts";

function rt(v: unknown): unknown {
  return decodeValue(encodeValue(v));
}

Deno.test("value codec: scalars round-trip exactly", () => {
  const values: unknown[] = [
    undefined,
    null,
    true,
    false,
    0,
    1,
    -1,
    2 ** 31 - 1,
    -(2 ** 31),
    2 ** 31,
    -(2 ** 31) - 1,
    2 ** 53 - 1,
    -(2 ** 53),
    1.5,
    Number.MIN_VALUE,
    Number.MAX_VALUE,
    Infinity,
    -Infinity,
    0n,
    1n,
    -1n,
    2n ** 53n + 1n,
    2n ** 63n - 1n,
    -(2n ** 63n),
    2n ** 63n,
    -(2n ** 63n) - 1n,
    2n ** 64n,
    2n ** 200n + 12345n,
    -(2n ** 200n),
    "",
    "a",
    "x".repeat(31),
    "x".repeat(32),
    "x".repeat(63),
    "x".repeat(64),
    "x".repeat(200),
    "é",
    "héllo wörld ☃ 😀",
    "😀".repeat(100),
    "\u0000\u007f\u0080",
  ];
  for (const v of values) assert.deepStrictEqual(rt(v), v, String(v));
  assert.ok(Object.is(rt(-0), -0));
  assert.ok(Number.isNaN(rt(NaN)));
  // Float64 bit patterns survive (a NaN payload too).
  const bits = new Uint8Array([1, 0, 0, 0, 0, 0, 0xf8, 0x7f]);
  const nan = new DataView(bits.buffer).getFloat64(0, true);
  const back = new Float64Array([rt(nan) as number]);
  assert.deepStrictEqual(new Uint8Array(back.buffer), bits);
  // A lone surrogate becomes U+FFFD, as everywhere UTF-8 is written.
  assert.equal(rt("a\ud800b"), "a\ufffdb");
  assert.equal(typeof rt(5), "number");
  assert.equal(typeof rt(5n), "bigint");
});

Deno.test("value codec: bytes, arrays and objects round-trip", () => {
  const backing = new Uint8Array([9, 9, 1, 2, 3, 9]);
  const view = backing.subarray(2, 5);
  const out = rt(view) as Uint8Array;
  assert.ok(out instanceof Uint8Array);
  assert.deepStrictEqual([...out], [1, 2, 3]);
  assert.equal(out.buffer.byteLength, 3, "a copy, not a view of the input");
  const buf = rt(Buffer.from([4, 5])) as Uint8Array;
  assert.deepStrictEqual(buf, new Uint8Array([4, 5]));
  assert.deepStrictEqual(rt(new Uint8Array(0)), new Uint8Array(0));

  const nested = {
    outcome: {
      results: [
        { lastInsertId: 2n ** 62n, rowsAffected: 1, timeSec: 0.001 },
        {
          columns: ["a", "b"],
          types: ["integer", "blob"],
          values: [[1, new Uint8Array([255])], [null, new Uint8Array(0)]],
        },
        { error: 'near "x": syntax error' },
      ],
      error: undefined,
    },
    raftIndex: 12,
    empty: {},
    list: [[], [[]], [1, "a", null, undefined, false]],
  };
  assert.deepStrictEqual(rt(nested), nested);
  assert.deepStrictEqual(Object.keys(rt({ b: 1, a: 2, c: 3 }) as object), ["b", "a", "c"]);
  // `__proto__` is an ordinary key, never a prototype change.
  const tricky = JSON.parse('{"__proto__": {"polluted": true}, "x": 1}');
  const back = rt(tricky) as Record<string, unknown>;
  assert.equal(Object.getPrototypeOf(back), Object.prototype);
  assert.deepStrictEqual(Object.keys(back), ["__proto__", "x"]);
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
  assert.deepStrictEqual(rt(Object.assign(Object.create(null), { a: 1 })), { a: 1 });
  // Sparse arrays come back dense with undefined.
  assert.deepStrictEqual(rt([1, , 3]), [1, undefined, 3]);
  // Long strings and big blobs grow the writer.
  const big = { s: "ü".repeat(100_000), b: new Uint8Array(300_000).fill(7) };
  assert.deepStrictEqual(rt(big), big);
});

Deno.test("value codec: values it cannot carry exactly are refused", () => {
  class Point {
    x = 1;
  }
  const bad: unknown[] = [
    () => 1,
    Symbol("s"),
    new Map(),
    new Set(),
    new Date(0),
    new Point(),
    new Int32Array(2),
    new DataView(new ArrayBuffer(1)),
    [1, new Error("x")],
  ];
  for (const v of bad) assert.throws(() => encodeValue(v), ValueEncodeError, String(v));
  let deep: unknown = 1;
  for (let i = 0; i < VALUE_MAX_DEPTH + 1; i++) deep = [deep];
  assert.throws(() => encodeValue(deep), ValueEncodeError);
  let ok: unknown = 1;
  for (let i = 0; i < VALUE_MAX_DEPTH; i++) ok = [ok];
  assert.deepStrictEqual(rt(ok), ok);
  // The encoder stays usable after a failure.
  assert.deepStrictEqual(rt({ a: [1n] }), { a: [1n] });
});

Deno.test("value codec: malformed input throws ValueDecodeError only", () => {
  const good = encodeValue({ a: [1, 2n ** 70n, "héllo", new Uint8Array([1, 2])], b: 1.5 });
  // Every strict prefix is truncated.
  for (let n = 0; n < good.length; n++) {
    assert.throws(() => decodeValue(good.subarray(0, n)), ValueDecodeError, `prefix ${n}`);
  }
  const bad: [string, number[]][] = [
    ["trailing byte", [1, 0]],
    ["unknown tag", [12]],
    ["unknown tag 255", [255]],
    ["overlong varint", [8, 0x80, 0x00]],
    ["varint too long", [8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]],
    ["string longer than input", [8, 10, 65]],
    ["invalid UTF-8", [8, 2, 0xc3, 0x28]],
    ["invalid UTF-8 long", [8, 40, ...new Array(39).fill(65), 0xff]],
    ["array count beyond input", [10, 0xff, 0xff, 0xff, 0x7f]],
    ["object count beyond input", [11, 0xff, 0xff, 0x03, 1]],
    ["bigint sign", [7, 2, 1, 1]],
    ["bigint zero length", [7, 0, 0]],
    ["bigint not minimal", [7, 0, 9, 1, 0, 0, 0, 0, 0, 0, 0x80, 0]],
    ["bigint within int64", [7, 0, 1, 5]],
    ["bytes beyond input", [9, 5, 1, 2]],
  ];
  for (const [what, bytes] of bad) {
    assert.throws(() => decodeValue(Uint8Array.from(bytes)), ValueDecodeError, what);
  }
  const deep = new Uint8Array(VALUE_MAX_DEPTH + 2).fill(10);
  // [[[[...]]]] with count 10 everywhere: refused for depth (or length) before recursing further.
  assert.throws(() => decodeValue(deep), ValueDecodeError);
  const nest = [...new Array(VALUE_MAX_DEPTH + 1).fill([10, 1]).flat(), 1];
  assert.throws(() => decodeValue(Uint8Array.from(nest)), /nesting too deep/);
  const okNest = [...new Array(VALUE_MAX_DEPTH).fill([10, 1]).flat(), 1];
  assert.doesNotThrow(() => decodeValue(Uint8Array.from(okNest)));
});

Deno.test("value codec: random corruption never escapes as another error", () => {
  const base = encodeValue({
    outcome: { results: [{ columns: ["a"], types: ["text"], values: [["x", 1n, 2.5, null]] }] },
    raftIndex: 3,
  });
  let seed = 12345;
  const rand = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
  for (let i = 0; i < 20_000; i++) {
    const b = base.slice();
    for (let k = 0; k <= rand(3); k++) b[rand(b.length)] = rand(256);
    try {
      decodeValue(b.subarray(0, b.length - rand(2)));
    } catch (err) {
      assert.ok(err instanceof ValueDecodeError, String(err));
    }
  }
});
