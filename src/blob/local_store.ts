// The `local` blob store: a directory. A put writes a temporary file under ROOT/.tmp, fsyncs it, renames it
// onto the key's path and fsyncs that folder, so after a crash the key holds the whole old object or the
// whole new one; temporary files a crash left behind are removed when the store opens.

import { randomBytes } from "node:crypto";
import { createWriteStream } from "node:fs";
import { mkdir, open, readdir, rename, rm, stat } from "node:fs/promises";
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

export class LocalBlobStore implements BlobStore {
  readonly kind = "local" as const;
  readonly name: string;
  private readonly root: string;

  private constructor(name: string, root: string) {
    this.name = name;
    this.root = root;
  }

  /** Opens (creating) the store at `root` and clears what an interrupted put left in its .tmp folder. */
  static async open(name: string, root: string): Promise<LocalBlobStore> {
    await rm(join(root, TMP_DIR), { recursive: true, force: true });
    await mkdir(join(root, TMP_DIR), { recursive: true });
    return new LocalBlobStore(name, root);
  }

  async put(key: string, body: Readable): Promise<PutResult> {
    const path = this.pathOf(key);
    const tmp = join(this.root, TMP_DIR, `${randomBytes(8).toString("hex")}.part`);
    const counter = new HashingCounter();
    try {
      // Large writes: fewer system calls than the default 16 KiB.
      await pipeline(body, counter, createWriteStream(tmp, { highWaterMark: BLOB_STREAM_BYTES }));
      await fsyncPath(tmp);
      await mkdir(dirname(path), { recursive: true });
      await rename(tmp, path);
      await fsyncPath(dirname(path));
    } catch (error) {
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
