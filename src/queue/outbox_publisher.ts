// What the transports share: publishing this node's outbox to a broker (a sealed batch at a time from a
// durable cursor, the cursor moved and the batch counted as shipped only once the broker confirmed it, at
// most one batch that is not full per batchGapMs, a failure backed off, 0.2 s doubling to 5 s, and retried
// from the same cursor; each broker gives how to append one batch), setting a broker up again until it
// works, the backoff, and the once-per-reason log.
import type { Logger } from "pino";
import type { SealedBatch, TransportIo } from "./transport.ts";

const batchEntriesMax = 256;
/**
 * After a batch left, one that is not full waits until this much time has passed (a full one goes at once):
 * every batch costs a seal, an open and an fsync'd delivery on each receiver, whatever its size. Entries
 * recorded 3 at a time every 10 ms (1,000/s over 3 nodes) made a batch each, 100 a second per node; gathered
 * for 20 ms, at most 50. A lone entry after a quiet spell goes at once.
 */
export const batchGapMs = 20;
const backoffMinMs = 200;
export const backoffMaxMs = 5_000;

/** A failure's wait, doubling from 0.2 s to 5 s; reset by a success. */
export class Backoff {
  private ms = 0;

  next(): number {
    this.ms = Math.min(backoffMaxMs, Math.max(backoffMinMs, this.ms * 2));
    return this.ms;
  }

  reset(): void {
    this.ms = 0;
  }

  sleep(): Promise<void> {
    return new Promise((resolve) => {
      setTimeout(resolve, this.next()).unref();
    });
  }
}

/** Logs a failure once per distinct reason (a broker down for an hour is one warning, not thousands). */
export class ErrorNote {
  last: string | null = null;
  private readonly logger: Logger;

  constructor(logger: Logger) {
    this.logger = logger;
  }

  note(what: string, error: unknown): void {
    const reason = error instanceof Error ? error.message : String(error);
    if (reason !== this.last) this.logger.warn({ reason }, what);
    this.last = reason;
  }
}

/**
 * Runs `setUp` until it succeeds, or until `stopped()`: each failure noted, `undo` run (letting go of what
 * the failed attempt opened), then a backoff. True once set up.
 */
export async function setUpWithRetry(options: {
  what: string;
  setUp: () => Promise<void>;
  undo?: () => Promise<void> | void;
  stopped: () => boolean;
  backoff: Backoff;
  errors: ErrorNote;
}): Promise<boolean> {
  while (!options.stopped()) {
    try {
      await options.setUp();
      options.backoff.reset();
      options.errors.last = null;
      return true;
    } catch (error) {
      options.errors.note(options.what, error);
      await options.undo?.();
      await options.backoff.sleep();
    }
  }
  return false;
}

export class OutboxPublisher {
  private readonly io: TransportIo;
  private readonly cursorName: string;
  private readonly append: (batch: SealedBatch) => Promise<void>;
  private readonly errors: ErrorNote;
  private readonly backoff = new Backoff();
  private cursor: number;
  private publishing = false;
  private again = false;
  private timer: ReturnType<typeof setTimeout> | null = null;
  /** When the last batch was published (performance.now()). */
  private sentAtMs = Number.NEGATIVE_INFINITY;
  private stopped = false;

  /** `append` publishes one batch and resolves once the broker holds it. */
  constructor(
    io: TransportIo,
    cursorName: string,
    append: (batch: SealedBatch) => Promise<void>,
    errors: ErrorNote,
  ) {
    this.io = io;
    this.cursorName = cursorName;
    this.append = append;
    this.errors = errors;
    this.cursor = io.cursor(cursorName);
    // What the broker confirmed before a restart counts as shipped (that mark is not fsync'd by itself).
    if (this.cursor > 0) io.shipped(this.cursor);
  }

  get publishedThrough(): number {
    return this.cursor;
  }

  /** Entries were recorded (or the broker became reachable): publish what the cursor has not passed. */
  wake(): void {
    if (this.timer !== null || this.stopped) return;
    if (this.publishing) this.again = true;
    else void this.publish();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
  }

  private async publish(): Promise<void> {
    this.publishing = true;
    try {
      while (!this.stopped) {
        this.again = false;
        const gapLeftMs = this.sentAtMs + batchGapMs - performance.now();
        const batch = await this.io.outboxAfter(this.cursor, batchEntriesMax, gapLeftMs > 0);
        if (batch === null) {
          if (this.again) continue;
          // Within the gap only a full batch goes; what it held back goes when it ends.
          if (gapLeftMs > 0 && !this.stopped) this.wakeIn(gapLeftMs);
          return;
        }
        this.sentAtMs = performance.now();
        await this.append(batch);
        this.cursor = batch.lastSeq;
        this.io.setCursor(this.cursorName, this.cursor);
        this.io.shipped(this.cursor);
        this.backoff.reset();
        this.errors.last = null;
      }
    } catch (error) {
      this.errors.note("journal batch not published", error);
      this.wakeIn(this.backoff.next());
    } finally {
      this.publishing = false;
    }
  }

  /** Publishes again in `ms` (a backoff, or the end of the gap); wake() does nothing until then. */
  private wakeIn(ms: number): void {
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.publish();
    }, ms);
    this.timer.unref();
  }
}
