// One agent per data directory: two agents sharing election state could vote twice in one term.
// The lock is `agent.lock`, a SQLite database written in exclusive locking mode: SQLite holds a POSIX (fcntl)
// lock on it, which the kernel drops when the process dies however it dies, so a crash or a power loss leaves
// nothing stale. POSIX locks belong to the process and go when ANY descriptor of the file in the process is
// closed: nothing but this module may open agent.lock, and it reads the file raw only when it holds no lock.
import { closeSync, mkdirSync, openSync, readSync, realpathSync, truncateSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import Database from "better-sqlite3";

export class DataDirLockedError extends Error {
  override name = "DataDirLockedError";
}

/** Locks this process holds, by real path: a raw read of a held lock file here would release it. Holding
 * the connections here also keeps them from the garbage collector, which would close them. */
const heldHere = new Map<string, Database.Database>();

/** The SQLite header keeps user_version, where the holder writes its pid, at byte 60 (big-endian). */
const USER_VERSION_OFFSET = 60;

function sqliteCode(error: unknown): string | undefined {
  return error instanceof Database.SqliteError ? error.code : undefined;
}

/** The pid the holder wrote, for the error message only; never call it while this process holds the lock. */
function holderPid(path: string): number | null {
  const bytes = Buffer.alloc(4);
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch {
    return null;
  }
  try {
    const read = readSync(fd, bytes, 0, 4, USER_VERSION_OFFSET);
    const pid = read === 4 ? bytes.readInt32BE(0) : 0;
    return pid > 0 ? pid : null;
  } finally {
    closeSync(fd);
  }
}

export class DataDirLock {
  readonly path: string;
  private db: Database.Database | null = null;
  private key = "";

  constructor(dataDir: string) {
    this.path = join(dataDir, "agent.lock");
  }

  acquire(): void {
    if (this.db) return;
    // The lock is the agent's first use of its data directory.
    mkdirSync(dirname(this.path), { recursive: true, mode: 0o700 });
    const key = join(realpathSync(dirname(this.path)), basename(this.path));
    if (heldHere.has(key)) {
      throw new DataDirLockedError(
        `${this.path}: this process (pid ${process.pid}) already runs an agent on this data directory`,
      );
    }
    // Two attempts: the first may find a file that is no database (a pid file from an older Tandem, or a
    // write torn by a power loss). Its content is disposable; truncating keeps the inode any holder locks.
    for (let attempt = 0; ; attempt++) {
      const db = new Database(this.path, { timeout: 0 });
      try {
        db.pragma("locking_mode = EXCLUSIVE");
        // The first write takes SQLite's exclusive lock, kept until the connection closes.
        db.pragma(`user_version = ${process.pid}`);
        this.db = db;
        this.key = key;
        heldHere.set(key, db);
        return;
      } catch (error) {
        db.close();
        const code = sqliteCode(error);
        if (code === "SQLITE_BUSY") {
          const pid = holderPid(this.path);
          const holder = pid === null ? "another agent" : `another agent (pid ${pid})`;
          throw new DataDirLockedError(`${this.path}: ${holder} holds this data directory; stop it first`, {
            cause: error,
          });
        }
        if ((code === "SQLITE_NOTADB" || code === "SQLITE_CORRUPT") && attempt === 0) {
          truncateSync(this.path);
          continue;
        }
        throw error;
      }
    }
  }

  /** Closing the connection releases the lock. The file stays: were it unlinked, an agent that had opened it
   * just before could lock the old file while the next one created and locked a new one. */
  release(): void {
    if (!this.db) return;
    this.db.close();
    this.db = null;
    heldHere.delete(this.key);
  }
}
