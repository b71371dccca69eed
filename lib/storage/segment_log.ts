/**
 * `SegmentLog`: the Raft log in append-only segment files under
 * `<data-dir>/raft/`, with CRC32C per record.
 *
 * Files:
 * - `log-<first index, 20 digits>.seg`: records of consecutive entries, the
 *   first one having the index in the name. A new segment starts when the
 *   next batch would push the current one past `segmentBytes`; a batch never
 *   spans two segments (one write per batch).
 * - `logmeta`: the compaction point (index and term of the entry before the
 *   first stored one), a two-slot record (see `slot_file.ts`).
 *
 * Record (little endian): magic u32 | crc32c u32 | length u32 | payload, the
 * CRC covering the length field and the payload. Payload: index u64 (hi, lo
 * u32) | term u64 (hi, lo u32) | position in its write batch u32 | kind u8
 * (0 normal, 1 config) | data. The batch position tells a torn tail (the
 * last, unacknowledged write) from damage to acknowledged data: see
 * {@link SegmentLog.open}.
 *
 * Memory and disk: every call updates the in-memory view at once (the core
 * reads it synchronously, as with the in-memory store) and queues the disk
 * work; `done` runs once it is durable. The view keeps, per segment, the
 * offset and term of every record, plus a byte-bounded cache of the newest
 * entries. Entries not yet written are always in the cache; older ones are
 * read back with synchronous positioned reads and their CRC is checked.
 *
 * What is fsynced when:
 * - append: one write of all records, one fdatasync; a new segment also
 *   fsyncs the directory (its entry must survive) before `done`.
 * - append over a conflicting suffix: later segments are removed (newest
 *   first) and the directory fsynced, the segment is truncated and fsynced,
 *   then the append proceeds. Removing later segments first means a crash
 *   never leaves a gap (which open would refuse), only a shorter log.
 * - compact: `logmeta` first (one fdatasync), then whole segments below it
 *   are removed; one left behind by a crash is recognised as stale at open.
 * - reset: all segments removed (newest first), directory fsynced, then
 *   `logmeta`. A crash in between leaves a shorter or empty log, which the
 *   driver resets again against the snapshot it stored first.
 *
 * @module
 */

import type { Done, LogStore } from "../node/interfaces.ts";
import type { Entry, EntryKind, SnapshotMeta } from "../raft/types.ts";
import { crc32c } from "./crc32c.ts";
import { check, CorruptionError } from "./errors.ts";
import { ensureDir, fsyncDir, join, listNames, readAtSync, writeAll } from "./fs_util.ts";
import { IoQueue } from "./io_queue.ts";
import { SlotFile } from "./slot_file.ts";

/** File name of the compaction point inside the raft directory. */
export const LOG_META_FILE = "logmeta";

const RECORD_MAGIC = 0x52_4c_47_31; // "RLG1"
const HEADER_BYTES = 12;
const PAYLOAD_FIXED = 21;
/** Bytes a record adds to its entry's data. */
export const RECORD_OVERHEAD = HEADER_BYTES + PAYLOAD_FIXED;
/** Largest entry data a record holds (its length field is a u32). */
const RECORD_DATA_MAX = 0xffff_ffff - PAYLOAD_FIXED;
const SEGMENT_NAME = /^log-(\d{20})\.seg$/;
const MIB = 1024 * 1024;

/** Options of {@link SegmentLog.open}. */
export interface SegmentLogOptions {
  /** A new segment starts when the next batch would exceed this size. Default 64 MiB. */
  readonly segmentBytes?: number;
  /**
   * Bound of the cache of recent entries (data plus ~64 bytes per entry).
   * Default 8 MiB: enough for followers a few hundred milliseconds behind
   * at full write speed (older entries are read back from the file, which
   * the OS caches); it is resident memory, and 64 MiB cost as much under
   * bulk loads.
   */
  readonly cacheBytes?: number;
  /** Read handles kept open (least recently used are closed). Default 8. */
  readonly readersMax?: number;
}

/** A torn tail that open cut away. */
export interface TornTail {
  readonly file: string;
  /** Offset of the first damaged record; the file now ends here. */
  readonly offset: number;
  /** Bytes removed from the end of the file. */
  readonly droppedBytes: number;
  /** Intact records after the damage (same unacknowledged write) removed with it. */
  readonly droppedIntactRecords: number;
  /** Why the record at `offset` failed. */
  readonly reason: string;
}

/** What {@link SegmentLog.open} found and repaired. */
export interface LogOpenReport {
  readonly segments: number;
  readonly firstIndex: number;
  readonly lastIndex: number;
  /** Segments wholly below the compaction point (left by a crash during compact), removed. */
  readonly removedStaleSegments: readonly string[];
  /** Set when the last segment ended in a torn record that was cut away. */
  readonly torn: TornTail | undefined;
  /** `logmeta` did not exist and was created. */
  readonly metaCreated: boolean;
}

/** Counters (tests and benchmarks check group commit with them). */
export interface LogStats {
  appends: number;
  writeCalls: number;
  dataSyncs: number;
  fileSyncs: number;
  dirSyncs: number;
  bytesWritten: number;
  diskReads: number;
}

interface Segment {
  readonly first: number;
  readonly path: string;
  /** Byte offset of record `first + i`. */
  readonly offsets: number[];
  /** Term of record `first + i`. */
  readonly terms: number[];
  /** Size once every queued write is done. */
  size: number;
}

interface Writer {
  readonly seg: Segment;
  readonly file: Deno.FsFile;
  /** Current file position, or -1 when unknown. */
  pos: number;
}

interface Truncation {
  readonly seg: Segment;
  readonly offset: number;
  readonly removed: readonly Segment[];
}

/** The durable Raft log. Open with {@link SegmentLog.open}; close with {@link SegmentLog.close}. */
export class SegmentLog implements LogStore {
  readonly dir: string;
  readonly openReport: LogOpenReport;
  readonly stats: LogStats = {
    appends: 0,
    writeCalls: 0,
    dataSyncs: 0,
    fileSyncs: 0,
    dirSyncs: 0,
    bytesWritten: 0,
    diskReads: 0,
  };
  readonly #segmentBytes: number;
  readonly #cacheMax: number;
  readonly #readersMax: number;
  readonly #meta: SlotFile;
  readonly #queue = new IoQueue("raft log");
  #segments: Segment[];
  #prevIndex: number;
  #prevTerm: number;
  #lastIndex: number;
  /** Newest entries, `#cache[i]` has index `#cacheFirst + i`; always reaches `#lastIndex`. */
  #cache: Entry[] = [];
  #cacheFirst: number;
  #cacheBytes = 0;
  /** Told how long each append's write + fdatasync took, in ms (metrics; optional). */
  onAppendSynced: ((ms: number) => void) | undefined;
  /** Entries up to here are on disk where the view says; only these may leave the cache. */
  #stableIndex: number;
  /** Queued operations that write or remove entries. */
  #writesQueued = 0;
  #writer: Writer | undefined;
  /** The next append starts a new segment (set when a compaction point falls in the last one). */
  #rollNext = false;
  readonly #readers = new Map<Segment, Deno.FsFile>();
  #closed = false;

  private constructor(
    dir: string,
    meta: SlotFile,
    segments: Segment[],
    prev: { index: number; term: number },
    options: SegmentLogOptions,
    report: LogOpenReport,
  ) {
    this.dir = dir;
    this.#meta = meta;
    this.#segments = segments;
    this.#prevIndex = prev.index;
    this.#prevTerm = prev.term;
    this.#lastIndex = report.lastIndex;
    this.#cacheFirst = this.#lastIndex + 1;
    this.#stableIndex = this.#lastIndex;
    this.#segmentBytes = options.segmentBytes ?? 64 * MIB;
    this.#cacheMax = options.cacheBytes ?? 8 * MIB;
    this.#readersMax = options.readersMax ?? 8;
    check(this.#segmentBytes > 0, () => `segmentBytes must be positive`);
    check(this.#cacheMax >= 0, () => `cacheBytes must not be negative`);
    check(this.#readersMax > 0, () => `readersMax must be positive`);
    this.openReport = report;
  }

  /**
   * Opens the log in `raftDir` (created if missing), verifying every record.
   *
   * A damaged record at the end of the LAST segment is a torn write (the
   * crash hit the newest, unacknowledged append): it and anything after it
   * are cut away and described in `openReport.torn`. Intact records after
   * the damage are allowed only if they belong to the same write batch.
   * Damage anywhere else, a record from a later write after the damage, a
   * gap between segments or between `logmeta` and the first segment, or
   * terms going backwards throw {@link CorruptionError} naming the file and
   * offset: acknowledged (possibly committed) entries may be damaged, and
   * they are never dropped silently.
   */
  static async open(raftDir: string, options: SegmentLogOptions = {}): Promise<SegmentLog> {
    await ensureDir(raftDir);
    const opened = await SlotFile.open(join(raftDir, LOG_META_FILE), encodeMeta(0, 0));
    try {
      const prev = decodeMeta(opened.file.path, opened.payload);
      const scan = await scanSegments(raftDir, prev);
      const report: LogOpenReport = {
        segments: scan.segments.length,
        firstIndex: prev.index + 1,
        lastIndex: scan.lastIndex,
        removedStaleSegments: scan.removed,
        torn: scan.torn,
        metaCreated: opened.created,
      };
      return new SegmentLog(raftDir, opened.file, scan.segments, prev, options, report);
    } catch (e) {
      opened.file.close();
      throw e;
    }
  }

  firstIndex(): number {
    return this.#prevIndex + 1;
  }

  lastIndex(): number {
    return this.#lastIndex;
  }

  term(index: number): number {
    if (index === this.#prevIndex) return this.#prevTerm;
    check(
      index > this.#prevIndex && index <= this.#lastIndex,
      () => `term(${index}) outside [${this.#prevIndex}, ${this.#lastIndex}]`,
    );
    const seg = this.#segmentOf(index);
    return seg.terms[index - seg.first]!;
  }

  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    check(
      lo >= this.firstIndex() && lo < hi && hi <= this.#lastIndex + 1,
      () => `entries [${lo}, ${hi}) outside [${this.firstIndex()}, ${this.#lastIndex + 1})`,
    );
    const out: Entry[] = [];
    let bytes = 0;
    let i = lo;
    while (i < hi) {
      if (i >= this.#cacheFirst) {
        const entry = this.#cache[i - this.#cacheFirst]!;
        bytes += entry.data.byteLength;
        if (out.length > 0 && bytes > maxBytes) break;
        out.push(entry);
        i++;
        continue;
      }
      // A run of records in one segment, sized from the view before reading.
      const seg = this.#segmentOf(i);
      const end = Math.min(hi, this.#cacheFirst, seg.first + seg.offsets.length);
      let j = i;
      let full = false;
      while (j < end) {
        const data = recordEnd(seg, j - seg.first) - seg.offsets[j - seg.first]! - RECORD_OVERHEAD;
        if ((out.length > 0 || j > i) && bytes + data > maxBytes) {
          full = true;
          break;
        }
        bytes += data;
        j++;
      }
      for (const entry of this.#readRecords(seg, i, j)) out.push(entry);
      i = j;
      if (full) break;
    }
    return out;
  }

  append(entries: readonly Entry[], done: Done): void {
    this.#checkOpen();
    this.stats.appends++;
    const first = entries[0];
    if (first === undefined || this.#queue.failed !== undefined) {
      return this.#queue.push(() => Promise.resolve(), done);
    }
    this.#checkAppend(entries);
    const truncation = first.index <= this.#lastIndex
      ? this.#planTruncation(first.index)
      : undefined;
    const batch = encodeBatch(entries);
    let seg = this.#segments.at(-1);
    let isNew = false;
    if (
      seg === undefined ||
      (seg.size > 0 && (this.#rollNext || seg.size + batch.bytes.length > this.#segmentBytes))
    ) {
      this.#rollNext = false;
      seg = {
        first: first.index,
        path: join(this.dir, segmentName(first.index)),
        offsets: [],
        terms: [],
        size: 0,
      };
      this.#segments.push(seg);
      isNew = true;
    }
    check(
      seg.first + seg.offsets.length === first.index,
      () => `segment ${seg.path} holds ${seg.offsets.length} records, cannot take ${first.index}`,
    );
    const offset = seg.size;
    for (let k = 0; k < entries.length; k++) {
      seg.offsets.push(offset + batch.offsets[k]!);
      seg.terms.push(entries[k]!.term);
    }
    seg.size += batch.bytes.length;
    this.#lastIndex = first.index + entries.length - 1;
    for (const entry of entries) {
      this.#cache.push(entry);
      this.#cacheBytes += cost(entry);
    }
    this.#writesQueued++;
    const target = seg;
    this.#queue.push(async () => {
      if (truncation !== undefined) await this.#truncate(truncation);
      await this.#write(target, isNew, offset, batch.bytes);
      this.#writeSettled();
    }, done);
  }

  compact(index: number, term: number, done: Done): void {
    this.#checkOpen();
    check(
      index >= this.#prevIndex && index <= this.#lastIndex,
      () => `compact(${index}) outside [${this.#prevIndex}, ${this.#lastIndex}]`,
    );
    const stored = this.term(index);
    check(stored === term, () => `compact(${index}, term ${term}) but entry has term ${stored}`);
    if (index === this.#prevIndex || this.#queue.failed !== undefined) {
      return this.#queue.push(() => Promise.resolve(), done);
    }
    this.#prevIndex = index;
    this.#prevTerm = term;
    let n = 0;
    while (n < this.#segments.length && segLast(this.#segments[n]!) <= index) n++;
    const removed = this.#segments.splice(0, n);
    // The compaction point lies in the segment being appended to: start a new
    // one, so that the next compaction can remove this one whole and the log
    // on disk stays near the entries kept, not one segment's size.
    if (this.#segments.length === 1) this.#rollNext = true;
    for (const seg of removed) this.#closeReader(seg);
    if (this.#cacheFirst <= index) this.#dropCacheBelow(index + 1);
    const meta = encodeMeta(index, term);
    this.#queue.push(async () => {
      await this.#meta.write(meta);
      this.stats.dataSyncs++;
      // No directory fsync: a removed segment that reappears after a crash
      // lies wholly below the compaction point, and open removes it.
      for (const seg of removed) await this.#removeSegment(seg);
    }, done);
  }

  reset(meta: SnapshotMeta, done: Done): void {
    this.#checkOpen();
    check(
      Number.isSafeInteger(meta.index) && meta.index >= 0 && Number.isSafeInteger(meta.term),
      () => `reset to index ${meta.index} term ${meta.term}`,
    );
    if (this.#queue.failed !== undefined) return this.#queue.push(() => Promise.resolve(), done);
    const removed = this.#segments;
    this.#segments = [];
    for (const seg of removed) this.#closeReader(seg);
    this.#prevIndex = meta.index;
    this.#prevTerm = meta.term;
    this.#lastIndex = meta.index;
    this.#cache = [];
    this.#cacheBytes = 0;
    this.#cacheFirst = meta.index + 1;
    this.#stableIndex = Math.min(this.#stableIndex, meta.index);
    this.#writesQueued++;
    const bytes = encodeMeta(meta.index, meta.term);
    this.#queue.push(async () => {
      for (let k = removed.length - 1; k >= 0; k--) await this.#removeSegment(removed[k]!);
      await this.#syncDir();
      await this.#meta.write(bytes);
      this.stats.dataSyncs++;
      this.#writeSettled();
    }, done);
  }

  /** Waits for queued writes, then closes every file. The log cannot be used afterwards. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#queue.close();
    this.#writer?.file.close();
    this.#writer = undefined;
    for (const file of this.#readers.values()) file.close();
    this.#readers.clear();
    this.#meta.close();
  }

  // ------------------------------------------------------------------ planning (synchronous)

  #checkOpen(): void {
    check(!this.#closed, () => `raft log ${this.dir} used after close()`);
  }

  #checkAppend(entries: readonly Entry[]): void {
    const first = entries[0]!;
    check(
      first.index >= this.firstIndex(),
      () => `append at ${first.index} below first index ${this.firstIndex()}`,
    );
    check(
      first.index <= this.#lastIndex + 1,
      () => `append at ${first.index} leaves a gap after last index ${this.#lastIndex}`,
    );
    let prevTerm = this.term(first.index - 1);
    for (let k = 0; k < entries.length; k++) {
      const e = entries[k]!;
      check(
        e.index === first.index + k && Number.isSafeInteger(e.index),
        () => `non-contiguous append: entry ${k} has index ${e.index}, expected ${first.index + k}`,
      );
      check(
        Number.isSafeInteger(e.term) && e.term >= prevTerm,
        () => `entry ${e.index} has term ${e.term} after term ${prevTerm}`,
      );
      check(e.kind === "normal" || e.kind === "config", () => `entry ${e.index} kind ${e.kind}`);
      check(
        e.data.byteLength <= RECORD_DATA_MAX,
        () => `entry ${e.index} has ${e.data.byteLength} bytes of data, over ${RECORD_DATA_MAX}`,
      );
      prevTerm = e.term;
    }
  }

  /** Cuts the view back to `index - 1`; returns what the disk must do. */
  #planTruncation(index: number): Truncation {
    const at = this.#segmentIndexOf(index);
    const seg = this.#segments[at]!;
    const k = index - seg.first;
    const offset = seg.offsets[k]!;
    const removed = this.#segments.splice(at + 1);
    for (const r of removed) this.#closeReader(r);
    seg.offsets.length = k;
    seg.terms.length = k;
    seg.size = offset;
    this.#lastIndex = index - 1;
    this.#stableIndex = Math.min(this.#stableIndex, index - 1);
    if (index >= this.#cacheFirst) {
      const dropped = this.#cache.splice(index - this.#cacheFirst);
      for (const e of dropped) this.#cacheBytes -= cost(e);
    } else {
      this.#cache = [];
      this.#cacheBytes = 0;
      this.#cacheFirst = index;
    }
    return { seg, offset, removed };
  }

  #segmentIndexOf(index: number): number {
    const segs = this.#segments;
    let lo = 0;
    let hi = segs.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (segs[mid]!.first <= index) lo = mid;
      else hi = mid - 1;
    }
    const seg = segs[lo];
    check(
      seg !== undefined && seg.first <= index && index <= segLast(seg),
      () => `no segment holds entry ${index}`,
    );
    return lo;
  }

  #segmentOf(index: number): Segment {
    const last = this.#segments.at(-1);
    if (last !== undefined && last.first <= index) return last;
    return this.#segments[this.#segmentIndexOf(index)]!;
  }

  #dropCacheBelow(index: number): void {
    const n = Math.min(index - this.#cacheFirst, this.#cache.length);
    if (n <= 0) return;
    for (const e of this.#cache.splice(0, n)) this.#cacheBytes -= cost(e);
    this.#cacheFirst += n;
  }

  /** Evicts the oldest cached entries that are on disk while over the bound. */
  #evict(): void {
    if (this.#cacheBytes <= this.#cacheMax) return;
    let n = 0;
    let bytes = this.#cacheBytes;
    const limit = this.#stableIndex - this.#cacheFirst + 1;
    while (n < limit && n < this.#cache.length && bytes > this.#cacheMax) {
      bytes -= cost(this.#cache[n]!);
      n++;
    }
    if (n === 0) return;
    this.#cache.splice(0, n);
    this.#cacheBytes = bytes;
    this.#cacheFirst += n;
  }

  #writeSettled(): void {
    this.#writesQueued--;
    if (this.#writesQueued === 0) {
      this.#stableIndex = this.#lastIndex;
      this.#evict();
    }
  }

  // ------------------------------------------------------------------ reads (synchronous)

  /** Reads, verifies and decodes entries [from, to) of `seg`. */
  #readRecords(seg: Segment, from: number, to: number): Entry[] {
    const start = seg.offsets[from - seg.first]!;
    const end = recordEnd(seg, to - 1 - seg.first);
    const file = this.#reader(seg);
    this.stats.diskReads++;
    const bytes = readAtSync(file, start, end - start);
    const out: Entry[] = [];
    let pos = 0;
    for (let index = from; index < to; index++) {
      const r = parseRecord(bytes, pos);
      const at = start + pos;
      if (typeof r === "string") {
        throw new CorruptionError(seg.path, at, `entry ${index} fails on read: ${r}`);
      }
      if (r.index !== index || r.term !== seg.terms[index - seg.first]) {
        throw new CorruptionError(
          seg.path,
          at,
          `read entry ${r.index} term ${r.term} where entry ${index} term ${
            seg.terms[index - seg.first]
          } was expected`,
        );
      }
      out.push({ index, term: r.term, kind: r.kind, data: bytes.subarray(r.dataStart, r.end) });
      pos = r.end;
    }
    return out;
  }

  #reader(seg: Segment): Deno.FsFile {
    let file = this.#readers.get(seg);
    if (file !== undefined) {
      this.#readers.delete(seg); // re-inserted below as most recently used
    } else {
      if (this.#readers.size >= this.#readersMax) {
        const [oldest, handle] = this.#readers.entries().next().value!;
        handle.close();
        this.#readers.delete(oldest);
      }
      file = Deno.openSync(seg.path, { read: true });
    }
    this.#readers.set(seg, file);
    return file;
  }

  #closeReader(seg: Segment): void {
    const file = this.#readers.get(seg);
    if (file === undefined) return;
    file.close();
    this.#readers.delete(seg);
  }

  // ------------------------------------------------------------------ disk work (queued)

  async #truncate(t: Truncation): Promise<void> {
    // Newest first, then the directory: a crash never leaves a gap.
    for (let k = t.removed.length - 1; k >= 0; k--) await this.#removeSegment(t.removed[k]!);
    if (t.removed.length > 0) await this.#syncDir();
    const writer = await this.#writerFor(t.seg);
    await writer.file.truncate(t.offset);
    // fsync, not fdatasync: the size shrank.
    await writer.file.sync();
    this.stats.fileSyncs++;
  }

  async #write(seg: Segment, isNew: boolean, offset: number, bytes: Uint8Array): Promise<void> {
    let writer: Writer;
    if (isNew) {
      this.#closeWriter();
      const file = await Deno.open(seg.path, {
        read: true,
        write: true,
        create: true,
        truncate: true,
      });
      writer = { seg, file, pos: 0 };
      this.#writer = writer;
    } else {
      writer = await this.#writerFor(seg);
    }
    if (writer.pos !== offset) {
      await writer.file.seek(offset, Deno.SeekMode.Start);
    }
    writer.pos = -1; // unknown until the write completed
    const startMs = performance.now();
    this.stats.writeCalls += await writeAll(writer.file, bytes);
    writer.pos = offset + bytes.length;
    this.stats.bytesWritten += bytes.length;
    await writer.file.syncData();
    this.stats.dataSyncs++;
    this.onAppendSynced?.(performance.now() - startMs);
    if (isNew) await this.#syncDir();
  }

  async #writerFor(seg: Segment): Promise<Writer> {
    if (this.#writer?.seg === seg) return this.#writer;
    this.#closeWriter();
    const file = await Deno.open(seg.path, { read: true, write: true });
    this.#writer = { seg, file, pos: -1 };
    return this.#writer;
  }

  #closeWriter(): void {
    this.#writer?.file.close();
    this.#writer = undefined;
  }

  async #removeSegment(seg: Segment): Promise<void> {
    if (this.#writer?.seg === seg) this.#closeWriter();
    this.#closeReader(seg);
    try {
      await Deno.remove(seg.path);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
  }

  async #syncDir(): Promise<void> {
    await fsyncDir(this.dir);
    this.stats.dirSyncs++;
  }
}

// ------------------------------------------------------------------ opening

interface Scan {
  segments: Segment[];
  lastIndex: number;
  removed: string[];
  torn: TornTail | undefined;
}

async function scanSegments(dir: string, prev: { index: number; term: number }): Promise<Scan> {
  const found: { first: number; name: string }[] = [];
  for (const name of await listNames(dir)) {
    const m = SEGMENT_NAME.exec(name);
    if (m !== null) found.push({ first: Number(m[1]), name });
  }
  found.sort((a, b) => a.first - b.first);
  const removed: string[] = [];
  // A segment followed by one starting at or below prev + 1 lies wholly below
  // the compaction point: left behind by a crash during compact.
  while (found.length > 1 && found[1]!.first <= prev.index + 1) {
    const stale = found.shift()!;
    await Deno.remove(join(dir, stale.name));
    removed.push(stale.name);
  }
  const segments: Segment[] = [];
  let torn: TornTail | undefined;
  for (let k = 0; k < found.length; k++) {
    const { first, name } = found[k]!;
    const path = join(dir, name);
    const isLast = k === found.length - 1;
    const before = segments.at(-1);
    if (before !== undefined && segLast(before) + 1 !== first) {
      throw new CorruptionError(
        path,
        0,
        `gap in the log: ${before.path} ends at entry ${segLast(before)} but this segment ` +
          `starts at ${first}; a segment is missing or damaged, committed entries may be lost`,
      );
    }
    const result = await scanSegment(path, first, isLast, before?.terms.at(-1) ?? 0);
    if (result.torn !== undefined) torn = result.torn;
    segments.push(result.seg);
  }
  // The last segment may lie wholly below the compaction point too (compact of the whole log).
  const only = segments[0];
  if (segments.length === 1 && only !== undefined && segLast(only) <= prev.index) {
    await Deno.remove(only.path);
    removed.push(only.path.slice(only.path.lastIndexOf("/") + 1));
    segments.length = 0;
  }
  if (removed.length > 0) await fsyncDir(dir);
  const head = segments[0];
  if (head !== undefined) {
    if (head.first > prev.index + 1) {
      throw new CorruptionError(
        head.path,
        0,
        `gap in the log: ${LOG_META_FILE} says the log continues after entry ${prev.index} ` +
          `but the first segment starts at ${head.first}; committed entries may be lost`,
      );
    }
    if (prev.index >= head.first && head.terms[prev.index - head.first] !== prev.term) {
      throw new CorruptionError(
        head.path,
        head.offsets[prev.index - head.first] ?? 0,
        `entry ${prev.index} has term ${head.terms[prev.index - head.first]} but ` +
          `${LOG_META_FILE} says the log was compacted at term ${prev.term}`,
      );
    }
  }
  const last = segments.at(-1);
  return {
    segments,
    lastIndex: last === undefined ? prev.index : Math.max(prev.index, segLast(last)),
    removed,
    torn,
  };
}

/** Verifies every record of one segment; cuts a torn tail of the last one. */
async function scanSegment(
  path: string,
  first: number,
  isLast: boolean,
  termBefore: number,
): Promise<{ seg: Segment; torn?: TornTail }> {
  const bytes = await Deno.readFile(path);
  const seg: Segment = { first, path, offsets: [], terms: [], size: 0 };
  let pos = 0;
  let prevTerm = termBefore;
  let batchFirst = first;
  let failure: string | undefined;
  while (pos < bytes.length) {
    const r = parseRecord(bytes, pos);
    if (typeof r === "string") {
      failure = r;
      break;
    }
    const expected = first + seg.offsets.length;
    if (r.index !== expected) {
      throw new CorruptionError(
        path,
        pos,
        `intact record holds entry ${r.index} where entry ${expected} belongs; the log is damaged`,
      );
    }
    if (r.term < prevTerm) {
      throw new CorruptionError(
        path,
        pos,
        `entry ${r.index} term ${r.term} < previous ${prevTerm}`,
      );
    }
    prevTerm = r.term;
    batchFirst = r.index - r.batchPos;
    seg.offsets.push(pos);
    seg.terms.push(r.term);
    pos = r.end;
  }
  seg.size = pos;
  if (failure === undefined) return { seg };
  const entry = first + seg.offsets.length;
  if (!isLast) {
    throw new CorruptionError(
      path,
      pos,
      `record of entry ${entry} is damaged (${failure}) in a segment that is not the last; ` +
        `acknowledged, possibly committed, entries are damaged. Restore this node's data ` +
        `directory (or re-join it empty) instead of starting it.`,
    );
  }
  // Allowed batch of the damaged record: that of the record before it, or a
  // new batch starting at the damaged record itself.
  const lastIndex = entry - 1;
  const allowed = new Set([seg.offsets.length > 0 ? batchFirst : first, entry]);
  let intact = 0;
  let q = pos + 1;
  while (q + HEADER_BYTES <= bytes.length) {
    if (!hasMagic(bytes, q)) {
      q++;
      continue;
    }
    const r = parseRecord(bytes, q);
    if (typeof r === "string") {
      q++;
      continue;
    }
    if (r.index <= lastIndex || !allowed.has(r.index - r.batchPos)) {
      throw new CorruptionError(
        path,
        pos,
        `record of entry ${entry} is damaged (${failure}), but an intact record of entry ` +
          `${r.index} from a later write follows at offset ${q}; acknowledged, possibly ` +
          `committed, entries are damaged. Restore this node's data directory (or re-join ` +
          `it empty) instead of starting it.`,
      );
    }
    intact++;
    q = r.end;
  }
  const file = await Deno.open(path, { read: true, write: true });
  try {
    await file.truncate(pos);
    await file.sync();
  } finally {
    file.close();
  }
  return {
    seg,
    torn: {
      file: path,
      offset: pos,
      droppedBytes: bytes.length - pos,
      droppedIntactRecords: intact,
      reason: failure,
    },
  };
}

// ------------------------------------------------------------------ encoding

interface Batch {
  readonly bytes: Uint8Array;
  /** Offset of each record in `bytes`. */
  readonly offsets: number[];
}

/** Encodes entries as records in one buffer (one write). */
function encodeBatch(entries: readonly Entry[]): Batch {
  let total = 0;
  for (const e of entries) total += RECORD_OVERHEAD + e.data.byteLength;
  const bytes = new Uint8Array(total);
  const view = new DataView(bytes.buffer);
  const offsets: number[] = new Array(entries.length);
  let pos = 0;
  for (let k = 0; k < entries.length; k++) {
    const e = entries[k]!;
    const length = PAYLOAD_FIXED + e.data.byteLength;
    offsets[k] = pos;
    view.setUint32(pos, RECORD_MAGIC, true);
    view.setUint32(pos + 8, length, true);
    view.setUint32(pos + 12, Math.floor(e.index / 2 ** 32), true);
    view.setUint32(pos + 16, e.index >>> 0, true);
    view.setUint32(pos + 20, Math.floor(e.term / 2 ** 32), true);
    view.setUint32(pos + 24, e.term >>> 0, true);
    view.setUint32(pos + 28, k, true);
    bytes[pos + 32] = e.kind === "config" ? 1 : 0;
    bytes.set(e.data, pos + RECORD_OVERHEAD);
    const end = pos + HEADER_BYTES + length;
    view.setUint32(pos + 4, crc32c(bytes.subarray(pos + 8, end)), true);
    pos = end;
  }
  return { bytes, offsets };
}

interface Parsed {
  readonly index: number;
  readonly term: number;
  readonly batchPos: number;
  readonly kind: EntryKind;
  readonly dataStart: number;
  readonly end: number;
}

function hasMagic(bytes: Uint8Array, pos: number): boolean {
  return bytes[pos] === (RECORD_MAGIC & 0xff) && bytes[pos + 1] === ((RECORD_MAGIC >>> 8) & 0xff) &&
    bytes[pos + 2] === ((RECORD_MAGIC >>> 16) & 0xff) && bytes[pos + 3] === RECORD_MAGIC >>> 24;
}

/** The record at `pos`, or why it is not a valid one. */
function parseRecord(bytes: Uint8Array, pos: number): Parsed | string {
  if (bytes.length - pos < HEADER_BYTES) {
    return `incomplete header (${bytes.length - pos} bytes left)`;
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset + pos, bytes.length - pos);
  if (view.getUint32(0, true) !== RECORD_MAGIC) return "bad magic";
  const length = view.getUint32(8, true);
  if (length < PAYLOAD_FIXED) return `bad length ${length}`;
  const end = pos + HEADER_BYTES + length;
  if (end > bytes.length) return `record of ${length} bytes runs past the end of the file`;
  if (crc32c(bytes.subarray(pos + 8, end)) !== view.getUint32(4, true)) return "CRC mismatch";
  const kind = bytes[pos + 32];
  if (kind !== 0 && kind !== 1) return `bad kind ${kind}`;
  return {
    index: view.getUint32(12, true) * 2 ** 32 + view.getUint32(16, true),
    term: view.getUint32(20, true) * 2 ** 32 + view.getUint32(24, true),
    batchPos: view.getUint32(28, true),
    kind: kind === 1 ? "config" : "normal",
    dataStart: pos + RECORD_OVERHEAD,
    end,
  };
}

function encodeMeta(index: number, term: number): Uint8Array {
  const out = new Uint8Array(16);
  const v = new DataView(out.buffer);
  v.setUint32(0, Math.floor(index / 2 ** 32), true);
  v.setUint32(4, index >>> 0, true);
  v.setUint32(8, Math.floor(term / 2 ** 32), true);
  v.setUint32(12, term >>> 0, true);
  return out;
}

function decodeMeta(path: string, p: Uint8Array): { index: number; term: number } {
  if (p.length !== 16) {
    throw new CorruptionError(path, -1, `log meta payload of ${p.length} bytes, expected 16`);
  }
  const v = new DataView(p.buffer, p.byteOffset, p.length);
  return {
    index: v.getUint32(0, true) * 2 ** 32 + v.getUint32(4, true),
    term: v.getUint32(8, true) * 2 ** 32 + v.getUint32(12, true),
  };
}

// ------------------------------------------------------------------ small helpers

/** `log-<first index, 20 digits>.seg`. */
export function segmentName(first: number): string {
  return `log-${String(first).padStart(20, "0")}.seg`;
}

function segLast(seg: Segment): number {
  return seg.first + seg.offsets.length - 1;
}

function recordEnd(seg: Segment, k: number): number {
  return seg.offsets[k + 1] ?? seg.size;
}

/** Cache accounting: data plus the entry object and its bookkeeping. */
function cost(entry: Entry): number {
  return entry.data.byteLength + 64;
}
