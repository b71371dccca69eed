/**
 * CRC32C (Castagnoli, reflected polynomial 0x82F63B78), slicing-by-8.
 *
 * Every log record, hard-state slot and snapshot is protected by it, so it
 * sits on the append and open paths: eight table lookups per eight input
 * bytes instead of eight dependent lookups (one per byte).
 *
 * `crc32c(b, crc32c(a)) === crc32c(concat(a, b))`, so large inputs (snapshots
 * streamed in chunks) are checked incrementally.
 *
 * @module
 */

const POLY = 0x82f63b78;

/** 8 tables of 256 entries: TABLE[k * 256 + b] is the CRC of byte b followed by k zero bytes. */
const TABLE: Uint32Array = (() => {
  const t = new Uint32Array(8 * 256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLY : c >>> 1;
    t[i] = c >>> 0;
  }
  for (let i = 0; i < 256; i++) {
    let c = t[i]!;
    for (let k = 1; k < 8; k++) {
      c = (c >>> 8) ^ t[c & 0xff]!;
      t[k * 256 + i] = c >>> 0;
    }
  }
  return t;
})();

/**
 * CRC32C of `data`. Pass the CRC of the preceding bytes as `previous` to
 * continue a running checksum (0, the default, starts a new one).
 */
export function crc32c(data: Uint8Array, previous = 0): number {
  const t = TABLE;
  let c = ~previous;
  let i = 0;
  const n = data.length;
  const end8 = n - (n & 7);
  while (i < end8) {
    const a = c ^ (data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24));
    const b = data[i + 4]! | (data[i + 5]! << 8) | (data[i + 6]! << 16) | (data[i + 7]! << 24);
    c = t[1792 + (a & 0xff)]! ^ t[1536 + ((a >>> 8) & 0xff)]! ^
      t[1280 + ((a >>> 16) & 0xff)]! ^ t[1024 + (a >>> 24)]! ^
      t[768 + (b & 0xff)]! ^ t[512 + ((b >>> 8) & 0xff)]! ^
      t[256 + ((b >>> 16) & 0xff)]! ^ t[b >>> 24]!;
    i += 8;
  }
  while (i < n) {
    c = t[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
    i++;
  }
  return ~c >>> 0;
}
