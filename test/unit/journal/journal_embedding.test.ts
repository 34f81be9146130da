// A journal embedded in an app's process: its tables in the app's own database, an entry recorded inside
// the app's transaction (kept or rolled back with the app's change, and the transport told only after the
// transaction ended), in-process handlers beside the config's, a type handled both ways refused.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type TestContext, test } from "node:test";
import Database from "better-sqlite3";
import { pino } from "pino";
import type { JournalConfig } from "../../../src/config/index.ts";
import { HandlerConflictError } from "../../../src/journal/entry_handlers.ts";
import { JournalKey } from "../../../src/journal/journal_key.ts";
import { JournalNode, JournalRecordError } from "../../../src/journal/journal_node.ts";
import type { JournalTransport, TransportIo } from "../../../src/queue/index.ts";

const config: JournalConfig = {
  keyFile: "unused",
  queue: { type: "mesh" },
  handlers: { "user.delete": { kind: "exec", argv: ["true"], timeoutMs: 1000 } },
  steps: [],
  maxAttempts: 3,
  retryBaseMs: 10,
  retryMaxMs: 10,
  concurrency: 2,
  outboxRetentionMs: 0,
};

/** A transport that only counts what it is told and lets the test read the outbox as a transport would. */
class ProbeTransport implements JournalTransport {
  readonly kind = "probe";
  io: TransportIo | null = null;
  told = 0;
  start(io: TransportIo): void {
    this.io = io;
  }
  recorded(): void {
    this.told += 1;
  }
  status(): Record<string, unknown> {
    return {};
  }
  async stop(): Promise<void> {}
}

async function embedded(t: TestContext) {
  const dir = mkdtempSync(join(tmpdir(), "tandem-embed-"));
  const db = new Database(join(dir, "app.db"));
  db.pragma("journal_mode = WAL");
  db.exec("CREATE TABLE users (name TEXT PRIMARY KEY)");
  const transport = new ProbeTransport();
  const node = new JournalNode({
    nodeId: "n1",
    dataDir: join(dir, "data"),
    config,
    key: (await JournalKey.generate()).key,
    transport,
    logger: pino({ level: "silent" }),
    appDb: db,
    handlers: { "user.create": () => undefined },
  });
  node.start();
  t.after(async () => {
    await node.stop();
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return { db, node, transport };
}

test("journal embedding: an entry recorded in the app's transaction is kept or rolled back with its change", async (t) => {
  const { db, node, transport } = await embedded(t);
  const create = db.transaction((name: string, fail: boolean) => {
    db.prepare("INSERT INTO users (name) VALUES (?)").run(name);
    node.recordNow({ type: "user.create", key: `user:${name}`, data: { name } });
    if (fail) throw new Error("the app changed its mind");
  });
  create("ann", false);
  assert.throws(() => create("bob", true), /changed its mind/);
  assert.equal(transport.told, 0, "the transport hears of a record only after the transaction");
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(transport.told, 2);
  const outbox = await transport.io?.outboxAfter(0, 10);
  assert.equal(outbox?.firstSeq, 1);
  assert.equal(outbox?.lastSeq, 1, "only ann's entry: bob's rolled back with his row");
  assert.deepEqual(db.prepare("SELECT name FROM users").pluck().all(), ["ann"]);
  // The journal's tables are in the app's database.
  assert.equal(db.prepare("SELECT count(*) FROM outbox").pluck().get(), 1);
  assert.throws(
    () => db.transaction(() => node.recordNow({ type: "Not A Type", data: {} }))(),
    JournalRecordError,
  );
});

test("journal embedding: a type handled in the config and in-process is refused before anything opens", async () => {
  const dir = mkdtempSync(join(tmpdir(), "tandem-embed-"));
  try {
    assert.throws(
      () =>
        new JournalNode({
          nodeId: "n1",
          dataDir: join(dir, "data"),
          config,
          key: {} as JournalKey,
          transport: new ProbeTransport(),
          logger: pino({ level: "silent" }),
          handlers: { "user.delete": () => undefined },
        }),
      HandlerConflictError,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
