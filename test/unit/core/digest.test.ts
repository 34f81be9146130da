import assert from "node:assert/strict";
import { test } from "node:test";
import {
  BUCKET_COUNT_DEFAULT,
  bucketOf,
  differingBuckets,
  digestOf,
  EMPTY_FINGERPRINT,
  fingerprintHex,
  type Hash64,
  newerStamps,
  parseFingerprintHex,
  stampHash,
  xorHash,
} from "../../../src/core/digest.ts";
import { compareVersions, mergeEntry } from "../../../src/core/lww.ts";
import { Prng } from "../../../src/core/prng.ts";
import type { BucketDigest, EntryStamp, StoreEntry, Version } from "../../../src/core/store_types.ts";

const nodeIds = ["n1", "n2", "n3"];

function randomVersion(rng: Prng): Version {
  return {
    wallMs: 1_700_000_000_000 + rng.intBetween(0, 20),
    counter: rng.intBetween(0, 2),
    nodeId: rng.pick(nodeIds),
  };
}

function randomPath(rng: Prng, pathCount: number): string {
  return `dir${rng.intBetween(0, 3)}/file-${rng.intBetween(0, pathCount - 1)}`;
}

function stampOf(entry: StoreEntry): EntryStamp {
  return { path: entry.path, version: entry.version, deleted: entry.deleted };
}

/** A replica as a plain map, merged entry by entry with lww. */
type Replica = Map<string, StoreEntry>;

/** A version names one write, so the tombstone flag and the value are functions of it. */
function entryAt(path: string, version: Version): StoreEntry {
  const deleted = (version.wallMs + version.counter + version.nodeId.length * 7) % 5 === 0;
  const value = deleted ? new Uint8Array() : new TextEncoder().encode(`${path} ${JSON.stringify(version)}`);
  return { path, value, version, deleted };
}

function randomReplica(rng: Prng, writes: number, pathCount: number): Replica {
  const replica: Replica = new Map();
  for (let i = 0; i < writes; i++) apply(replica, entryAt(randomPath(rng, pathCount), randomVersion(rng)));
  return replica;
}

function apply(replica: Replica, entry: StoreEntry): void {
  replica.set(entry.path, mergeEntry(replica.get(entry.path), entry));
}

function stampsOf(replica: Replica): EntryStamp[] {
  return [...replica.values()].map(stampOf);
}

/**
 * Keeps a replica's digest incrementally, the way a store does on every write: XOR out the held stamp, XOR in
 * the new one.
 */
class IncrementalDigest {
  readonly hashes: Hash64[];
  readonly counts: number[];
  readonly bucketCount: number;
  constructor(bucketCount: number) {
    this.bucketCount = bucketCount;
    this.hashes = Array.from({ length: bucketCount }, () => EMPTY_FINGERPRINT);
    this.counts = new Array<number>(bucketCount).fill(0);
  }
  replace(held: EntryStamp | undefined, next: EntryStamp | undefined): void {
    for (const [stamp, delta] of [
      [held, -1],
      [next, 1],
    ] as const) {
      if (!stamp) continue;
      const bucket = bucketOf(stamp.path, this.bucketCount);
      this.hashes[bucket] = xorHash(this.hashes[bucket]!, stampHash(stamp));
      this.counts[bucket]! += delta;
    }
  }
  digest(): BucketDigest[] {
    return this.hashes.map((h, bucket) => ({
      bucket,
      fingerprint: fingerprintHex(h),
      count: this.counts[bucket]!,
    }));
  }
}

test("digest: fingerprint hex round trips and rejects junk", () => {
  const rng = new Prng("digest-hex");
  for (let round = 0; round < 1000; round++) {
    const h: Hash64 = [rng.nextUint32(), rng.nextUint32()];
    const hex = fingerprintHex(h);
    assert.match(hex, /^[0-9a-f]{16}$/);
    assert.deepEqual(parseFingerprintHex(hex), h);
  }
  for (const junk of [
    "",
    "0",
    "0".repeat(15),
    "0".repeat(17),
    "g".repeat(16),
    "A".repeat(16),
    ` ${"0".repeat(15)}`,
  ]) {
    assert.throws(() => parseFingerprintHex(junk), RangeError, junk);
  }
  assert.equal(fingerprintHex(EMPTY_FINGERPRINT), "0".repeat(16));
});

test("digest: bucketOf is stable, in range and spreads paths", () => {
  const counts = new Array<number>(BUCKET_COUNT_DEFAULT).fill(0);
  for (let i = 0; i < 25_600; i++) {
    const bucket = bucketOf(`certs/host-${i}.pem`);
    assert.ok(Number.isInteger(bucket) && bucket >= 0 && bucket < BUCKET_COUNT_DEFAULT);
    counts[bucket]! += 1;
  }
  assert.equal(bucketOf("certs/host-1.pem"), bucketOf("certs/host-1.pem"));
  assert.ok(
    Math.min(...counts) > 40 && Math.max(...counts) < 200,
    `uneven spread ${Math.min(...counts)}..${Math.max(...counts)}`,
  );
  for (const bucketCount of [1, 7, 16]) assert.ok(bucketOf("a/b", bucketCount) < bucketCount);
});

test("digest: the stamp hash covers path, version and the tombstone flag", () => {
  const stamp: EntryStamp = { path: "a", version: { wallMs: 1, counter: 0, nodeId: "n1" }, deleted: false };
  const variants: EntryStamp[] = [
    { ...stamp, path: "b" },
    { ...stamp, version: { ...stamp.version, wallMs: 2 } },
    { ...stamp, version: { ...stamp.version, counter: 1 } },
    { ...stamp, version: { ...stamp.version, nodeId: "n2" } },
    { ...stamp, deleted: true },
  ];
  for (const variant of variants)
    assert.notDeepEqual(stampHash(variant), stampHash(stamp), JSON.stringify(variant));
  assert.deepEqual(stampHash({ ...stamp }), stampHash(stamp));
});

test("digest: incremental XOR maintenance equals digestOf after random writes", () => {
  const rng = new Prng("digest-incremental");
  for (let run = 0; run < 40; run++) {
    const bucketCount = rng.pick([1, 4, 16, BUCKET_COUNT_DEFAULT]);
    const replica: Replica = new Map();
    const incremental = new IncrementalDigest(bucketCount);
    for (let step = 0; step < 300; step++) {
      const path = randomPath(rng, 60);
      const held = replica.get(path);
      if (held && rng.chance(0.05)) {
        // Tombstone collection removes the entry altogether.
        replica.delete(path);
        incremental.replace(stampOf(held), undefined);
      } else {
        apply(replica, entryAt(path, randomVersion(rng)));
        const next = replica.get(path)!;
        if (next !== held) incremental.replace(held && stampOf(held), stampOf(next));
      }
      if (step % 50 === 49) assert.deepEqual(incremental.digest(), digestOf(stampsOf(replica), bucketCount));
    }
  }
});

test("digest: digestOf does not depend on the order of the stamps", () => {
  const rng = new Prng("digest-order");
  const stamps = stampsOf(randomReplica(rng, 200, 100));
  const reversed = [...stamps].reverse();
  assert.deepEqual(digestOf(reversed), digestOf(stamps));
  assert.equal(digestOf([]).length, BUCKET_COUNT_DEFAULT);
  assert.ok(digestOf([]).every((d) => d.count === 0 && d.fingerprint === fingerprintHex(EMPTY_FINGERPRINT)));
});

/** Naive oracle: compare the two replicas' stamp sets bucket by bucket. */
function naiveDifferingBuckets(
  a: readonly EntryStamp[],
  b: readonly EntryStamp[],
  bucketCount: number,
): number[] {
  const key = (s: EntryStamp) =>
    `${s.path}|${s.version.wallMs}|${s.version.counter}|${s.version.nodeId}|${s.deleted}`;
  const result: number[] = [];
  for (let bucket = 0; bucket < bucketCount; bucket++) {
    const inBucket = (stamps: readonly EntryStamp[]) =>
      stamps
        .filter((s) => bucketOf(s.path, bucketCount) === bucket)
        .map(key)
        .sort()
        .join("\n");
    if (inBucket(a) !== inBucket(b)) result.push(bucket);
  }
  return result;
}

test("digest: differingBuckets agrees with a naive set comparison", () => {
  const rng = new Prng("digest-differing");
  for (let run = 0; run < 200; run++) {
    const bucketCount = rng.pick([1, 8, 32]);
    const base = randomReplica(rng, rng.intBetween(0, 60), 40);
    const a = new Map(base);
    const b = new Map(base);
    for (let i = rng.intBetween(0, 5); i > 0; i--) {
      apply(rng.chance(0.5) ? a : b, entryAt(randomPath(rng, 40), randomVersion(rng)));
    }
    const [stampsA, stampsB] = [stampsOf(a), stampsOf(b)];
    const expected = naiveDifferingBuckets(stampsA, stampsB, bucketCount);
    const digestA = digestOf(stampsA, bucketCount);
    const digestB = digestOf(stampsB, bucketCount);
    assert.deepEqual(differingBuckets(digestA, digestB), expected);
    assert.deepEqual(differingBuckets(digestB, digestA), expected, "symmetric");
    // A side that omits its empty buckets (a sparse digest) compares the same.
    const sparseB = digestB.filter((d) => d.count > 0);
    assert.deepEqual(differingBuckets(digestA, sparseB), expected, "missing bucket = empty bucket");
  }
});

/** Naive oracle: per path, who holds the strictly newer version (or the only one). */
function naiveReconcile(local: Replica, remote: Replica): { pull: string[]; push: string[] } {
  const paths = [...new Set([...local.keys(), ...remote.keys()])].sort();
  const pull = paths.filter((p) => {
    const theirs = remote.get(p);
    const ours = local.get(p);
    return theirs !== undefined && (ours === undefined || compareVersions(theirs.version, ours.version) > 0);
  });
  const push = paths.filter((p) => {
    const theirs = remote.get(p);
    const ours = local.get(p);
    return ours !== undefined && (theirs === undefined || compareVersions(ours.version, theirs.version) > 0);
  });
  return { pull, push };
}

/** Both directions of newerStamps, as paths: what `local` pulls and what `remote` pulls from it. */
function reconcileStamps(local: EntryStamp[], remote: EntryStamp[]): { pull: string[]; push: string[] } {
  const paths = (stamps: EntryStamp[]) => stamps.map((s) => s.path);
  return { pull: paths(newerStamps(local, remote)), push: paths(newerStamps(remote, local)) };
}

test("digest: newerStamps agrees with a naive per-path comparison, both ways", () => {
  const rng = new Prng("digest-reconcile");
  for (let run = 0; run < 500; run++) {
    const local = randomReplica(rng, rng.intBetween(0, 40), 30);
    const remote = randomReplica(rng, rng.intBetween(0, 40), 30);
    const result = reconcileStamps(stampsOf(local), stampsOf(remote));
    assert.deepEqual(result, naiveReconcile(local, remote));
    for (const stamp of newerStamps(stampsOf(local), stampsOf(remote))) {
      assert.deepEqual(
        stamp,
        stampsOf(remote).find((s) => s.path === stamp.path),
        "the remote's stamp",
      );
    }
    assert.ok(
      result.pull.every((p) => !result.push.includes(p)),
      "a path is pulled or pushed, never both",
    );
  }
});

test("digest: exchanging what reconcile names makes two random replicas identical", () => {
  const rng = new Prng("digest-converge");
  for (let run = 0; run < 300; run++) {
    const bucketCount = rng.pick([4, 16, BUCKET_COUNT_DEFAULT]);
    const shared = randomReplica(rng, rng.intBetween(0, 80), 60);
    const a = new Map(shared);
    const b = new Map(shared);
    for (let i = rng.intBetween(0, 40); i > 0; i--) {
      apply(rng.chance(0.5) ? a : b, entryAt(randomPath(rng, 60), randomVersion(rng)));
    }
    // The protocol: digests, then stamps of the differing buckets only, then pull and push entries.
    const buckets = new Set(
      differingBuckets(digestOf(stampsOf(a), bucketCount), digestOf(stampsOf(b), bucketCount)),
    );
    const inBuckets = (r: Replica) => stampsOf(r).filter((s) => buckets.has(bucketOf(s.path, bucketCount)));
    const { pull, push } = reconcileStamps(inBuckets(a), inBuckets(b));
    for (const path of pull) apply(a, b.get(path)!);
    for (const path of push) apply(b, a.get(path)!);
    assert.deepEqual(
      [...a.entries()].sort(([x], [y]) => (x < y ? -1 : 1)),
      [...b.entries()].sort(([x], [y]) => (x < y ? -1 : 1)),
      `run ${run}`,
    );
    assert.deepEqual(
      differingBuckets(digestOf(stampsOf(a), bucketCount), digestOf(stampsOf(b), bucketCount)),
      [],
    );
  }
});
