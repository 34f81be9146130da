// POST /api/v1/journal over a real journal (one node, no peers): one entry as an object, or a batch as an
// array recorded in one transaction, in order, all or none.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type TestContext, test } from "node:test";
import { pino } from "pino";
import { createApiRouter, journalRoutes } from "../../../src/api/index.ts";
import { JournalKey, JournalNode } from "../../../src/journal/index.ts";
import { MeshTransport } from "../../../src/queue/index.ts";
import { testJournalConfig } from "../../support/journal_nodes.ts";
import { MemoryNetwork } from "../../support/memory_mesh.ts";
import { rawRequest, serveRouter } from "./store_http.ts";

const json = { "content-type": "application/json" };

async function serveJournal(t: TestContext): Promise<{ base: string; node: JournalNode }> {
  const dir = mkdtempSync(join(tmpdir(), "tandem-journal-routes-"));
  const network = new MemoryNetwork();
  const config = testJournalConfig();
  const logger = pino({ level: "silent" });
  const node = new JournalNode({
    nodeId: "n1",
    dataDir: dir,
    config,
    key: (await JournalKey.generate()).key,
    transport: new MeshTransport({ mesh: network.join("n1"), peers: [], logger }),
    logger,
  });
  node.start();
  const router = createApiRouter({
    nodeId: "n1",
    status: () => ({}),
    acl: [{ path: "^/", cn: ".*" }],
    logger,
    routes: journalRoutes(node),
  });
  const api = await serveRouter(router);
  t.after(async () => {
    await api.close();
    await node.stop();
    network.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return { base: api.base, node };
}

const post = (base: string, body: unknown) =>
  rawRequest(base, "POST", "/api/v1/journal", { headers: json, body: JSON.stringify(body) });

function outboxCount(node: JournalNode): number {
  return node.db.outboxAfter(0, 2000).length;
}

test("journal route: an object records one entry and answers its fields", async (t) => {
  const { base } = await serveJournal(t);
  const answer = await post(base, { type: "user.create", key: "user:ann", data: { name: "ann" } });
  assert.equal(answer.status, 201, answer.body.toString());
  const entry = answer.json();
  assert.equal(entry.origin, "n1");
  assert.equal(entry.key, "user:ann");
  assert.equal(entry.keySeq, 1);
  assert.match(String(entry.id), /^[0-9a-f-]{36}$/);
});

test("journal route: an array records every entry in one go, in order, and answers an array", async (t) => {
  const { base, node } = await serveJournal(t);
  const batch = Array.from({ length: 300 }, (_, i) => ({
    type: "user.create",
    key: i % 2 === 0 ? "even" : "odd",
    data: { i },
  }));
  const answer = await post(base, batch);
  assert.equal(answer.status, 201, answer.body.toString());
  const entries = JSON.parse(answer.body.toString()) as Array<{ id: string; key: string; keySeq: number }>;
  assert.equal(entries.length, 300);
  assert.deepEqual(
    entries.slice(0, 4).map((e) => [e.key, e.keySeq]),
    [
      ["even", 1],
      ["odd", 1],
      ["even", 2],
      ["odd", 2],
    ],
  );
  assert.equal(entries.at(-1)?.keySeq, 150);
  // Recorded in the order given: the outbox holds them as the answer lists them.
  const outbox = node.db.outboxAfter(0, 1000);
  assert.deepEqual(
    outbox.map((row) => row.entry.id),
    entries.map((e) => e.id),
  );
  assert.deepEqual(
    outbox.slice(0, 2).map((row) => JSON.parse(row.entry.data)),
    [{ i: 0 }, { i: 1 }],
  );
});

test("journal route: one refused entry refuses the whole array, and nothing is recorded", async (t) => {
  const { base, node } = await serveJournal(t);
  assert.equal((await post(base, { type: "first", data: 1 })).status, 201);
  const bad = await post(base, [
    { type: "ok.one", data: 1 },
    { type: "Not A Type", data: 2 },
  ]);
  assert.equal(bad.status, 400);
  assert.match(bad.json().error?.message ?? "", /^entries\[1\]\.type: /);
  const malformed = await post(base, [{ type: "ok.one", data: 1 }, { type: "ok.two" }]);
  assert.equal(malformed.status, 400);
  assert.match(malformed.json().error?.message ?? "", /^1\.data: /);
  assert.equal((await post(base, [])).status, 400);
  const tooMany = await post(
    base,
    Array.from({ length: 1001 }, () => ({ type: "t", data: null })),
  );
  assert.equal(tooMany.status, 400);
  assert.equal(outboxCount(node), 1);
});
