// Checkpoints the store's WAL (copies its frames into the database file) without making the event loop wait
// for the disk. SQLite's automatic checkpoint runs inside the commit that fills the WAL: it fsyncs the WAL,
// copies and fsyncs the database file, all on the event loop. Measured here: 40-70 ms every 16 MiB of WAL, and
// small commits write 3-4 pages of 16 KiB each (measured: ~4 per commit of 2 writes), so at 2,000 writes/s
// in small commits that came about every half second. Instead,
// after a commit, one cycle at a time and at most one per cycleIntervalMs:
//   1. a guard connection opens a read transaction. Its read mark is the last frame committed so far, and
//      while it is open SQLite cannot restart the WAL (write it again from its start);
//   2. once the WalFlusher has fsynced those frames, a second connection with synchronous=OFF runs a PASSIVE
//      checkpoint, which stops at the guard's mark: only frames already durable in the WAL are copied, and
//      nothing waits for the disk;
//   3. the database file is fsynced on the thread pool, then the guard's transaction ends.
// Power lost before step 3 ends finds every copied frame still in the WAL, which SQLite replays at open.
// SQLite's own checkpoint is off (wal_autocheckpoint=0) on the main connection. So nothing else backfills
// the WAL, and after a commit it always holds frames not yet copied: the guard then gets a read mark, and
// it is that mark which bounds step 2. (A reader of a fully copied WAL reads the database file alone, blocks
// no restart, and would bound nothing.)
// The WAL restarts at the first commit after everything in it was copied and synced with no guard open.
// Under a steady stream of commits that moment need not come: once the WAL holds walFramesMax frames, the
// main connection runs SQLite's own checkpoint (synchronous=NORMAL, so its fsyncs are on the event loop) at
// the end of a cycle, when only the frames committed during the cycle are left to copy and sync.
// A failed checkpoint or fsync is final, like a failed WAL flush: the flusher fails (no write is claimed
// durable any more), and a cycle's guard stays open, so the WAL keeps every frame it copied.
import { closeSync, fsync, openSync } from "node:fs";
import Database from "better-sqlite3";
import { StoreFlushError, type WalFlusher } from "./wal_flusher.ts";

/** SQLite's default automatic checkpoint size: 16 MiB of WAL with 16 KiB pages. */
export const WAL_FRAMES_MAX_DEFAULT = 1000;
/**
 * From the end of a cycle to the next: each cycle's fsync of the database file delays the WAL's own fsyncs,
 * which answers wait for (with cycles back to back, single writes ran at ~70 % of their pace in short runs of
 * bench/store.ts's workloads).
 */
export const CYCLE_INTERVAL_MS_DEFAULT = 500;

interface CheckpointResult {
  busy: number;
  /** Frames in the WAL. */
  log: number;
  /** Of them, copied into the database file. */
  checkpointed: number;
}

export interface WalCheckpointerOptions {
  /** The database file, in WAL mode. */
  path: string;
  /** The store's own connection: it runs the synchronous checkpoint once the WAL is full. */
  main: Database.Database;
  flusher: WalFlusher;
  walFramesMax?: number;
  cycleIntervalMs?: number;
  /** fs.fsync for the database file; tests pass a held or failing one. */
  sync?: typeof fsync;
}

export class WalCheckpointer {
  private readonly main: Database.Database;
  private readonly guard: Database.Database;
  private readonly guardRead: Database.Statement;
  private readonly copier: Database.Database;
  private readonly flusher: WalFlusher;
  private readonly walFramesMax: number;
  private readonly cycleIntervalMs: number;
  private readonly sync: typeof fsync;
  /** The database file, for step 3; kept open until an fsync in flight ends. */
  private fd: number | null;
  private cycling = false;
  private cycleEndedMs = Number.NEGATIVE_INFINITY;
  /** Step 3 runs: the file must stay open until it ends. */
  private fsyncing = false;
  private failed = false;
  private closed = false;
  /** Synchronous checkpoints run so far (when the WAL filled up during cycles). */
  fullCheckpoints = 0;

  constructor(options: WalCheckpointerOptions) {
    this.main = options.main;
    this.flusher = options.flusher;
    this.walFramesMax = options.walFramesMax ?? WAL_FRAMES_MAX_DEFAULT;
    this.cycleIntervalMs = options.cycleIntervalMs ?? CYCLE_INTERVAL_MS_DEFAULT;
    this.sync = options.sync ?? fsync;
    const opened: Database.Database[] = [];
    try {
      this.guard = new Database(options.path);
      opened.push(this.guard);
      // A read transaction takes its read mark at its first read.
      this.guardRead = this.guard.prepare("SELECT 1 FROM sqlite_schema LIMIT 1");
      this.copier = new Database(options.path);
      opened.push(this.copier);
      this.copier.pragma("synchronous = OFF");
      this.fd = openSync(options.path, "r");
    } catch (error) {
      for (const db of opened) db.close();
      throw error;
    }
    // Last: until the checkpointer exists, SQLite's own checkpoint stays on.
    this.main.pragma("wal_autocheckpoint = 0");
  }

  /**
   * Call right after every commit of the main connection: starts a cycle unless one runs or just ended.
   * Never throws (the commit it follows has happened): a failure fails the flusher instead.
   */
  committed(): void {
    if (this.cycling || this.failed || this.closed) return;
    if (performance.now() - this.cycleEndedMs < this.cycleIntervalMs) return;
    this.cycling = true;
    try {
      this.guard.exec("BEGIN");
      this.guardRead.get();
    } catch (error) {
      this.fail("the WAL checkpoint's guard could not read", error);
      return;
    }
    this.flusher.flushed((error) => {
      if (this.closed) return;
      if (error !== null) {
        // The flusher has failed for good (or closed): the guard stays, nothing is copied.
        this.failed = true;
        return;
      }
      this.copy();
    });
  }

  /** Ends the guard and the copier; an fsync in flight keeps the file open until it ends. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.guard.close();
    this.copier.close();
    if (!this.fsyncing) this.closeFile();
  }

  private copy(): void {
    let result: CheckpointResult;
    try {
      [result] = this.copier.pragma("wal_checkpoint(PASSIVE)") as [CheckpointResult];
    } catch (error) {
      this.fail("the WAL checkpoint failed", error);
      return;
    }
    const fd = this.fd;
    if (fd === null) return;
    this.fsyncing = true;
    this.sync(fd, (error) => {
      this.fsyncing = false;
      if (this.closed) {
        this.closeFile();
        return;
      }
      if (error !== null) {
        this.fail("fsync of the store's database file after a checkpoint failed", error);
        return;
      }
      try {
        this.guard.exec("COMMIT");
      } catch (commitError) {
        this.fail("the WAL checkpoint's guard could not end its read", commitError);
        return;
      }
      this.cycling = false;
      this.cycleEndedMs = performance.now();
      if (result.log >= this.walFramesMax) this.checkpointFull();
    });
  }

  /** SQLite's own checkpoint on the main connection: with no guard open, the next commit restarts the WAL. */
  private checkpointFull(): void {
    try {
      this.main.pragma("wal_checkpoint(PASSIVE)");
      this.fullCheckpoints += 1;
    } catch (error) {
      this.fail("the WAL checkpoint failed", error);
    }
  }

  private fail(what: string, error: unknown): void {
    this.failed = true;
    const reason = error instanceof Error ? error.message : String(error);
    this.flusher.fail(new StoreFlushError(`${what}: ${reason}`, { cause: error }));
  }

  private closeFile(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}
