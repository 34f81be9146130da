export { AgeDecryptError, ageDecryptStream, ageEncryptStream } from "./age_stream.ts";
export {
  assertBlobKey,
  assertBlobPrefix,
  BlobKeyError,
  BlobNotFoundError,
  type BlobObject,
  type BlobStore,
  type BlobStoreKind,
  HashingCounter,
  type PutResult,
} from "./blob_store.ts";
export { LocalBlobStore } from "./local_store.ts";
