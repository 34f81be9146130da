// The `local` blob store: a directory. A put writes a temporary file under ROOT/.tmp, fsyncs it, renames it
// onto the key's path and fsyncs that folder, so after a crash the key holds the whole old object or the
// whole new one. The directory may be a share several nodes mount: temporary files carry their writer's
// name, and opening the store removes its own writer's leftovers (that process is gone: one agent per data
// directory) and anyone's older than an hour, never another node's upload in progress.

import { randomBytes } from "node:crypto";
import { createWriteStream } from "node:fs";
import { type FileHandle, mkdir, open, readdir, rename, rm, stat } from "node:fs/promises";
import { dirname, join, relative, sep } from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { fsyncPath } from "../shell/index.ts";
import {
  assertBlobKey,
  assertBlobPrefix,
  BLOB_STREAM_BYTES,
  BlobNotFoundError,
  type BlobObject,
  type BlobStore,
  HashingCounter,
  type PutResult,
} from "./blob_store.ts";

const TMP_DIR = ".tmp";
/** A temporary file untouched this long belongs to a put that will not finish. */
const TMP_ABANDONED_MS = 60 * 60_000;

export class LocalBlobStore implements BlobStore {
  readonly kind = "local" as const;
  readonly name: string;
  private readonly root: string;
  private readonly writer: string;

  private constructor(name: string, root: string, writer: string) {
    this.name = name;
    this.root = root;
    this.writer = writer;
  }

  /**
   * Opens (creating) the store at `root` for `writer` (this node's id) and clears what interrupted puts
   * left in its .tmp folder: the writer's own, and any abandoned (see above).
   */
  static async open(name: string, root: string, writer = "local"): Promise<LocalBlobStore> {
    const tmp = join(root, TMP_DIR);
    await mkdir(tmp, { recursive: true });
    const now = Date.now();
    for (const entry of await readdir(tmp)) {
      const info = await stat(join(tmp, entry)).catch(() => null);
      const abandoned = info !== null && now - info.mtimeMs > TMP_ABANDONED_MS;
      if (entry.startsWith(`${writer}.`) || abandoned)
        await rm(join(tmp, entry), { recursive: true, force: true });
    }
    return new LocalBlobStore(name, root, writer);
  }

  async put(key: string, body: Readable): Promise<PutResult> {
    const path = this.pathOf(key);
    const tmp = join(this.root, TMP_DIR, `${this.writer}.${randomBytes(8).toString("hex")}.part`);
    const counter = new HashingCounter();
    try {
      // This handle only syncs (any descriptor of the file does): the stream writes through its own.
      const handle = await open(tmp, "w");
      try {
        // Large writes: fewer system calls than the default 16 KiB.
        const file = createWriteStream(tmp, { flags: "r+", highWaterMark: BLOB_STREAM_BYTES });
        const writeback = new EarlyWriteback(handle, () => file.bytesWritten);
        try {
          await pipeline(body, counter, file);
        } finally {
          await writeback.stop();
        }
        await handle.sync();
      } finally {
        await handle.close();
      }
      await mkdir(dirname(path), { recursive: true });
      await rename(tmp, path);
      await fsyncPath(dirname(path));
    } catch (error) {
      // A put that failed before reading its body must not leave the body's writer waiting.
      body.destroy();
      await rm(tmp, { force: true });
      throw error;
    }
    return counter.result();
  }

  async get(key: string): Promise<Readable> {
    const path = this.pathOf(key);
    // Opened first, so a missing object is an error here and not on the stream's first read.
    const handle = await open(path, "r").catch((error: NodeJS.ErrnoException) => {
      throw error.code === "ENOENT" ? new BlobNotFoundError(this.name, key) : error;
    });
    return handle.createReadStream({ highWaterMark: BLOB_STREAM_BYTES });
  }

  async stat(key: string): Promise<BlobObject | null> {
    const info = await stat(this.pathOf(key)).catch((error: NodeJS.ErrnoException) => {
      if (error.code === "ENOENT") return null;
      throw error;
    });
    return info?.isFile() ? { key, size: info.size, modifiedMs: info.mtimeMs } : null;
  }

  async *list(prefix: string): AsyncIterable<BlobObject> {
    assertBlobPrefix(prefix);
    // Walk only the folder the prefix's complete segments name.
    const folder = prefix.includes("/") ? prefix.slice(0, prefix.lastIndexOf("/")) : "";
    yield* this.walk(join(this.root, folder), prefix);
  }

  async delete(key: string): Promise<void> {
    await rm(this.pathOf(key), { force: true });
  }

  async close(): Promise<void> {}

  private async *walk(dir: string, prefix: string): AsyncIterable<BlobObject> {
    const entries = await readdir(dir, { withFileTypes: true }).catch((error: NodeJS.ErrnoException) => {
      if (error.code === "ENOENT") return [];
      throw error;
    });
    for (const entry of entries) {
      const path = join(dir, entry.name);
      const key = relative(this.root, path).split(sep).join("/");
      if (key === TMP_DIR) continue;
      if (entry.isDirectory()) {
        if (key.startsWith(prefix) || prefix.startsWith(`${key}/`)) yield* this.walk(path, prefix);
      } else if (entry.isFile() && key.startsWith(prefix)) {
        const object = await this.stat(key);
        if (object !== null) yield object;
      }
    }
  }

  private pathOf(key: string): string {
    assertBlobKey(key);
    return join(this.root, ...key.split("/"));
  }
}

/**
 * Written bytes after which an fdatasync starts in the background: the disk takes the file while the rest
 * is still being encrypted, so the fsync before the rename finds little left to do (a 1 GiB put's was
 * 0.7 s alone, bench/README.md). Left alone, the kernel writes back only at its dirty limits (GiBs here).
 */
const WRITEBACK_BYTES = 64 * 1024 * 1024;
const WRITEBACK_CHECK_MS = 100;

/** Starts an fdatasync of a file being written each time WRITEBACK_BYTES more have been written. */
class EarlyWriteback {
  private readonly handle: FileHandle;
  private readonly written: () => number;
  private readonly timer: NodeJS.Timeout;
  private next = WRITEBACK_BYTES;
  private syncing: Promise<void> | null = null;

  constructor(handle: FileHandle, written: () => number) {
    this.handle = handle;
    this.written = written;
    this.timer = setInterval(() => this.check(), WRITEBACK_CHECK_MS);
  }

  /** Stops starting syncs and waits for the one in progress. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.syncing;
  }

  private check(): void {
    if (this.syncing !== null || this.written() < this.next) return;
    this.next = this.written() + WRITEBACK_BYTES;
    // A failure here is not reported: the fsync before the rename reports what the disk refused.
    this.syncing = this.handle.datasync().then(
      () => {
        this.syncing = null;
      },
      () => {
        this.syncing = null;
      },
    );
  }
}
