/**
 * A tiny durable record in two alternating slots (hard state, log meta).
 *
 * The file holds two fixed-size slots. Each write goes to the slot NOT
 * holding the newest record, with a sequence number one higher, followed by
 * one `fdatasync`. A write torn by a crash damages only its own slot, whose
 * CRC then fails, and the other slot still holds the previous record. Load
 * picks the valid slot with the higher sequence number.
 *
 * Why not write-temp + fsync + rename + fsync(dir)? That costs two fsyncs,
 * a file creation and a rename (journal traffic) per update; this costs one
 * in-place write and one fdatasync, and since the file's size never changes
 * after creation fdatasync has no metadata to flush. Term/vote updates sit
 * on the election path, so the cheaper one wins. The file itself is created
 * once through temp + fsync + rename + fsync(dir), with both slots holding
 * the initial record, so even a torn first update falls back to a valid one.
 *
 * Slot layout (little endian): magic u32 | crc32c u32 (over the rest) |
 * seq u64 (hi u32, lo u32) | length u32 | payload.
 *
 * @module
 */

import { crc32c } from "./crc32c.ts";
import { CorruptionError } from "./errors.ts";
import { fsyncDir, parentOf, removeIfExists, writeAll } from "./fs_util.ts";

const MAGIC = 0x52_4c_53_31; // "RLS1"
const HEADER_BYTES = 20;
/** Bytes per slot (one page: the whole slot is a single small write). */
export const SLOT_BYTES = 4096;
/** Largest payload a slot holds. */
export const SLOT_PAYLOAD_MAX = SLOT_BYTES - HEADER_BYTES;

/** Outcome of {@link SlotFile.open}. */
export interface SlotFileOpened {
  readonly file: SlotFile;
  /** The newest valid payload. */
  readonly payload: Uint8Array;
  /** True when the file did not exist and was created with `initial`. */
  readonly created: boolean;
  /** True when one slot failed verification (a torn write was survived). */
  readonly oneSlotDamaged: boolean;
}

/** Two-slot record file. Writes must not overlap (callers serialize them). */
export class SlotFile {
  readonly path: string;
  readonly #file: Deno.FsFile;
  #seq: number;

  private constructor(path: string, file: Deno.FsFile, seq: number) {
    this.path = path;
    this.#file = file;
    this.#seq = seq;
  }

  /** Opens `path`, creating it durably with `initial` in both slots when missing. */
  static async open(path: string, initial: Uint8Array): Promise<SlotFileOpened> {
    const tmp = `${path}.tmp`;
    await removeIfExists(tmp);
    let created = false;
    let bytes: Uint8Array;
    try {
      bytes = await Deno.readFile(path);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
      bytes = new Uint8Array(2 * SLOT_BYTES);
      bytes.set(encodeSlot(0, initial), 0);
      bytes.set(encodeSlot(1, initial), SLOT_BYTES);
      await Deno.writeFile(tmp, bytes);
      const f = await Deno.open(tmp, { read: true, write: true });
      try {
        await f.sync();
      } finally {
        f.close();
      }
      await Deno.rename(tmp, path);
      await fsyncDir(parentOf(path));
      created = true;
    }
    const slots = [decodeSlot(bytes, 0), decodeSlot(bytes, SLOT_BYTES)];
    let best: { seq: number; payload: Uint8Array } | undefined;
    const problems: string[] = [];
    slots.forEach((s, i) => {
      if (typeof s === "string") problems.push(`slot ${i}: ${s}`);
      else if (best === undefined || s.seq > best.seq) best = s;
    });
    if (best === undefined) {
      throw new CorruptionError(
        path,
        -1,
        `both slots fail verification (${problems.join("; ")}). The durable term/vote ` +
          `state is lost; do not restart this node with this data directory (restore it ` +
          `from a backup or re-join the node as a new member).`,
      );
    }
    const file = await Deno.open(path, { read: true, write: true });
    return {
      file: new SlotFile(path, file, best.seq),
      payload: best.payload,
      created,
      oneSlotDamaged: problems.length > 0,
    };
  }

  /** Durably replaces the record: one write into the older slot, one fdatasync. */
  async write(payload: Uint8Array): Promise<void> {
    const seq = this.#seq + 1;
    const record = encodeSlot(seq, payload);
    await this.#file.seek((seq % 2) * SLOT_BYTES, Deno.SeekMode.Start);
    await writeAll(this.#file, record);
    await this.#file.syncData();
    this.#seq = seq;
  }

  close(): void {
    this.#file.close();
  }
}

function encodeSlot(seq: number, payload: Uint8Array): Uint8Array {
  if (payload.length > SLOT_PAYLOAD_MAX) {
    throw new RangeError(`slot payload of ${payload.length} bytes exceeds ${SLOT_PAYLOAD_MAX}`);
  }
  const out = new Uint8Array(HEADER_BYTES + payload.length);
  const v = new DataView(out.buffer);
  v.setUint32(0, MAGIC, true);
  v.setUint32(8, Math.floor(seq / 2 ** 32), true);
  v.setUint32(12, seq >>> 0, true);
  v.setUint32(16, payload.length, true);
  out.set(payload, HEADER_BYTES);
  v.setUint32(4, crc32c(out.subarray(8)), true);
  return out;
}

/** The slot at `offset`, or why it is not valid. */
function decodeSlot(
  bytes: Uint8Array,
  offset: number,
): { seq: number; payload: Uint8Array } | string {
  if (bytes.length < offset + HEADER_BYTES) return "missing (file too short)";
  const v = new DataView(bytes.buffer, bytes.byteOffset + offset, bytes.length - offset);
  if (v.getUint32(0, true) !== MAGIC) return "bad magic";
  const length = v.getUint32(16, true);
  if (length > SLOT_PAYLOAD_MAX || offset + HEADER_BYTES + length > bytes.length) {
    return `bad length ${length}`;
  }
  const body = bytes.subarray(offset + 8, offset + HEADER_BYTES + length);
  if (crc32c(body) !== v.getUint32(4, true)) return "CRC mismatch";
  const seq = v.getUint32(8, true) * 2 ** 32 + v.getUint32(12, true);
  return { seq, payload: bytes.slice(offset + HEADER_BYTES, offset + HEADER_BYTES + length) };
}
