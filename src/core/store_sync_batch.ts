// Splitting entries and stamps into bounded messages (see StoreSyncLimits). Pure helpers of store_sync.ts.
import type {
  BucketDigest,
  EntryStamp,
  StampsSince,
  StampsSinceQuery,
  StoreEntry,
  StoreSyncLimits,
} from "./store_sync_types.ts";

/**
 * Consecutive chunks of at most entriesPerMessageMax entries and valueBytesPerMessageMax value bytes; an
 * entry larger than the byte bound forms a chunk of its own. No entries → no chunks.
 */
export function chunkEntries(entries: readonly StoreEntry[], limits: StoreSyncLimits): StoreEntry[][] {
  const chunks: StoreEntry[][] = [];
  let current: StoreEntry[] = [];
  let currentBytes = 0;
  for (const entry of entries) {
    const bytes = entry.value.byteLength;
    const full =
      current.length === limits.entriesPerMessageMax || currentBytes + bytes > limits.valueBytesPerMessageMax;
    if (current.length > 0 && full) {
      chunks.push(current);
      current = [];
      currentBytes = 0;
    }
    current.push(entry);
    currentBytes += bytes;
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
}

/**
 * The leading differing buckets whose stamps (counted from our digest) fit in one stamps message; always at
 * least the first one, so progress never stalls on a bucket larger than the bound.
 */
export function bucketsThatFit(
  differing: readonly number[],
  ours: readonly BucketDigest[],
  stampsPerMessageMax: number,
): number[] {
  const countByBucket = new Map(ours.map((d) => [d.bucket, d.count]));
  const chosen: number[] = [];
  let stamps = 0;
  for (const bucket of differing) {
    const count = countByBucket.get(bucket) ?? 0;
    if (chosen.length > 0 && stamps + count > stampsPerMessageMax) break;
    chosen.push(bucket);
    stamps += count;
  }
  return chosen;
}

/** The last seq a since query may look at: its span, and never past the store's last seq. */
export function sinceUntilSeq(afterSeq: number, query: StampsSinceQuery, lastSeq: number): number {
  return Math.min(afterSeq + query.seqSpanMax, lastSeq);
}

/**
 * A since answer from the rows a store found (seq order, at most query.limit, none past `untilSeq`): when
 * the limit cut the scan short, the next query starts after the last row found; otherwise after untilSeq.
 */
export function stampsSinceOf(
  rows: ReadonlyArray<{ seq: number; stamp: EntryStamp }>,
  query: StampsSinceQuery,
  untilSeq: number,
  lastSeq: number,
): StampsSince {
  const upToSeq = rows.length >= query.limit ? rows[rows.length - 1]!.seq : untilSeq;
  return { stamps: rows.map((r) => r.stamp), upToSeq, more: upToSeq < lastSeq };
}
