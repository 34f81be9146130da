import assert from "node:assert/strict";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type TestContext, test } from "node:test";
import Database from "better-sqlite3";
import { JournalDb, type JournalEntry, type RecordInput } from "../../../src/journal/journal_db.ts";

function input(id: string, key: string | null, data = "{}"): RecordInput {
  return { id, hlc: `1700000000000.${id.length}`, type: "user.create", key, data, files: [] };
}

function fromOther(id: string, key: string | null, keySeq: number, origin = "n2"): JournalEntry {
  return { ...input(id, key), origin, keySeq, files: ["rec/1.cast"] };
}

function tempDb(t: TestContext): { path: string; open: () => JournalDb } {
  const dir = mkdtempSync(join(tmpdir(), "tandem-journal-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, "journal.db");
  return { path, open: () => JournalDb.open(path, "n1") };
}

test("journal db: a recorded entry takes the next place of its lane, is kept 0600, and survives a reopen", (t) => {
  const { path, open } = tempDb(t);
  const db = open();
  assert.equal(db.record(input("a", "user:ann"), 10).keySeq, 1);
  assert.equal(db.record(input("b", null), 11).keySeq, 0);
  assert.equal(db.record(input("c", "user:ann"), 12).keySeq, 2);
  assert.equal(db.record(input("d", "user:bob"), 13).keySeq, 1);
  db.close();
  assert.equal(statSync(path).mode & 0o777, 0o600);
  const again = open();
  t.after(() => again.close());
  assert.equal(again.record(input("e", "user:ann"), 14).keySeq, 3, "the lane's counter outlives a restart");
  const rows = again.unshipped(10);
  assert.deepEqual(
    rows.map((r) => [r.entry.id, r.entry.origin, r.entry.keySeq]),
    [
      ["a", "n1", 1],
      ["b", "n1", 0],
      ["c", "n1", 2],
      ["d", "n1", 1],
      ["e", "n1", 3],
    ],
  );
  assert.deepEqual(
    again.outboxAfter(1, 2).map((r) => r.entry.id),
    ["b", "c"],
  );
  assert.equal(again.markShippedThrough(2, 20), 2);
  assert.deepEqual(
    again.unshipped(2).map((r) => r.entry.id),
    ["c", "d"],
  );
  assert.equal(again.cursor("peer:n2"), 0);
  again.setCursor("peer:n2", 4);
  assert.equal(again.cursor("peer:n2"), 4);
  again.dropCursor("peer:n2");
  assert.equal(again.cursor("peer:n2"), 0);
  assert.deepEqual(again.counts(30), {
    unshipped: 3,
    oldestUnshippedAgeMs: 18,
    inbox: 0,
    deadLetters: 0,
    lastAppliedAtMs: {},
    steps: { pending: 0, dead: 0 },
    outboxSeqs: { first: 1, last: 5 },
  });
});

test("journal db: attached to an app's database, a record commits or rolls back with the app's change", (t) => {
  const app = new Database(":memory:");
  t.after(() => app.close());
  app.exec("CREATE TABLE users (name TEXT PRIMARY KEY)");
  const journal = JournalDb.attach(app, "n1");
  const createUser = app.transaction((name: string, fail: boolean) => {
    app.prepare("INSERT INTO users (name) VALUES (?)").run(name);
    journal.record(input(`create-${name}`, `user:${name}`, JSON.stringify({ name })), 1);
    if (fail) throw new Error("the app's own change failed");
  });
  createUser("ann", false);
  assert.throws(() => createUser("bob", true), /own change failed/);
  assert.deepEqual(app.prepare("SELECT name FROM users").pluck().all(), ["ann"]);
  assert.deepEqual(
    journal.unshipped(10).map((r) => r.entry.id),
    ["create-ann"],
    "both or neither",
  );
  createUser("bob", false);
  assert.equal(journal.unshipped(10)[1]?.entry.keySeq, 1, "bob's lane counter rolled back with the failure");
  journal.close();
  assert.equal(app.open, true, "the app keeps its database");
});

test("journal db: received entries are kept once; applied and dead ones stay known for good", (t) => {
  const { open } = tempDb(t);
  const db = open();
  t.after(() => db.close());
  const x = fromOther("x", "k", 1);
  const y = fromOther("y", "k", 2);
  assert.equal(db.receive(x, 1), "new");
  assert.equal(db.receive(x, 2), "in-inbox");
  assert.equal(db.receive(y, 3), "new");
  assert.deepEqual(
    db.inbox().map((e) => [e.id, e.keySeq, e.files]),
    [
      ["x", 1, ["rec/1.cast"]],
      ["y", 2, ["rec/1.cast"]],
    ],
  );
  db.settle([{ kind: "applied", entry: x, watermark: { origin: "n2", key: "k", done: 1 } }], 5);
  db.settle(
    [
      {
        kind: "dead",
        entry: y,
        attempts: 4,
        reason: "exit code 1",
        watermark: { origin: "n2", key: "k", done: 2 },
      },
    ],
    6,
  );
  assert.equal(db.receive(x, 7), "applied-before");
  assert.equal(db.receive(y, 7), "dead-letter");
  assert.deepEqual(db.inbox(), []);
  assert.deepEqual(db.laneMarks(), [{ origin: "n2", key: "k", done: 2 }]);
  assert.deepEqual(
    db.deadLetters().map((d) => [d.entry.id, d.attempts, d.reason]),
    [["y", 4, "exit code 1"]],
  );
  const counts = db.counts(10);
  assert.deepEqual([counts.inbox, counts.deadLetters, counts.lastAppliedAtMs], [0, 1, { n2: 5 }]);
});

test("journal db: a retried dead letter returns to the inbox outside its lane; a dropped one is never applied", (t) => {
  const { open } = tempDb(t);
  const db = open();
  t.after(() => db.close());
  const y = fromOther("y", "k", 2);
  const z = fromOther("z", null, 0);
  db.receive(y, 1);
  db.receive(z, 1);
  db.settle(
    [
      { kind: "dead", entry: y, attempts: 3, reason: "timed out", watermark: null },
      { kind: "dead", entry: z, attempts: 3, reason: "timed out", watermark: null },
    ],
    2,
  );
  const retried = db.retryDead("y", 3);
  assert.deepEqual([retried?.id, retried?.key, retried?.keySeq], ["y", null, 0]);
  assert.deepEqual(
    db.inbox().map((e) => [e.id, e.key]),
    [["y", null]],
  );
  assert.equal(db.retryDead("y", 4), null, "no longer a dead letter");
  assert.equal(db.dropDead("z", 5), true);
  assert.equal(db.dropDead("z", 5), false);
  assert.equal(db.receive(z, 6), "applied-before", "dropped: known for good");
});

test("journal db: pruning deletes shipped entries past the cutoff, never an unshipped one, nor the newest", (t) => {
  const { open } = tempDb(t);
  const db = open();
  t.after(() => db.close());
  for (const [i, id] of ["a", "b", "c", "d", "e"].entries()) db.record(input(id, null), 100 + i);
  assert.deepEqual(db.pruneOutbox(1_000, 0, 100), { pruned: 0, lastSeq: 0, done: true }, "nothing shipped");
  db.markShippedThrough(3, 200);
  assert.deepEqual(
    db.pruneOutbox(101, 0, 100),
    { pruned: 2, lastSeq: 2, done: true },
    "only up to the cutoff",
  );
  assert.deepEqual(db.pruneOutbox(1_000, 2, 100), { pruned: 1, lastSeq: 3, done: true }, "d is not shipped");
  assert.deepEqual(
    db.outboxAfter(0, 10).map((r) => r.entry.id),
    ["d", "e"],
  );
  db.markShippedThrough(5, 300);
  assert.equal(db.pruneOutbox(1_000, 0, 100).pruned, 1, "the newest entry stays");
  assert.deepEqual(
    db.outboxAfter(0, 10).map((r) => r.entry.id),
    ["e"],
  );
  assert.equal(db.record(input("f", null), 400).id, "f");
  assert.deepEqual(
    db.outboxAfter(5, 10).map((r) => [r.seq, r.entry.id]),
    [[6, "f"]],
    "seq keeps counting up: a transport's cursor stays valid",
  );
  assert.deepEqual(db.counts(500).outboxSeqs, { first: 5, last: 6 });
});

test("journal db: an entry owing a post-execution step (pending or given up) is not pruned", (t) => {
  const { open } = tempDb(t);
  const db = open();
  t.after(() => db.close());
  for (const id of ["a", "b", "c", "d"]) db.record(input(id, null), 100);
  db.markShippedThrough(4, 200, (entry) => (entry.id === "d" ? [] : ["offload"]));
  db.settleStepRun("a", "offload", { kind: "done", attempts: 1 });
  db.settleStepRun("b", "offload", { kind: "dead", attempts: 3, reason: "store down" });
  db.settleStepRun("c", "offload", { kind: "retry", attempts: 1, retryAtMs: 900, reason: "store down" });
  assert.deepEqual(db.pruneOutbox(1_000, 0, 100), { pruned: 1, lastSeq: 3, done: true });
  assert.deepEqual(
    db.outboxAfter(0, 10).map((r) => r.entry.id),
    ["b", "c", "d"],
  );
  assert.deepEqual(
    db.deadStepRuns().map((r) => r.entryId),
    ["b"],
    "a given-up step keeps its entry: it can be retried",
  );
  db.retryStepRun("b", "offload", 300);
  db.settleStepRun("b", "offload", { kind: "done", attempts: 4 });
  db.settleStepRun("c", "offload", { kind: "done", attempts: 2 });
  assert.equal(db.pruneOutbox(1_000, 0, 100).pruned, 2);
  assert.deepEqual(db.counts(1_000).steps, { pending: 0, dead: 0 });
});

test("journal db: pruning goes in bounded batches, and a pruned lane's next entries carry its floor", (t) => {
  const { open } = tempDb(t);
  const db = open();
  t.after(() => db.close());
  for (const [i, id] of ["a", "b", "c", "d", "e", "f"].entries()) db.record(input(id, "user:ann"), 100 + i);
  db.record(input("x", null), 100);
  db.markShippedThrough(7, 200);
  assert.deepEqual(db.pruneOutbox(102, 0, 2), { pruned: 2, lastSeq: 2, done: false });
  assert.deepEqual(db.pruneOutbox(102, 2, 2), { pruned: 1, lastSeq: 3, done: true }, "d is after the cutoff");
  assert.deepEqual(
    db.outboxAfter(0, 10).map((r) => [r.entry.id, r.entry.keySeq, r.entry.keyFloor]),
    [
      ["d", 4, 3],
      ["e", 5, 3],
      ["f", 6, 3],
      ["x", 0, undefined],
    ],
  );
});

test("journal db: a receiver holding none of a lane's pruned entries starts the lane at its floor", (t) => {
  const { open } = tempDb(t);
  const db = open();
  t.after(() => db.close());
  // A node that joined later: the lane's first entry it sees is keySeq 8, entries 1-7 pruned at the origin.
  db.receive({ ...fromOther("h", "user:ann", 8), keyFloor: 7 }, 1);
  assert.deepEqual(db.laneMarks(), [{ origin: "n2", key: "user:ann", done: 7 }]);
  // A node still holding keySeq 2 of another lane in its inbox waits for it, as usual.
  db.receive(fromOther("b2", "user:bob", 2), 1);
  db.receive({ ...fromOther("b8", "user:bob", 8), keyFloor: 7 }, 1);
  assert.deepEqual(
    db.laneMarks().filter((m) => m.key === "user:bob"),
    [],
  );
});

test("journal db: a version 1 database gains the pruning column when opened", (t) => {
  const { path, open } = tempDb(t);
  const raw = new Database(path);
  raw.exec(`CREATE TABLE journal_meta (key TEXT PRIMARY KEY, value);
    INSERT INTO journal_meta VALUES ('schema_version', 1);
    CREATE TABLE out_lanes (key TEXT PRIMARY KEY, last_seq INTEGER NOT NULL);
    INSERT INTO out_lanes VALUES ('user:ann', 4);`);
  raw.close();
  const db = open();
  t.after(() => db.close());
  assert.equal(db.record(input("a", "user:ann"), 1).keySeq, 5);
  db.markShippedThrough(1, 2);
  assert.equal(db.pruneOutbox(10, 0, 10).pruned, 0, "the newest entry stays");
});

test("journal db in an app's database: cursors and results skip their own fsync, records keep the app's", () => {
  const dir = mkdtempSync(join(tmpdir(), "tandem-journal-attach-"));
  const app = new Database(join(dir, "app.db"));
  app.pragma("journal_mode = WAL");
  app.pragma("synchronous = FULL");
  const modes: string[] = [];
  const pragma = app.pragma.bind(app);
  app.pragma = ((source: string, options?: Database.PragmaOptions) => {
    if (source.startsWith("synchronous =")) modes.push(source);
    return pragma(source, options);
  }) as typeof app.pragma;
  try {
    const db = JournalDb.attach(app, "n1");
    db.record({ id: "e1", hlc: "1.0", type: "t", key: null, data: "1", files: [] }, 1);
    assert.deepEqual(modes, [], "a record commits as the app's database is set: FULL");
    db.setCursor("peer:n2", 1);
    db.markShippedThrough(1, 2);
    assert.deepEqual(modes, [
      "synchronous = NORMAL",
      "synchronous = 2",
      "synchronous = NORMAL",
      "synchronous = 2",
    ]);
    assert.equal(pragma("synchronous", { simple: true }), 2, "the app's setting is back");
    modes.length = 0;
    app.transaction(() => db.setCursor("peer:n2", 2))();
    assert.deepEqual(modes, [], "inside the app's transaction it commits with the app's");
    assert.equal(db.cursor("peer:n2"), 2);
  } finally {
    app.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
