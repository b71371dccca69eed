/**
 * Backups in S3-compatible object storage (`"type": "s3"`), over the
 * SigV4-signing client of s3.ts. The id of an upload travels as object
 * metadata (`x-amz-meta-raftlite-backup-id`), so telling whether the
 * newest backup is identical costs one HEAD request.
 *
 * @module
 */

import { S3Client } from "./s3.ts";
import { type BackupStore, isVersionOf } from "./storage.ts";

/** The metadata key holding an upload's id. */
export const ID_METADATA = "raftlite-backup-id";
/** The most keys listed when looking for timestamped versions. */
const MAX_LISTED = 100_000;

/** A bucket that keeps backups. */
export class S3BackupStore implements BackupStore {
  constructor(readonly client: S3Client) {}

  describe(key: string): string {
    return this.client.describe(key);
  }

  put(key: string, localPath: string, id: string, signal?: AbortSignal): Promise<void> {
    return this.client.putFile(key, localPath, { [ID_METADATA]: id }, signal);
  }

  async idOf(key: string, signal?: AbortSignal): Promise<string | undefined> {
    const head = await this.client.head(key, signal);
    return head?.metadata[ID_METADATA];
  }

  get(key: string, localPath: string, maxBytes: number, signal?: AbortSignal): Promise<boolean> {
    return this.client.getToFile(key, localPath, maxBytes, signal);
  }

  async versionsOf(key: string, signal?: AbortSignal): Promise<string[]> {
    const dir = key.slice(0, key.lastIndexOf("/") + 1);
    const keys = await this.client.list(dir, MAX_LISTED, signal);
    return keys.filter((k) => isVersionOf(k, key));
  }
}
