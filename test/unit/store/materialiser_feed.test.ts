import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type TestContext, test } from "node:test";
import { pino } from "pino";
import {
  MaterialiseFeed,
  resyncPageEntriesMax,
  resyncRetryMsMin,
} from "../../../src/store/materialise_feed.ts";
import { manifestFileName } from "../../../src/store/materialise_manifest.ts";
import type { MaterialiseTimers } from "../../../src/store/materialise_timers.ts";
import { Materialiser } from "../../../src/store/materialiser.ts";
import { MemoryStoreService } from "../../support/memory_store_service.ts";

const silent = pino({ level: process.env.DEBUG_FEED ? "debug" : "silent" });
const text = (s: string) => new TextEncoder().encode(s);

/** Records timers; the test fires them by hand. */
class ManualTimers implements MaterialiseTimers {
  readonly pending = new Map<number, { callback: () => void; delayMs: number }>();
  private nextId = 1;
  setTimeout(callback: () => void, delayMs: number): unknown {
    this.pending.set(this.nextId, { callback, delayMs });
    return this.nextId++;
  }
  clearTimeout(handle: unknown): void {
    this.pending.delete(handle as number);
  }
  delays(): number[] {
    return [...this.pending.values()].map((p) => p.delayMs);
  }
  fireAll(): void {
    const due = [...this.pending];
    this.pending.clear();
    for (const [, { callback }] of due) callback();
  }
}

async function setup(t: TestContext, dir: string, prefix = "") {
  const store = new MemoryStoreService();
  const timers = new ManualTimers();
  const materialiser = await Materialiser.open({ dir, prefix, logger: silent, timers });
  const feed = new MaterialiseFeed(store, store, materialiser, { logger: silent, timers });
  t.after(async () => {
    feed.stop();
    await materialiser.close();
  });
  return { store, timers, materialiser, feed };
}

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "tandem-feed-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** Resolves after every batch queued so far (applies are serialised, so an empty one queues last). */
async function drained(materialiser: Materialiser): Promise<void> {
  await materialiser.apply([]);
}

test("materialise feed: start resyncs what the store holds, in pages, then follows commits", async (t) => {
  const dir = await tempDir(t);
  const { store, materialiser, feed } = await setup(t, dir);
  const count = resyncPageEntriesMax * 2 + 3;
  await store.write(
    Array.from({ length: count }, (_, i) => ({
      path: `bulk/f${String(i).padStart(4, "0")}`,
      value: text(`${i}`),
    })),
    { minAcks: 0 },
  );
  await writeFile(join(dir, "stale-but-foreign"), "kept");
  await feed.start();
  assert.equal((await readdir(join(dir, "bulk"))).length, count, "every page was listed");
  assert.equal(materialiser.lastAppliedSeq, store.lastSeq());

  await store.write([{ path: "live/a", value: text("A") }], { minAcks: 0 });
  await store.write([{ path: "bulk/f0000", value: null }], { minAcks: 0 });
  await drained(materialiser);
  assert.equal(await readFile(join(dir, "live/a"), "utf8"), "A");
  assert.equal(existsSync(join(dir, "bulk/f0000")), false);
  assert.equal(await readFile(join(dir, "stale-but-foreign"), "utf8"), "kept");
  assert.equal(materialiser.lastAppliedSeq, store.lastSeq());
});

test("materialise feed: a prefix without a slash lists raw but writes only what lies under it", async (t) => {
  const dir = await tempDir(t);
  const { store, feed } = await setup(t, dir, "certs");
  await store.write(
    ["certs/a", "certs/b/c", "certsX/b", "other"].map((path) => ({ path, value: text(path) })),
    { minAcks: 0 },
  );
  await feed.start();
  const files = (await readdir(dir, { recursive: true })).filter((f) => f !== manifestFileName).sort();
  assert.deepEqual(files, ["certs", "certs/a", "certs/b", "certs/b/c"]);
});

test("materialise feed: a failed batch schedules a resync with backoff; the resync recovers", async (t) => {
  const base = await tempDir(t);
  // Longer than PATH_MAX together with the long store path below: file-system calls fail (ENAMETOOLONG).
  const dir = join(base, ...Array.from({ length: 14 }, (_, i) => `${i}`.padEnd(250, "d")));
  const { store, timers, materialiser, feed } = await setup(t, dir);
  await feed.start();
  const tooLong = Array.from({ length: 4 }, (_, i) => `${i}`.padEnd(250, "p")).join("/");
  await store.write([{ path: tooLong, value: text("x") }], { minAcks: 0 });
  await drained(materialiser).catch(() => undefined);
  assert.deepEqual(timers.delays(), [resyncRetryMsMin]);

  timers.fireAll();
  await drained(materialiser).catch(() => undefined);
  assert.deepEqual(timers.delays(), [resyncRetryMsMin * 2], "the resync fails too while the path is there");

  await store.write([{ path: tooLong, value: null }], { minAcks: 0 });
  await store.write([{ path: "fine", value: text("ok") }], { minAcks: 0 });
  timers.fireAll();
  await drained(materialiser).catch(() => undefined);
  await drained(materialiser);
  assert.equal(await readFile(join(dir, "fine"), "utf8"), "ok");
  assert.deepEqual(timers.delays(), [], "recovered: nothing pending");
  await store.write([{ path: "after", value: text("applied") }], { minAcks: 0 });
  await drained(materialiser);
  assert.equal(await readFile(join(dir, "after"), "utf8"), "applied");
});

test("materialise feed: stop unsubscribes and cancels the retry", async (t) => {
  const dir = await tempDir(t);
  const { store, timers, feed } = await setup(t, dir);
  await feed.start();
  assert.equal(store.listenerCount, 1);
  feed.stop();
  assert.equal(store.listenerCount, 0);
  assert.deepEqual(timers.delays(), []);
});
