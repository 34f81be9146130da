// A database's backup (provisioning's engine dumps it: pg_dump's custom format, from a replica where one
// streams), encrypted with age and uploaded to a configured target beside the nodes' backups, under
// PREFIX/databases/NAME/NAME-YYYYMMDDTHHMMSSZ.pgdump.age.
import type { Readable } from "node:stream";
import { PassThrough, Transform, type TransformCallback } from "node:stream";
import { pipeline } from "node:stream/promises";
import { ageEncryptStream } from "./age_stream.ts";
import { backupId, backupStampMs } from "./backup.ts";
import { assertBlobKey, BLOB_STREAM_BYTES, type BlobStore } from "./blob_store.ts";

/** What provisioning offers the backups: its databases, and a dump of one. */
export interface DatabaseDumps {
  databases(): Promise<string[]>;
  dump(database: string): Promise<{ stream: Readable; server: string }>;
}

export function databaseBackupKey(prefix: string, database: string, id: string): string {
  return `${prefix}/databases/${database}/${id}.pgdump.age`;
}

/** The id, database and time back from a key; null for an object that is not a database backup. */
export function parseDatabaseBackupKey(
  key: string,
): { id: string; database: string; createdMs: number } | null {
  const match = /\/databases\/([^/]+)\/(\1-(\d{8})T(\d{6})Z)\.pgdump\.age$/.exec(key);
  if (match === null) return null;
  const [, database = "", id = "", d = "", t = ""] = match;
  const createdMs = backupStampMs(d, t);
  return Number.isNaN(createdMs) ? null : { id, database, createdMs };
}

export interface DatabaseBackupRequest {
  store: BlobStore;
  prefix: string;
  database: string;
  dumps: DatabaseDumps;
  recipients: readonly string[];
  now?: Date;
  onProgress?: (bytesDone: number) => void;
}

export async function takeDatabaseBackup(
  request: DatabaseBackupRequest,
): Promise<{ id: string; key: string; size: number; server: string }> {
  const id = backupId(request.database, request.now ?? new Date());
  const key = databaseBackupKey(request.prefix, request.database, id);
  // A database whose name cannot be a key (spaces, other scripts) is refused before anything runs.
  assertBlobKey(key);
  const { stream, server } = await request.dumps.dump(request.database);
  let done = 0;
  const counted = new Transform({
    transform(chunk: Buffer, _encoding: BufferEncoding, next: TransformCallback) {
      done += chunk.length;
      request.onProgress?.(done);
      next(null, chunk);
    },
  });
  const body = new PassThrough({ highWaterMark: BLOB_STREAM_BYTES });
  const [, put] = await Promise.all([
    pipeline(stream, counted, await ageEncryptStream(request.recipients), body),
    request.store.put(key, body),
  ]);
  return { id, key, size: put.size, server };
}
