// Splitting entries and stamps into bounded messages (see StoreSyncLimits). Pure helpers of store_sync.ts.
import type { EntryStamp, StoreEntry, StoreSyncLimits } from "./store_sync_types.ts";

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

/** An upper bound of a stamp's wire size: the path at 3 bytes a UTF-16 unit, the version and flags. */
export function stampBytesMax(stamp: EntryStamp): number {
  return stamp.path.length * 3 + stampFixedBytesMax;
}

/** Text lengths (2 + 1), wallMs and counter (8 + 8), node id (at most 63), deleted (1). */
const stampFixedBytesMax = 2 + 1 + 8 + 8 + 63 + 1;

/**
 * The stamps of the leading differing buckets that fit in one stamps message, by count and by bytes; always
 * the whole first bucket, so progress never stalls on a bucket larger than the bounds.
 */
export function stampsThatFit(
  differing: readonly number[],
  stampsIn: (bucket: number) => EntryStamp[],
  limits: Pick<StoreSyncLimits, "stampsPerMessageMax" | "stampBytesPerMessageMax">,
): { buckets: number[]; stamps: EntryStamp[] } {
  const buckets: number[] = [];
  const stamps: EntryStamp[] = [];
  let bytes = 0;
  for (const bucket of differing) {
    const more = stampsIn(bucket);
    const moreBytes = more.reduce((sum, stamp) => sum + stampBytesMax(stamp), 0);
    const full =
      stamps.length + more.length > limits.stampsPerMessageMax ||
      bytes + moreBytes > limits.stampBytesPerMessageMax;
    if (buckets.length > 0 && full) break;
    buckets.push(bucket);
    stamps.push(...more);
    bytes += moreBytes;
  }
  return { buckets, stamps };
}
