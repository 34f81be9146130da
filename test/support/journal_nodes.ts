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

export const journalNodeIds = ["n1", "n2", "n3"];

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
    const config: JournalConfig = {
      keyFile: "unused",
      queue,
      handlers: {
        "*": { kind: "exec", argv: ["sh", "-c", 'cat > "$0/$TANDEM_ENTRY_ID"', out], timeoutMs: 10_000 },
      },
      steps: [],
      maxAttempts: 5,
      retryBaseMs: 10,
      retryMaxMs: 100,
      concurrency: 4,
    };
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
