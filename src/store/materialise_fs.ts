// File-system steps of the materialiser: atomic replacement (temp file in the same directory, fsync,
// chmod/chown, rename, directory fsync), temp-file naming and the crash-leftover sweep. Nothing partial is
// ever visible under a target name: readers see the old file or the new one, whole.
import { randomBytes } from "node:crypto";
import type { Stats } from "node:fs";
import { lstat, open, readdir, readFile, rename, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";

/** Marks temp files: `.<name>.tandem-tmp-<16 hex>`; only names of this shape are ever swept. */
const tempMarker = ".tandem-tmp-";
const tempNamePattern = /^\..*\.tandem-tmp-[0-9a-f]{16}$/s;
/** Room left for the dot, the marker and the random suffix within a 255-byte file name. */
const tempStemBytesMax = 255 - 1 - tempMarker.length - 16;

export interface FileOwnership {
  fileMode: number;
  uid?: number;
  gid?: number;
}

export function isTempName(name: string): boolean {
  return tempNamePattern.test(name);
}

/** A fresh temp name beside `target`, shortened so long target names still fit in NAME_MAX. */
export function tempPathFor(target: string): string {
  let stem = basename(target);
  while (Buffer.byteLength(stem) > tempStemBytesMax) stem = stem.slice(0, -1);
  return join(dirname(target), `.${stem}${tempMarker}${randomBytes(8).toString("hex")}`);
}

/** Writes `value` to `target` atomically with the given mode and owner; the caller fsyncs the directory. */
export async function replaceFile(
  target: string,
  value: Uint8Array,
  ownership: FileOwnership,
): Promise<void> {
  const temp = tempPathFor(target);
  const handle = await open(temp, "wx", ownership.fileMode);
  try {
    await handle.writeFile(value);
    // Explicit chmod: the mode given to open() is masked by the process umask.
    await handle.chmod(ownership.fileMode);
    if (ownership.uid !== undefined || ownership.gid !== undefined) {
      await handle.chown(ownership.uid ?? -1, ownership.gid ?? -1);
    }
    await handle.sync();
  } catch (error) {
    await handle.close();
    await unlink(temp).catch(() => undefined);
    throw error;
  }
  await handle.close();
  try {
    await rename(temp, target);
  } catch (error) {
    await unlink(temp).catch(() => undefined);
    throw error;
  }
}

/** Makes renames and unlinks inside `dir` durable. */
export async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** lstat that answers null for a missing path instead of throwing. */
export async function lstatOrNull(path: string): Promise<Stats | null> {
  try {
    return await lstat(path);
  } catch (error) {
    if (isErrnoException(error) && (error.code === "ENOENT" || error.code === "ENOTDIR")) return null;
    throw error;
  }
}

/** True when `target` already holds exactly `value` as a regular file with the wanted mode and owner. */
export async function fileMatches(
  target: string,
  value: Uint8Array,
  ownership: FileOwnership,
): Promise<boolean> {
  const stats = await lstatOrNull(target);
  if (!stats?.isFile() || stats.size !== value.byteLength) return false;
  if ((stats.mode & 0o7777) !== ownership.fileMode) return false;
  if (ownership.uid !== undefined && stats.uid !== ownership.uid) return false;
  if (ownership.gid !== undefined && stats.gid !== ownership.gid) return false;
  return Buffer.from(await readFile(target)).equals(value);
}

/** Regular files under a root (relative paths), found without following symlinks. */
export interface TreeListing {
  files: Set<string>;
}

/**
 * Removes temp files left by a crash anywhere under `root`, without following symlinks. Returns the paths
 * removed (relative to root) and every other regular file found, so a resync can tell which owned files
 * are still in place without a stat each (one readdir per directory).
 */
export async function sweepTempFiles(root: string): Promise<{ removed: string[]; listing: TreeListing }> {
  const removed: string[] = [];
  const files = new Set<string>();
  const pending = [""];
  for (let relative = pending.pop(); relative !== undefined; relative = pending.pop()) {
    const entries = await readdir(join(root, relative), { withFileTypes: true });
    for (const entry of entries) {
      const child = relative === "" ? entry.name : `${relative}/${entry.name}`;
      if (entry.isDirectory()) pending.push(child);
      else if (!entry.isFile()) continue;
      else if (isTempName(entry.name)) {
        await unlink(join(root, child));
        removed.push(child);
      } else files.add(child);
    }
  }
  return { removed: removed.sort(), listing: { files } };
}

export function isErrnoException(error: unknown): error is NodeJS.ErrnoException {
  return error instanceof Error && "code" in error;
}
