// The journal over NATS JetStream, against real servers: three journals on the machine's shared NATS with a
// fresh stream of their own apply every node's entries on every other, and a node whose journal was stopped
// catches up; then, on a NATS of the test's own, entries recorded while it is down are kept, and shipped and
// applied once it is back.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { before, describe, it } from "node:test";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { pino } from "pino";
import { natsTransport } from "../../src/queue/index.ts";
import {
  appliesEverywhereAndCatchesUp,
  type JournalNodes,
  startJournalNodes,
  survivesQueueOutage,
} from "../support/journal_nodes.ts";
import { accepting, natsServerBinary, TestServer } from "../support/test_server.ts";
import { testGate } from "../support/tool_gate.ts";

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

  it("on the shared server, a fresh stream: applied everywhere, once; a stopped node catches up", async (t) => {
    const stream = `TEST_${Date.now().toString(36)}_${Math.floor(Math.random() * 1e6)}`;
    const c = await natsNodes(sharedUrl, stream);
    t.after(async () => {
      await c.stop();
      const nc = await connect({ servers: sharedUrl });
      await (await jetstreamManager(nc)).streams.delete(stream).catch(() => false);
      await nc.close();
    });
    await appliesEverywhereAndCatchesUp(c);
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
    await survivesQueueOutage(c, server);
  });
});
