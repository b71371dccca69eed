/**
 * Errors of the storage layer.
 *
 * {@link CorruptionError} means bytes on disk that were once durable no
 * longer verify: the node must stop and an operator must look (restore the
 * data directory from a peer or a backup). It names the file and the offset.
 * {@link StorageFailedError} means an earlier write failed, so memory and
 * disk may disagree and the store refuses further work (fail-stop).
 *
 * @module
 */

/** Durable data failed verification (CRC, length, index continuity). */
export class CorruptionError extends Error {
  override readonly name: string = "CorruptionError";
  constructor(
    /** The damaged file. */
    readonly file: string,
    /** Byte offset of the damage in `file`, or -1 when not applicable. */
    readonly offset: number,
    detail: string,
  ) {
    super(`${file}${offset >= 0 ? ` at offset ${offset}` : ""}: ${detail}`);
  }
}

/** A snapshot's data does not match its metadata (size or CRC32C). */
export class SnapshotCorruptError extends CorruptionError {
  override readonly name: string = "SnapshotCorruptError";
}

/** A previous write of this store failed; the store is stopped. Restart the node. */
export class StorageFailedError extends Error {
  override readonly name: string = "StorageFailedError";
  constructor(store: string, readonly first: Error) {
    super(
      `${store}: an earlier write failed (${first.message}); memory and disk may disagree, ` +
        `so the store stopped. Restart the node to recover from disk.`,
      { cause: first },
    );
  }
}

/** Misuse of a store by its caller (a bug): thrown synchronously. */
export class StorageMisuseError extends Error {
  override readonly name: string = "StorageMisuseError";
}

/** Throws {@link StorageMisuseError} when `condition` is false. */
export function check(condition: boolean, detail: () => string): asserts condition {
  if (!condition) throw new StorageMisuseError(`storage misuse: ${detail()}`);
}

/** Any thrown value as an Error. */
export function toError(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e));
}
