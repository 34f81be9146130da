// The offload step (a post-execution step of the journal, DESIGN.md Journal model): once an entry of this
// node is shipped, each file it carries is encrypted to the cluster's key, uploaded, verified (the stored
// object's size, and its hash read back), recorded in the replicated store, and only then deleted here.
// Every stage is safe to run again: the object's key is fixed by the entry and the file's place (a new
// upload replaces a half one), and a file already recorded is only deleted. So a kill -9 at any instant
// leaves the file here, or its record there, and the journal runs the step again until it is done.
import { createReadStream } from "node:fs";
import { lstat, realpath, rm } from "node:fs/promises";
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from "node:path";
import { PassThrough } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { Logger } from "pino";
import type { HandlerResult, JournalEntry, PostStep } from "../journal/index.ts";
import { fsyncPath } from "../shell/index.ts";
import type { MinAcks } from "../store/index.ts";
import { ageEncryptStream } from "./age_stream.ts";
import type { BlobRecord, BlobRecords } from "./blob_records.ts";
import { BLOB_STREAM_BYTES, hashOf } from "./blob_store.ts";
import type { BlobStores } from "./blob_stores.ts";

export const OFFLOAD_STEP = "offload";

export interface OffloadOptions {
  stores: BlobStores;
  /** The store files go to. */
  store: string;
  records: BlobRecords;
  /** Every object is encrypted to these (the cluster's key first). */
  recipients: readonly string[];
  /** Absolute folders: only files under them are offloaded (and deleted). */
  dirs: readonly string[];
  /** Entry types whose files go; null: every type. */
  types: readonly string[] | null;
  keepLocal: boolean;
  /** Peers that must hold the record before the local copy goes. */
  minAcks: () => MinAcks;
  logger: Logger;
  onEvent?: (fields: Record<string, unknown>) => void;
}

/** The object key of an entry's file: fixed, so that a repeated upload replaces, never duplicates. */
export function offloadKey(entry: Pick<JournalEntry, "origin" | "id">, index: number): string {
  return `offload/${entry.origin}/${entry.id}/${index}`;
}

export class OffloadStep implements PostStep {
  readonly name = OFFLOAD_STEP;
  private readonly options: OffloadOptions;

  constructor(options: OffloadOptions) {
    this.options = options;
  }

  appliesTo(entry: JournalEntry): boolean {
    return entry.files.length > 0 && (this.options.types === null || this.options.types.includes(entry.type));
  }

  async run(entry: JournalEntry): Promise<HandlerResult> {
    for (const [index, file] of entry.files.entries()) {
      const problem = await this.offloadFile(entry, index, file);
      if (problem !== null) return { ok: false, detail: `${file}: ${problem}` };
    }
    return { ok: true, detail: `${entry.files.length} file(s) offloaded to ${this.options.store}` };
  }

  /** null when the file is offloaded (or was already); else why not. */
  private async offloadFile(entry: JournalEntry, index: number, file: string): Promise<string | null> {
    const path = await this.allowedPath(file);
    if (path === null) return `not under blob.offload.dirs (${this.options.dirs.join(", ")}): left alone`;
    // lstat: a symbolic link is refused below, not followed to a file outside the folders.
    const local = await lstat(path).catch((error: NodeJS.ErrnoException) => {
      if (error.code === "ENOENT") return null;
      throw error;
    });
    if (this.options.records.get(entry.id, index) !== null) {
      // Recorded by an earlier run that stopped before (or while) deleting.
      if (local !== null) await this.removeLocal(path);
      return null;
    }
    if (local === null) return "missing, and never offloaded";
    if (!local.isFile()) return "not a regular file";
    const record = await this.upload(entry, index, path, local.size);
    if (typeof record === "string") return record;
    const acked = await this.options.records.put(record, this.options.minAcks());
    if (!acked) {
      // Recorded here, and it spreads once peers answer; the file stays until they hold it: run again.
      return "uploaded and recorded here; kept until a peer holds the record";
    }
    await this.removeLocal(path);
    this.options.logger.info(
      { entry: entry.id, file: path, key: record.key, size: record.plainSize },
      "file offloaded",
    );
    this.options.onEvent?.({
      event: "offloaded",
      entry: entry.id,
      file: path,
      store: record.store,
      key: record.key,
    });
    return null;
  }

  private async upload(
    entry: JournalEntry,
    index: number,
    path: string,
    expectedSize: number,
  ): Promise<BlobRecord | string> {
    const store = await this.options.stores.get(this.options.store);
    const key = offloadKey(entry, index);
    // The encrypter hashes the plaintext on its own thread; the store hashes what it stores on this one.
    const encrypter = await ageEncryptStream([
      ...this.options.recipients,
      ...this.options.stores.recipientsFor(this.options.store),
    ]);
    const body = new PassThrough({ highWaterMark: BLOB_STREAM_BYTES });
    const [, put] = await Promise.all([
      pipeline(createReadStream(path, { highWaterMark: BLOB_STREAM_BYTES }), encrypter, body),
      store.put(key, body),
    ]);
    const { size: plainSize, sha256: plainSha256 } = encrypter.plaintext();
    if (plainSize !== expectedSize)
      return `changed while uploading (${expectedSize} then ${plainSize} bytes): retried`;
    // Read back: the store holds what was sent, byte for byte.
    const stored = await store.stat(key);
    if (stored?.size !== put.size)
      return `verification failed: stored ${stored?.size ?? "nothing"} of ${put.size} bytes`;
    if ((await hashOf(await store.get(key))).sha256 !== put.sha256) {
      return "verification failed: the stored object's hash differs";
    }
    return {
      entryId: entry.id,
      index,
      origin: entry.origin,
      name: basename(path),
      store: this.options.store,
      key,
      size: put.size,
      sha256: put.sha256,
      plainSize,
      plainSha256,
      uploadedAtMs: Date.now(),
    };
  }

  /**
   * The file's path if it lies under one of the folders, symbolic links in its folders resolved (a linked
   * folder must not lead the step to upload, then delete, a file elsewhere); else null.
   */
  private async allowedPath(file: string): Promise<string | null> {
    if (!isAbsolute(file)) return null;
    const folder = await realpath(dirname(resolve(file))).catch(() => null);
    if (folder === null)
      return this.options.dirs.some((dir) => isInside(dir, resolve(file))) ? resolve(file) : null;
    const path = join(folder, basename(file));
    for (const dir of this.options.dirs) {
      const real = await realpath(dir).catch(() => null);
      if (real !== null && isInside(real, path)) return path;
    }
    return null;
  }

  private async removeLocal(path: string): Promise<void> {
    if (this.options.keepLocal) return;
    await rm(path, { force: true });
    await fsyncPath(dirname(path));
  }
}

function isInside(dir: string, path: string): boolean {
  const rel = relative(dir, path);
  return rel !== "" && rel.split(sep)[0] !== ".." && !isAbsolute(rel);
}
