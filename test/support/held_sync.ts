// An fs.fsync stand-in for tests of the store's flushes and checkpoints: each call only ends when the test
// says so (with or without an error), so the test controls what is on disk when.
import assert from "node:assert/strict";
import type { fsync } from "node:fs";

export class HeldSync {
  calls = 0;
  private readonly pending: Array<(error: NodeJS.ErrnoException | null) => void> = [];
  readonly sync = ((_fd: number, callback: (error: NodeJS.ErrnoException | null) => void) => {
    this.calls++;
    this.pending.push(callback);
  }) as typeof fsync;

  /** Ends the fsync started `index`-th among those still running (0: the oldest). */
  finish(error: NodeJS.ErrnoException | null = null, index = 0): void {
    const [next] = this.pending.splice(index, 1);
    assert.ok(next, "no such fsync in flight");
    next(error);
  }
}
