import assert from "node:assert/strict";
import { closeSync, type fsync, mkdtempSync, openSync, readSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import Database from "better-sqlite3";
import { WalCheckpointer } from "../../../src/store/wal_checkpointer.ts";
import { StoreFlushError, WalFlusher } from "../../../src/store/wal_flusher.ts";
import { HeldSync } from "../../support/held_sync.ts";

const dir = mkdtempSync(join(tmpdir(), "tandem-wal-checkpointer-"));
after(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;

/** A database in WAL mode as the store opens it, with a flusher and a checkpointer over it. */
function open(options: {
  walFramesMax: number;
  cycleIntervalMs?: number;
  walSync?: typeof fsync;
  dbSync?: typeof fsync;
}) {
  const path = join(dir, `db-${++files}.sqlite`);
  const db = new Database(path);
  db.pragma("page_size = 16384");
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = NORMAL");
  db.exec("CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB NOT NULL)");
  const flusher = new WalFlusher(`${path}-wal`, options.walSync);
  const checkpointer = new WalCheckpointer({
    path,
    main: db,
    flusher,
    walFramesMax: options.walFramesMax,
    cycleIntervalMs: options.cycleIntervalMs ?? 0,
    sync: options.dbSync,
  });
  let k = 0;
  const insert = db.prepare<[number, Buffer]>("INSERT INTO t (k, v) VALUES (?, ?)");
  return {
    path,
    db,
    flusher,
    checkpointer,
    /** One commit of `rows` 1 KiB rows, counted as the store counts it. */
    commit(rows = 1) {
      db.transaction(() => {
        for (let i = 0; i < rows; i++) insert.run(++k, Buffer.alloc(1024, k % 251));
      })();
      flusher.committed();
      checkpointer.committed();
    },
    rows: () => k,
    /** The WAL header's checkpoint sequence: SQLite bumps it whenever it restarts the WAL from its start. */
    walRestarts(): number {
      const fd = openSync(`${path}-wal`, "r");
      try {
        const header = Buffer.alloc(16);
        readSync(fd, header, 0, 16, 0);
        return header.readUInt32BE(12);
      } finally {
        closeSync(fd);
      }
    },
    close() {
      checkpointer.close();
      db.close();
      flusher.close();
    },
  };
}

function flushed(flusher: WalFlusher): Promise<Error | null> {
  return new Promise((resolve) => flusher.flushed(resolve));
}

const turn = () => new Promise((resolve) => setImmediate(resolve));

test("wal checkpointer: copies only after the WAL flush, and the WAL is not restarted before the database file is fsynced", async () => {
  const walSync = new HeldSync();
  const dbSync = new HeldSync();
  const store = open({ walFramesMax: 1, walSync: walSync.sync, dbSync: dbSync.sync });
  // SQLite's own checkpoint inside a commit could copy everything before the guard opens, and a guard over a
  // fully copied WAL would bound nothing.
  assert.equal(store.db.pragma("wal_autocheckpoint", { simple: true }), 0);
  store.commit();
  await turn();
  assert.equal(dbSync.calls, 0, "nothing is copied before the commit's WAL frames are on disk");
  walSync.finish();
  await turn();
  assert.equal(dbSync.calls, 1, "copied once flushed, then the database file is fsynced");
  const restarts = store.walRestarts();
  // Everything in the WAL is copied now: without the guard, the next commit would write the WAL from its
  // start again, over frames whose copies may not be on disk yet.
  store.commit();
  store.commit();
  assert.equal(store.walRestarts(), restarts, "no restart while the database file's fsync runs");
  assert.equal(dbSync.calls, 1, "one cycle at a time");
  dbSync.finish();
  await turn();
  assert.equal(
    store.checkpointer.fullCheckpoints,
    1,
    "the WAL is over walFramesMax: SQLite's own checkpoint ran",
  );
  store.commit();
  assert.equal(store.walRestarts(), restarts + 1, "the first commit after it restarts the WAL");
  assert.equal((store.db.prepare("SELECT count(*) AS n FROM t").get() as { n: number }).n, store.rows());
  store.close();
});

test("wal checkpointer: a failed fsync of the database file fails the flusher for good and keeps the WAL", async () => {
  const dbSync = new HeldSync();
  const store = open({ walFramesMax: 1, dbSync: dbSync.sync });
  store.commit();
  assert.equal(await flushed(store.flusher), null);
  await turn();
  assert.equal(dbSync.calls, 1);
  const restarts = store.walRestarts();
  dbSync.finish(Object.assign(new Error("EIO: i/o error"), { code: "EIO" }));
  store.commit();
  const error = await flushed(store.flusher);
  assert.ok(error instanceof StoreFlushError);
  assert.match(error.message, /database file.*EIO/);
  store.commit();
  await turn();
  assert.equal(store.walRestarts(), restarts, "the WAL keeps every frame");
  assert.equal(dbSync.calls, 1, "no cycle after a failure");
  store.close();
});

test("wal checkpointer: with real fsyncs the WAL stays bounded and every row survives a reopen", async () => {
  const store = open({ walFramesMax: 64 });
  for (let i = 0; i < 200; i++) {
    store.commit(10);
    if (i % 10 === 9) assert.equal(await flushed(store.flusher), null);
  }
  await flushed(store.flusher);
  await turn();
  const walBytes = statSync(`${store.path}-wal`).size;
  // 2,000 rows of 1 KiB are ~150 pages of 16 KiB; without checkpoints the WAL would hold every one of them
  // (and the index pages of every commit) several times over.
  assert.ok(walBytes < 200 * 16_384, `WAL of ${walBytes} bytes`);
  assert.ok(store.walRestarts() > 1, "the WAL was restarted");
  const rows = store.rows();
  store.close();
  const again = new Database(store.path);
  assert.equal((again.prepare("SELECT count(*) AS n FROM t").get() as { n: number }).n, rows);
  assert.equal(again.pragma("integrity_check", { simple: true }), "ok");
  again.close();
});

test("wal checkpointer: a commit within cycleIntervalMs of the last cycle's end starts no cycle", async () => {
  const dbSync = new HeldSync();
  const store = open({ walFramesMax: 1_000, cycleIntervalMs: 60_000, dbSync: dbSync.sync });
  store.commit();
  assert.equal(await flushed(store.flusher), null);
  await turn();
  dbSync.finish();
  store.commit();
  assert.equal(await flushed(store.flusher), null);
  await turn();
  assert.equal(dbSync.calls, 1, "the database file's fsync would compete with the WAL's");
  store.close();
});
