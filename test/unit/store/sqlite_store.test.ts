import assert from "node:assert/strict";
import { mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import Database from "better-sqlite3";
import { bucketOf, digestOf } from "../../../src/core/digest.ts";
import { compareVersions, supersedes } from "../../../src/core/lww.ts";
import { Prng } from "../../../src/core/prng.ts";
import type { EntryStamp, StoreEntry, Version } from "../../../src/core/store_types.ts";
import { MetaKey, SCHEMA_VERSION } from "../../../src/store/sqlite_schema.ts";
import {
  prefixUpperBound,
  SqliteLocalStore,
  type SqliteLocalStoreOptions,
  StoreOpenError,
} from "../../../src/store/sqlite_store.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const baseWallMs = 1_700_000_000_000;
const valueBytesMax = 64 * 1024;

const tempDir = mkdtempSync(join(tmpdir(), "tandem-sqlite-store-"));
after(() => rmSync(tempDir, { recursive: true, force: true }));
let fileCounter = 0;

function dbPath(): string {
  fileCounter += 1;
  return join(tempDir, `store-${fileCounter}`, "store.db");
}

function openStore(options: Partial<SqliteLocalStoreOptions> = {}): SqliteLocalStore {
  return SqliteLocalStore.open({ path: ":memory:", nodeId: "n1", valueBytesMax, ...options });
}

function text(value: string): Uint8Array {
  return encoder.encode(value);
}

/** A version names one write, so the value and the tombstone flag are functions of it. */
function entryAt(path: string, version: Version): StoreEntry {
  const deleted = (version.wallMs + version.counter + version.nodeId.length) % 4 === 0;
  const value = deleted
    ? new Uint8Array(0)
    : text(`${path}@${version.wallMs}.${version.counter}.${version.nodeId}`);
  return { path, value, version, deleted };
}

function randomEntry(rng: Prng, pathCount: number): StoreEntry {
  const version = {
    wallMs: baseWallMs + rng.intBetween(0, 15),
    counter: rng.intBetween(0, 2),
    nodeId: rng.pick(["n2", "n3", "n4"]),
  };
  return entryAt(`d${rng.intBetween(0, 2)}/f${rng.intBetween(0, pathCount - 1)}`, version);
}

function allBuckets(store: SqliteLocalStore): number[] {
  return Array.from({ length: store.bucketCount }, (_, bucket) => bucket);
}

/** Everything the store holds, tombstones included, by path. */
function contents(store: SqliteLocalStore): Map<string, StoreEntry> {
  const paths = store.stampsInBuckets(allBuckets(store)).map((s) => s.path);
  return new Map(store.getMany(paths).map((e) => [e.path, e]));
}

function stampOf(entry: StoreEntry): EntryStamp {
  return { path: entry.path, version: entry.version, deleted: entry.deleted };
}

function paths(entries: readonly StoreEntry[]): string[] {
  return entries.map((e) => e.path);
}

test("sqlite store: writeLocal: versions increase, values read back, deletes leave tombstones", () => {
  const store = openStore();
  const written = store.writeLocal(
    [
      { path: "a", value: text("one") },
      { path: "b", value: text("two") },
    ],
    baseWallMs,
  );
  assert.deepEqual(
    written.map((e) => e.version),
    [
      { wallMs: baseWallMs, counter: 0, nodeId: "n1" },
      { wallMs: baseWallMs, counter: 1, nodeId: "n1" },
    ],
  );
  assert.deepEqual(store.get("a"), written[0]);
  assert.equal(decoder.decode(store.get("b")!.value), "two");
  const [tombstone] = store.writeLocal([{ path: "a", value: null }], baseWallMs - 5);
  assert.equal(
    compareVersions(tombstone!.version, written[1]!.version),
    1,
    "a wall clock going back changes nothing",
  );
  assert.deepEqual(store.get("a"), { ...tombstone, value: new Uint8Array(0), deleted: true });
  assert.equal(store.get("never"), null);
  assert.equal(store.lastSeq(), 3);
  store.close();
});

test("sqlite store: writeLocal: a value over valueBytesMax is refused and nothing changes", () => {
  const store = openStore({ valueBytesMax: 4 });
  assert.throws(
    () =>
      store.writeLocal(
        [
          { path: "ok", value: text("1234") },
          { path: "big", value: text("12345") },
        ],
        baseWallMs,
      ),
    RangeError,
  );
  assert.equal(store.get("ok"), null);
  assert.equal(store.lastSeq(), 0);
  assert.throws(
    () => store.applyRemote([entryAt("big", { wallMs: 1, counter: 0, nodeId: "n2" })], 1),
    RangeError,
  );
  store.close();
});

test("sqlite store: applyRemote: last write wins exactly like lww.supersedes on random batches", () => {
  for (let seed = 0; seed < 40; seed++) {
    const rng = new Prng(`apply-remote/${seed}`);
    const store = openStore({ bucketCount: 16 });
    const oracle = new Map<string, StoreEntry>();
    for (let round = 0; round < 12; round++) {
      const batch = Array.from({ length: rng.intBetween(0, 25) }, () => randomEntry(rng, 12));
      const expected: StoreEntry[] = [];
      for (const entry of batch) {
        if (!supersedes(entry.version, oracle.get(entry.path)?.version)) continue;
        oracle.set(entry.path, entry);
        expected.push(entry);
      }
      const winners = store.applyRemote(batch, baseWallMs);
      assert.deepEqual(winners, expected, `seed ${seed} round ${round}: winners`);
      assert.deepEqual(store.applyRemote(batch, baseWallMs), [], `seed ${seed}: re-applying changes nothing`);
    }
    assert.deepEqual(contents(store), oracle, `seed ${seed}: contents`);
    store.close();
  }
});

test("sqlite store: applyRemote: an entry from a clock too far ahead is skipped and counted", () => {
  const store = openStore({ clockSkewMsMax: 1_000 });
  const ahead = entryAt("ahead", { wallMs: baseWallMs + 5_000, counter: 0, nodeId: "n2" });
  const near = entryAt("near", { wallMs: baseWallMs + 500, counter: 7, nodeId: "n2" });
  assert.deepEqual(store.applyRemote([ahead, near], baseWallMs), [near]);
  assert.equal(store.clockSkewRejectedTotal, 1);
  assert.equal(store.get("ahead"), null);
  // The clock observed the accepted entry: a local write now orders after it.
  const [local] = store.writeLocal([{ path: "near", value: text("mine") }], baseWallMs);
  assert.deepEqual(local!.version, { wallMs: baseWallMs + 500, counter: 8, nodeId: "n1" });
  // Once our clock catches up, the same entry is accepted.
  assert.deepEqual(store.applyRemote([ahead], baseWallMs + 4_500), [ahead]);
  assert.equal(store.clockSkewRejectedTotal, 1);
  store.close();
});

test("sqlite store: applyRemote: a remote tombstone is stored with an empty value", () => {
  const store = openStore();
  const tombstone: StoreEntry = {
    path: "x",
    value: text("leftover"),
    version: { wallMs: baseWallMs, counter: 0, nodeId: "n2" },
    deleted: true,
  };
  const [stored] = store.applyRemote([tombstone], baseWallMs);
  assert.deepEqual(stored, { ...tombstone, value: new Uint8Array(0) });
  assert.deepEqual(store.get("x"), stored);
  store.close();
});

test("sqlite store: digest always equals digestOf(all stamps) after random operations", () => {
  for (let seed = 0; seed < 60; seed++) {
    const rng = new Prng(`digest/${seed}`);
    const bucketCount = rng.pick([1, 7, 64, 256]);
    const store = openStore({ bucketCount });
    let nowWallMs = baseWallMs;
    for (let step = 0; step < 30; step++) {
      nowWallMs += rng.intBetween(0, 3);
      const roll = rng.next();
      if (roll < 0.4) {
        const writes = Array.from({ length: rng.intBetween(1, 6) }, () => ({
          path: `d${rng.intBetween(0, 2)}/f${rng.intBetween(0, 9)}`,
          value: rng.chance(0.3) ? null : text(`v${step}`),
        }));
        store.writeLocal(writes, nowWallMs);
      } else if (roll < 0.85) {
        store.applyRemote(
          Array.from({ length: rng.intBetween(1, 8) }, () => randomEntry(rng, 10)),
          nowWallMs,
        );
      } else {
        store.collectTombstones(nowWallMs - rng.intBetween(0, 10));
      }
      const stamps = store.stampsInBuckets(allBuckets(store));
      assert.deepEqual(store.digest(), digestOf(stamps, bucketCount), `seed ${seed} step ${step}`);
    }
    store.close();
  }
});

test("sqlite store: stampsInBuckets: only the asked buckets, tombstones included", () => {
  const store = openStore({ bucketCount: 8 });
  const written = store.writeLocal(
    Array.from({ length: 40 }, (_, i) => ({ path: `p${i}`, value: i % 3 === 0 ? null : text(`${i}`) })),
    baseWallMs,
  );
  const asked = [1, 5, 5];
  const expected = written.filter((e) => asked.includes(bucketOf(e.path, 8))).map(stampOf);
  const byPath = (a: EntryStamp, b: EntryStamp) => (a.path < b.path ? -1 : 1);
  assert.deepEqual(store.stampsInBuckets(asked).sort(byPath), expected.sort(byPath));
  assert.ok(expected.some((s) => s.deleted));
  assert.deepEqual(store.stampsInBuckets([]), []);
  store.close();
});

test("sqlite store: getMany: found entries in the asked order, missing ones left out", () => {
  const store = openStore();
  store.writeLocal(
    [
      { path: "a", value: text("1") },
      { path: "b", value: null },
    ],
    baseWallMs,
  );
  assert.deepEqual(paths(store.getMany(["b", "missing", "a"])), ["b", "a"]);
  store.close();
});

test("sqlite store: changesSince: the latest change of each path in seq order, paginated", () => {
  const store = openStore();
  store.writeLocal(
    [
      { path: "a", value: text("1") },
      { path: "b", value: text("2") },
      { path: "c", value: text("3") },
    ],
    baseWallMs,
  );
  store.writeLocal([{ path: "a", value: null }], baseWallMs);
  const changes = store.changesSince(0, 10);
  assert.deepEqual(
    changes.map((c) => [c.seq, c.entry.path, c.entry.deleted]),
    [
      [2, "b", false],
      [3, "c", false],
      [4, "a", true],
    ],
  );
  assert.deepEqual(
    store.changesSince(2, 1).map((c) => c.seq),
    [3],
  );
  assert.deepEqual(store.changesSince(4, 10), []);
  assert.throws(() => store.changesSince(0, -1), RangeError);
  store.close();
});

test("sqlite store: stampsSince: latest changes after a seq, the asker's own writes left out, bounded", () => {
  const store = openStore({ nodeId: "n1" });
  store.writeLocal([{ path: "own", value: text("1") }], baseWallMs);
  store.applyRemote(
    [
      entryAt("x", { wallMs: baseWallMs, counter: 0, nodeId: "n2" }),
      entryAt("y", { wallMs: baseWallMs - 5_000, counter: 0, nodeId: "n2" }),
      entryAt("z", { wallMs: baseWallMs, counter: 1, nodeId: "n3" }),
    ],
    baseWallMs,
  );
  store.writeLocal([{ path: "own", value: text("2") }], baseWallMs);
  const paths = (r: { stamps: EntryStamp[] }) => r.stamps.map((s) => s.path);
  const all = store.stampsSince(0, { limit: 10, seqSpanMax: 100 });
  assert.deepEqual(paths(all), ["x", "y", "z", "own"]);
  assert.deepEqual([all.upToSeq, all.more], [5, false]);
  // n2's writes since its store was created (baseWallMs - 1000) are left out; the older one is not.
  const forN2 = store.stampsSince(0, {
    limit: 10,
    seqSpanMax: 100,
    skip: [{ nodeId: "n2", fromWallMs: baseWallMs - 1_000 }],
  });
  assert.deepEqual(paths(forN2), ["y", "z", "own"]);
  const forN2AndN3 = store.stampsSince(0, {
    limit: 10,
    seqSpanMax: 100,
    skip: [
      { nodeId: "n2", fromWallMs: 0 },
      { nodeId: "n3", fromWallMs: 0 },
    ],
  });
  assert.deepEqual(paths(forN2AndN3), ["own"]);
  // The limit cuts at the last stamp returned; the span cuts at a seq even when nothing there matched.
  const limited = store.stampsSince(1, { limit: 2, seqSpanMax: 100 });
  assert.deepEqual([paths(limited), limited.upToSeq, limited.more], [["x", "y"], 3, true]);
  const spanned = store.stampsSince(0, {
    limit: 10,
    seqSpanMax: 2,
    skip: [{ nodeId: "n2", fromWallMs: 0 }],
  });
  assert.deepEqual([paths(spanned), spanned.upToSeq, spanned.more], [[], 2, true]);
  assert.deepEqual(store.stampsSince(5, { limit: 10, seqSpanMax: 100 }), {
    stamps: [],
    upToSeq: 5,
    more: false,
  });
  assert.deepEqual(
    store.stampsAt(["z", "missing", "own"]).map((s) => [s.path, s.version.nodeId]),
    [
      ["z", "n3"],
      ["own", "n1"],
    ],
  );
  store.close();
});

test("sqlite store: sync cursors: saved in place of the previous ones, kept across reopens", () => {
  const path = dbPath();
  const first = openStore({ path });
  assert.deepEqual(first.syncCursors(), []);
  first.saveSyncCursors([{ peer: "n2", storeId: 7, createdWallMs: baseWallMs, seq: 10 }]);
  const cursors = [
    { peer: "n2", storeId: 7, createdWallMs: baseWallMs, seq: 12 },
    { peer: "n3", storeId: 2 ** 47, createdWallMs: baseWallMs + 1, seq: 3 },
  ];
  first.saveSyncCursors(cursors);
  first.close();
  const again = openStore({ path });
  assert.deepEqual(
    again.syncCursors().sort((a, b) => (a.peer < b.peer ? -1 : 1)),
    cursors,
  );
  again.close();
});

test("sqlite store: identity: drawn once per database, kept across reopens, new for a new database", () => {
  const path = dbPath();
  const first = openStore({ path });
  const identity = first.identity();
  assert.ok(identity.storeId >= 1 && Number.isSafeInteger(identity.storeId));
  assert.ok(Math.abs(identity.createdWallMs - Date.now()) < 60_000);
  first.close();
  const again = openStore({ path });
  assert.deepEqual(again.identity(), identity);
  again.close();
  const other = openStore({ path: dbPath() });
  assert.notEqual(other.identity().storeId, identity.storeId);
  other.close();
});

test("sqlite store: list: 'a' vs 'a/…' vs 'ab', tombstones hidden, paginated by after", () => {
  const store = openStore();
  const all = ["a", "a/x", "a/y/z", "a0", "ab", "b", "a/\u{1F600}", "a\u{1F600}", "a\uffff", "a/gone"];
  store.writeLocal(
    all.map((path) => ({ path, value: text(path) })),
    baseWallMs,
  );
  store.writeLocal([{ path: "a/gone", value: null }], baseWallMs);
  // Code point order: U+FFFF sorts before U+1F600 (JavaScript's `<` would say otherwise).
  assert.deepEqual(paths(store.list("a", { limit: 100 })), [
    "a",
    "a/x",
    "a/y/z",
    "a/\u{1F600}",
    "a0",
    "ab",
    "a\uffff",
    "a\u{1F600}",
  ]);
  assert.deepEqual(paths(store.list("a/", { limit: 100 })), ["a/x", "a/y/z", "a/\u{1F600}"]);
  assert.deepEqual(paths(store.list("ab", { limit: 100 })), ["ab"]);
  assert.deepEqual(paths(store.list("ac", { limit: 100 })), []);
  assert.deepEqual(paths(store.list("", { limit: 3 })), ["a", "a/x", "a/y/z"]);
  // Pages follow each other without gaps or repeats, whatever the cursor.
  const pages: string[][] = [];
  let cursor: string | undefined;
  for (;;) {
    const page = paths(store.list("a", { limit: 3, ...(cursor === undefined ? {} : { after: cursor }) }));
    if (page.length === 0) break;
    pages.push(page);
    cursor = page.at(-1);
  }
  assert.deepEqual(pages.flat(), paths(store.list("a", { limit: 100 })));
  assert.equal(pages.length, 3);
  // A cursor before the prefix starts at the prefix; one past it ends the listing.
  assert.deepEqual(paths(store.list("a/", { after: "", limit: 1 })), ["a/x"]);
  assert.deepEqual(paths(store.list("a/", { after: "a/zzz", limit: 10 })), ["a/\u{1F600}"]);
  assert.deepEqual(paths(store.list("a/", { after: "b", limit: 10 })), []);
  assert.deepEqual(store.list("a", { limit: 0 }), []);
  store.close();
});

test("sqlite store: prefixUpperBound: the least string above every extension of the prefix", () => {
  assert.equal(prefixUpperBound(""), null);
  assert.equal(prefixUpperBound("a/"), "a0");
  assert.equal(prefixUpperBound("a\ud7ff"), "a\ue000");
  assert.equal(prefixUpperBound("a\uffff"), "a\u{10000}");
  assert.equal(prefixUpperBound("a\u{10ffff}\u{10ffff}"), "b");
  assert.equal(prefixUpperBound("\u{10ffff}"), null);
});

test("sqlite store: collectTombstones: removes old tombstones only, keeps digest and seq right", () => {
  const store = openStore();
  store.writeLocal(
    [
      { path: "old-gone", value: null },
      { path: "old-live", value: text("keep") },
    ],
    baseWallMs,
  );
  store.writeLocal([{ path: "new-gone", value: null }], baseWallMs + 100);
  const seqBefore = store.lastSeq();
  assert.equal(store.collectTombstones(baseWallMs + 50), 1);
  assert.equal(store.get("old-gone"), null);
  assert.equal(store.get("new-gone")?.deleted, true);
  assert.equal(decoder.decode(store.get("old-live")!.value), "keep");
  assert.deepEqual(store.digest(), digestOf(store.stampsInBuckets(allBuckets(store))));
  assert.equal(store.lastSeq(), seqBefore);
  assert.equal(store.collectTombstones(baseWallMs + 101), 1);
  assert.equal(store.collectTombstones(baseWallMs + 101), 0);
  assert.throws(() => store.collectTombstones(Number.NaN), RangeError);
  // The latest seq left with the collected row; seqs are never reused.
  store.writeLocal([{ path: "after", value: text("x") }], baseWallMs + 200);
  assert.equal(store.lastSeq(), seqBefore + 1);
  assert.deepEqual(
    store.changesSince(0, 10).map((c) => c.entry.path),
    ["old-live", "after"],
  );
  store.close();
});

test("sqlite store: reopen: entries, seq and clock survive; versions keep increasing when the wall clock goes back", () => {
  const path = dbPath();
  const first = openStore({ path });
  first.writeLocal([{ path: "k", value: text("1") }], baseWallMs + 10_000);
  // A remote version ahead of us (within the skew limit) moves the clock too.
  first.applyRemote(
    [entryAt("r", { wallMs: baseWallMs + 20_000, counter: 3, nodeId: "n2" })],
    baseWallMs + 10_000,
  );
  const seq = first.lastSeq();
  const digest = first.digest();
  first.close();
  const second = openStore({ path });
  assert.equal(second.lastSeq(), seq);
  assert.deepEqual(second.digest(), digest);
  assert.equal(decoder.decode(second.get("k")!.value), "1");
  const [next] = second.writeLocal([{ path: "k", value: text("2") }], baseWallMs);
  assert.deepEqual(next!.version, { wallMs: baseWallMs + 20_000, counter: 4, nodeId: "n1" });
  second.close();
});

test("sqlite store: reopen with another bucket count rebuilds the digest", () => {
  const path = dbPath();
  const first = openStore({ path, bucketCount: 16 });
  first.writeLocal(
    Array.from({ length: 50 }, (_, i) => ({ path: `p${i}`, value: i % 4 === 0 ? null : text(`${i}`) })),
    baseWallMs,
  );
  first.close();
  const second = openStore({ path, bucketCount: 64 });
  const stamps = second.stampsInBuckets(allBuckets(second));
  assert.equal(stamps.length, 50);
  assert.deepEqual(second.digest(), digestOf(stamps, 64));
  second.writeLocal([{ path: "p1", value: text("changed") }], baseWallMs);
  assert.deepEqual(second.digest(), digestOf(second.stampsInBuckets(allBuckets(second)), 64));
  second.close();
});

test("sqlite store: open: file is private, in WAL mode, with the schema version recorded", () => {
  const path = dbPath();
  openStore({ path }).close();
  assert.equal(statSync(path).mode & 0o777, 0o600);
  const raw = new Database(path, { readonly: true });
  try {
    assert.equal(raw.pragma("journal_mode", { simple: true }), "wal");
    const version = raw.prepare("SELECT value FROM meta WHERE key = ?").pluck().get(MetaKey.SchemaVersion);
    assert.equal(version, SCHEMA_VERSION);
  } finally {
    raw.close();
  }
});

test("sqlite store: open: an earlier layout's indexes give way to the stamp index, entries kept", () => {
  const path = dbPath();
  const store = openStore({ path });
  store.writeLocal([{ path: "a", value: text("1") }], baseWallMs);
  store.close();
  const raw = new Database(path);
  raw.exec(`DROP INDEX entries_stamps_by_seq;
    CREATE INDEX entries_by_seq ON entries (seq);
    CREATE INDEX entries_by_seq_origin ON entries (seq, node_id, wall_ms);
    CREATE INDEX entries_by_bucket ON entries (bucket);`);
  raw.close();
  const reopened = openStore({ path });
  assert.deepEqual(
    reopened.stampsInBuckets(allBuckets(reopened)).map((s) => s.path),
    ["a"],
  );
  reopened.close();
  const check = new Database(path, { readonly: true });
  try {
    const indexes = check
      .prepare(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'entries' AND sql IS NOT NULL",
      )
      .pluck()
      .all();
    assert.deepEqual(indexes.sort(), ["entries_stamps_by_seq", "tombstones_by_wall_ms"]);
  } finally {
    check.close();
  }
});

test("sqlite store: open: refuses a newer schema, a file that is not a database, a bad node id", () => {
  const newer = dbPath();
  openStore({ path: newer }).close();
  const raw = new Database(newer);
  raw.prepare("UPDATE meta SET value = ? WHERE key = ?").run(SCHEMA_VERSION + 1, MetaKey.SchemaVersion);
  raw.close();
  assert.throws(() => openStore({ path: newer }), { name: "StoreOpenError", message: /newer/ });
  const garbage = dbPath();
  openStore({ path: garbage }).close();
  rmSync(`${garbage}-wal`, { force: true });
  writeFileSync(garbage, "this is not a database, just text long enough to fill a header".repeat(20));
  assert.throws(
    () => openStore({ path: garbage }),
    (error) => error instanceof StoreOpenError && error.cause instanceof Error,
  );
  assert.throws(() => openStore({ nodeId: "N1 bad" }), RangeError);
  assert.throws(() => openStore({ bucketCount: 0 }), RangeError);
});
