// Store sync messages on the mesh, in a fixed binary layout (wire_bytes.ts): values travel as raw bytes, so a
// replicated 1 KiB write costs a copy, not a base64 round trip and a JSON parse. Every field is bounded and
// checked before the core sees it. One-way messages on two channels: "store.apply" carries the write path
// (apply, apply-ack), "store.sync" the anti-entropy rounds (since, changes, digest, stamps, pull, entries). The core
// matches answers to requests and owns every timeout itself, so mesh request/response would only add a second
// timer.
//
// Layout (big-endian): u8 type, then per type
//   apply      text8 writeId | uint chunk | entries | bool hasSeqs [| uint storeId | uint afterSeq | uint upToSeq]
//   apply-ack  text8 writeId | uint chunk
//   digest     uint roundId | u32 n | n × (u32 bucket | 8 bytes fingerprint)
//   stamps     uint roundId | u32 n | n × u32 bucket | u32 m | m × stamp | bool more
//   pull       uint roundId | u32 n | n × text16 path
//   entries    uint roundId | bool last | entries
//   since      uint roundId | uint storeId | uint afterSeq | u8 k | k × (text8 nodeId | uint fromWallMs)
//   changes    uint roundId | uint storeId | uint createdWallMs | uint upToSeq | u32 m | m × stamp | bool more
// where entries = u32 n | n × (stamp | u32 length | value bytes), stamp = text16 path | uint wallMs |
// uint counter | text8 nodeId | bool deleted, uint = float64 holding a non-negative safe integer, and textN
// = UTF-8 after its byte length in N bits.

import { versionCounterMax, versionWallMsMax } from "../core/lww.ts";
import { validateStorePath } from "../core/store_path.ts";
import type {
  BucketFingerprint,
  OriginSkip,
  SeqSpan,
  StoreSyncLimits,
  StoreSyncMessage,
} from "../core/store_sync_types.ts";
import type { EntryStamp, StoreEntry, Version } from "../core/store_types.ts";
import { nodeIdPattern } from "../core/types.ts";
import { ByteReader, ByteWriter, WireFormatError } from "./wire_bytes.ts";

export const STORE_APPLY_CHANNEL = "store.apply";
export const STORE_SYNC_CHANNEL = "store.sync";

export type StoreChannel = typeof STORE_APPLY_CHANNEL | typeof STORE_SYNC_CHANNEL;

export function channelOf(message: StoreSyncMessage): StoreChannel {
  return message.type === "apply" || message.type === "apply-ack" ? STORE_APPLY_CHANNEL : STORE_SYNC_CHANNEL;
}

/** What the receiver accepts: the sync limits (both sides run the defaults) plus the value size bound. */
export interface StoreWireLimits {
  sync: StoreSyncLimits;
  valueBytesMax: number;
  /** A whole message; the mesh frame bound. */
  messageBytesMax: number;
  bucketCount: number;
}

const typeCodes = {
  apply: 1,
  "apply-ack": 2,
  digest: 3,
  stamps: 4,
  pull: 5,
  entries: 6,
  since: 7,
  changes: 8,
} as const satisfies Record<StoreSyncMessage["type"], number>;

const writeIdBytesMax = 128;
const fingerprintBytes = 8;
/** The smallest encodings, which bound a count by the bytes left: text16 + 2 uints + text8 + bool (+ u32). */
const stampBytesMin = 2 + 8 + 8 + 1 + 1;
const entryBytesMin = stampBytesMin + 4;
const pathBytesMin = 2;

// --- encode ------------------------------------------------------------------------------------------

function writeStamp(w: ByteWriter, stamp: EntryStamp): void {
  w.text(stamp.path, 2);
  w.uint(stamp.version.wallMs);
  w.uint(stamp.version.counter);
  w.text(stamp.version.nodeId, 1);
  w.bool(stamp.deleted);
}

function writeStamps(w: ByteWriter, stamps: readonly EntryStamp[]): void {
  w.u32(stamps.length);
  for (const stamp of stamps) writeStamp(w, stamp);
}

function writeEntries(w: ByteWriter, entries: readonly StoreEntry[]): void {
  w.u32(entries.length);
  for (const entry of entries) {
    writeStamp(w, entry);
    w.bytes(entry.value);
  }
}

/** Bytes a message will take, roughly (paths counted at 3 bytes a character): one allocation mostly. */
function sizeHint(message: StoreSyncMessage): number {
  if (message.type !== "apply" && message.type !== "entries") return 512;
  let bytes = 64;
  for (const entry of message.entries)
    bytes += entryBytesMin + 80 + entry.path.length * 3 + entry.value.byteLength;
  return bytes;
}

export function encodeStoreMessage(message: StoreSyncMessage): Uint8Array {
  const w = new ByteWriter(sizeHint(message));
  w.u8(typeCodes[message.type]);
  switch (message.type) {
    case "apply":
      w.text(message.writeId, 1);
      w.uint(message.chunk);
      writeEntries(w, message.entries);
      w.bool(message.seqs !== null);
      if (message.seqs !== null) {
        w.uint(message.seqs.storeId);
        w.uint(message.seqs.afterSeq);
        w.uint(message.seqs.upToSeq);
      }
      break;
    case "apply-ack":
      w.text(message.writeId, 1);
      w.uint(message.chunk);
      break;
    case "digest":
      w.uint(message.roundId);
      w.u32(message.buckets.length);
      for (const { bucket, fingerprint } of message.buckets) {
        w.u32(bucket);
        w.raw(Buffer.from(fingerprint, "hex"));
      }
      break;
    case "stamps":
      w.uint(message.roundId);
      w.u32(message.buckets.length);
      for (const bucket of message.buckets) w.u32(bucket);
      writeStamps(w, message.stamps);
      w.bool(message.more);
      break;
    case "since":
      w.uint(message.roundId);
      w.uint(message.storeId);
      w.uint(message.afterSeq);
      // At most 255 origins: skipping fewer is always safe (the receiver offers more).
      w.u8(Math.min(message.skip.length, 255));
      for (const { nodeId, fromWallMs } of message.skip.slice(0, 255)) {
        w.text(nodeId, 1);
        w.uint(fromWallMs);
      }
      break;
    case "changes":
      w.uint(message.roundId);
      w.uint(message.storeId);
      w.uint(message.createdWallMs);
      w.uint(message.upToSeq);
      writeStamps(w, message.stamps);
      w.bool(message.more);
      break;
    case "pull":
      w.uint(message.roundId);
      w.u32(message.paths.length);
      for (const path of message.paths) w.text(path, 2);
      break;
    case "entries":
      w.uint(message.roundId);
      w.bool(message.last);
      writeEntries(w, message.entries);
      break;
  }
  return w.finish();
}

// --- decode ------------------------------------------------------------------------------------------

export type StoreMessageDecoder = (payload: Uint8Array) => StoreDecodeResult;
export type StoreDecodeResult = { ok: true; message: StoreSyncMessage } | { ok: false; reason: string };

class MessageReader extends ByteReader {
  private readonly limits: StoreWireLimits;

  constructor(bytes: Uint8Array, limits: StoreWireLimits) {
    super(bytes);
    this.limits = limits;
  }

  path(): string {
    const path = this.text("path", 2);
    const valid = validateStorePath(path);
    if (!valid.ok) throw new WireFormatError(`invalid store path: ${valid.reason}`);
    return path;
  }

  version(): Version {
    const wallMs = this.uint("wallMs", versionWallMsMax);
    const counter = this.uint("counter", versionCounterMax);
    const nodeId = this.text("nodeId", 1);
    if (!nodeIdPattern.test(nodeId)) throw new WireFormatError("nodeId: not a node id");
    return { wallMs, counter, nodeId };
  }

  stamp(): EntryStamp {
    const path = this.path();
    const version = this.version();
    return { path, version, deleted: this.bool("deleted") };
  }

  /** The message byte bound caps the count (a digest answer's one bucket may exceed stampsPerMessageMax). */
  stamps(): EntryStamp[] {
    const stamps: EntryStamp[] = new Array(this.count("stamps", Number.MAX_SAFE_INTEGER, stampBytesMin));
    for (let i = 0; i < stamps.length; i++) stamps[i] = this.stamp();
    return stamps;
  }

  entries(): StoreEntry[] {
    const n = this.count("entries", this.limits.sync.entriesPerMessageMax, entryBytesMin);
    const entries: StoreEntry[] = new Array(n);
    for (let i = 0; i < n; i++) {
      const { path, version, deleted } = this.stamp();
      entries[i] = { path, value: this.bytes("value", this.limits.valueBytesMax), version, deleted };
    }
    return entries;
  }

  originSkips(): OriginSkip[] {
    const skip: OriginSkip[] = new Array(this.u8());
    for (let i = 0; i < skip.length; i++) {
      const nodeId = this.text("nodeId", 1);
      if (!nodeIdPattern.test(nodeId)) throw new WireFormatError("skip: not a node id");
      skip[i] = { nodeId, fromWallMs: this.uint("fromWallMs", versionWallMsMax) };
    }
    return skip;
  }

  seqSpan(): SeqSpan {
    const storeId = this.uint("storeId");
    const afterSeq = this.uint("afterSeq");
    const upToSeq = this.uint("upToSeq");
    if (upToSeq < afterSeq) throw new WireFormatError("seqs: upToSeq before afterSeq");
    return { storeId, afterSeq, upToSeq };
  }

  bucket(): number {
    const bucket = this.u32();
    if (bucket >= this.limits.bucketCount) throw new WireFormatError(`bucket ${bucket} out of range`);
    return bucket;
  }

  writeId(): string {
    const writeId = this.text("writeId", 1);
    if (writeId.length === 0 || writeId.length > writeIdBytesMax)
      throw new WireFormatError("writeId: bad length");
    return writeId;
  }

  message(): StoreSyncMessage {
    const code = this.u8();
    switch (code) {
      case typeCodes.apply:
        return {
          type: "apply",
          writeId: this.writeId(),
          chunk: this.uint("chunk"),
          entries: this.entries(),
          seqs: this.bool("hasSeqs") ? this.seqSpan() : null,
        };
      case typeCodes["apply-ack"]:
        return { type: "apply-ack", writeId: this.writeId(), chunk: this.uint("chunk") };
      case typeCodes.digest: {
        const roundId = this.uint("roundId");
        const n = this.count("buckets", this.limits.bucketCount, 4 + fingerprintBytes);
        const buckets: BucketFingerprint[] = new Array(n);
        for (let i = 0; i < n; i++) {
          const bucket = this.bucket();
          buckets[i] = {
            bucket,
            fingerprint: Buffer.from(this.raw("fingerprint", fingerprintBytes)).toString("hex"),
          };
        }
        return { type: "digest", roundId, buckets };
      }
      case typeCodes.stamps: {
        const roundId = this.uint("roundId");
        const buckets: number[] = new Array(this.count("buckets", this.limits.bucketCount, 4));
        for (let i = 0; i < buckets.length; i++) buckets[i] = this.bucket();
        return { type: "stamps", roundId, buckets, stamps: this.stamps(), more: this.bool("more") };
      }
      case typeCodes.since:
        return {
          type: "since",
          roundId: this.uint("roundId"),
          storeId: this.uint("storeId"),
          afterSeq: this.uint("afterSeq"),
          skip: this.originSkips(),
        };
      case typeCodes.changes:
        return {
          type: "changes",
          roundId: this.uint("roundId"),
          storeId: this.uint("storeId"),
          createdWallMs: this.uint("createdWallMs", versionWallMsMax),
          upToSeq: this.uint("upToSeq"),
          stamps: this.stamps(),
          more: this.bool("more"),
        };
      case typeCodes.pull: {
        const roundId = this.uint("roundId");
        const paths: string[] = new Array(
          this.count("paths", this.limits.sync.pathsPerPullMax, pathBytesMin),
        );
        for (let i = 0; i < paths.length; i++) paths[i] = this.path();
        return { type: "pull", roundId, paths };
      }
      case typeCodes.entries:
        return {
          type: "entries",
          roundId: this.uint("roundId"),
          last: this.bool("last"),
          entries: this.entries(),
        };
      default:
        throw new WireFormatError(`unknown message type ${code}`);
    }
  }
}

/**
 * A decoder for these limits. Never throws: hostile bytes from a peer become a reason to log. Values in the
 * decoded entries are views into `payload`.
 */
export function storeMessageDecoder(limits: StoreWireLimits): StoreMessageDecoder {
  return (payload) => {
    if (payload.byteLength > limits.messageBytesMax) {
      return {
        ok: false,
        reason: `invalid store message: ${payload.byteLength} bytes exceeds ${limits.messageBytesMax}`,
      };
    }
    try {
      const reader = new MessageReader(payload, limits);
      const message = reader.message();
      reader.end();
      return { ok: true, message };
    } catch (error) {
      if (!(error instanceof WireFormatError)) throw error;
      return { ok: false, reason: `invalid store message: ${error.message}` };
    }
  };
}
