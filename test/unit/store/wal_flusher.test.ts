import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { StoreFlushError, WalFlusher } from "../../../src/store/wal_flusher.ts";
import { HeldSync } from "../../support/held_sync.ts";

const dir = mkdtempSync(join(tmpdir(), "tandem-wal-flusher-"));
after(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;

function walFile(): string {
  const path = join(dir, `wal-${++files}`);
  writeFileSync(path, "frames");
  return path;
}

function flushed(flusher: WalFlusher): Promise<Error | null> {
  return new Promise((resolve) => flusher.flushed(resolve));
}

test("wal flusher: nothing committed since the last flush calls back at once, on a later turn", async () => {
  const flusher = new WalFlusher(walFile());
  let called = false;
  const done = new Promise<Error | null>((resolve) =>
    flusher.flushed((error) => {
      called = true;
      resolve(error);
    }),
  );
  assert.equal(called, false);
  assert.equal(await done, null);
  flusher.close();
});

test("wal flusher: an fsync covers every commit made before it; a later commit gets its own at once, two at most", async () => {
  const held = new HeldSync();
  const flusher = new WalFlusher(walFile(), held.sync);
  const order: string[] = [];
  flusher.committed();
  flusher.committed();
  flusher.flushed(() => order.push("1-2"));
  flusher.flushed(() => order.push("1-2 again"));
  assert.equal(held.calls, 1, "one fsync for both commits");
  flusher.committed();
  flusher.flushed(() => order.push("3"));
  assert.equal(held.calls, 2, "commit 3 does not wait for the running fsync to end");
  flusher.committed();
  flusher.flushed(() => order.push("4"));
  assert.equal(held.calls, 2, "no third fsync while two run");
  held.finish(null, 1);
  assert.deepEqual(order, ["1-2", "1-2 again", "3"], "the second fsync vouches for commits 1-3");
  assert.equal(held.calls, 3, "commit 4 gets its fsync once one ended");
  held.finish();
  assert.deepEqual(order, ["1-2", "1-2 again", "3"], "the first fsync covered only commits 1-2");
  held.finish();
  assert.deepEqual(order, ["1-2", "1-2 again", "3", "4"]);
  assert.equal(await flushed(flusher), null, "all flushed: no fsync needed");
  assert.equal(held.calls, 3);
  flusher.close();
});

test("wal flusher: a failed fsync fails every waiter and every later flush, even after new commits", async () => {
  const held = new HeldSync();
  const flusher = new WalFlusher(walFile(), held.sync);
  flusher.committed();
  const waiting = flushed(flusher);
  held.finish(Object.assign(new Error("EIO: i/o error"), { code: "EIO" }));
  const error = await waiting;
  assert.ok(error instanceof StoreFlushError);
  assert.match(error.message, /EIO/);
  flusher.committed();
  assert.ok((await flushed(flusher)) instanceof StoreFlushError);
  assert.equal(held.calls, 1, "no fsync is trusted after a failure");
  flusher.close();
});

test("wal flusher: close fails the waiters; a store without a file has nothing to flush", async () => {
  const held = new HeldSync();
  const flusher = new WalFlusher(walFile(), held.sync);
  flusher.committed();
  const waiting = flushed(flusher);
  flusher.close();
  assert.match(String(await waiting), /closed/);
  held.finish();
  assert.match(String(await flushed(flusher)), /closed/);
  const inMemory = new WalFlusher(null);
  inMemory.committed();
  assert.equal(await flushed(inMemory), null);
});

test("wal flusher: with the real fsync, commits are flushed", async () => {
  const flusher = new WalFlusher(walFile());
  flusher.committed();
  assert.equal(await flushed(flusher), null);
  flusher.close();
});
