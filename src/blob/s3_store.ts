// The `s3` blob store: a bucket on AWS S3 or an S3-compatible server (MinIO, Ceph, ...), objects under an
// optional key prefix. A put streams through lib-storage's Upload: one PUT for a small object, a multipart
// upload in parts of partSizeBytes for a large one, a few parts in flight so memory stays flat. S3 makes an
// object visible only on a PUT or a completed multipart upload, so a put that fails midway leaves nothing
// under the key; the multipart upload it began is aborted so its parts are not kept (and billed).

import { PassThrough, Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  type ListObjectsV2CommandOutput,
  S3Client,
  S3ServiceException,
} from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import {
  assertBlobKey,
  assertBlobPrefix,
  BlobNotFoundError,
  type BlobObject,
  type BlobStore,
  HashingCounter,
  type PutResult,
} from "./blob_store.ts";

export interface S3BlobStoreOptions {
  /** Its name in tandem.yml (blob.stores.NAME). */
  name: string;
  bucket: string;
  region: string;
  /** An S3-compatible server's URL; absent: AWS. */
  endpoint?: string;
  /** The bucket in the path, not the host name (most servers other than AWS). */
  forcePathStyle?: boolean;
  /** Folder names each ending in '/' ("tandem/"), where in the bucket the store's keys live; '' default. */
  prefix?: string;
  /** Resolved already (from a file or the environment); kept only by the SDK's client, never in a message. */
  accessKeyId: string;
  secretAccessKey: string;
  /** Size of a multipart upload's parts, at least 5 MiB (S3's minimum); default 8 MiB. */
  partSizeBytes?: number;
}

const MIN_PART = 5 << 20;
const DEFAULT_PART = 8 << 20;
/** Parts uploaded at once: memory is about QUEUE x partSizeBytes per put. */
const QUEUE = 4;
const prefixPattern = /^([A-Za-z0-9_-][A-Za-z0-9._-]*\/)*$/;

export class S3BlobStore implements BlobStore {
  readonly kind = "s3" as const;
  readonly name: string;
  readonly bucket: string;
  readonly prefix: string;
  private readonly partSize: number;
  private readonly client: S3Client;
  /** The credentials' text, blanked out of any message a server sends back (see describe()). */
  private readonly secrets: readonly string[];

  constructor(options: S3BlobStoreOptions) {
    this.name = options.name;
    this.bucket = options.bucket;
    this.prefix = options.prefix ?? "";
    this.partSize = options.partSizeBytes ?? DEFAULT_PART;
    const where = `blob store ${this.name} (s3, bucket ${this.bucket})`;
    if (!prefixPattern.test(this.prefix)) {
      throw new Error(`${where}: prefix ${JSON.stringify(this.prefix)} is not folder names each ending in /`);
    }
    if (!Number.isSafeInteger(this.partSize) || this.partSize < MIN_PART) {
      throw new Error(`${where}: part size ${this.partSize} is below S3's minimum of ${MIN_PART} bytes`);
    }
    this.secrets = [options.secretAccessKey, options.accessKeyId].filter((s) => s.length >= 4);
    this.client = new S3Client({
      region: options.region,
      ...(options.endpoint === undefined ? {} : { endpoint: options.endpoint }),
      forcePathStyle: options.forcePathStyle ?? false,
      // Explicit: the SDK never looks for credentials elsewhere (environment, files, instance metadata).
      credentials: { accessKeyId: options.accessKeyId, secretAccessKey: options.secretAccessKey },
      // An unreachable endpoint fails in seconds, not after the OS's connect timeout. No idle timeout on
      // the socket: a get()'s reader may pause the download for as long as it likes.
      requestHandler: { connectionTimeout: 10_000 },
    });
  }

  async put(key: string, body: Readable): Promise<PutResult> {
    assertBlobKey(key);
    const counter = new HashingCounter();
    // Upload gets a plain stream, not the counter: it takes a Body's `size` field for its length, and the
    // counter's is the count so far. A source error destroys `outlet` with it, so Upload's read fails and
    // it aborts the multipart upload (leavePartsOnError: false) before done() rejects.
    const outlet = new PassThrough();
    const feeding = pipeline(body, counter, outlet);
    const upload = new Upload({
      client: this.client,
      params: { Bucket: this.bucket, Key: this.prefix + key, Body: outlet },
      partSize: this.partSize,
      queueSize: QUEUE,
      leavePartsOnError: false,
    });
    // When S3 fails instead, nothing reads the stream any more: destroy it so the pipeline settles.
    const uploading = upload.done().catch((error: unknown) => {
      outlet.destroy();
      throw error;
    });
    const [fed, sent] = await Promise.allSettled([feeding, uploading]);
    if (fed.status === "rejected" && (sent.status === "fulfilled" || sent.reason === fed.reason)) {
      // The source's own error, as the caller's stream raised it.
      throw fed.reason;
    }
    if (sent.status === "rejected") throw this.failure("put", key, sent.reason);
    return counter.result();
  }

  async get(key: string): Promise<Readable> {
    assertBlobKey(key);
    const output = await this.client
      .send(new GetObjectCommand({ Bucket: this.bucket, Key: this.prefix + key }))
      .catch((error: unknown) => {
        throw objectMissing(error) ? new BlobNotFoundError(this.name, key) : this.failure("get", key, error);
      });
    // On Node the SDK's body is the HTTP response, a Readable.
    if (!(output.Body instanceof Readable)) throw this.failure("get", key, new Error("response has no body"));
    return output.Body;
  }

  async stat(key: string): Promise<BlobObject | null> {
    assertBlobKey(key);
    try {
      const head = await this.client.send(
        new HeadObjectCommand({ Bucket: this.bucket, Key: this.prefix + key }),
      );
      return { key, size: head.ContentLength ?? 0, modifiedMs: head.LastModified?.getTime() ?? 0 };
    } catch (error) {
      // A HEAD's error has no body to name it: a 404 is all there is (a missing bucket reads the same).
      if (objectMissing(error) || httpStatus(error) === 404) return null;
      throw this.failure("stat", key, error);
    }
  }

  async *list(prefix: string): AsyncIterable<BlobObject> {
    assertBlobPrefix(prefix);
    let token: string | undefined;
    do {
      let page: ListObjectsV2CommandOutput;
      try {
        page = await this.client.send(
          new ListObjectsV2Command({
            Bucket: this.bucket,
            Prefix: this.prefix + prefix,
            ...(token === undefined ? {} : { ContinuationToken: token }),
          }),
        );
      } catch (error) {
        throw this.failure("list", prefix === "" ? '""' : prefix, error);
      }
      for (const object of page.Contents ?? []) {
        const key = object.Key?.slice(this.prefix.length);
        // Objects others put in the bucket that are no key of ours (a console's "folder/" marker, a
        // name with spaces): get() would refuse them, so list() does not offer them.
        if (key === undefined || !object.Key?.startsWith(this.prefix) || !isBlobKey(key)) continue;
        yield { key, size: object.Size ?? 0, modifiedMs: object.LastModified?.getTime() ?? 0 };
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token !== undefined);
  }

  async delete(key: string): Promise<void> {
    assertBlobKey(key);
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.prefix + key }));
    } catch (error) {
      // S3 answers 204 for a missing key; some compatible servers say NoSuchKey.
      if (!objectMissing(error)) throw this.failure("delete", key, error);
    }
  }

  async close(): Promise<void> {
    this.client.destroy();
  }

  /** An error naming the store, the operation and S3's error code; no credentials, no raw SDK error. */
  private failure(operation: string, key: string, error: unknown): Error {
    let text = describe(error);
    for (const secret of this.secrets) text = text.replaceAll(secret, "***");
    return new Error(`blob store ${this.name} (s3, bucket ${this.bucket}): ${operation} ${key}: ${text}`);
  }
}

/** S3's code (or Node's, for a network error), the HTTP status and the message. */
function describe(error: unknown): string {
  if (error instanceof S3ServiceException) {
    const status = error.$metadata.httpStatusCode;
    return `${error.name}${status === undefined ? "" : ` (HTTP ${status})`}: ${error.message}`;
  }
  if (error instanceof Error) {
    const code = (error as NodeJS.ErrnoException).code;
    return code === undefined ? `${error.name}: ${error.message}` : `${code}: ${error.message}`;
  }
  return String(error);
}

function httpStatus(error: unknown): number | undefined {
  return error instanceof S3ServiceException ? error.$metadata.httpStatusCode : undefined;
}

/** The key is not there (a missing bucket is a 404 too, but an error). */
function objectMissing(error: unknown): boolean {
  return error instanceof S3ServiceException && (error.name === "NoSuchKey" || error.name === "NotFound");
}

function isBlobKey(key: string): boolean {
  try {
    assertBlobKey(key);
    return true;
  } catch {
    return false;
  }
}
