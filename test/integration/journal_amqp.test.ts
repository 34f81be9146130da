// The journal over RabbitMQ, against the machine's shared server with exchange and queues of its own
// (removed after): every node applies every other node's entries; a node whose journal is stopped finds what
// was published meanwhile waiting in its queue when it starts again.
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { connect } from "amqplib";
import { pino } from "pino";
import { amqpTransport } from "../../src/queue/index.ts";
import { journalNodeIds as ids, type JournalNodes, startJournalNodes } from "../support/journal_nodes.ts";
import { accepting } from "../support/test_server.ts";
import { testGate } from "../support/tool_gate.ts";
import { waitFor } from "../support/wait_for.ts";

const url = "amqp://guest:guest@127.0.0.1:5672/";
const { unsupported, skip } = testGate(
  (await accepting(5672)) ? undefined : "RabbitMQ on 127.0.0.1:5672 (guest/guest; rabbitmq-server -detached)",
);

function amqpNodes(prefix: string): Promise<JournalNodes> {
  return startJournalNodes({ type: "amqp", url, prefix, passwordFile: null, passwordEnv: null }, (nodeId) =>
    amqpTransport({ nodeId, members: ids, url, prefix, logger: pino({ level: "silent" }) }),
  );
}

async function removeNames(prefix: string): Promise<void> {
  const connection = await connect(url);
  const channel = await connection.createChannel();
  for (const id of ids) await channel.deleteQueue(`${prefix}.${id}`);
  await channel.deleteExchange(prefix);
  await connection.close();
}

describe("journal over RabbitMQ", { skip, timeout: 180_000 }, () => {
  before(() => {
    if (unsupported) assert.fail(unsupported);
  });

  it("every node applies every other node's entries; a stopped node catches up from its queue", async (t) => {
    const prefix = `tandem.test-${Date.now().toString(36)}.journal`;
    const c = await amqpNodes(prefix);
    t.after(async () => {
      await c.stop();
      await removeNames(prefix);
    });
    const recorded: Array<{ id: string; origin: string }> = [];
    const recordRound = async (nodes: string[], round: number) => {
      for (let i = 0; i < 5; i++) {
        for (const id of nodes) {
          const outcome = await c
            .node(id)
            .record({ type: "t", key: `k${i % 2}`, data: { round, i, by: id } });
          assert.ok(outcome.ok);
          if (outcome.ok) recorded.push({ id: outcome.entry.id, origin: id });
        }
      }
    };
    const allApplied = async () => {
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
    };
    await recordRound(ids, 1);
    await allApplied();
    // n3's journal stops; the others go on; n3 finds it all in its queue.
    await c.node("n3").stop();
    await recordRound(["n1", "n2"], 2);
    await waitFor(
      "shipped while n3 is away (its queue holds it)",
      async () => (c.node("n1").status().unshipped === 0 ? true : undefined),
      c.dump,
    );
    await c.restart("n3");
    await allApplied();
  });
});
