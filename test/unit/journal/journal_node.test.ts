// Three journals over the in-memory mesh with the real transport, database, seal and exec handlers: what
// any node records is applied on every other one, a node cut off catches up when its link returns, and a
// restarted node resumes from its cursors and inbox.
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type TestContext, test } from "node:test";
import { pino } from "pino";
import type { JournalConfig } from "../../../src/config/index.ts";
import { JournalKey } from "../../../src/journal/journal_key.ts";
import { JournalNode, newEntryId } from "../../../src/journal/journal_node.ts";
import { openBatch } from "../../../src/journal/journal_wire.ts";
import { type JournalTransport, MeshTransport, type TransportIo } from "../../../src/queue/index.ts";
import { fileWritingHandler, testJournalConfig } from "../../support/journal_nodes.ts";
import { type MemoryMeshApi, MemoryNetwork } from "../../support/memory_mesh.ts";
import { waitFor } from "../../support/wait_for.ts";

const ids = ["n1", "n2", "n3"];

interface World {
  dir: string;
  network: MemoryNetwork;
  key: JournalKey;
  config: JournalConfig;
  nodes: Map<string, JournalNode>;
  /** One mesh endpoint per node, kept across restarts (a stopped journal unsubscribed from it). */
  meshes: Map<string, MemoryMeshApi>;
}

async function world(t: TestContext): Promise<World> {
  const dir = mkdtempSync(join(tmpdir(), "tandem-journal-node-"));
  const network = new MemoryNetwork();
  const { key } = await JournalKey.generate();
  // Each node's handler writes the entry it got to applied/<node>/<id>.
  const config = testJournalConfig({ handlers: fileWritingHandler("DIR") });
  const w: World = { dir, network, key, config, nodes: new Map(), meshes: new Map() };
  for (const id of ids) startNode(w, id);
  network.connectAll();
  t.after(async () => {
    for (const node of w.nodes.values()) await node.stop();
    network.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return w;
}

function startNode(w: World, id: string): JournalNode {
  const out = join(w.dir, "applied", id);
  mkdirSync(out, { recursive: true });
  const exec = w.config.handlers["*"];
  assert.ok(exec?.kind === "exec");
  const config = { ...w.config, handlers: { "*": { ...exec, argv: [...exec.argv.slice(0, 3), out] } } };
  const mesh = w.meshes.get(id) ?? w.network.join(id);
  w.meshes.set(id, mesh);
  const node = new JournalNode({
    nodeId: id,
    dataDir: join(w.dir, "data", id),
    config,
    key: w.key,
    transport: new MeshTransport({
      mesh,
      peers: ids.filter((p) => p !== id),
      logger: pino({ level: "silent" }),
    }),
    logger: pino({ level: "silent" }),
  });
  node.start();
  w.nodes.set(id, node);
  return node;
}

function node(w: World, id: string): JournalNode {
  const n = w.nodes.get(id);
  assert.ok(n);
  return n;
}

function applied(w: World, id: string): string[] {
  const out = join(w.dir, "applied", id);
  return existsSync(out) ? readdirSync(out).sort() : [];
}

const dump = (w: World) => () => ids.map((id) => `${id}: ${JSON.stringify(node(w, id).status())}`).join("\n");

test("journal node: what any node records is applied on every other node, not on itself", async (t) => {
  const w = await world(t);
  const recorded = new Map<string, string>();
  for (const id of ids) {
    const outcome = await node(w, id).record({ type: "user.create", key: "user:ann", data: { by: id } });
    assert.ok(outcome.ok);
    if (outcome.ok) recorded.set(outcome.entry.id, id);
  }
  for (const id of ids) {
    const others = [...recorded]
      .filter(([, origin]) => origin !== id)
      .map(([entryId]) => entryId)
      .sort();
    await waitFor(
      `${id} applying its peers' entries`,
      async () => (applied(w, id).join() === others.join() ? true : undefined),
      dump(w),
    );
  }
  const [first] = applied(w, "n2");
  // The handler may still be writing the file it just created.
  const got = await waitFor(
    "the handler's copy of the entry",
    async () => {
      try {
        return JSON.parse(readFileSync(join(w.dir, "applied", "n2", first ?? ""), "utf8")) as {
          type: string;
          key: string;
        };
      } catch {
        return undefined;
      }
    },
    dump(w),
  );
  assert.equal(got.type, "user.create");
  assert.equal(got.key, "user:ann");
  await waitFor(
    "every outbox shipped",
    async () => (ids.every((id) => node(w, id).status().unshipped === 0) ? true : undefined),
    dump(w),
  );
});

test("journal node: a node cut off catches up when its link returns; the entry counts as shipped only then", async (t) => {
  const w = await world(t);
  w.network.disconnect("n1", "n3");
  const outcome = await node(w, "n1").record({ type: "setting.set", data: { motd: "hello" } });
  assert.ok(outcome.ok);
  await waitFor("n2 applying", async () => (applied(w, "n2").length === 1 ? true : undefined), dump(w));
  assert.deepEqual(applied(w, "n3"), []);
  assert.equal(node(w, "n1").status().unshipped, 1, "n3 does not hold it yet");
  w.network.connect("n1", "n3");
  await waitFor("n3 catching up", async () => (applied(w, "n3").length === 1 ? true : undefined), dump(w));
  await waitFor("shipped", async () => (node(w, "n1").status().unshipped === 0 ? true : undefined), dump(w));
});

test("journal node: a restarted node keeps what it applied and resumes from its cursors", async (t) => {
  const w = await world(t);
  for (let i = 0; i < 5; i++) await node(w, "n1").record({ type: "t", key: "k", data: i });
  await waitFor("n2 applying 5", async () => (applied(w, "n2").length === 5 ? true : undefined), dump(w));
  await node(w, "n2").stop();
  w.network.disconnect("n1", "n2");
  w.network.disconnect("n2", "n3");
  for (let i = 5; i < 8; i++) await node(w, "n1").record({ type: "t", key: "k", data: i });
  startNode(w, "n2");
  w.network.connect("n1", "n2");
  w.network.connect("n2", "n3");
  await waitFor("n2 applying 8", async () => (applied(w, "n2").length === 8 ? true : undefined), dump(w));
  assert.equal(node(w, "n2").status().deadLetters, 0);
});

test("journal: the mesh's peers asking from the same cursor share one seal", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "tandem-journal-seal-"));
  let io: TransportIo | null = null;
  const transport: JournalTransport = {
    kind: "stub",
    start: (given) => {
      io = given;
    },
    recorded: () => {},
    status: () => ({}),
    stop: async () => {},
  };
  const { key } = await JournalKey.generate();
  const node = new JournalNode({
    nodeId: "n1",
    dataDir: dir,
    config: testJournalConfig(),
    key,
    transport,
    logger: pino({ level: "silent" }),
  });
  node.start();
  t.after(async () => {
    await node.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  const outbox = io as TransportIo | null;
  assert.ok(outbox !== null);
  const recorded = await node.recordMany([1, 2, 3].map((i) => ({ type: "t", data: i })));
  assert.ok(recorded.ok);
  const first = await outbox.outboxAfter(0, 256);
  assert.ok(first !== null);
  assert.equal(await outbox.outboxAfter(0, 256), first, "the second peer gets the same sealed batch");
  await node.record({ type: "t", data: 4 });
  assert.equal(await outbox.outboxAfter(0, 256), first, "a later entry goes in the next batch");
  const smaller = await outbox.outboxAfter(0, 2);
  assert.deepEqual([smaller?.firstSeq, smaller?.lastSeq], [1, 2], "a smaller limit seals afresh");
  const next = await outbox.outboxAfter(first.lastSeq, 256);
  assert.deepEqual([next?.firstSeq, next?.lastSeq], [4, 4]);
  const opened = await openBatch(first.message, key);
  assert.ok(opened.ok);
  assert.deepEqual(
    opened.entries.map((e) => e.data),
    ["1", "2", "3"],
  );
});

test("journal: entry ids are UUIDs of version 7: the record's ms first, so they sort by it", () => {
  const ids = [1_700_000_000_000, 1_700_000_000_001, 1_700_000_000_256].map((ms) => newEntryId(ms));
  for (const id of ids)
    assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.deepEqual([...ids].sort(), ids);
  assert.equal(Number.parseInt(ids[0]?.replace("-", "").slice(0, 12) ?? "", 16), 1_700_000_000_000);
  assert.notEqual(newEntryId(1), newEntryId(1));
});
