// The journal over Google Cloud Pub/Sub, against the Pub/Sub emulator of the Cloud SDK started here on a
// free port (PUBSUB_EMULATOR_HOST points the client at it): every node applies every other node's entries,
// and a node whose journal was stopped finds what was published meanwhile in its subscription.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { pino } from "pino";
import { pubsubTransport } from "../../src/queue/index.ts";
import {
  appliesEverywhereAndCatchesUp,
  journalNodeIds as ids,
  type JournalNodes,
  startJournalNodes,
} from "../support/journal_nodes.ts";
import { pubsubEmulatorBinary, TestServer } from "../support/test_server.ts";
import { testGate } from "../support/tool_gate.ts";

const { unsupported, skip } = testGate(
  pubsubEmulatorBinary === undefined
    ? "the Pub/Sub emulator (gcloud components install pubsub-emulator, or Debian's google-cloud-cli-pubsub-emulator)"
    : undefined,
);
const project = "tandem-test";

function pubsubNodes(topic: string): Promise<JournalNodes> {
  return startJournalNodes({ type: "pubsub", project, topic }, (nodeId) =>
    pubsubTransport({ nodeId, members: ids, project, topic, logger: pino({ level: "silent" }) }),
  );
}

describe("journal over Pub/Sub (emulator)", { skip, timeout: 240_000 }, () => {
  let emulator: TestServer | null = null;
  before(async () => {
    if (unsupported) assert.fail(unsupported);
    emulator = await TestServer.pubsub();
    process.env.PUBSUB_EMULATOR_HOST = `127.0.0.1:${emulator.port}`;
    process.env.METADATA_SERVER_DETECTION = "none";
  });
  after(async () => {
    await emulator?.stop();
  });

  it("every node applies every other node's entries; a stopped node catches up from its subscription", async (t) => {
    const c = await pubsubNodes(`tandem-test-${Date.now().toString(36)}-journal`);
    t.after(() => c.stop());
    await appliesEverywhereAndCatchesUp(c);
  });
});
