export { AgeDecryptError, ageDecryptStream, ageEncryptStream } from "./age_stream.ts";
export {
  BACKUP_FORMAT,
  type BackupManifest,
  type BackupProgress,
  type BackupRequest,
  type BackupResult,
  backupId,
  backupKey,
  clearBackupLeftovers,
  parseBackupKey,
  takeBackup,
} from "./backup.ts";
export {
  type BackupJob,
  type BackupListing,
  BackupRequestError,
  BackupRunner,
  type BackupRunnerOptions,
} from "./backup_runner.ts";
export { BlobNode, type BlobNodeOptions } from "./blob_node.ts";
export { type BlobRecord, BlobRecords, type RecordStore } from "./blob_records.ts";
export {
  assertBlobKey,
  assertBlobPrefix,
  BLOB_STREAM_BYTES,
  BlobKeyError,
  BlobNotFoundError,
  type BlobObject,
  type BlobStore,
  type BlobStoreKind,
  HashingCounter,
  hashOf,
  type PutResult,
} from "./blob_store.ts";
export { BlobStores } from "./blob_stores.ts";
export {
  type DatabaseDumps,
  databaseBackupKey,
  parseDatabaseBackupKey,
  takeDatabaseBackup,
} from "./database_backup.ts";
export { LocalBlobStore } from "./local_store.ts";
export { OFFLOAD_STEP, type OffloadOptions, OffloadStep, offloadKey } from "./offload.ts";
export {
  ELECTION_STATE_FILE,
  RESTORED_KEYS_DIR,
  RestoreError,
  type RestoreRequest,
  restoreBackup,
} from "./restore.ts";
