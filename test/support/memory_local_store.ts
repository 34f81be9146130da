// An in-memory LocalStore (src/store/types.ts) for tests and the store simulator: same contract as the
// SQLite one (last-write-wins merge, gap-free change log, incremental bucket digests, HLC versions), with
// every "commit" durable for as long as the object lives. A simulated crash keeps the object: what was
// committed survives, and only what the caller had not handed over yet is lost.
import {
  bucketOf,
  EMPTY_FINGERPRINT,
  fingerprintHex,
  type Hash64,
  hash64,
  stampHash,
  xorHash,
} from "../../src/core/digest.ts";
import { ClockSkewError, HybridClock } from "../../src/core/hlc.ts";
import { supersedes } from "../../src/core/lww.ts";
import { sinceUntilSeq, stampsSinceOf } from "../../src/core/store_sync_batch.ts";
import type {
  PeerCursor,
  StampsSince,
  StampsSinceQuery,
  StoreIdentity,
} from "../../src/core/store_sync_types.ts";
import type { NodeId } from "../../src/core/types.ts";
import type {
  BucketDigest,
  EntryStamp,
  LocalStore,
  StoreChange,
  StoreEntry,
  StoreWrite,
} from "../../src/store/types.ts";

function stampOf(entry: StoreEntry): EntryStamp {
  return { path: entry.path, version: entry.version, deleted: entry.deleted };
}

export interface MemoryLocalStoreOptions {
  nodeId: NodeId;
  bucketCount?: number;
  clockSkewMsMax?: number;
  /** Default: derived from nodeId, created at wall time 0 (the simulator never wipes a store). */
  identity?: StoreIdentity;
}

interface Bucket {
  hash: Hash64;
  entries: Map<string, StoreEntry>;
}

export class MemoryLocalStore implements LocalStore {
  readonly nodeId: NodeId;
  readonly bucketCount: number;
  private readonly clock: HybridClock;
  private readonly buckets: Bucket[];
  private readonly changes: StoreChange[] = [];
  private closed = false;
  private readonly storeIdentity: StoreIdentity;
  private savedCursors: PeerCursor[] = [];
  clockSkewRejectedTotal = 0;

  constructor(options: MemoryLocalStoreOptions) {
    this.nodeId = options.nodeId;
    this.bucketCount = options.bucketCount ?? 256;
    this.clock = new HybridClock({ skewMsMax: options.clockSkewMsMax ?? 60_000 });
    this.storeIdentity = options.identity ?? { storeId: 1 + hash64(options.nodeId)[1], createdWallMs: 0 };
    this.buckets = Array.from({ length: this.bucketCount }, () => ({
      hash: EMPTY_FINGERPRINT,
      entries: new Map(),
    }));
  }

  writeLocal(writes: readonly StoreWrite[], nowWallMs: number): StoreEntry[] {
    this.assertOpen();
    const committed = writes.map((w) => {
      const version = { ...this.clock.now(nowWallMs), nodeId: this.nodeId };
      const value = w.value === null ? new Uint8Array(0) : w.value.slice();
      return { path: w.path, value, version, deleted: w.value === null };
    });
    for (const entry of committed) this.commit(entry);
    return committed;
  }

  /**
   * Like the SQLite store: entries apply one after the other; one whose clock is more than clockSkewMsMax
   * ahead of ours is skipped (and counted), and anti-entropy offers it again later.
   */
  applyRemote(entries: readonly StoreEntry[], nowWallMs: number): StoreEntry[] {
    this.assertOpen();
    const won: StoreEntry[] = [];
    for (const entry of entries) {
      try {
        this.clock.observe(entry.version, nowWallMs);
      } catch (error) {
        if (!(error instanceof ClockSkewError)) throw error;
        this.clockSkewRejectedTotal++;
        continue;
      }
      if (!supersedes(entry.version, this.get(entry.path)?.version)) continue;
      const value = entry.deleted ? new Uint8Array(0) : entry.value.slice();
      const copy = { ...entry, value, version: { ...entry.version } };
      this.commit(copy);
      won.push(copy);
    }
    return won;
  }

  get(path: string): StoreEntry | null {
    return this.bucket(path).entries.get(path) ?? null;
  }

  getMany(paths: readonly string[]): StoreEntry[] {
    return paths.flatMap((path) => this.get(path) ?? []);
  }

  /** A plain string prefix, as in the SQLite store: "a" lists "a", "a/b" and "ab". */
  list(prefix: string, options: { after?: string; limit: number }): StoreEntry[] {
    const after = options.after;
    return this.all()
      .filter((e) => !e.deleted && e.path.startsWith(prefix) && (after === undefined || e.path > after))
      .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
      .slice(0, options.limit);
  }

  changesSince(afterSeq: number, limit: number): StoreChange[] {
    return this.changes.slice(Math.max(0, afterSeq), Math.max(0, afterSeq) + limit);
  }

  lastSeq(): number {
    return this.changes.length;
  }

  identity(): StoreIdentity {
    return { ...this.storeIdentity };
  }

  /** Like the SQLite store: only the latest change of each path (one still held) counts. */
  stampsSince(afterSeq: number, query: StampsSinceQuery): StampsSince {
    const until = sinceUntilSeq(afterSeq, query, this.lastSeq());
    const skip = query.skip ?? [];
    const rows: Array<{ seq: number; stamp: EntryStamp }> = [];
    for (const { seq, entry } of this.changes.slice(afterSeq, Math.max(afterSeq, until))) {
      if (rows.length >= query.limit) break;
      if (this.get(entry.path) !== entry) continue;
      const { nodeId, wallMs } = entry.version;
      if (skip.some((o) => o.nodeId === nodeId && wallMs >= o.fromWallMs)) continue;
      rows.push({ seq, stamp: stampOf(entry) });
    }
    return stampsSinceOf(rows, query, until, this.lastSeq());
  }

  syncCursors(): PeerCursor[] {
    return this.savedCursors.map((c) => ({ ...c }));
  }

  saveSyncCursors(cursors: readonly PeerCursor[]): void {
    this.assertOpen();
    this.savedCursors = cursors.map((c) => ({ ...c }));
  }

  stampsAt(paths: readonly string[]): EntryStamp[] {
    return this.getMany(paths).map(stampOf);
  }

  digest(): BucketDigest[] {
    return this.buckets.map((b, bucket) => ({
      bucket,
      fingerprint: fingerprintHex(b.hash),
      count: b.entries.size,
    }));
  }

  stampsInBuckets(buckets: readonly number[]): EntryStamp[] {
    return buckets.flatMap((bucket) => [...(this.buckets[bucket]?.entries.values() ?? [])].map(stampOf));
  }

  collectTombstones(olderThanWallMs: number): number {
    let collected = 0;
    for (const entry of this.all()) {
      if (!entry.deleted || entry.version.wallMs >= olderThanWallMs) continue;
      const bucket = this.bucket(entry.path);
      bucket.hash = xorHash(bucket.hash, stampHash(entry));
      bucket.entries.delete(entry.path);
      collected++;
    }
    return collected;
  }

  close(): void {
    this.closed = true;
  }

  /** Nothing here is ever lost: every commit counts as flushed (on a later turn, as the contract says). */
  flushed(callback: (error: Error | null) => void): void {
    setImmediate(callback, null);
  }

  /** Every entry held, tombstones included (checkers compare whole replicas with it). */
  all(): StoreEntry[] {
    return this.buckets.flatMap((b) => [...b.entries.values()]);
  }

  private commit(entry: StoreEntry): void {
    const bucket = this.bucket(entry.path);
    const held = bucket.entries.get(entry.path);
    if (held !== undefined) bucket.hash = xorHash(bucket.hash, stampHash(held));
    bucket.hash = xorHash(bucket.hash, stampHash(entry));
    bucket.entries.set(entry.path, entry);
    this.changes.push({ seq: this.changes.length + 1, entry });
  }

  private bucket(path: string): Bucket {
    return this.buckets[bucketOf(path, this.bucketCount)]!;
  }

  private assertOpen(): void {
    if (this.closed) throw new Error("store is closed");
  }
}
