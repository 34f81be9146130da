// Keeps a Materialiser in step with the store: the caller's loop from materialiser.ts in one place.
// start(): subscribe to commits first (so nothing committed meanwhile is missed), then one full resync from
// listed pages at the seq read before listing; every commit after that is applied. When a batch or a resync
// fails (disk full, permissions), a resync is retried with backoff until one succeeds.
import type { Logger } from "pino";
import type { MaterialiseTimers } from "./materialise_timers.ts";
import { realTimers } from "./materialise_timers.ts";
import type { Materialiser } from "./materialiser.ts";
import type { StoreChange, StoreEntry, StoreService } from "./types.ts";

/** What the feed needs from the store (StoreService satisfies it). */
export type MaterialiseSource = Pick<StoreService, "list" | "lastSeq" | "onChange">;

/** Entries per list() call during a resync. */
export const resyncPageEntriesMax = 256;
export const resyncRetryMsMin = 1_000;
export const resyncRetryMsMax = 60_000;

export class MaterialiseFeed {
  private readonly source: MaterialiseSource;
  private readonly materialiser: Materialiser;
  private readonly logger: Logger;
  private readonly timers: MaterialiseTimers;
  private unsubscribe: (() => void) | null = null;
  private retryTimer: unknown = null;
  private retryMs = resyncRetryMsMin;
  private stopped = false;

  constructor(
    source: MaterialiseSource,
    materialiser: Materialiser,
    options: { logger: Logger; timers?: MaterialiseTimers },
  ) {
    this.source = source;
    this.materialiser = materialiser;
    this.logger = options.logger;
    this.timers = options.timers ?? realTimers;
  }

  /** Subscribes, then resyncs; resolves once the first resync has run (a failure is retried, not thrown). */
  async start(): Promise<void> {
    this.unsubscribe = this.source.onChange((changes) => this.onCommit(changes));
    await this.resync();
  }

  /** Unsubscribes and cancels a pending retry; the caller then closes the materialiser. */
  stop(): void {
    this.stopped = true;
    this.unsubscribe?.();
    this.unsubscribe = null;
    if (this.retryTimer !== null) this.timers.clearTimeout(this.retryTimer);
    this.retryTimer = null;
  }

  private onCommit(changes: readonly StoreChange[]): void {
    this.materialiser.apply(changes).catch((error: unknown) => {
      // The materialiser logged the cause; until a resync it refuses further batches.
      if (!this.stopped) this.logger.debug({ err: error }, "materialise batch refused; resync scheduled");
      this.scheduleResync();
    });
  }

  private async resync(): Promise<void> {
    if (this.stopped) return;
    const seq = this.source.lastSeq();
    try {
      const result = await this.materialiser.resync(this.entries(), { seq });
      this.retryMs = resyncRetryMsMin;
      // Batches that failed before this resync ran are covered by it: their retry is not needed.
      if (this.retryTimer !== null) this.timers.clearTimeout(this.retryTimer);
      this.retryTimer = null;
      this.logger.info(
        {
          seq,
          written: result.written.length,
          removed: result.removed.length,
          refused: result.refused.length,
        },
        "materialiser resynced",
      );
    } catch (error) {
      if (this.stopped) return;
      this.logger.warn({ err: error, retryMs: this.retryMs }, "materialiser resync failed; retrying");
      this.scheduleResync();
    }
  }

  private scheduleResync(): void {
    if (this.stopped || this.retryTimer !== null) return;
    const delayMs = this.retryMs;
    this.retryMs = Math.min(resyncRetryMsMax, this.retryMs * 2);
    this.retryTimer = this.timers.setTimeout(() => {
      this.retryTimer = null;
      void this.resync();
    }, delayMs);
  }

  /** Every live entry the materialiser's prefix may cover (list() matches raw prefixes), a page at a time. */
  private *entries(): Generator<StoreEntry> {
    let after: string | undefined;
    for (;;) {
      const page = this.source.list(this.materialiser.prefix, {
        ...(after === undefined ? {} : { after }),
        limit: resyncPageEntriesMax,
      });
      yield* page;
      const last = page.at(-1);
      if (page.length < resyncPageEntriesMax || last === undefined) return;
      after = last.path;
    }
  }
}
