/**
 * `FileSnapshotStore`: snapshot files under `<data-dir>/snapshots/`.
 *
 * Each snapshot is two files: `<term>-<index>.snap` (the state machine's
 * bytes) and `<term>-<index>.meta` (JSON: index, term, conf, size, CRC32C of
 * the data, creation time). A snapshot is written to a temp file while its
 * CRC is computed incrementally, fsynced and renamed; then its meta goes
 * through temp -> fsync -> rename, and the directory is fsynced. The meta
 * file appears last, so "meta present" means "complete": a `.snap` without
 * `.meta` is an interrupted write and is removed at open, as are temp files.
 *
 * `latest()` is the newest snapshot (highest index, then term) whose meta
 * parses and whose data file has the recorded size; damaged ones found at
 * open are listed in `openReport.invalid`, skipped, and left on disk for an
 * operator. `read()` and the streaming readers verify size and CRC and
 * throw {@link SnapshotCorruptError} naming the file on mismatch. After a
 * new snapshot is durable, all but the newest `retain` (default 2) are
 * removed (meta first, so a crash leaves only an orphan that open removes).
 *
 * @module
 */

import type { Done, SnapshotData, SnapshotStore } from "../node/interfaces.ts";
import type { ConfState, SnapshotMeta } from "../raft/types.ts";
import { crc32c } from "./crc32c.ts";
import { check, SnapshotCorruptError, toError } from "./errors.ts";
import { ensureDir, fsyncDir, join, listNames, removeIfExists, writeAll } from "./fs_util.ts";

const META_FORMAT = 1;
const NAME = /^(\d+)-(\d+)\.(snap|meta)$/;

/** Options of {@link FileSnapshotStore.open}. */
export interface SnapshotStoreOptions {
  /** Snapshots kept after a new one is durable (newest first). Default 2, at least 1. */
  readonly retain?: number;
}

/** A stored, complete snapshot. */
export interface SnapshotInfo {
  readonly meta: SnapshotMeta;
  /** Bytes of data. */
  readonly size: number;
  /** CRC32C of the data. */
  readonly crc32c: number;
  /** Wall-clock creation time (ms since the epoch). */
  readonly createdMs: number;
  readonly dataFile: string;
  readonly metaFile: string;
}

/** What {@link FileSnapshotStore.open} found. */
export interface SnapshotOpenReport {
  /** Temp files of interrupted writes, removed. */
  readonly removedTemp: readonly string[];
  /** Data files without meta (interrupted before completion), removed. */
  readonly removedIncomplete: readonly string[];
  /** Snapshots whose meta does not parse or whose data is missing or of the wrong size: skipped, kept on disk. */
  readonly invalid: readonly { readonly file: string; readonly reason: string }[];
}

/** Streams one snapshot's data in chunks, verifying size and CRC at the end. */
export interface SnapshotReader {
  readonly info: SnapshotInfo;
  /**
   * Up to `maxBytes` of data, or null after the last byte. Throws
   * {@link SnapshotCorruptError} when the file ends early or the CRC of the
   * whole data does not match (the consumer must discard what it read).
   */
  read(maxBytes: number): Promise<Uint8Array | null>;
  close(): void;
}

/** Receives a snapshot in chunks; `commit` makes it durable and visible atomically. */
export interface SnapshotWriter {
  readonly meta: SnapshotMeta;
  /** Bytes written so far. */
  readonly size: number;
  write(chunk: Uint8Array): Promise<void>;
  /** fsync, rename, write meta, fsync the directory, then apply retention. */
  commit(): Promise<SnapshotInfo>;
  /** Discards the temp file. Safe after a failure; a no-op after commit. */
  abort(): Promise<void>;
}

/** Snapshot files with atomic completion, verification and retention. */
export class FileSnapshotStore implements SnapshotStore {
  readonly dir: string;
  readonly openReport: SnapshotOpenReport;
  readonly #retain: number;
  /** Valid snapshots, newest first. */
  #list: SnapshotInfo[];
  #tmpSeq = 0;
  /** Commits and removals run one at a time. */
  #tail: Promise<void> = Promise.resolve();
  readonly #inflight = new Set<Promise<void>>();
  #closed = false;

  private constructor(
    dir: string,
    list: SnapshotInfo[],
    retain: number,
    report: SnapshotOpenReport,
  ) {
    this.dir = dir;
    this.#list = list;
    this.#retain = retain;
    this.openReport = report;
  }

  /** Opens (or creates) the snapshot directory, removing temp files and incomplete snapshots. */
  static async open(dir: string, options: SnapshotStoreOptions = {}): Promise<FileSnapshotStore> {
    const retain = options.retain ?? 2;
    check(Number.isInteger(retain) && retain >= 1, () => `retain must be >= 1, got ${retain}`);
    await ensureDir(dir);
    const names = await listNames(dir);
    const removedTemp: string[] = [];
    const removedIncomplete: string[] = [];
    const invalid: { file: string; reason: string }[] = [];
    for (const name of names) {
      if (name.endsWith(".tmp")) {
        await removeIfExists(join(dir, name));
        removedTemp.push(name);
      }
    }
    const metas = new Set(names.filter((n) => n.endsWith(".meta")));
    for (const name of names) {
      const m = NAME.exec(name);
      if (m === null || m[3] !== "snap" || metas.has(`${m[1]}-${m[2]}.meta`)) continue;
      await removeIfExists(join(dir, name));
      removedIncomplete.push(name);
    }
    const list: SnapshotInfo[] = [];
    for (const name of metas) {
      const m = NAME.exec(name);
      if (m === null) continue;
      const result = await loadInfo(dir, `${m[1]}-${m[2]}`, Number(m[1]), Number(m[2]));
      if (typeof result === "string") invalid.push({ file: join(dir, name), reason: result });
      else list.push(result);
    }
    if (removedTemp.length + removedIncomplete.length > 0) await fsyncDir(dir);
    list.sort(newestFirst);
    return new FileSnapshotStore(dir, list, retain, { removedTemp, removedIncomplete, invalid });
  }

  latest(): SnapshotMeta | undefined {
    return this.#list[0]?.meta;
  }

  /** Every valid snapshot, newest first. */
  list(): readonly SnapshotInfo[] {
    return this.#list;
  }

  /** Size, CRC and files of the stored snapshot `meta` (undefined when not stored). */
  info(meta: SnapshotMeta): SnapshotInfo | undefined {
    return this.#list.find((s) => s.meta.index === meta.index && s.meta.term === meta.term);
  }

  /**
   * A reference to the data file of snapshot `meta` (nothing is read: the
   * consumer streams it, and {@link verify} checks it).
   */
  read(meta: SnapshotMeta): FileSnapshotData {
    const info = this.#mustInfo(meta);
    return new FileSnapshotData(info.dataFile, info.size, info.crc32c);
  }

  /**
   * The data of snapshot `meta` as one array, after checking its size and
   * CRC32C. Throws {@link SnapshotCorruptError} naming the file when they
   * differ. Holds the whole snapshot in memory: for tests and small ones.
   */
  readBytes(meta: SnapshotMeta): Uint8Array {
    const info = this.#mustInfo(meta);
    let data: Uint8Array;
    try {
      data = Deno.readFileSync(info.dataFile);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) {
        throw new SnapshotCorruptError(info.dataFile, -1, "snapshot data file is missing");
      }
      throw e;
    }
    if (data.length !== info.size) {
      throw new SnapshotCorruptError(
        info.dataFile,
        -1,
        `snapshot data has ${data.length} bytes but its meta says ${info.size} (truncated or overwritten)`,
      );
    }
    const crc = crc32c(data);
    if (crc !== info.crc32c) throw crcError(info, crc);
    return data;
  }

  /**
   * Stores snapshot `meta`. A {@link FileSnapshotData} whose file lies in
   * this directory (from {@link tempPath} or {@link createTempWriter}) is
   * fsynced and moved into place, its CRC computed by streaming when not
   * known; a byte array is written out.
   */
  write(meta: SnapshotMeta, data: SnapshotData, done: Done): void {
    check(!this.#closed, () => `snapshot store ${this.dir} used after close()`);
    const p = data instanceof FileSnapshotData ? this.#adopt(meta, data) : (async () => {
      check(data instanceof Uint8Array, () => "snapshot data must be a file or a Uint8Array");
      const writer = await this.createWriter(meta);
      try {
        await writer.write(data);
        await writer.commit();
      } catch (e) {
        await writer.abort();
        throw e;
      }
    })();
    const settled = p.then(() => {}, () => {});
    this.#inflight.add(settled);
    settled.then(() => this.#inflight.delete(settled));
    p.then(() => complete(done, undefined), (e) => complete(done, toError(e)));
  }

  async #adopt(meta: SnapshotMeta, data: FileSnapshotData): Promise<void> {
    checkMeta(meta);
    check(
      data.path.startsWith(this.dir + "/") && data.path.endsWith(".tmp"),
      () => `snapshot file ${data.path} must be a temp file inside ${this.dir}`,
    );
    const file = await Deno.open(data.path, { read: true, write: true });
    let crc = data.crc32c;
    try {
      const size = (await file.stat()).size;
      check(
        size === data.byteLength,
        () => `snapshot file ${data.path} has ${size} bytes, expected ${data.byteLength}`,
      );
      if (crc === undefined) crc = await crcOfFile(file, size, data.path);
      await file.sync();
    } catch (e) {
      file.close();
      await removeIfExists(data.path);
      throw e;
    }
    file.close();
    const known = crc;
    await this.#exclusive(() => this.#finish(meta, data.path, data.byteLength, known));
  }

  /** A fresh temp path in the snapshot directory (removed at the next open if left behind). */
  tempPath(label: string): string {
    check(/^[a-z0-9-]+$/.test(label), () => `bad temp label ${label}`);
    return join(this.dir, `${label}.${Date.now()}.${this.#tmpSeq++}.tmp`);
  }

  /** A temp file to receive a snapshot in chunks (the CRC is the caller's, or computed on adoption). */
  async createTempWriter(label: string): Promise<TempSnapshotWriter> {
    check(!this.#closed, () => `snapshot store ${this.dir} used after close()`);
    const path = this.tempPath(label);
    const file = await Deno.open(path, { write: true, createNew: true });
    let size = 0;
    let state: "open" | "finished" | "aborted" = "open";
    return {
      path,
      get size() {
        return size;
      },
      async write(chunk: Uint8Array): Promise<void> {
        check(state === "open", () => `temp snapshot ${path} is ${state}`);
        await writeAll(file, chunk);
        size += chunk.length;
      },
      finish(crc32c?: number): Promise<FileSnapshotData> {
        check(state === "open", () => `temp snapshot ${path} is ${state}`);
        state = "finished";
        file.close();
        return Promise.resolve(new FileSnapshotData(path, size, crc32c));
      },
      async abort(): Promise<void> {
        if (state === "aborted") return;
        if (state === "open") file.close();
        state = "aborted";
        await removeIfExists(path);
      },
    };
  }

  /** Deletes a temp snapshot file the driver decided not to store (best effort). */
  discard(data: SnapshotData): void {
    if (!(data instanceof FileSnapshotData)) return;
    if (!data.path.startsWith(this.dir + "/") || !data.path.endsWith(".tmp")) return;
    removeIfExists(data.path).catch(() => {});
  }

  /** Reads snapshot `meta` through and checks its size and CRC32C; throws {@link SnapshotCorruptError}. */
  async verify(meta: SnapshotMeta): Promise<void> {
    const reader = await this.openReader(meta);
    try {
      while (await reader.read(4 << 20) !== null) {
        // The reader checks the CRC when it reaches the end.
      }
    } finally {
      reader.close();
    }
  }

  /**
   * Takes a damaged snapshot out of service: its files are renamed with a
   * `.corrupt` suffix (kept for an operator, ignored by open) and it leaves
   * the list, so {@link latest} moves to the next one.
   */
  async quarantine(meta: SnapshotMeta): Promise<string[]> {
    const info = this.#mustInfo(meta);
    return await this.#exclusive(async () => {
      this.#list = this.#list.filter((s) => s !== info);
      const moved: string[] = [];
      for (const f of [info.metaFile, info.dataFile]) {
        try {
          await Deno.rename(f, `${f}.corrupt`);
          moved.push(`${f}.corrupt`);
        } catch (e) {
          if (!(e instanceof Deno.errors.NotFound)) throw e;
        }
      }
      await fsyncDir(this.dir);
      return moved;
    });
  }

  /** Removes every snapshot but the newest (rqlite's `/reap`); returns how many were removed. */
  async reap(): Promise<number> {
    return await this.#exclusive(async () => {
      const old = this.#list.splice(1);
      for (const s of old) {
        await removeIfExists(s.metaFile);
        await removeIfExists(s.dataFile);
      }
      if (old.length > 0) await fsyncDir(this.dir);
      return old.length;
    });
  }

  /** Starts a streamed snapshot write into a temp file. */
  async createWriter(meta: SnapshotMeta): Promise<SnapshotWriter> {
    check(!this.#closed, () => `snapshot store ${this.dir} used after close()`);
    checkMeta(meta);
    const base = baseName(meta);
    const tmp = join(this.dir, `${base}.snap.${this.#tmpSeq++}.tmp`);
    const file = await Deno.open(tmp, { write: true, create: true, truncate: true });
    return new FileSnapshotWriter(
      meta,
      tmp,
      file,
      (size, crc) => this.#exclusive(() => this.#finish(meta, tmp, size, crc)),
    );
  }

  /** Opens snapshot `meta` for streaming; its size is checked now, its CRC at the end. */
  async openReader(meta: SnapshotMeta): Promise<SnapshotReader> {
    const info = this.#mustInfo(meta);
    let file: Deno.FsFile;
    try {
      file = await Deno.open(info.dataFile, { read: true });
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) {
        throw new SnapshotCorruptError(info.dataFile, -1, "snapshot data file is missing");
      }
      throw e;
    }
    try {
      const st = await file.stat();
      if (st.size !== info.size) {
        throw new SnapshotCorruptError(
          info.dataFile,
          -1,
          `snapshot data has ${st.size} bytes but its meta says ${info.size}`,
        );
      }
    } catch (e) {
      file.close();
      throw e;
    }
    let offset = 0;
    let crc = 0;
    let closed = false;
    return {
      info,
      async read(maxBytes: number): Promise<Uint8Array | null> {
        check(!closed, () => `snapshot reader ${info.dataFile} is closed`);
        check(maxBytes > 0, () => `read(${maxBytes})`);
        if (offset === info.size) return null;
        const buf = new Uint8Array(Math.min(maxBytes, info.size - offset));
        let got = 0;
        while (got < buf.length) {
          const n = await file.read(buf.subarray(got));
          if (n === null) {
            throw new SnapshotCorruptError(
              info.dataFile,
              offset + got,
              `snapshot data ends early: ${offset + got} of ${info.size} bytes`,
            );
          }
          got += n;
        }
        offset += got;
        crc = crc32c(buf, crc);
        if (offset === info.size && crc !== info.crc32c) throw crcError(info, crc);
        return buf;
      },
      close(): void {
        if (closed) return;
        closed = true;
        file.close();
      },
    };
  }

  /** The data of snapshot `meta` in chunks of at most `chunkBytes`, verified (see {@link SnapshotReader}). */
  async *readChunks(meta: SnapshotMeta, chunkBytes = 1 << 20): AsyncGenerator<Uint8Array> {
    const reader = await this.openReader(meta);
    try {
      for (;;) {
        const chunk = await reader.read(chunkBytes);
        if (chunk === null) return;
        yield chunk;
      }
    } finally {
      reader.close();
    }
  }

  /** Waits for writes started with {@link write}, then refuses new ones. */
  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all([...this.#inflight]);
    await this.#tail;
  }

  #mustInfo(meta: SnapshotMeta): SnapshotInfo {
    const info = this.info(meta);
    check(
      info !== undefined,
      () =>
        `no stored snapshot ${meta.term}-${meta.index}; stored: ${
          this.#list.map((s) => baseName(s.meta)).join(", ") || "none"
        }`,
    );
    return info;
  }

  /** Runs `fn` after every earlier commit/removal settled. */
  #exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.#tail.then(fn);
    this.#tail = result.then(() => {}, () => {});
    return result;
  }

  async #finish(meta: SnapshotMeta, tmp: string, size: number, crc: number): Promise<SnapshotInfo> {
    const base = baseName(meta);
    const dataFile = join(this.dir, `${base}.snap`);
    const metaFile = join(this.dir, `${base}.meta`);
    // Rewriting a stored snapshot: its old meta goes first, so old meta never describes new data.
    if (await removeIfExists(metaFile)) {
      this.#list = this.#list.filter((s) => s.metaFile !== metaFile);
      await fsyncDir(this.dir);
    }
    await Deno.rename(tmp, dataFile);
    const info: SnapshotInfo = {
      meta: { index: meta.index, term: meta.term, conf: copyConf(meta.conf) },
      size,
      crc32c: crc,
      createdMs: Date.now(),
      dataFile,
      metaFile,
    };
    const json = new TextEncoder().encode(
      JSON.stringify({
        format: META_FORMAT,
        index: info.meta.index,
        term: info.meta.term,
        conf: info.meta.conf,
        size,
        crc32c: crc,
        createdMs: info.createdMs,
      }) + "\n",
    );
    const metaTmp = `${metaFile}.${this.#tmpSeq++}.tmp`;
    const f = await Deno.open(metaTmp, { write: true, create: true, truncate: true });
    try {
      await writeAll(f, json);
      await f.sync();
    } finally {
      f.close();
    }
    await Deno.rename(metaTmp, metaFile);
    await fsyncDir(this.dir);
    this.#list.push(info);
    this.#list.sort(newestFirst);
    // Retention, once the new one is durable: meta first, then data.
    const old = this.#list.splice(this.#retain);
    for (const s of old) {
      await removeIfExists(s.metaFile);
      await removeIfExists(s.dataFile);
    }
    return info;
  }
}

/**
 * Snapshot data held in a file: what the production state machine
 * produces, the transport receives into and {@link FileSnapshotStore.read}
 * returns. Only a reference; the bytes stay on disk.
 */
export class FileSnapshotData implements SnapshotData {
  constructor(
    /** Absolute or data-dir-relative path of the file. */
    readonly path: string,
    readonly byteLength: number,
    /** CRC32C of the bytes, when already known (computed on adoption otherwise). */
    readonly crc32c?: number,
  ) {
    check(
      Number.isSafeInteger(byteLength) && byteLength >= 0,
      () => `snapshot file ${path}: bad size ${byteLength}`,
    );
  }
}

/** A temp file in the snapshot directory being filled in chunks (e.g. by the transport). */
export interface TempSnapshotWriter {
  readonly path: string;
  /** Bytes written so far. */
  readonly size: number;
  write(chunk: Uint8Array): Promise<void>;
  /**
   * Closes the file; the data is ready for {@link FileSnapshotStore.write}.
   * `crc32c`: the CRC the caller verified on the way in, if any.
   */
  finish(crc32c?: number): Promise<FileSnapshotData>;
  /** Closes and deletes the file. Idempotent. */
  abort(): Promise<void>;
}

/** The writer behind {@link FileSnapshotStore.createWriter}. */
class FileSnapshotWriter implements SnapshotWriter {
  readonly meta: SnapshotMeta;
  readonly #tmp: string;
  readonly #file: Deno.FsFile;
  readonly #finish: (size: number, crc: number) => Promise<SnapshotInfo>;
  #size = 0;
  #crc = 0;
  #state: "open" | "committing" | "committed" | "aborted" = "open";

  constructor(
    meta: SnapshotMeta,
    tmp: string,
    file: Deno.FsFile,
    finish: (size: number, crc: number) => Promise<SnapshotInfo>,
  ) {
    this.meta = meta;
    this.#tmp = tmp;
    this.#file = file;
    this.#finish = finish;
  }

  get size(): number {
    return this.#size;
  }

  async write(chunk: Uint8Array): Promise<void> {
    check(this.#state === "open", () => `snapshot writer ${this.#tmp} is ${this.#state}`);
    await writeAll(this.#file, chunk);
    this.#crc = crc32c(chunk, this.#crc);
    this.#size += chunk.length;
  }

  async commit(): Promise<SnapshotInfo> {
    check(this.#state === "open", () => `snapshot writer ${this.#tmp} is ${this.#state}`);
    this.#state = "committing";
    try {
      await this.#file.sync();
    } finally {
      this.#file.close();
    }
    try {
      const info = await this.#finish(this.#size, this.#crc);
      this.#state = "committed";
      return info;
    } catch (e) {
      this.#state = "aborted";
      await removeIfExists(this.#tmp);
      throw e;
    }
  }

  async abort(): Promise<void> {
    if (this.#state === "committed" || this.#state === "aborted") return;
    if (this.#state === "open") this.#file.close();
    this.#state = "aborted";
    await removeIfExists(this.#tmp);
  }
}

/** Reads and validates `<base>.meta` and the size of `<base>.snap`; a string says why it is invalid. */
async function loadInfo(
  dir: string,
  base: string,
  term: number,
  index: number,
): Promise<SnapshotInfo | string> {
  const metaFile = join(dir, `${base}.meta`);
  const dataFile = join(dir, `${base}.snap`);
  let raw: unknown;
  try {
    raw = JSON.parse(await Deno.readTextFile(metaFile));
  } catch (e) {
    return `meta does not parse: ${toError(e).message}`;
  }
  const reason = validateMetaJson(raw, term, index);
  if (reason !== undefined) return reason;
  const m = raw as {
    index: number;
    term: number;
    conf: ConfState;
    size: number;
    crc32c: number;
    createdMs: number;
  };
  let size: number;
  try {
    size = (await Deno.stat(dataFile)).size;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return `data file ${dataFile} is missing`;
    throw e;
  }
  if (size !== m.size) return `data file has ${size} bytes but the meta says ${m.size}`;
  return {
    meta: { index: m.index, term: m.term, conf: copyConf(m.conf) },
    size: m.size,
    crc32c: m.crc32c,
    createdMs: m.createdMs,
    dataFile,
    metaFile,
  };
}

function validateMetaJson(raw: unknown, term: number, index: number): string | undefined {
  if (typeof raw !== "object" || raw === null) return "meta is not an object";
  const m = raw as Record<string, unknown>;
  if (m.format !== META_FORMAT) return `unknown meta format ${String(m.format)}`;
  for (const key of ["index", "term", "size", "crc32c", "createdMs"]) {
    const v = m[key];
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) return `bad ${key}`;
  }
  if (m.index !== index || m.term !== term) {
    return `meta says ${m.term}-${m.index}, file name says ${term}-${index}`;
  }
  const conf = m.conf as Record<string, unknown> | undefined;
  const ids = (v: unknown) => Array.isArray(v) && v.every((x) => typeof x === "string");
  if (typeof conf !== "object" || conf === null || !ids(conf.voters) || !ids(conf.learners)) {
    return "bad conf";
  }
  return undefined;
}

function checkMeta(meta: SnapshotMeta): void {
  check(
    Number.isSafeInteger(meta.index) && meta.index >= 0 && Number.isSafeInteger(meta.term) &&
      meta.term >= 0,
    () => `snapshot index ${meta.index} / term ${meta.term} must be non-negative safe integers`,
  );
}

function baseName(meta: SnapshotMeta): string {
  return `${meta.term}-${meta.index}`;
}

function copyConf(conf: ConfState): ConfState {
  const copy = { voters: [...conf.voters], learners: [...conf.learners] };
  return conf.context === undefined ? copy : { ...copy, context: { ...conf.context } };
}

function newestFirst(a: SnapshotInfo, b: SnapshotInfo): number {
  return b.meta.index - a.meta.index || b.meta.term - a.meta.term;
}

function crcError(info: SnapshotInfo, crc: number): SnapshotCorruptError {
  return new SnapshotCorruptError(
    info.dataFile,
    -1,
    `snapshot data CRC32C is ${hex(crc)} but its meta says ${
      hex(info.crc32c)
    }; the data is damaged`,
  );
}

async function crcOfFile(file: Deno.FsFile, size: number, path: string): Promise<number> {
  await file.seek(0, Deno.SeekMode.Start);
  const buf = new Uint8Array(Math.min(size, 4 << 20) || 1);
  let crc = 0;
  let done = 0;
  while (done < size) {
    const n = await file.read(buf.subarray(0, Math.min(buf.length, size - done)));
    if (n === null) throw new SnapshotCorruptError(path, done, `snapshot file ends at ${done}`);
    crc = crc32c(buf.subarray(0, n), crc);
    done += n;
  }
  return crc;
}

function hex(n: number): string {
  return `0x${n.toString(16).padStart(8, "0")}`;
}

function complete(done: Done, err: Error | undefined): void {
  try {
    done(err);
  } catch (e) {
    queueMicrotask(() => {
      throw e;
    });
  }
}
