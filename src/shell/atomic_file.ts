// Files that survive a crash: replacing a small file so that a crash at any instant leaves the old or the
// new content, never a torn file (write a temporary file beside it, fsync it, rename it over the old one,
// fsync the folder so the rename itself survives a power loss); a private database file created before
// SQLite opens it; a folder's entries made durable.
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from "node:fs";
import { open } from "node:fs/promises";
import { basename, dirname, join } from "node:path";

export function writeFileAtomic(path: string, data: string, mode: number): void {
  const dir = dirname(path);
  // The pid keeps two processes writing one file (a CLI beside the agent) off each other's temporary file.
  const temporary = join(dir, `.${basename(path)}.${process.pid}.tmp`);
  try {
    const fd = openSync(temporary, "w", mode);
    try {
      writeSync(fd, data);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(temporary, path);
  } catch (error) {
    rmSync(temporary, { force: true });
    throw error;
  }
  fsyncDirectory(dir);
}

/** Makes the entries of folder `path` (files created, renamed or removed in it) survive a power loss. */
export function fsyncDirectory(path: string): void {
  const fd = openSync(path, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Creates the file 0600 (a database of keys or private data) before SQLite does; its -wal/-shm copy the mode. */
export function createPrivateFile(path: string): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  closeSync(openSync(path, "a", 0o600));
}

/** fsync of a file or a folder, off the event loop (a folder's fsync makes a rename or unlink in it durable). */
export async function fsyncPath(path: string): Promise<void> {
  const handle = await open(path, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
