// The store sync core's contract: configuration, the read-only view of local state it reads, wire messages
// and the Ready batch. The state machine lives in store_sync.ts; the shell (src/store/replicator.ts) and the
// simulator (test/sim/store) program against these types only.
//
// The caller's loop (same order in the shell and in the simulator):
//   1. feed inputs: tick() on every logical tick, step(from, message) for each received message,
//      localCommitted(...) after a local write is durable, linkUp/linkDown from the mesh;
//   2. while hasReady(): r = ready();
//        merge each r.persist batch durably (LocalStore.applyRemote), then call persisted(token) — or
//        persistFailed(token) — for it: an apply-ack leaves only after that, so "acknowledged" means durable;
//        send r.messages; hand out r.writeResults; log r.events; then advance(r).

import type { BucketDigest, EntryStamp, StoreEntry } from "./store_types.ts";
import type { ConfigProblem, Envelope, NodeId } from "./types.ts";

export type { ConfigProblem, Envelope, NodeId };

/** The local state as the core reads it: the shell passes the SQLite LocalStore, the simulator a memory one. */
export interface StoreView {
  /** Every bucket's fingerprint (empty buckets may be left out or listed with the empty fingerprint). */
  digest(): BucketDigest[];
  /** Stamps of every entry (tombstones included) in the given buckets. */
  stampsInBuckets(buckets: readonly number[]): EntryStamp[];
  /** The entries held at these paths (tombstones included); unknown paths are left out. */
  getMany(paths: readonly string[]): StoreEntry[];
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
  /** Stamps in one stamps answer: whole buckets are added while they fit (always at least one bucket). */
  stampsPerMessageMax: number;
}

export interface StoreSyncConfig {
  selfId: NodeId;
  /** Every other node of the cluster (read-only replicas included). */
  peers: readonly NodeId[];
  /** A write that has not reached minAcks acknowledgements after this many ticks fails. */
  writeTimeoutTicks: number;
  /** An anti-entropy round with the next peer (round robin) starts this often. */
  antiEntropyIntervalTicks: number;
  /** A round that has not completed after this many ticks is abandoned. */
  roundTimeoutTicks: number;
  limits: StoreSyncLimits;
}

/** "all" = every configured peer. */
export type SyncMinAcks = number | "all";

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
  | { type: "apply"; writeId: string; chunk: number; entries: StoreEntry[] }
  | { type: "apply-ack"; writeId: string; chunk: number }
  | { type: "digest"; roundId: number; buckets: BucketFingerprint[] }
  /** The answer to a digest: stamps of the differing buckets that fit; `more` = other buckets differ too. */
  | { type: "stamps"; roundId: number; buckets: number[]; stamps: EntryStamp[]; more: boolean }
  | { type: "pull"; roundId: number; paths: string[] }
  /** The answer to a pull, in one or more messages; `last` marks the final one. */
  | { type: "entries"; roundId: number; entries: StoreEntry[]; last: boolean };

export type StoreSyncMessageType = StoreSyncMessage["type"];

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

/** Worth a log line or a simulator transcript line; never needed for correctness. */
export type StoreSyncEvent =
  | { type: "round-started"; peer: NodeId; roundId: number; reason: string }
  | { type: "round-completed"; peer: NodeId; roundId: number; pulled: number; more: boolean }
  | { type: "round-abandoned"; peer: NodeId; roundId: number; reason: string }
  | { type: "message-ignored"; peer: NodeId; messageType: StoreSyncMessageType; reason: string };

export interface StoreSyncReady {
  persist: PersistRequest[];
  messages: Envelope<StoreSyncMessage>[];
  writeResults: WriteResult[];
  events: StoreSyncEvent[];
}

export type { BucketDigest, EntryStamp, StoreEntry };
