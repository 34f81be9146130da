// One agent per data directory: two agents sharing election state could vote twice in one term.
// The lock is a file holding the owner's pid, created with O_EXCL; a lock whose pid is gone is stale.
import { closeSync, openSync, readFileSync, rmSync, writeSync } from "node:fs";
import { join } from "node:path";

export class DataDirLockedError extends Error {
  override name = "DataDirLockedError";
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

export class DataDirLock {
  readonly path: string;
  private held = false;

  constructor(dataDir: string) {
    this.path = join(dataDir, "agent.lock");
  }

  acquire(): void {
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const fd = openSync(this.path, "wx", 0o600);
        writeSync(fd, String(process.pid));
        closeSync(fd);
        this.held = true;
        return;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      }
      const owner = Number.parseInt(readFileSync(this.path, "utf8"), 10);
      if (Number.isInteger(owner) && owner !== process.pid && processAlive(owner)) {
        throw new DataDirLockedError(`${this.path}: another agent (pid ${owner}) uses this data directory`);
      }
      rmSync(this.path, { force: true });
    }
    throw new DataDirLockedError(`${this.path}: could not take the lock`);
  }

  release(): void {
    if (this.held) rmSync(this.path, { force: true });
    this.held = false;
  }
}
