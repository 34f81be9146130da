// The store's contract between its parts: the durable local state (sqlite_store.ts), the replication
// shell (replicator.ts, over the pure sync core src/core/store_sync.ts), the materialiser and the API.

import type { PeerCursor, StoreView } from "../core/store_sync_types.ts";
import type { BucketDigest, EntryStamp, StoreEntry, Version } from "../core/store_types.ts";

export type { BucketDigest, EntryStamp, StoreEntry, Version };

/** A write requested by a client: a value to set, or null to delete (a tombstone). */
export interface StoreWrite {
  path: string;
  value: Uint8Array | null;
}

/** One committed change in this node's local change log (its own writes and remote ones that won). */
export interface StoreChange {
  /** Local, gap-free, increasing; the resume point for `watch` and the materialiser. */
  seq: number;
  entry: StoreEntry;
}

/**
 * The durable local state. Every method that changes state commits in ONE SQLite transaction (WAL) before
 * it returns: what it returns as committed survives kill -9, and survives power loss once `flushed` calls
 * back. What the sync core reads (digests, stamps, entries by path, the identity) is its StoreView part.
 */
export interface LocalStore extends StoreView {
  /**
   * Calls back on a later turn once everything committed so far is on disk, or with the error that keeps
   * it from getting there (then for good: nothing may be claimed durable any more).
   */
  flushed(callback: (error: Error | null) => void): void;
  /** Versions the writes from the node's clock, commits them, returns the committed entries. */
  writeLocal(writes: readonly StoreWrite[], nowWallMs: number): StoreEntry[];
  /** Merges remote entries by last-write-wins; commits; returns the entries that won (changed state). */
  applyRemote(entries: readonly StoreEntry[], nowWallMs: number): StoreEntry[];
  /** The entry at a path, tombstones included (check `deleted`); null when never written or collected. */
  get(path: string): StoreEntry | null;
  /** Live entries (no tombstones) under a prefix, in path order, paginated by `after` (exclusive). */
  list(prefix: string, options: { after?: string; limit: number }): StoreEntry[];
  /** Changes with seq > afterSeq, in order, at most `limit`. */
  changesSince(afterSeq: number, limit: number): StoreChange[];
  /** Replaces the saved cursors into peers' change logs (StoreSyncReady.cursors). */
  saveSyncCursors(cursors: readonly PeerCursor[]): void;
  /** Removes tombstones older than the horizon; returns how many. */
  collectTombstones(olderThanWallMs: number): number;
  close(): void;
}

/** What a write achieved: committed locally always; replicated to `hostsOk`; `acked` when >= minAcks did. */
export interface WriteOutcome {
  entries: StoreEntry[];
  /** Peers that hold the write durably (acknowledged). */
  hostsOk: string[];
  /** Peers that did not acknowledge in time, with the reason. */
  hostsErr: Array<{ host: string; error: string }>;
  /** hostsOk.length >= the requested minAcks. When false the write stays local and spreads later. */
  acked: boolean;
}

/** "all" = every configured peer. */
export type MinAcks = number | "all";

export class ReadOnlyReplicaError extends Error {
  override name = "ReadOnlyReplicaError";
}

/**
 * The store as the API and CLI see it (implemented by src/store/replicator.ts over LocalStore + mesh).
 * Paths given here are already validated (src/core/store_path.ts).
 */
export interface StoreService {
  readonly readOnly: boolean;
  /** Configured peers: what min_acks "all" means, and the most acknowledgements a write can get. */
  readonly peerCount: number;
  /** Commit locally, replicate to every peer at once, resolve when minAcks peers hold it or on timeout. */
  write(
    writes: readonly StoreWrite[],
    options: { minAcks: MinAcks; timeoutMs?: number },
  ): Promise<WriteOutcome>;
  get(path: string): StoreEntry | null;
  list(prefix: string, options: { after?: string; limit: number }): StoreEntry[];
  changesSince(afterSeq: number, limit: number): StoreChange[];
  lastSeq(): number;
  /** Called after every local commit (own writes and remote ones that won); returns an unsubscribe. */
  onChange(listener: (changes: readonly StoreChange[]) => void): () => void;
}
