// Three journals in this process (real database, seal, exec handlers and the transport under test), for the
// queue tests: each node's handler writes the entry it got to applied/<node>/<id>.
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import type { JournalConfig, JournalQueueConfig } from "../../src/config/index.ts";
import { JournalKey } from "../../src/journal/journal_key.ts";
import { JournalNode } from "../../src/journal/journal_node.ts";
import type { JournalTransport } from "../../src/queue/index.ts";
import { waitFor } from "./wait_for.ts";

export const journalNodeIds = ["n1", "n2", "n3"];

/** A journal config for tests in one process: quick retries, no pruning; `overrides` on top. */
export function testJournalConfig(overrides: Partial<JournalConfig> = {}): JournalConfig {
  return {
    keyFile: "unused",
    queue: { type: "mesh" },
    handlers: {},
    steps: [],
    maxAttempts: 5,
    retryBaseMs: 10,
    retryMaxMs: 100,
    concurrency: 4,
    outboxRetentionMs: 0,
    ...overrides,
  };
}

/** An exec handler for every type that writes the entry it got to `dir`/<entry id>. */
export function fileWritingHandler(dir: string): JournalConfig["handlers"] {
  return { "*": { kind: "exec", argv: ["sh", "-c", 'cat > "$0/$TANDEM_ENTRY_ID"', dir], timeoutMs: 10_000 } };
}

export interface JournalNodes {
  dir: string;
  nodes: Map<string, JournalNode>;
  node(id: string): JournalNode;
  /** The entry ids `id`'s handler applied. */
  applied(id: string): string[];
  /** Every node's status, for a failed wait. */
  dump(): string;
  /** Stops `id`'s journal and starts it again on its data (a new transport). */
  restart(id: string): Promise<void>;
  stop(): Promise<void>;
}

export async function startJournalNodes(
  queue: JournalQueueConfig,
  transport: (id: string) => Promise<JournalTransport>,
): Promise<JournalNodes> {
  const dir = mkdtempSync(join(tmpdir(), "tandem-journal-queue-"));
  const { key } = await JournalKey.generate();
  const nodes = new Map<string, JournalNode>();
  const start = async (id: string) => {
    const out = join(dir, "applied", id);
    mkdirSync(out, { recursive: true });
    const config = testJournalConfig({ queue, handlers: fileWritingHandler(out) });
    const logger = pino({ level: "silent" });
    const node = new JournalNode({
      nodeId: id,
      dataDir: join(dir, "data", id),
      config,
      key,
      transport: await transport(id),
      logger,
    });
    node.start();
    nodes.set(id, node);
  };
  for (const id of journalNodeIds) await start(id);
  const node = (id: string) => {
    const n = nodes.get(id);
    assert.ok(n);
    return n;
  };
  return {
    dir,
    nodes,
    node,
    applied(id) {
      const out = join(dir, "applied", id);
      return existsSync(out) ? readdirSync(out).sort() : [];
    },
    dump: () => journalNodeIds.map((id) => `${id}: ${JSON.stringify(node(id).status())}`).join("\n"),
    async restart(id) {
      await node(id).stop();
      await start(id);
    },
    async stop() {
      for (const n of nodes.values()) await n.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** An entry recorded in a test, and where. */
export interface RecordedEntry {
  id: string;
  origin: string;
}

/** Records `perNode` entries on each of `nodes`, on two ordering keys, one node after the other per step. */
export async function recordOnEach(
  c: JournalNodes,
  nodes: readonly string[],
  perNode: number,
  round = 1,
): Promise<RecordedEntry[]> {
  const recorded: RecordedEntry[] = [];
  for (let i = 0; i < perNode; i++) {
    for (const id of nodes) {
      const outcome = await c.node(id).record({ type: "t", key: `k${i % 2}`, data: { round, i, by: id } });
      assert.ok(outcome.ok);
      if (outcome.ok) recorded.push({ id: outcome.entry.id, origin: id });
    }
  }
  return recorded;
}

/** Until every node applied exactly the entries of `recorded` that other nodes recorded. */
export async function waitAllApplied(c: JournalNodes, recorded: readonly RecordedEntry[]): Promise<void> {
  for (const id of journalNodeIds) {
    const expected = recorded
      .filter((r) => r.origin !== id)
      .map((r) => r.id)
      .sort();
    await waitFor(
      `${id} applying`,
      async () => (c.applied(id).join() === expected.join() ? true : undefined),
      c.dump,
    );
  }
}

/**
 * What every queue must do: each node's entries applied on every other; then n3's journal stops, the others
 * record and ship (the queue holds it for n3), and n3, started again, catches up.
 */
export async function appliesEverywhereAndCatchesUp(c: JournalNodes): Promise<void> {
  const recorded = await recordOnEach(c, journalNodeIds, 5, 1);
  await waitAllApplied(c, recorded);
  await c.node("n3").stop();
  recorded.push(...(await recordOnEach(c, ["n1", "n2"], 5, 2)));
  await waitFor(
    "shipped while n3 is away",
    async () => (c.node("n1").status().unshipped === 0 ? true : undefined),
    c.dump,
  );
  await c.restart("n3");
  await waitAllApplied(c, recorded);
}

/** A queue server going down: what is recorded meanwhile stays unshipped, then ships once it is back. */
export async function survivesQueueOutage(
  c: JournalNodes,
  server: { stop(): Promise<void>; start(): Promise<void> },
): Promise<void> {
  assert.ok((await c.node("n1").record({ type: "t", data: "before" })).ok);
  await waitFor(
    "n2 applying the first",
    async () => (c.applied("n2").length === 1 ? true : undefined),
    c.dump,
  );
  await server.stop();
  for (let i = 0; i < 5; i++) assert.ok((await c.node("n1").record({ type: "t", key: "k", data: i })).ok);
  await new Promise((resolve) => setTimeout(resolve, 500));
  assert.equal(c.node("n1").status().unshipped, 5, "kept, not shipped while the queue is down");
  await server.start();
  await waitFor(
    "n2 and n3 applying all six",
    async () => (c.applied("n2").length === 6 && c.applied("n3").length === 6 ? true : undefined),
    c.dump,
  );
  await waitFor("shipped", async () => (c.node("n1").status().unshipped === 0 ? true : undefined), c.dump);
}
