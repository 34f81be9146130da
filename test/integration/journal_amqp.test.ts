// The journal over RabbitMQ, against the machine's shared server with exchange and queues of its own
// (removed after): every node applies every other node's entries; a node whose journal is stopped finds what
// was published meanwhile waiting in its queue when it starts again.
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { connect } from "amqplib";
import { pino } from "pino";
import { amqpTransport } from "../../src/queue/index.ts";
import {
  appliesEverywhereAndCatchesUp,
  journalNodeIds as ids,
  type JournalNodes,
  startJournalNodes,
} from "../support/journal_nodes.ts";
import { accepting } from "../support/test_server.ts";
import { testGate } from "../support/tool_gate.ts";

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
    await appliesEverywhereAndCatchesUp(c);
  });
});
