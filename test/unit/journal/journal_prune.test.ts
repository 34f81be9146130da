// Pruning between real journals over the in-memory mesh: the origin prunes only what every peer holds
// (a peer cut off holds it back), and a node that joins afterwards receives the history still kept, its
// ordering key starting where that history starts instead of waiting for the pruned entries for good.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type TestContext, test } from "node:test";
import { pino } from "pino";
import type { JournalConfig } from "../../../src/config/index.ts";
import { JournalKey } from "../../../src/journal/journal_key.ts";
import { JournalNode } from "../../../src/journal/journal_node.ts";
import { MeshTransport } from "../../../src/queue/index.ts";
import { MemoryNetwork } from "../../support/memory_mesh.ts";
import { waitFor } from "../../support/wait_for.ts";

const retentionMs = 60_000;

async function world(t: TestContext) {
  const dir = mkdtempSync(join(tmpdir(), "tandem-journal-prune-"));
  const network = new MemoryNetwork();
  const { key } = await JournalKey.generate();
  const applied = new Map<string, string[]>();
  const nodes = new Map<string, { node: JournalNode; transport: MeshTransport }>();
  const start = (id: string, peers: string[]) => {
    applied.set(id, []);
    const config: JournalConfig = {
      keyFile: "unused",
      queue: { type: "mesh" },
      handlers: {},
      steps: [],
      maxAttempts: 3,
      retryBaseMs: 10,
      retryMaxMs: 10,
      concurrency: 4,
      outboxRetentionMs: retentionMs,
    };
    const logger = pino({ level: "silent" });
    const transport = new MeshTransport({ mesh: network.join(id), peers, logger });
    const node = new JournalNode({
      nodeId: id,
      dataDir: join(dir, id),
      config,
      key,
      transport,
      logger,
      handlers: {
        "*": (entry) => void applied.get(id)?.push(`${entry.key}#${(entry.data as { n: number }).n}`),
      },
    });
    node.start();
    nodes.set(id, { node, transport });
    return node;
  };
  t.after(async () => {
    for (const { node } of nodes.values()) await node.stop();
    network.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const dump = () => [...nodes].map(([id, n]) => `${id}: ${JSON.stringify(n.node.status())}`).join("\n");
  return { network, applied, nodes, start, dump };
}

test("journal pruning: only what every peer holds; a node joining later starts its keys at the kept history", async (t) => {
  const w = await world(t);
  const n1 = w.start("n1", ["n2", "n3"]);
  w.start("n2", ["n1", "n3"]);
  w.start("n3", ["n1", "n2"]);
  w.network.connectAll();
  w.network.disconnect("n1", "n3");
  for (let n = 1; n <= 5; n++) {
    const outcome = await n1.record({ type: "user.update", key: "user:ann", data: { n } });
    assert.ok(outcome.ok);
  }
  await waitFor(
    "n2 applying n1's entries",
    async () => (w.applied.get("n2")?.length === 5 ? true : undefined),
    w.dump,
  );
  const later = Date.now() + retentionMs + 1;
  assert.equal(await n1.prune(later), 0, "n3 holds none of them yet: nothing is shipped");
  w.network.connect("n1", "n3");
  await waitFor("n1's outbox shipped", async () => (n1.status().unshipped === 0 ? true : undefined), w.dump);
  assert.equal(await n1.prune(Date.now()), 0, "within the retention: nothing goes");
  assert.equal(await n1.prune(later), 4, "all but the newest");
  assert.deepEqual(n1.status().outboxSeqs, { first: 5, last: 5 });

  // n4 joins: it receives n1's kept entry (keySeq 5 of user:ann) and applies it without waiting for 1-4,
  // then the entries recorded after, in order.
  const n4 = w.start("n4", ["n1", "n2", "n3"]);
  for (const id of ["n1", "n2", "n3"])
    w.nodes.get(id)?.transport.setPeers(["n1", "n2", "n3", "n4"].filter((p) => p !== id));
  w.network.connectAll();
  assert.ok((await n1.record({ type: "user.update", key: "user:ann", data: { n: 6 } })).ok);
  await waitFor(
    "n4 applying the kept history",
    async () => (w.applied.get("n4")?.length === 2 ? true : undefined),
    w.dump,
  );
  assert.deepEqual(w.applied.get("n4"), ["user:ann#5", "user:ann#6"]);
  assert.deepEqual(w.applied.get("n3"), [
    "user:ann#1",
    "user:ann#2",
    "user:ann#3",
    "user:ann#4",
    "user:ann#5",
    "user:ann#6",
  ]);
  // A handler runs before its result is stored (in the next turn's transaction): the inbox empties then.
  await waitFor("n4's inbox emptied", async () => (n4.status().inbox === 0 ? true : undefined), w.dump);
});
