/**
 * `FileStableStore`: the Raft hard state (term, vote, commit hint) in
 * `<data-dir>/raft/hardstate`, a two-slot CRC-protected file (see
 * `slot_file.ts` for why two slots rather than temp + rename).
 *
 * `hardState()` answers from memory; `setHardState` updates memory at once
 * (as the in-memory store does) and reports durability through `done`
 * after one write + one fdatasync. Writes are serialized.
 *
 * Payload (little endian): term u64 (hi, lo u32) | commit u64 (hi, lo u32) |
 * vote length u16 | vote UTF-8.
 *
 * @module
 */

import type { Done, StableStore } from "../node/interfaces.ts";
import type { HardState } from "../raft/types.ts";
import { check, CorruptionError } from "./errors.ts";
import { ensureDir, join } from "./fs_util.ts";
import { IoQueue } from "./io_queue.ts";
import { SLOT_PAYLOAD_MAX, SlotFile } from "./slot_file.ts";

/** File name of the hard state inside the raft directory. */
export const HARD_STATE_FILE = "hardstate";

const EMPTY: HardState = { term: 0, vote: "", commit: 0 };

/** What {@link FileStableStore.open} found. */
export interface StableOpenReport {
  /** The file did not exist and was created (a new node). */
  readonly created: boolean;
  /** One slot was damaged (a torn write survived by falling back to the other). */
  readonly oneSlotDamaged: boolean;
}

/** Durable term, vote and commit hint. */
export class FileStableStore implements StableStore {
  readonly openReport: StableOpenReport;
  readonly #slots: SlotFile;
  readonly #queue = new IoQueue("hard state store");
  #hardState: HardState;
  #closed = false;

  private constructor(slots: SlotFile, hs: HardState, report: StableOpenReport) {
    this.#slots = slots;
    this.#hardState = hs;
    this.openReport = report;
  }

  /** Opens (or creates) `<raftDir>/hardstate`. Throws {@link CorruptionError} when both slots are damaged. */
  static async open(raftDir: string): Promise<FileStableStore> {
    await ensureDir(raftDir);
    const path = join(raftDir, HARD_STATE_FILE);
    const opened = await SlotFile.open(path, encodeHardState(EMPTY));
    let hs: HardState;
    try {
      hs = decodeHardState(path, opened.payload);
    } catch (e) {
      opened.file.close();
      throw e;
    }
    return new FileStableStore(opened.file, hs, {
      created: opened.created,
      oneSlotDamaged: opened.oneSlotDamaged,
    });
  }

  hardState(): HardState {
    return this.#hardState;
  }

  setHardState(hs: HardState, done: Done): void {
    // After a failed write: `done` gets StorageFailedError, memory stays as it was.
    if (this.#queue.failed !== undefined) return this.#queue.push(() => Promise.resolve(), done);
    const old = this.#hardState;
    check(hs.term >= old.term, () => `term goes back from ${old.term} to ${hs.term}`);
    check(
      hs.term > old.term || old.vote === "" || hs.vote === old.vote,
      () => `vote in term ${hs.term} changes from ${old.vote} to ${hs.vote}`,
    );
    const copy: HardState = { term: hs.term, vote: hs.vote, commit: hs.commit };
    const payload = encodeHardState(copy);
    this.#hardState = copy;
    this.#queue.push(() => this.#slots.write(payload), done);
  }

  /** Waits for pending writes and closes the file. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#queue.close();
    this.#slots.close();
  }
}

function encodeHardState(hs: HardState): Uint8Array {
  check(
    Number.isSafeInteger(hs.term) && hs.term >= 0 && Number.isSafeInteger(hs.commit) &&
      hs.commit >= 0,
    () => `hard state term ${hs.term} / commit ${hs.commit} must be non-negative safe integers`,
  );
  const vote = new TextEncoder().encode(hs.vote);
  check(
    vote.length <= SLOT_PAYLOAD_MAX - 18,
    () => `vote (node id) of ${vote.length} bytes is too long`,
  );
  const out = new Uint8Array(18 + vote.length);
  const v = new DataView(out.buffer);
  v.setUint32(0, Math.floor(hs.term / 2 ** 32), true);
  v.setUint32(4, hs.term >>> 0, true);
  v.setUint32(8, Math.floor(hs.commit / 2 ** 32), true);
  v.setUint32(12, hs.commit >>> 0, true);
  v.setUint16(16, vote.length, true);
  out.set(vote, 18);
  return out;
}

function decodeHardState(path: string, p: Uint8Array): HardState {
  const v = new DataView(p.buffer, p.byteOffset, p.length);
  if (p.length < 18 || p.length !== 18 + v.getUint16(16, true)) {
    throw new CorruptionError(path, -1, `hard state payload of ${p.length} bytes is malformed`);
  }
  return {
    term: v.getUint32(0, true) * 2 ** 32 + v.getUint32(4, true),
    commit: v.getUint32(8, true) * 2 ** 32 + v.getUint32(12, true),
    vote: new TextDecoder("utf-8", { fatal: true }).decode(p.subarray(18)),
  };
}
