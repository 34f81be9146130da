// Post-execution steps on a real journal database: created with the shipped mark, in one transaction, only
// for the entries they apply to; run once; retried, then given up, and run again on an operator's retry;
// and after a restart the runs still owed are run.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type TestContext, test } from "node:test";
import { pino } from "pino";
import { JournalDb, type JournalEntry } from "../../../src/journal/journal_db.ts";
import { type PostStep, PostStepRunner } from "../../../src/journal/post_steps.ts";
import { waitFor } from "../../support/wait_for.ts";

function tempPath(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), "tandem-steps-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return join(dir, "journal.db");
}

/** A step for entries of type "upload" that records each run and fails while `failing` holds the id. */
function uploadStep() {
  const runs: string[] = [];
  const failing = new Set<string>();
  const step: PostStep = {
    name: "offload",
    appliesTo: (entry) => entry.type === "upload",
    run: async (entry: JournalEntry) => {
      runs.push(entry.id);
      return failing.has(entry.id) ? { ok: false, detail: "store unreachable" } : { ok: true, detail: "" };
    },
  };
  return { step, runs, failing };
}

function runner(db: JournalDb, step: PostStep): PostStepRunner {
  return new PostStepRunner({
    db,
    steps: [step],
    maxAttempts: 3,
    retryBaseMs: 5,
    retryMaxMs: 20,
    concurrency: 2,
    logger: pino({ level: "silent" }),
  });
}

function record(db: JournalDb, id: string, type: string): void {
  db.record({ id, hlc: "1.0", type, key: null, data: "{}", files: [`rec/${id}`] }, 0);
}

test("post steps: owed from the shipped mark on, only by the entries they apply to, run once each", async (t) => {
  const db = JournalDb.open(tempPath(t), "n1");
  t.after(() => db.close());
  const { step, runs } = uploadStep();
  const steps = runner(db, step);
  t.after(() => steps.stop());
  record(db, "u1", "upload");
  record(db, "x1", "user.create");
  record(db, "u2", "upload");
  steps.start();
  assert.deepEqual(db.dueStepRuns(Date.now(), 10), [], "nothing owed before shipping");
  assert.equal(
    db.markShippedThrough(3, Date.now(), (e) => steps.stepsFor(e)),
    3,
  );
  assert.deepEqual(
    db.counts(Date.now()).steps,
    { pending: 2, dead: 0 },
    "in the same transaction as the mark",
  );
  steps.wake();
  await waitFor(
    "both uploads done",
    async () => (db.counts(Date.now()).steps.pending === 0 ? true : undefined),
    () => runs.join(),
  );
  assert.deepEqual(runs.sort(), ["u1", "u2"]);
  // Shipped again (a transport reporting the same range twice) creates nothing new.
  assert.equal(
    db.markShippedThrough(3, Date.now(), (e) => steps.stepsFor(e)),
    0,
  );
  assert.deepEqual(db.counts(Date.now()).steps, { pending: 0, dead: 0 });
});

test("post steps: a failing step is retried, then given up; an operator's retry runs it again", async (t) => {
  const db = JournalDb.open(tempPath(t), "n1");
  t.after(() => db.close());
  const { step, runs, failing } = uploadStep();
  const steps = runner(db, step);
  t.after(() => steps.stop());
  record(db, "u1", "upload");
  failing.add("u1");
  steps.start();
  db.markShippedThrough(1, Date.now(), (e) => steps.stepsFor(e));
  steps.wake();
  await waitFor(
    "the step given up",
    async () => db.deadStepRuns()[0],
    () => runs.join(),
  );
  assert.deepEqual(db.deadStepRuns(), [
    { entryId: "u1", step: "offload", attempts: 3, reason: "store unreachable" },
  ]);
  assert.equal(runs.length, 3);
  failing.delete("u1");
  assert.equal(db.retryStepRun("u1", "offload", Date.now()), true);
  assert.equal(db.retryStepRun("u1", "offload", Date.now()), false, "pending now, not dead");
  steps.wake();
  await waitFor(
    "done after the retry",
    async () => (db.counts(Date.now()).steps.pending === 0 ? true : undefined),
    () => runs.join(),
  );
  assert.deepEqual(db.deadStepRuns(), []);
  assert.equal(runs.length, 4);
});

test("post steps: runs still owed when the node stopped run after its restart", async (t) => {
  const path = tempPath(t);
  const first = JournalDb.open(path, "n1");
  const { step, runs } = uploadStep();
  record(first, "u1", "upload");
  // Shipped, and the node died before running the step.
  first.markShippedThrough(1, Date.now(), (e) => (e.type === "upload" ? ["offload"] : []));
  first.close();
  const db = JournalDb.open(path, "n1");
  t.after(() => db.close());
  const steps = runner(db, step);
  t.after(() => steps.stop());
  steps.start();
  await waitFor(
    "the owed step run",
    async () => (runs.includes("u1") ? true : undefined),
    () => runs.join(),
  );
});
