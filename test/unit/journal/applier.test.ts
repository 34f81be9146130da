// The applier's own rules, on a real journal database and seal: a message that does not open, or was
// altered, is refused, counted and reported, and nothing of it is stored or applied; its own entries and
// redeliveries are no work; an entry of a type without a handler fails until it is a dead letter.
import assert from "node:assert/strict";
import { test } from "node:test";
import { pino } from "pino";
import { JournalApplier } from "../../../src/journal/applier.ts";
import { type HandlerSpec, inProcessHandler } from "../../../src/journal/entry_handlers.ts";
import { JournalDb, type JournalEntry } from "../../../src/journal/journal_db.ts";
import { JournalKey } from "../../../src/journal/journal_key.ts";
import { sealBatch } from "../../../src/journal/journal_wire.ts";
import { waitFor } from "../../support/wait_for.ts";

function entry(id: string, type = "user.create", origin = "n2"): JournalEntry {
  return { id, origin, hlc: "1.0", type, key: null, keySeq: 0, data: "{}", files: [] };
}

async function setup(handlers: Record<string, HandlerSpec> = {}) {
  const { key } = await JournalKey.generate();
  const db = JournalDb.open(":memory:", "n1");
  const events: Array<Record<string, unknown>> = [];
  const applier = new JournalApplier({
    nodeId: "n1",
    db,
    key,
    handlers,
    lanes: { maxAttempts: 2, retryBaseMs: 1, retryMaxMs: 1, concurrency: 2 },
    logger: pino({ level: "silent" }),
    onEvent: (fields) => events.push(fields),
  });
  applier.start();
  return { key, db, applier, events };
}

test("journal applier: an altered or foreign message is refused, reported, and nothing of it is kept", async (t) => {
  const { key, db, applier, events } = await setup({
    "*": { kind: "exec", argv: ["true"], timeoutMs: 5000 },
  });
  t.after(async () => {
    await applier.stop();
    db.close();
  });
  const good = await sealBatch([entry("e-1")], key);
  const altered = good.slice();
  altered[altered.length - 2] = (altered[altered.length - 2] ?? 0) ^ 0x01;
  assert.deepEqual(await applier.deliver(altered), { refused: true });
  const foreign = await sealBatch([entry("e-2")], (await JournalKey.generate()).key);
  assert.deepEqual(await applier.deliver(foreign), { refused: true });
  assert.equal(applier.status().refused, 2);
  assert.deepEqual(
    events.map((e) => [e.event, e.ids, e.origin]),
    [
      ["refused", ["e-1"], "n2"],
      ["refused", ["e-2"], "n2"],
    ],
  );
  assert.deepEqual(db.inbox(), []);
  assert.equal(db.receive(entry("e-1"), 0), "new", "never recorded as applied: it may still come intact");
});

test("journal applier: its own entries and redeliveries are no work; a type without a handler ends a dead letter", async (t) => {
  const { key, db, applier } = await setup();
  t.after(async () => {
    await applier.stop();
    db.close();
  });
  assert.deepEqual(await applier.deliver(await sealBatch([entry("mine", "t", "n1")], key)), {
    refused: false,
    stored: 0,
    known: 0,
    own: 1,
  });
  const orphan = await sealBatch([entry("orphan", "nobody.handles")], key);
  assert.deepEqual(await applier.deliver(orphan), { refused: false, stored: 1, known: 0, own: 0 });
  assert.deepEqual(await applier.deliver(orphan), { refused: false, stored: 0, known: 1, own: 0 });
  const dead = await waitFor(
    "the dead letter",
    async () => db.deadLetters()[0],
    () => JSON.stringify(applier.status()),
  );
  assert.equal(dead.entry.id, "orphan");
  assert.equal(dead.attempts, 2);
  assert.match(dead.reason, /no handler for type nobody.handles on n1/);
  assert.equal((await applier.deliver(orphan)).refused, false);
  assert.equal(db.receive(entry("orphan", "nobody.handles"), 0), "dead-letter", "known for good");
});

test("journal applier: an in-process handler that throws is retried, holds back only its key, then is a dead letter", async (t) => {
  const runs: string[] = [];
  const { key, db, applier } = await setup({
    "user.create": inProcessHandler((e) => {
      runs.push(e.id);
      if (e.id === "bad") throw new Error(`cannot create ${JSON.stringify(e.data)}`);
    }),
  });
  t.after(async () => {
    await applier.stop();
    db.close();
  });
  const keyed = (id: string, keySeq: number): JournalEntry => ({
    ...entry(id),
    key: "user:ann",
    keySeq,
    data: '"ann"',
  });
  await applier.deliver(await sealBatch([keyed("bad", 1), keyed("after", 2), entry("other")], key));
  const dump = () => JSON.stringify({ runs, status: applier.status() });
  const dead = await waitFor("the dead letter", async () => db.deadLetters()[0], dump);
  assert.equal(dead.entry.id, "bad");
  assert.equal(dead.attempts, 2);
  assert.equal(dead.reason, 'cannot create "ann"');
  await waitFor("the rest applied", async () => (runs.includes("after") ? true : undefined), dump);
  assert.ok(runs.indexOf("other") < runs.indexOf("after"), "other's key went on while bad retried");
  assert.deepEqual(
    runs.filter((id) => id === "bad"),
    ["bad", "bad"],
  );
  assert.equal(db.receive(keyed("after", 2), 0), "applied-before");
});
