// Keeps a Materialiser in step with the store: the caller's loop from materialiser.ts in one place.
// start(): subscribe to commits first (so nothing committed meanwhile is missed), then bring the directory
// up to the store's seq, then a full resync at the seq read before listing; every commit after that is
// applied. When the manifest's seq is a little behind the store (a restart), start() applies only the
// changes since it and returns; the full resync, which also repairs files removed by hand and deletes
// whose tombstones were collected meanwhile, runs after. Otherwise (a new directory, a replaced store, a
// long lag) start() waits for the full resync. The resync lists stamps only (paths and versions, from an
// index that holds no values) and reads the values of the entries whose file must be written. When a batch
// or a resync fails (disk full, permissions), a resync is retried with backoff until one succeeds.
import type { Logger } from "pino";
import type { MaterialiseTimers } from "./materialise_timers.ts";
import { realTimers } from "./materialise_timers.ts";
import type { Materialiser, ResyncStamp } from "./materialiser.ts";
import type { StoreChange, StoreEntry, StoreService } from "./types.ts";

/** The committed changes the feed follows (StoreService satisfies it: flushed changes only). */
export type MaterialiseSource = Pick<StoreService, "lastSeq" | "onChange" | "changesSince">;
/** What a resync reads (the SqliteLocalStore behind the StoreService satisfies it). */
export interface MaterialiseEntries {
  /** Names the store's seq space: a restart catches up by seq only on the store the manifest names. */
  identity(): { storeId: number };
  /** Stamps of every entry (tombstones included) changed after `afterSeq`, in seq order, at most `limit`. */
  keyedStampsSince(afterSeq: number, limit: number): Array<ResyncStamp & { seq: number }>;
  /** The entries at these paths (tombstones included; unknown paths left out). */
  getMany(paths: readonly string[]): StoreEntry[];
}

/** Stamps per stampsSince() call during a resync. */
export const resyncPageEntriesMax = 256;
export const resyncRetryMsMin = 1_000;
export const resyncRetryMsMax = 60_000;
/** start() catches up on at most this many changes and value bytes (held in memory at once); beyond, it resyncs. */
export const catchUpChangesMax = 10_000;
export const catchUpBytesMax = 64 * 1024 * 1024;

export class MaterialiseFeed {
  private readonly source: MaterialiseSource;
  private readonly entries: MaterialiseEntries;
  private readonly materialiser: Materialiser;
  private readonly logger: Logger;
  private readonly timers: MaterialiseTimers;
  private unsubscribe: (() => void) | null = null;
  private retryTimer: unknown = null;
  private retryMs = resyncRetryMsMin;
  private stopped = false;
  private resolveResynced: (done: boolean) => void = () => undefined;
  private readonly firstResync = new Promise<boolean>((resolve) => {
    this.resolveResynced = resolve;
  });

  constructor(
    source: MaterialiseSource,
    entries: MaterialiseEntries,
    materialiser: Materialiser,
    options: { logger: Logger; timers?: MaterialiseTimers },
  ) {
    this.source = source;
    this.entries = entries;
    this.materialiser = materialiser;
    this.logger = options.logger;
    this.timers = options.timers ?? realTimers;
  }

  /**
   * Subscribes, then resolves once the directory holds every change the store had committed: after a short
   * catch-up (the full resync then runs behind) or after the first full resync (a failure is retried, not
   * thrown).
   */
  async start(): Promise<void> {
    this.unsubscribe = this.source.onChange((changes) => this.onCommit(changes));
    if (await this.catchUp()) void this.resync();
    else await this.resync();
  }

  /** Resolves true once a full resync has succeeded, false if the feed stops first. */
  resynced(): Promise<boolean> {
    return this.firstResync;
  }

  /** Unsubscribes and cancels a pending retry; the caller then closes the materialiser. */
  stop(): void {
    this.resolveResynced(false);
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

  /**
   * Applies the changes committed after the manifest's seq, all read at once (before any commit can queue
   * a later batch ahead of them). False when a full resync must come first: a new directory, another store
   * than the manifest's (replaced) or one behind it, a lag above catchUpChangesMax or catchUpBytesMax, or
   * a failed apply.
   */
  private async catchUp(): Promise<boolean> {
    const fromSeq = this.materialiser.lastAppliedSeq;
    const seq = this.source.lastSeq();
    const sameStore = this.materialiser.storeId === this.entries.identity().storeId;
    if (!sameStore || fromSeq === 0 || fromSeq > seq || seq - fromSeq > catchUpChangesMax) return false;
    if (fromSeq === seq) return true;
    const changes: StoreChange[] = [];
    let bytes = 0;
    for (let after = fromSeq; after < seq; ) {
      const page = this.source.changesSince(after, resyncPageEntriesMax);
      const last = page.at(-1);
      if (last === undefined) break;
      for (const change of page) bytes += change.entry.value.byteLength;
      if (bytes > catchUpBytesMax) return false;
      changes.push(...page);
      after = last.seq;
    }
    try {
      const result = await this.materialiser.apply(changes);
      this.logger.info(
        { fromSeq, seq, written: result.written.length, removed: result.removed.length },
        "materialiser caught up",
      );
      return true;
    } catch {
      return false; // logged by the materialiser; the full resync retries
    }
  }

  private async resync(): Promise<void> {
    if (this.stopped) return;
    const seq = this.source.lastSeq();
    const startedMs = performance.now();
    try {
      const result = await this.materialiser.resync(this.stamps(), {
        seq,
        storeId: this.entries.identity().storeId,
        entriesAt: (paths) => this.entries.getMany(paths),
      });
      this.retryMs = resyncRetryMsMin;
      // Batches that failed before this resync ran are covered by it: their retry is not needed.
      if (this.retryTimer !== null) this.timers.clearTimeout(this.retryTimer);
      this.retryTimer = null;
      this.resolveResynced(true);
      this.logger.info(
        {
          seq,
          written: result.written.length,
          removed: result.removed.length,
          refused: result.refused.length,
          durationMs: Math.round(performance.now() - startedMs),
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

  /**
   * The stamp of every entry, tombstones included, in seq order a page at a time (the materialiser keeps
   * those under its prefix). A path changed during the listing moves to a later seq, so it is listed
   * again, never missed.
   */
  private *stamps(): Generator<ResyncStamp> {
    let after = 0;
    for (;;) {
      const page = this.entries.keyedStampsSince(after, resyncPageEntriesMax);
      yield* page;
      const last = page.at(-1);
      if (page.length < resyncPageEntriesMax || last === undefined) return;
      after = last.seq;
    }
  }
}
