// The store sync core's contract: configuration, the read-only view of local state it reads, wire messages
// and the Ready batch. The state machine lives in store_sync.ts; the shell (src/store/replicator.ts) and the
// simulator (test/sim/store) program against these types only.
//
// The caller's loop (same order in the shell and in the simulator):
//   1. feed inputs: tick() on every logical tick, step(from, message) for each received message,
//      localCommitted(...) after a local write is durable, linkUp/linkDown from the mesh, setPeers(...)
//      when the cluster's membership changed;
//   2. while hasReady(): r = ready();
//        merge each r.persist batch durably (LocalStore.applyRemote), then call persisted(token) — or
//        persistFailed(token) — for it: an apply-ack leaves only after that, so "acknowledged" means durable;
//        save r.cursors when not null (LocalStore.saveSyncCursors; losing them only costs re-reading);
//        send r.messages; hand out r.writeResults; log r.events; then advance(r).
//   3. nothing is due before ticksUntilTimer() more ticks: the shell may sleep until then, as long as it
//      delivers the ticks that passed (tick() once each) before it feeds any other input.

import type { BucketDigest, EntryStamp, StoreEntry } from "./store_types.ts";
import type { ConfigProblem, Envelope, NodeId } from "./types.ts";

export type { ConfigProblem, Envelope, NodeId };

/** The local state as the core reads it: the shell passes the SQLite LocalStore, the simulator a memory one. */
export interface StoreView {
  /** Names this copy of the store and its seq space (see StoreIdentity). */
  identity(): StoreIdentity;
  /** Every bucket's fingerprint (empty buckets may be left out or listed with the empty fingerprint). */
  digest(): BucketDigest[];
  /** Stamps of every entry (tombstones included) in the given buckets. */
  stampsInBuckets(buckets: readonly number[]): EntryStamp[];
  /** Stamps of the entries changed after seq `afterSeq` (the latest change of each path, at least). */
  stampsSince(afterSeq: number, query: StampsSinceQuery): StampsSince;
  /** The stamps held at these paths (tombstones included); unknown paths are left out. */
  stampsAt(paths: readonly string[]): EntryStamp[];
  /** The entries held at these paths (tombstones included); unknown paths are left out. */
  getMany(paths: readonly string[]): StoreEntry[];
  /** The seq of the last change (0 when none). */
  lastSeq(): number;
  /** The cursors into peers' change logs saved from a Ready (empty when none were). */
  syncCursors(): PeerCursor[];
}

/**
 * How far a node has read a peer's change log: every change of store `storeId` (created at `createdWallMs`)
 * up to `seq`. Saved only after what it covers is durable, so a cursor read back after a crash never
 * claims more than the store holds.
 */
export interface PeerCursor {
  peer: NodeId;
  storeId: number;
  createdWallMs: number;
  seq: number;
}

/**
 * Who holds a seq space: `storeId` is drawn at random when the database is created (never 0), so a peer's
 * cursor into a wiped or replaced database is recognised as stale. `createdWallMs` is the wall clock of that
 * moment: every version this copy wrote itself is at least as late, so entries this node wrote with its
 * current database need never be offered back to it.
 */
export interface StoreIdentity {
  storeId: number;
  createdWallMs: number;
}

export interface StampsSinceQuery {
  /** Stamps returned at most. */
  limit: number;
  /** Seqs looked at at most (afterSeq + 1 … afterSeq + seqSpanMax): bounds the work of a filtered scan. */
  seqSpanMax: number;
  /** Leave out entries whose version was written by one of these nodes at or after its wall time. */
  skip?: readonly OriginSkip[];
}

/**
 * Entries written by `nodeId` with its current database (version wall time at or after `fromWallMs`, the
 * database's createdWallMs): the asker holds them or gets them from that node's own change log.
 */
export interface OriginSkip {
  nodeId: NodeId;
  fromWallMs: number;
}

export interface StampsSince {
  stamps: EntryStamp[];
  /** Every change up to this seq was looked at: the next query starts after it. */
  upToSeq: number;
  /** Changes after upToSeq exist. */
  more: boolean;
}

/**
 * Bounds on what one message carries, so that a large divergence takes several rounds of bounded frames
 * instead of one huge one. A single entry larger than valueBytesPerMessageMax still travels, alone.
 */
export interface StoreSyncLimits {
  /** Entries in one apply or entries message. */
  entriesPerMessageMax: number;
  /** Value bytes in one apply or entries message (the rest goes in the next message). */
  valueBytesPerMessageMax: number;
  /** Paths asked for in one pull (one pull per round). */
  pathsPerPullMax: number;
  /**
   * Value bytes in one pull's answer: the asked paths past it are left out (the asker pulls them in its next
   * round), so a pull of many multi-MiB values never loads them all at once. The first entry always goes.
   */
  valueBytesPerPullMax: number;
  /** Stamps in one stamps answer: whole buckets are added while they fit (always at least one bucket). */
  stampsPerMessageMax: number;
}

export interface StoreSyncConfig {
  selfId: NodeId;
  /** Every other node of the cluster (read-only replicas included) at start; setPeers changes them. */
  peers: readonly NodeId[];
  /** A write that has not reached minAcks acknowledgements after this many ticks fails. */
  writeTimeoutTicks: number;
  /** An anti-entropy round with the next peer (round robin) starts this often. */
  antiEntropyIntervalTicks: number;
  /**
   * Every this many periodic rounds with a peer, one compares digests instead of asking for the changes
   * since the last round: the safety net for what a change-log cursor cannot see (see store_sync.ts).
   */
  digestRoundEvery: number;
  /** A round that has not completed after this many ticks is abandoned. */
  roundTimeoutTicks: number;
  limits: StoreSyncLimits;
}

/** "all" = every peer when the write is committed (StoreSync.setPeers: those that remain). */
export type SyncMinAcks = number | "all";

/** How far this node has caught up with one peer (StoreSync.syncProgress, which states the rule). */
export interface PeerSyncProgress {
  caughtUp: boolean;
  /** How far this node has read the peer's change log; null before its first since round completed. */
  cursorSeq: number | null;
  /** How far the peer's change log reaches, as far as this node heard (its latest since answer, or an apply). */
  headSeq: number | null;
  /** The latest round with the peer that completed; leftBehind = something remained to read or pull. */
  lastRound: { kind: RoundKind; leftBehind: boolean } | null;
}

/** One bucket's fingerprint as it travels in a digest message. */
export interface BucketFingerprint {
  bucket: number;
  fingerprint: string;
}

/**
 * Plain data; the shell bounds-checks it on receipt (src/store/store_wire.ts). `writeId` is opaque and must
 * be unique across restarts of the writer (an ack from before a restart must not count for a new write);
 * a write too large for one message travels in several chunks, each acknowledged on its own.
 * `roundId` names one anti-entropy round of the node that started it.
 */
export type StoreSyncMessage =
  /**
   * `seqs`: when the entries are exactly the sender's changes after `afterSeq` up to `upToSeq` of its store
   * `storeId`, a receiver whose cursor into that log stands at afterSeq moves it to upToSeq once persisted.
   */
  | { type: "apply"; writeId: string; chunk: number; entries: StoreEntry[]; seqs: SeqSpan | null }
  | { type: "apply-ack"; writeId: string; chunk: number }
  /**
   * Stamps of the entries the receiver changed after `afterSeq` of its store `storeId` (0 or another store:
   * from the start), except those written by the origins in `skip`: the sender itself, and the peers whose
   * change logs it reads directly.
   */
  | { type: "since"; roundId: number; storeId: number; afterSeq: number; skip: OriginSkip[] }
  /**
   * The answer to since: the receiver has seen every change of `storeId` up to `upToSeq` once it pulled.
   * `createdWallMs` is that store's, for the sender's later skips.
   */
  | {
      type: "changes";
      roundId: number;
      storeId: number;
      createdWallMs: number;
      upToSeq: number;
      stamps: EntryStamp[];
      more: boolean;
    }
  | { type: "digest"; roundId: number; buckets: BucketFingerprint[] }
  /** The answer to a digest: stamps of the differing buckets that fit; `more` = other buckets differ too. */
  | { type: "stamps"; roundId: number; buckets: number[]; stamps: EntryStamp[]; more: boolean }
  | { type: "pull"; roundId: number; paths: string[] }
  /** The answer to a pull, in one or more messages; `last` marks the final one. */
  | { type: "entries"; roundId: number; entries: StoreEntry[]; last: boolean };

export type StoreSyncMessageType = StoreSyncMessage["type"];

/** A stretch of one store's change log: the changes after afterSeq up to upToSeq. */
export interface SeqSpan {
  storeId: number;
  afterSeq: number;
  upToSeq: number;
}

/** Remote entries to merge durably (LocalStore.applyRemote); then call persisted(token). */
export interface PersistRequest {
  token: number;
  from: NodeId;
  entries: StoreEntry[];
}

/**
 * What a write achieved. The first result for a writeId resolves it (acked, or not when the timeout passed
 * first); later ones only report late acknowledgements, for logging. `done` = the core forgot the write
 * (every peer acknowledged, or the timeout passed).
 */
export interface WriteResult {
  writeId: string;
  hostsOk: NodeId[];
  hostsErr: Array<{ host: NodeId; error: string }>;
  acked: boolean;
  done: boolean;
}

/** "since": the changes after a cursor into the peer's change log; "digest": bucket fingerprints. */
export type RoundKind = "since" | "digest";

/** Worth a log line or a simulator transcript line; never needed for correctness. */
export type StoreSyncEvent =
  | { type: "round-started"; peer: NodeId; roundId: number; kind: RoundKind; reason: string }
  | { type: "round-completed"; peer: NodeId; roundId: number; pulled: number; more: boolean }
  | { type: "round-abandoned"; peer: NodeId; roundId: number; reason: string }
  | { type: "peers-changed"; added: NodeId[]; removed: NodeId[] }
  | { type: "message-ignored"; peer: NodeId; messageType: StoreSyncMessageType; reason: string };

export interface StoreSyncReady {
  persist: PersistRequest[];
  /** Every cursor, to save in place of the saved ones; null when none moved since the last save. */
  cursors: PeerCursor[] | null;
  messages: Envelope<StoreSyncMessage>[];
  writeResults: WriteResult[];
  events: StoreSyncEvent[];
}

export type { BucketDigest, EntryStamp, StoreEntry };
