/**
 * Automatic backups and restores (`-auto-backup`, `-auto-restore`):
 * configuration (config.ts), where backups are kept (storage.ts with
 * file_store.ts and s3_store.ts over the SigV4 client s3.ts), the periodic
 * upload of the leader (uploader.ts), and the restore of a new node
 * (restore.ts).
 *
 * @module
 */

import type { StorageConfig } from "./config.ts";
import { FileBackupStore } from "./file_store.ts";
import { S3Client } from "./s3.ts";
import { S3BackupStore } from "./s3_store.ts";
import type { BackupStore } from "./storage.ts";

export * from "./config.ts";
export * from "./storage.ts";
export { FileBackupStore } from "./file_store.ts";
export { S3BackupStore } from "./s3_store.ts";
export { type RoundOutcome, Uploader, type UploaderStats } from "./uploader.ts";
export {
  downloadBackup,
  type Downloaded,
  type InstallOutcome,
  installRestore,
  type RestoreTarget,
} from "./restore.ts";

/** The store a storage configuration names, and the key of the backup in it. */
export function openBackupStore(
  storage: StorageConfig,
  client?: Deno.HttpClient,
): { store: BackupStore; key: string } {
  if (storage.type === "file") {
    return { store: new FileBackupStore(storage.dir), key: storage.name };
  }
  const s3 = new S3Client({
    endpoint: storage.endpoint,
    region: storage.region,
    bucket: storage.bucket,
    accessKeyId: storage.accessKeyId,
    secretAccessKey: storage.secretAccessKey,
    ...(storage.sessionToken === undefined ? {} : { sessionToken: storage.sessionToken }),
    forcePathStyle: storage.forcePathStyle,
    ...(client === undefined ? {} : { client }),
  });
  return { store: new S3BackupStore(s3), key: storage.path };
}
