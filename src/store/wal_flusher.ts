// Makes the store's commits durable off the main thread. SQLite runs with synchronous=NORMAL: a commit writes
// its WAL frames and returns without an fsync, so it costs the event loop no disk wait (an fsync is 0.2-0.3
// ms on an idle disk here, far more on a busy one, and a blocked event loop also delays heartbeats). The
// fsync happens here instead, on libuv's thread pool, one for every commit made before it started; whatever
// must not claim durability early (acks to peers, answers to clients, change notifications) waits for it.
// A commit made while an fsync runs gets a second one at once rather than after it (at most two in flight,
// leaving the pool's other threads to the rest of the agent): a commit waits for about one fsync, not two.
// A kill -9 loses no commit either way (the kernel keeps the written frames); the fsync is what makes a
// commit survive power loss. Checkpoints wait for this flush too (wal_checkpointer.ts).
// A failed fsync is final: the kernel may have dropped the pages it could not write, so no later fsync can
// vouch for the commits before it.
import { closeSync, fsync, fsyncSync, openSync } from "node:fs";

const fsyncsInFlightMax = 2;

/** The WAL could not be made durable; the store refuses to claim durability from then on. */
export class StoreFlushError extends Error {
  override name = "StoreFlushError";
}

export type FlushCallback = (error: StoreFlushError | null) => void;

export class WalFlusher {
  /** null for a database without a file (":memory:"): nothing to flush. */
  private fd: number | null;
  private closed = false;
  private commits = 0;
  private flushedCommits = 0;
  /** fsyncs running; an fsync covers every commit counted before it started. */
  private inFlight = 0;
  /** The most commits covered by an fsync started so far. */
  private startedCommits = 0;
  private failure: StoreFlushError | null = null;
  private waiting: Array<{ commits: number; callback: FlushCallback }> = [];
  /** fs.fsync; tests pass a failing one. */
  private readonly sync: typeof fsync;

  /**
   * `walPath` must exist (the database is in WAL mode and has been written once). It is flushed once here:
   * commits of a previous process that was killed before its flush are on disk before anyone reads them.
   */
  constructor(walPath: string | null, sync: typeof fsync = fsync) {
    this.fd = walPath === null ? null : openSync(walPath, "r");
    this.sync = sync;
    if (this.fd === null) return;
    try {
      fsyncSync(this.fd);
    } catch (error) {
      closeSync(this.fd);
      throw error;
    }
  }

  /** Counts a commit that the next flush must cover. */
  committed(): void {
    this.commits += 1;
  }

  /** Calls back, always on a later turn, once every commit counted so far is on disk (or with the failure). */
  flushed(callback: FlushCallback): void {
    if (this.closed) {
      setImmediate(callback, new StoreFlushError("the store is closed"));
    } else if (this.failure !== null) {
      setImmediate(callback, this.failure);
    } else if (this.fd === null || this.flushedCommits === this.commits) {
      setImmediate(callback, null);
    } else {
      this.waiting.push({ commits: this.commits, callback });
      this.start();
    }
  }

  /** Callers still waiting hear that the store closed; an fsync in flight keeps the file open until it ends. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.failWaiters(new StoreFlushError("the store was closed before its commits were flushed"));
    if (this.inFlight === 0) this.closeFile();
  }

  private start(): void {
    const fd = this.fd;
    if (fd === null || this.inFlight >= fsyncsInFlightMax || this.startedCommits >= this.commits) return;
    const covered = this.commits;
    this.startedCommits = covered;
    this.inFlight += 1;
    this.sync(fd, (error) => {
      this.inFlight -= 1;
      if (this.closed) {
        if (this.inFlight === 0) this.closeFile();
        return;
      }
      if (this.failure !== null) return;
      if (error !== null) {
        this.fail(new StoreFlushError(`fsync of the store's WAL failed: ${error.message}`, { cause: error }));
        return;
      }
      // fsyncs may end out of order; each vouches for what it covered.
      this.flushedCommits = Math.max(this.flushedCommits, covered);
      const flushed = this.flushedCommits;
      const done = this.waiting.filter((w) => w.commits <= flushed);
      this.waiting = this.waiting.filter((w) => w.commits > flushed);
      for (const { callback } of done) callback(null);
      if (this.waiting.length > 0) this.start();
    });
  }

  /**
   * Fails for good: waiters and every later flush get `error`. For the WAL's own fsync, and for the
   * checkpointer's (wal_checkpointer.ts), after which the database file may lack what the WAL had.
   */
  fail(error: StoreFlushError): void {
    if (this.closed || this.failure !== null) return;
    this.failure = error;
    this.failWaiters(error);
  }

  private failWaiters(error: StoreFlushError): void {
    for (const { callback } of this.waiting.splice(0)) callback(error);
  }

  private closeFile(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}
