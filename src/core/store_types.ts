// The replicated store's data model (see ../shared/DESIGN.md "Store model"). Pure types; the functions
// live in hlc.ts (clock), lww.ts (order and merge), store_path.ts (path rules) and digest.ts (anti-entropy).

import type { NodeId } from "./types.ts";

/**
 * A hybrid logical clock reading: physical milliseconds plus a logical counter that orders events inside
 * one millisecond and events that arrive from a node whose clock runs ahead.
 */
export interface Hlc {
  wallMs: number;
  counter: number;
}

/** An entry's version: total order by (wallMs, counter, nodeId); nodeId breaks ties deterministically. */
export interface Version extends Hlc {
  nodeId: NodeId;
}

/**
 * One key of the store. `path` is a relative slash-separated path (validated by store_path.ts); a delete is
 * a tombstone (`deleted: true`, empty value) that wins like any other write and is collected after a horizon.
 */
export interface StoreEntry {
  path: string;
  value: Uint8Array;
  version: Version;
  deleted: boolean;
}

/** Path and version only: what anti-entropy exchanges before pulling values. */
export interface EntryStamp {
  path: string;
  version: Version;
  deleted: boolean;
}

/** A summary of the entries in one digest bucket (see digest.ts). */
export interface BucketDigest {
  bucket: number;
  /** Order-independent fingerprint (XOR of stamp hashes) of the bucket's entries, 16 hex digits. */
  fingerprint: string;
  count: number;
}
