// Replacing a small file so that a crash at any instant leaves the old or the new content, never a torn
// file: write a temporary file beside it, fsync it, rename it over the old one, fsync the folder (so the
// rename itself survives a power loss).
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from "node:fs";
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
  const dirFd = openSync(dir, "r");
  try {
    fsyncSync(dirFd);
  } finally {
    closeSync(dirFd);
  }
}
