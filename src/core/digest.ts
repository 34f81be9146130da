// Anti-entropy digests. Paths fall into a fixed number of buckets by a hash of the path; a bucket's
// fingerprint is the XOR of its entries' stamp hashes, so it is independent of order and can be kept up to
// date incrementally (XOR out the old stamp, XOR in the new). Two replicas compare fingerprints, exchange
// stamps only for buckets that differ, and then pull only the entries that differ.
import { compareVersions, versionKey } from "./lww.ts";
import type { BucketDigest, EntryStamp } from "./store_types.ts";

export const BUCKET_COUNT_DEFAULT = 256;

/** A 64-bit hash as two unsigned 32-bit halves (FNV-1a over UTF-16 code units with two offset bases). */
export type Hash64 = readonly [hi: number, lo: number];

function fnv1a32(text: string, offsetBasis: number): number {
  let h = offsetBasis;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

export function hash64(text: string): Hash64 {
  return [fnv1a32(text, 0x811c9dc5), fnv1a32(text, 0x050c5d1f)];
}

export function bucketOf(path: string, bucketCount: number = BUCKET_COUNT_DEFAULT): number {
  return fnv1a32(path, 0x811c9dc5) % bucketCount;
}

export function stampHash(stamp: EntryStamp): Hash64 {
  return hash64(`${stamp.path}\u0000${versionKey(stamp.version)}\u0000${stamp.deleted ? 1 : 0}`);
}

export function xorHash(a: Hash64, b: Hash64): Hash64 {
  return [(a[0] ^ b[0]) >>> 0, (a[1] ^ b[1]) >>> 0];
}

export const EMPTY_FINGERPRINT: Hash64 = [0, 0];

export function fingerprintHex(h: Hash64): string {
  return h[0].toString(16).padStart(8, "0") + h[1].toString(16).padStart(8, "0");
}

export function parseFingerprintHex(hex: string): Hash64 {
  if (!/^[0-9a-f]{16}$/.test(hex)) throw new RangeError(`not a fingerprint: ${hex}`);
  return [Number.parseInt(hex.slice(0, 8), 16), Number.parseInt(hex.slice(8), 16)];
}

/** Digest of a whole set of stamps (the naive form; stores maintain it incrementally). */
export function digestOf(
  stamps: Iterable<EntryStamp>,
  bucketCount: number = BUCKET_COUNT_DEFAULT,
): BucketDigest[] {
  const hashes: Hash64[] = Array.from({ length: bucketCount }, () => EMPTY_FINGERPRINT);
  const counts = new Array<number>(bucketCount).fill(0);
  for (const stamp of stamps) {
    const bucket = bucketOf(stamp.path, bucketCount);
    hashes[bucket] = xorHash(hashes[bucket]!, stampHash(stamp));
    counts[bucket]! += 1;
  }
  return hashes.map((h, bucket) => ({ bucket, fingerprint: fingerprintHex(h), count: counts[bucket]! }));
}

/** Buckets whose fingerprints differ (a bucket missing on one side counts as empty there). */
export function differingBuckets(local: readonly BucketDigest[], remote: readonly BucketDigest[]): number[] {
  const remoteByBucket = new Map(remote.map((d) => [d.bucket, d.fingerprint]));
  const localByBucket = new Map(local.map((d) => [d.bucket, d.fingerprint]));
  const empty = fingerprintHex(EMPTY_FINGERPRINT);
  const buckets = new Set([...localByBucket.keys(), ...remoteByBucket.keys()]);
  return [...buckets]
    .filter((b) => (localByBucket.get(b) ?? empty) !== (remoteByBucket.get(b) ?? empty))
    .sort((a, b) => a - b);
}

/**
 * Given both sides' stamps for the differing buckets: the remote stamps of the paths where the remote holds
 * a newer version (or the only one), in path order; those are what this side pulls. Equal versions need
 * nothing; what this side holds newer is newerStamps(remote, local), which the other side pulls.
 */
export function newerStamps(local: readonly EntryStamp[], remote: readonly EntryStamp[]): EntryStamp[] {
  const localByPath = new Map(local.map((s) => [s.path, s]));
  const newer = new Map<string, EntryStamp>();
  for (const theirs of remote) {
    const ours = localByPath.get(theirs.path);
    if (!ours || compareVersions(theirs.version, ours.version) > 0) newer.set(theirs.path, theirs);
  }
  return [...newer.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}
