// The journal over NATS JetStream, against real servers: three journals on the machine's shared NATS with a
// fresh stream of their own apply every node's entries on every other; then, on a NATS of the test's own,
// entries recorded while it is down are kept, and shipped and applied once it is back.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { before, describe, it } from "node:test";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { pino } from "pino";
import { natsTransport } from "../../src/queue/index.ts";
import { journalNodeIds as ids, type JournalNodes, startJournalNodes } from "../support/journal_nodes.ts";
import { accepting, natsServerBinary, TestServer } from "../support/test_server.ts";
import { testGate } from "../support/tool_gate.ts";
import { waitFor } from "../support/wait_for.ts";

const sharedUrl = "nats://127.0.0.1:4222";
const missing =
  natsServerBinary === undefined
    ? "nats-server (apt-get install nats-server)"
    : (await accepting(4222))
      ? undefined
      : "NATS with JetStream on 127.0.0.1:4222 (nats-server -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server)";
const { unsupported, skip } = testGate(missing);

function natsNodes(url: string, stream: string): Promise<JournalNodes> {
  const subjectPrefix = `tandem.${stream}.journal`;
  return startJournalNodes(
    { type: "nats", servers: [url], stream, subjectPrefix, tokenFile: null, tokenEnv: null },
    (nodeId) =>
      natsTransport({ nodeId, servers: [url], stream, subjectPrefix, logger: pino({ level: "silent" }) }),
  );
}

describe("journal over NATS JetStream", { skip, timeout: 180_000 }, () => {
  before(() => {
    if (unsupported) assert.fail(unsupported);
  });

  it("on the shared server, a fresh stream: every node applies every other node's entries, once", async (t) => {
    const stream = `TEST_${Date.now().toString(36)}_${Math.floor(Math.random() * 1e6)}`;
    const c = await natsNodes(sharedUrl, stream);
    t.after(async () => {
      await c.stop();
      const nc = await connect({ servers: sharedUrl });
      await (await jetstreamManager(nc)).streams.delete(stream).catch(() => false);
      await nc.close();
    });
    const recorded: Array<{ id: string; origin: string }> = [];
    for (let i = 0; i < 10; i++) {
      for (const id of ids) {
        const outcome = await c
          .node(id)
          .record({ type: "user.create", key: `user:${i % 3}`, data: { i, by: id } });
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
        async () => (c.applied(id).join() === expected.join() ? true : undefined),
        c.dump,
      );
    }
    await waitFor(
      "every outbox shipped",
      async () => (ids.every((id) => c.node(id).status().unshipped === 0) ? true : undefined),
      c.dump,
    );
  });

  it("entries recorded while NATS is down are kept, then shipped and applied when it is back", async (t) => {
    const storeDir = mkdtempSync(join(tmpdir(), "tandem-nats-store-"));
    const server = await TestServer.nats(storeDir);
    const c = await natsNodes(`nats://127.0.0.1:${server.port}`, "TANDEM_outage");
    t.after(async () => {
      await c.stop();
      await server.stop();
      rmSync(storeDir, { recursive: true, force: true });
    });
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
  });
});
