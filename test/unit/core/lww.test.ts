import assert from "node:assert/strict";
import { test } from "node:test";
import {
  compareVersions,
  mergeEntry,
  parseVersionKey,
  supersedes,
  versionKey,
} from "../../../src/core/lww.ts";
import { Prng } from "../../../src/core/prng.ts";
import type { StoreEntry, Version } from "../../../src/core/store_types.ts";

const nodeIds = ["a", "a-b", "a.b", "a_b", "a0", "b", "n1", "n10", "n2", "z9"];

/** Versions from a small space so that equal clocks and ties on node id are frequent. */
function randomVersion(rng: Prng): Version {
  const wallMs = rng.chance(0.1) ? rng.intBetween(0, 2 ** 48) : 1_700_000_000_000 + rng.intBetween(0, 3);
  return { wallMs, counter: rng.intBetween(0, 3), nodeId: rng.pick(nodeIds) };
}

/** A version names one write, so the value is a function of it (two entries never share a version). */
function entryAt(path: string, version: Version): StoreEntry {
  const deleted = (version.wallMs + version.counter) % 5 === 0;
  const value = deleted ? new Uint8Array() : new TextEncoder().encode(`${path}@${versionKey(version)}`);
  return { path, value, version, deleted };
}

function randomEntry(rng: Prng, path = "p"): StoreEntry {
  return entryAt(path, randomVersion(rng));
}

/** Naive oracle: lexicographic comparison of the tuple (wallMs, counter, nodeId). */
function naiveCompare(a: Version, b: Version): number {
  const tupleA: (number | string)[] = [a.wallMs, a.counter, a.nodeId];
  const tupleB: (number | string)[] = [b.wallMs, b.counter, b.nodeId];
  for (let i = 0; i < 3; i++) {
    if (tupleA[i]! < tupleB[i]!) return -1;
    if (tupleA[i]! > tupleB[i]!) return 1;
  }
  return 0;
}

function shuffled<T>(rng: Prng, items: readonly T[]): T[] {
  const copy = [...items];
  for (let i = copy.length - 1; i > 0; i--) {
    const j = rng.intBetween(0, i);
    [copy[i], copy[j]] = [copy[j]!, copy[i]!];
  }
  return copy;
}

test("lww: compareVersions agrees with a naive tuple order and is a total order", () => {
  const rng = new Prng("lww-compare");
  for (let round = 0; round < 5000; round++) {
    const [a, b, c] = [randomVersion(rng), randomVersion(rng), randomVersion(rng)];
    assert.equal(compareVersions(a, b), naiveCompare(a, b), `${versionKey(a)} vs ${versionKey(b)}`);
    assert.equal(compareVersions(a, b), -compareVersions(b, a) || 0, "antisymmetric");
    assert.equal(compareVersions(a, a), 0, "reflexive");
    if (compareVersions(a, b) <= 0 && compareVersions(b, c) <= 0)
      assert.ok(compareVersions(a, c) <= 0, "transitive");
    if (compareVersions(a, b) === 0) assert.deepEqual(a, b, "equal only when identical");
  }
});

test("lww: node id breaks ties on equal clocks", () => {
  const clock = { wallMs: 5, counter: 1 };
  assert.equal(compareVersions({ ...clock, nodeId: "n1" }, { ...clock, nodeId: "n2" }), -1);
  assert.equal(compareVersions({ ...clock, nodeId: "n2" }, { ...clock, nodeId: "n10" }), 1, "byte order");
  assert.equal(compareVersions({ wallMs: 5, counter: 2, nodeId: "a" }, { ...clock, nodeId: "z" }), 1);
  assert.equal(compareVersions({ wallMs: 6, counter: 0, nodeId: "a" }, { ...clock, nodeId: "z" }), 1);
});

test("lww: mergeEntry is commutative, associative and idempotent", () => {
  const rng = new Prng("lww-merge-laws");
  for (let round = 0; round < 5000; round++) {
    const [a, b, c] = [randomEntry(rng), randomEntry(rng), randomEntry(rng)];
    assert.deepEqual(mergeEntry(a, b), mergeEntry(b, a), "commutative");
    assert.deepEqual(mergeEntry(mergeEntry(a, b), c), mergeEntry(a, mergeEntry(b, c)), "associative");
    assert.equal(mergeEntry(a, a), a, "idempotent");
    assert.deepEqual(mergeEntry(mergeEntry(a, b), b), mergeEntry(a, b), "re-delivery changes nothing");
    assert.equal(mergeEntry(undefined, a), a, "nothing held: incoming wins");
  }
});

test("lww: the merged winner is the maximum whatever the arrival order", () => {
  const rng = new Prng("lww-merge-order");
  for (let round = 0; round < 1000; round++) {
    const entries = Array.from({ length: rng.intBetween(1, 12) }, () => randomEntry(rng));
    const expected = entries.reduce((best, e) => (naiveCompare(e.version, best.version) > 0 ? e : best));
    for (let permutation = 0; permutation < 5; permutation++) {
      let held: StoreEntry | undefined;
      for (const entry of shuffled(rng, entries)) held = mergeEntry(held, entry);
      assert.deepEqual(held, expected);
    }
  }
});

test("lww: a tombstone wins like any other write, and loses to a later one", () => {
  const write = entryAt("p", { wallMs: 10, counter: 0, nodeId: "n1" });
  const tombstone: StoreEntry = {
    path: "p",
    value: new Uint8Array(),
    version: { wallMs: 10, counter: 1, nodeId: "n2" },
    deleted: true,
  };
  const rewrite = entryAt("p", { wallMs: 11, counter: 0, nodeId: "n1" });
  assert.equal(mergeEntry(write, tombstone), tombstone);
  assert.equal(mergeEntry(tombstone, write), tombstone);
  assert.equal(mergeEntry(tombstone, rewrite), rewrite);
});

test("lww: mergeEntry refuses entries for different paths", () => {
  const rng = new Prng("lww-paths");
  assert.throws(() => mergeEntry(randomEntry(rng, "a"), randomEntry(rng, "b")), RangeError);
});

test("lww: supersedes is 'strictly newer, or nothing held'", () => {
  const rng = new Prng("lww-supersedes");
  for (let round = 0; round < 2000; round++) {
    const [a, b] = [randomVersion(rng), randomVersion(rng)];
    assert.equal(supersedes(a, b), naiveCompare(a, b) > 0);
    assert.equal(supersedes(a, undefined), true);
    assert.equal(supersedes(a, a), false);
  }
});

test("lww: versionKey byte order equals compareVersions order", () => {
  const rng = new Prng("lww-version-key");
  const byteOrder = (x: string, y: string) => Buffer.compare(Buffer.from(x), Buffer.from(y));
  for (let round = 0; round < 5000; round++) {
    const [a, b] = [randomVersion(rng), randomVersion(rng)];
    assert.equal(
      byteOrder(versionKey(a), versionKey(b)),
      compareVersions(a, b),
      `${versionKey(a)} ${versionKey(b)}`,
    );
  }
  const extremes: Version[] = [
    { wallMs: 0, counter: 0, nodeId: "a" },
    { wallMs: 0, counter: 9_999_999_999, nodeId: "a" },
    { wallMs: 999_999_999_999_999, counter: 0, nodeId: "a" },
    { wallMs: 999_999_999_999_999, counter: 9_999_999_999, nodeId: "z".repeat(63) },
  ];
  for (const a of extremes) {
    for (const b of extremes) assert.equal(byteOrder(versionKey(a), versionKey(b)), compareVersions(a, b));
  }
});

test("lww: parseVersionKey round trips", () => {
  const rng = new Prng("lww-version-key-parse");
  for (let round = 0; round < 2000; round++) {
    const version = randomVersion(rng);
    assert.deepEqual(parseVersionKey(versionKey(version)), version);
  }
});

test("lww: parseVersionKey rejects junk", () => {
  const good = versionKey({ wallMs: 1_700_000_000_000, counter: 3, nodeId: "n1" });
  assert.ok(parseVersionKey(good));
  const junk = [
    "",
    "n1",
    good.slice(1),
    `${good}\n`,
    ` ${good}`,
    good.replace("n1", "N1"),
    good.replace("n1", ""),
    good.replace("n1", "-n1"),
    good.replace("n1", "n1/x"),
    good.replace("n1", "x".repeat(64)),
    good.replace(".", ":"),
    good.replace("1700", "17a0"),
    "000000000000001.000000000x.n1",
    "-00000000000001.0000000000.n1",
    "1e+14_000000000.0000000000.n1",
  ];
  for (const key of junk) assert.equal(parseVersionKey(key), null, JSON.stringify(key));
  const rng = new Prng("lww-version-key-junk");
  for (let round = 0; round < 5000; round++) {
    const chars = [...good];
    chars[rng.intBetween(0, chars.length - 1)] = String.fromCharCode(rng.intBetween(0, 0x7f));
    const mutated = chars.join("");
    const parsed = parseVersionKey(mutated);
    if (parsed) assert.equal(versionKey(parsed), mutated, "whatever parses is canonical");
  }
});

test("lww: versionKey refuses versions it cannot order", () => {
  assert.throws(() => versionKey({ wallMs: 1e15, counter: 0, nodeId: "n1" }), RangeError);
  assert.throws(() => versionKey({ wallMs: 1, counter: 1e10, nodeId: "n1" }), RangeError);
  assert.throws(() => versionKey({ wallMs: -1, counter: 0, nodeId: "n1" }), RangeError);
  assert.throws(() => versionKey({ wallMs: 1.5, counter: 0, nodeId: "n1" }), RangeError);
  assert.throws(() => versionKey({ wallMs: Number.NaN, counter: 0, nodeId: "n1" }), RangeError);
});
