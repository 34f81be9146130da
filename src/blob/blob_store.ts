// Object storage behind one interface (DESIGN.md, Layout): a directory, S3 or SFTP hold the same objects
// under the same keys, so offload, backups and `tandem blob get` never ask which one it is. A put is
// atomic in every store: readers see the whole object or none (a temporary name then a rename, or S3's
// single PUT / completed multipart upload), so a kill -9 mid-upload leaves no half object under the key.
import { createHash } from "node:crypto";
import type { Readable } from "node:stream";
import { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";

/**
 * The buffer size of the streams blobs flow through (reads, encryption, uploads): large enough for few
 * system calls, small enough that a 1 GiB upload holds little in flight (1 MiB buffers cost a local
 * upload ~15 % of its speed and 12 MiB more peak memory, bench/blob.ts).
 */
export const BLOB_STREAM_BYTES = 256 * 1024;

export type BlobStoreKind = "local" | "s3" | "sftp";

export interface BlobObject {
  key: string;
  /** Bytes, as stored (ciphertext for an encrypted object). */
  size: number;
  /** Last modified, ms since the epoch. */
  modifiedMs: number;
}

/** What a put wrote: its size and SHA-256 (hex) of the bytes as stored, for the caller to verify against. */
export interface PutResult {
  size: number;
  sha256: string;
}

export interface BlobStore {
  readonly kind: BlobStoreKind;
  /** Its name in tandem.yml (blob.stores.NAME). */
  readonly name: string;
  /** Stores `body` under `key`, replacing what was there; atomic (see above). */
  put(key: string, body: Readable): Promise<PutResult>;
  /** The object's bytes; BlobNotFoundError when there is none. */
  get(key: string): Promise<Readable>;
  /** The object's size and time, or null when there is none. */
  stat(key: string): Promise<BlobObject | null>;
  /** Every object whose key starts with `prefix` (a key prefix, not only a folder), in no set order. */
  list(prefix: string): AsyncIterable<BlobObject>;
  /** Removes the object; removing one that is not there is not an error. */
  delete(key: string): Promise<void>;
  /** Closes connections; the store is not used after. */
  close(): Promise<void>;
}

export class BlobNotFoundError extends Error {
  override readonly name = "BlobNotFoundError";
  readonly store: string;
  readonly key: string;

  constructor(store: string, key: string) {
    super(`no object ${key} in blob store ${store}`);
    this.store = store;
    this.key = key;
  }
}

export class BlobKeyError extends Error {
  override readonly name = "BlobKeyError";
}

/** Segments of letters, digits, '.', '_' and '-' joined by '/': a key maps to a path in every store. */
const keyPattern = /^[A-Za-z0-9_-][A-Za-z0-9._-]*(\/[A-Za-z0-9_-][A-Za-z0-9._-]*)*$/;
const KEY_MAX = 512;

/**
 * Refuses a key that is not one of ours: an absolute path, '..', empty segments or characters a
 * filesystem or an SFTP server might read otherwise. Every store checks it, so no key leaves its root.
 */
export function assertBlobKey(key: string): void {
  if (key.length === 0 || key.length > KEY_MAX || !keyPattern.test(key) || key.split("/").includes("..")) {
    throw new BlobKeyError(
      `invalid blob key ${JSON.stringify(key.slice(0, 80))}: segments of letters, digits, '.', '_', '-' joined by '/'`,
    );
  }
}

/** A key prefix for list(): empty, or a key's beginning (a trailing '/' allowed). */
export function assertBlobPrefix(prefix: string): void {
  if (prefix === "") return;
  assertBlobKey(prefix.endsWith("/") ? prefix.slice(0, -1) : prefix);
}

/** A pass-through that counts and hashes what flows through it (what put() reports). */
export class HashingCounter extends Transform {
  size = 0;
  private readonly hash = createHash("sha256");

  override _transform(
    chunk: Buffer,
    _encoding: BufferEncoding,
    done: (error?: Error | null, data?: Buffer) => void,
  ) {
    this.size += chunk.length;
    this.hash.update(chunk);
    done(null, chunk);
  }

  result(): PutResult {
    return { size: this.size, sha256: this.hash.digest("hex") };
  }
}

/** The size and SHA-256 of everything `source` yields (a file, an object read back), consumed whole. */
export async function hashOf(source: Readable): Promise<PutResult> {
  const counter = new HashingCounter();
  await pipeline(source, counter, async (hashed: AsyncIterable<Buffer>) => {
    for await (const _ of hashed);
  });
  return counter.result();
}
