// The cheap restart: a resync skips entries whose version the manifest recorded and whose file is listed,
// reading neither their value nor their file; and the feed's start() returns after a catch-up on the lag,
// with the full resync behind it.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type TestContext, test } from "node:test";
import { pino } from "pino";
import { catchUpBytesMax, MaterialiseFeed } from "../../../src/store/materialise_feed.ts";
import { manifestFileName } from "../../../src/store/materialise_manifest.ts";
import { Materialiser, type MaterialiserOptions, type ResyncStamp } from "../../../src/store/materialiser.ts";
import { SqliteLocalStore } from "../../../src/store/sqlite_store.ts";
import type { StoreEntry } from "../../../src/store/types.ts";
import { MemoryStoreService } from "../../support/memory_store_service.ts";

const silent = pino({ level: "silent" });
const text = (s: string) => new TextEncoder().encode(s);

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "tandem-resync-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

function memoryStore(t: TestContext): SqliteLocalStore {
  const store = SqliteLocalStore.open({ path: ":memory:", nodeId: "n1", valueBytesMax: 1 << 20 });
  t.after(() => store.close());
  return store;
}

/** Every stamp the store holds, as the feed lists them (seq order, small pages). */
function* stampsOf(store: SqliteLocalStore): Generator<ResyncStamp> {
  let after = 0;
  for (;;) {
    const page = store.keyedStampsSince(after, 2);
    yield* page;
    if (page.length < 2) return;
    after = page.at(-1)!.seq;
  }
}

/** Materialises the whole store once through apply, as a running agent would, and closes. */
async function materialiseOnce(
  dir: string,
  store: SqliteLocalStore,
  options: Partial<MaterialiserOptions> = {},
) {
  const first = await Materialiser.open({ dir, logger: silent, ...options });
  await first.apply(store.changesSince(0, 1_000));
  await first.close();
}

/** A resync of `store` from its stamps, recording which paths it had to read. */
async function resyncRecordingReads(materialiser: Materialiser, store: SqliteLocalStore) {
  const read: string[] = [];
  const entriesAt = (paths: readonly string[]): StoreEntry[] => {
    read.push(...paths);
    return store.getMany(paths);
  };
  const result = await materialiser.resync(stampsOf(store), { seq: store.lastSeq(), entriesAt });
  return { read: read.sort(), written: result.written.sort(), removed: result.removed.sort() };
}

test("materialiser resync: an unchanged entry whose file is in place is neither read nor rewritten", async (t) => {
  const dir = await tempDir(t);
  const store = memoryStore(t);
  store.writeLocal(
    ["a/x", "a/y", "b/z", "gone"].map((path) => ({ path, value: text(`${path} 1`) })),
    Date.now(),
  );
  await materialiseOnce(dir, store);
  // While the node was down: one entry changed, one deleted, one file removed by hand.
  store.writeLocal(
    [
      { path: "a/y", value: text("a/y 2") },
      { path: "gone", value: null },
    ],
    Date.now(),
  );
  await rm(join(dir, "b/z"));
  const inode = (await stat(join(dir, "a/x"))).ino;

  const second = await Materialiser.open({ dir, logger: silent });
  t.after(() => second.close());
  const { read, written, removed } = await resyncRecordingReads(second, store);
  assert.deepEqual(read, ["a/y", "b/z"], "only the changed entry and the missing file are read");
  assert.deepEqual(written, ["a/y", "b/z"]);
  assert.deepEqual(removed, ["gone"]);
  assert.equal(await readFile(join(dir, "a/y"), "utf8"), "a/y 2");
  assert.equal(await readFile(join(dir, "b/z"), "utf8"), "b/z 1");
  assert.equal((await stat(join(dir, "a/x"))).ino, inode, "a/x untouched");
  assert.equal(existsSync(join(dir, "gone")), false);
});

test("materialiser resync: versions recorded under another file mode are not trusted", async (t) => {
  const dir = await tempDir(t);
  const store = memoryStore(t);
  store.writeLocal(
    [
      { path: "f", value: text("x") },
      { path: "d/g", value: text("y") },
    ],
    Date.now(),
  );
  await materialiseOnce(dir, store, { fileMode: 0o644 });
  const second = await Materialiser.open({ dir, logger: silent, fileMode: 0o600 });
  t.after(() => second.close());
  const { read, written } = await resyncRecordingReads(second, store);
  assert.deepEqual(read, ["d/g", "f"]);
  assert.deepEqual(written, ["d/g", "f"]);
  assert.equal((await stat(join(dir, "f"))).mode & 0o7777, 0o600);
});

test("materialiser resync: a format 1 manifest keeps its names; files are compared once, then trusted", async (t) => {
  const dir = await tempDir(t);
  const store = memoryStore(t);
  store.writeLocal(
    [
      { path: "f", value: text("x") },
      { path: "old", value: text("o") },
    ],
    Date.now(),
  );
  await materialiseOnce(dir, store);
  const saved = JSON.parse(await readFile(join(dir, manifestFileName), "utf8"));
  const formatOne = { format: 1, lastAppliedSeq: saved.lastAppliedSeq, paths: saved.paths, dirs: saved.dirs };
  await writeFile(join(dir, manifestFileName), JSON.stringify(formatOne));
  store.writeLocal([{ path: "old", value: null }], Date.now());

  const upgraded = await Materialiser.open({ dir, logger: silent });
  const first = await resyncRecordingReads(upgraded, store);
  assert.deepEqual(
    first,
    { read: ["f"], written: [], removed: ["old"] },
    "owned names kept, content compared",
  );
  await upgraded.close();
  const again = await Materialiser.open({ dir, logger: silent });
  t.after(() => again.close());
  assert.deepEqual(await resyncRecordingReads(again, store), { read: [], written: [], removed: [] });
});

/** Opens a materialiser on `dir` and starts a feed from `store` into it; both close after the test. */
async function startFeed(
  t: TestContext,
  dir: string,
  store: MemoryStoreService,
): Promise<{ materialiser: Materialiser; feed: MaterialiseFeed }> {
  const materialiser = await Materialiser.open({ dir, logger: silent });
  const feed = new MaterialiseFeed(store, store, materialiser, { logger: silent });
  t.after(async () => {
    feed.stop();
    await materialiser.close();
  });
  await feed.start();
  return { materialiser, feed };
}

test("materialise feed: a restart applies the lag before start() returns; the full resync runs behind it", async (t) => {
  const dir = await tempDir(t);
  const store = new MemoryStoreService();
  await store.write(
    ["a", "b", "c"].map((path) => ({ path, value: text(`${path} 1`) })),
    { minAcks: 0 },
  );
  const first = await Materialiser.open({ dir, logger: silent });
  const firstFeed = new MaterialiseFeed(store, store, first, { logger: silent });
  await firstFeed.start();
  firstFeed.stop();
  await first.close();
  await store.write(
    [
      { path: "b", value: text("b 2") },
      { path: "new", value: text("n") },
    ],
    { minAcks: 0 },
  );
  await rm(join(dir, "c"));

  const { feed } = await startFeed(t, dir, store);
  assert.equal(await readFile(join(dir, "b"), "utf8"), "b 2", "the lag is applied before start() returns");
  assert.equal(await readFile(join(dir, "new"), "utf8"), "n");
  assert.equal(existsSync(join(dir, "c")), false, "the full resync has not run yet");
  assert.equal(await feed.resynced(), true);
  assert.equal(await readFile(join(dir, "c"), "utf8"), "c 1", "the resync restores a file removed by hand");
});

/** Materialises a new store holding `paths` into `dir` through a feed, then stops as a clean shutdown does. */
async function runFeedOnce(dir: string, paths: string[]): Promise<void> {
  const store = new MemoryStoreService();
  await store.write(
    paths.map((path) => ({ path, value: text(path) })),
    { minAcks: 0 },
  );
  const materialiser = await Materialiser.open({ dir, logger: silent });
  const feed = new MaterialiseFeed(store, store, materialiser, { logger: silent });
  await feed.start();
  feed.stop();
  await materialiser.close();
}

for (const [what, paths] of [
  ["behind the manifest", ["z"]],
  ["ahead of the manifest", ["x", "y", "z"]],
] as const) {
  test(`materialise feed: another store (replaced, ${what}) is resynced before start() returns; its seqs count`, async (t) => {
    const dir = await tempDir(t);
    await runFeedOnce(dir, ["a", "b"]);
    const replaced = new MemoryStoreService();
    await replaced.write(
      paths.map((path) => ({ path, value: text(path) })),
      { minAcks: 0 },
    );
    const { materialiser: second } = await startFeed(t, dir, replaced);
    assert.equal(existsSync(join(dir, "a")), false, "files of the old store are gone when start() returns");
    assert.equal(await readFile(join(dir, "z"), "utf8"), "z");
    assert.equal(second.lastAppliedSeq, replaced.lastSeq(), "the new store's seq, even when lower");
    await replaced.write([{ path: "next", value: text("n") }], { minAcks: 0 });
    await second.apply([]);
    assert.equal(await readFile(join(dir, "next"), "utf8"), "n", "its next change is applied");
  });
}

test("materialise feed: a lag of more value bytes than catchUpBytesMax waits for the full resync", async (t) => {
  const dir = await tempDir(t);
  const store = new MemoryStoreService();
  await store.write([{ path: "small", value: text("s") }], { minAcks: 0 });
  const first = await Materialiser.open({ dir, logger: silent });
  const firstFeed = new MaterialiseFeed(store, store, first, { logger: silent });
  await firstFeed.start();
  firstFeed.stop();
  await first.close();
  const half = catchUpBytesMax / 2 + 1;
  await store.write(
    ["big/a", "big/b"].map((path) => ({ path, value: new Uint8Array(half) })),
    { minAcks: 0 },
  );
  await rm(join(dir, "small"));

  await startFeed(t, dir, store);
  assert.equal(
    await readFile(join(dir, "small"), "utf8"),
    "s",
    "the full resync ran before start() returned",
  );
  assert.equal((await stat(join(dir, "big/b"))).size, half);
});
