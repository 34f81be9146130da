// The journal over NATS JetStream, against real servers: three journals (real database, seal, handlers, the
// NATS transport) on the machine's shared NATS with a fresh stream of their own apply every node's entries
// on every other; then, on a NATS of the test's own, entries recorded while it is down are kept, and
// shipped and applied once it is back.
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { before, describe, it } from "node:test";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { pino } from "pino";
import type { JournalConfig } from "../../src/config/index.ts";
import { JournalKey } from "../../src/journal/journal_key.ts";
import { JournalNode } from "../../src/journal/journal_node.ts";
import { natsTransport } from "../../src/queue/index.ts";
import { accepting, natsServerBinary, TestNatsServer } from "../support/nats_server.ts";
import { testGate } from "../support/tool_gate.ts";
import { waitFor } from "../support/wait_for.ts";

const ids = ["n1", "n2", "n3"];
const sharedUrl = "nats://127.0.0.1:4222";
const missing =
  natsServerBinary === undefined
    ? "nats-server (apt-get install nats-server)"
    : (await accepting(4222))
      ? undefined
      : "NATS with JetStream on 127.0.0.1:4222 (nats-server -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server)";
const { unsupported, skip } = testGate(missing);

interface Cluster {
  dir: string;
  nodes: Map<string, JournalNode>;
  stop(): Promise<void>;
}

async function cluster(url: string, stream: string): Promise<Cluster> {
  const dir = mkdtempSync(join(tmpdir(), "tandem-journal-nats-"));
  const { key } = await JournalKey.generate();
  const nodes = new Map<string, JournalNode>();
  for (const id of ids) {
    const out = join(dir, "applied", id);
    mkdirSync(out, { recursive: true });
    const config: JournalConfig = {
      keyFile: "unused",
      queue: {
        type: "nats",
        servers: [url],
        stream,
        subjectPrefix: `tandem.${stream}.journal`,
        tokenFile: null,
        tokenEnv: null,
      },
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
    const transport = await natsTransport({
      nodeId: id,
      servers: [url],
      stream,
      subjectPrefix: `tandem.${stream}.journal`,
      logger,
    });
    const node = new JournalNode({
      nodeId: id,
      dataDir: join(dir, "data", id),
      config,
      key,
      transport,
      logger,
    });
    node.start();
    nodes.set(id, node);
  }
  return {
    dir,
    nodes,
    async stop() {
      for (const node of nodes.values()) await node.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function applied(c: Cluster, id: string): string[] {
  const out = join(c.dir, "applied", id);
  return existsSync(out) ? readdirSync(out).sort() : [];
}

function node(c: Cluster, id: string): JournalNode {
  const n = c.nodes.get(id);
  assert.ok(n);
  return n;
}

const dump = (c: Cluster) => () =>
  ids.map((id) => `${id}: ${JSON.stringify(node(c, id).status())}`).join("\n");

describe("journal over NATS JetStream", { skip, timeout: 180_000 }, () => {
  before(() => {
    if (unsupported) assert.fail(unsupported);
  });

  it("on the shared server, a fresh stream: every node applies every other node's entries, once", async (t) => {
    const stream = `TEST_${Date.now().toString(36)}_${Math.floor(Math.random() * 1e6)}`;
    const c = await cluster(sharedUrl, stream);
    t.after(async () => {
      await c.stop();
      const nc = await connect({ servers: sharedUrl });
      await (await jetstreamManager(nc)).streams.delete(stream).catch(() => false);
      await nc.close();
    });
    const recorded: Array<{ id: string; origin: string }> = [];
    for (let i = 0; i < 10; i++) {
      for (const id of ids) {
        const outcome = await node(c, id).record({
          type: "user.create",
          key: `user:${i % 3}`,
          data: { i, by: id },
        });
        assert.ok(outcome.ok);
        if (outcome.ok) recorded.push({ id: outcome.entry.id, origin: id });
      }
    }
    for (const id of ids) {
      const expected = recorded
        .filter((r) => r.origin !== id)
        .map((r) => r.id)
        .sort();
      await waitFor(
        `${id} applying`,
        async () => (applied(c, id).join() === expected.join() ? true : undefined),
        dump(c),
      );
    }
    await waitFor(
      "every outbox shipped",
      async () => (ids.every((id) => node(c, id).status().unshipped === 0) ? true : undefined),
      dump(c),
    );
  });

  it("entries recorded while NATS is down are kept, then shipped and applied when it is back", async (t) => {
    const storeDir = mkdtempSync(join(tmpdir(), "tandem-nats-store-"));
    const server = await TestNatsServer.start(storeDir);
    const c = await cluster(server.url, "TANDEM_outage");
    t.after(async () => {
      await c.stop();
      await server.stop();
      rmSync(storeDir, { recursive: true, force: true });
    });
    assert.ok((await node(c, "n1").record({ type: "t", data: "before" })).ok);
    await waitFor(
      "n2 applying the first",
      async () => (applied(c, "n2").length === 1 ? true : undefined),
      dump(c),
    );
    await server.stop();
    for (let i = 0; i < 5; i++) assert.ok((await node(c, "n1").record({ type: "t", key: "k", data: i })).ok);
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.equal(node(c, "n1").status().unshipped, 5, "kept, not shipped while the queue is down");
    await server.start();
    await waitFor(
      "n2 and n3 applying all six",
      async () => (applied(c, "n2").length === 6 && applied(c, "n3").length === 6 ? true : undefined),
      dump(c),
    );
    await waitFor(
      "shipped",
      async () => (node(c, "n1").status().unshipped === 0 ? true : undefined),
      dump(c),
    );
  });
});
