import assert from "node:assert/strict";
import { crc32c } from "../../lib/storage/crc32c.ts";

const enc = (s: string) => new TextEncoder().encode(s);

/** Bit-at-a-time reference implementation. */
function slow(data: Uint8Array): number {
  let c = ~0;
  for (const b of data) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  }
  return ~c >>> 0;
}

Deno.test("crc32c: known vectors", () => {
  assert.equal(crc32c(enc("123456789")), 0xe3069283);
  assert.equal(crc32c(new Uint8Array(0)), 0);
  // RFC 3720 (iSCSI) appendix B.4.
  assert.equal(crc32c(new Uint8Array(32)), 0x8a9136aa);
  assert.equal(crc32c(new Uint8Array(32).fill(0xff)), 0x62a8ab43);
  assert.equal(crc32c(Uint8Array.from({ length: 32 }, (_, i) => i)), 0x46dd794e);
  assert.equal(crc32c(Uint8Array.from({ length: 32 }, (_, i) => 31 - i)), 0x113fdb5c);
});

Deno.test("crc32c: matches the bitwise reference for all lengths and offsets", () => {
  const buf = Uint8Array.from({ length: 300 }, (_, i) => (i * 131 + 17) & 0xff);
  for (let start = 0; start < 9; start++) {
    for (let len = 0; len + start <= buf.length; len += 7) {
      const part = buf.subarray(start, start + len);
      assert.equal(crc32c(part), slow(part), `start ${start} len ${len}`);
    }
  }
});

Deno.test("crc32c: incremental equals one shot", () => {
  const buf = Uint8Array.from({ length: 1000 }, (_, i) => (i * 31) & 0xff);
  const whole = crc32c(buf);
  for (const cut of [0, 1, 7, 8, 9, 500, 999, 1000]) {
    assert.equal(crc32c(buf.subarray(cut), crc32c(buf.subarray(0, cut))), whole, `cut ${cut}`);
  }
});
