// The journal over Redis Streams, against real servers: three journals on the machine's shared Redis with a
// fresh stream key apply every node's entries on every other, and a stopped node catches up; then, on a Redis of the test's own, entries
// recorded while it is down are kept, and shipped and applied once it is back; and a node stopped with
// messages read but not yet acknowledged reads them again from its group's pending list.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { before, describe, it } from "node:test";
import { pino } from "pino";
import { createClient } from "redis";
import { redisTransport } from "../../src/queue/index.ts";
import {
  appliesEverywhereAndCatchesUp,
  type JournalNodes,
  startJournalNodes,
  survivesQueueOutage,
} from "../support/journal_nodes.ts";
import { accepting, redisServerBinary, TestServer } from "../support/test_server.ts";
import { testGate } from "../support/tool_gate.ts";
import { waitFor } from "../support/wait_for.ts";

const sharedUrl = "redis://127.0.0.1:6379";
const missing =
  redisServerBinary === undefined
    ? "redis-server (apt-get install redis-server)"
    : (await accepting(6379))
      ? undefined
      : "Redis on 127.0.0.1:6379 (redis-server --daemonize yes --bind 127.0.0.1 --port 6379)";
const { unsupported, skip } = testGate(missing);

function redisNodes(url: string, stream: string): Promise<JournalNodes> {
  return startJournalNodes({ type: "redis", url, stream, passwordFile: null, passwordEnv: null }, (nodeId) =>
    redisTransport({ nodeId, url, stream, logger: pino({ level: "silent" }) }),
  );
}

describe("journal over Redis Streams", { skip, timeout: 180_000 }, () => {
  before(() => {
    if (unsupported) assert.fail(unsupported);
  });

  it("on the shared server, a fresh stream: applied everywhere, once; a stopped node catches up", async (t) => {
    const stream = `tandem:test-${Date.now().toString(36)}-${Math.floor(Math.random() * 1e6)}:journal`;
    const c = await redisNodes(sharedUrl, stream);
    t.after(async () => {
      await c.stop();
      const client = createClient({ url: sharedUrl });
      await client.connect();
      await client.del(stream);
      await client.close();
    });
    await appliesEverywhereAndCatchesUp(c);
  });

  it("entries recorded while Redis is down are kept, then shipped and applied when it is back", async (t) => {
    const dir = mkdtempSync(join(tmpdir(), "tandem-redis-"));
    const server = await TestServer.redis(dir);
    const c = await redisNodes(`redis://127.0.0.1:${server.port}`, "tandem:outage:journal");
    t.after(async () => {
      await c.stop();
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    });
    await survivesQueueOutage(c, server);
  });

  it("messages read but never acknowledged (the node died first) are read again when it starts", async (t) => {
    const dir = mkdtempSync(join(tmpdir(), "tandem-redis-"));
    const server = await TestServer.redis(dir);
    const url = `redis://127.0.0.1:${server.port}`;
    const stream = "tandem:pending:journal";
    const c = await redisNodes(url, stream);
    const raw = createClient({ url });
    await raw.connect();
    t.after(async () => {
      await raw.close();
      await c.stop();
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    });
    assert.ok((await c.node("n1").record({ type: "t", data: "first" })).ok);
    await waitFor(
      "n2 applying the first",
      async () => (c.applied("n2").length === 1 ? true : undefined),
      c.dump,
    );
    // n2 stops; n1 records three more; then n2's consumer reads them and "dies" before acknowledging.
    await c.node("n2").stop();
    for (let i = 0; i < 3; i++) assert.ok((await c.node("n1").record({ type: "t", key: "k", data: i })).ok);
    await waitFor("shipped", async () => (c.node("n1").status().unshipped === 0 ? true : undefined), c.dump);
    const read = await raw.xReadGroup("tandem-n2", "n2", { key: stream, id: ">" }, { COUNT: 100 });
    assert.ok(read !== null, "n2's group had unread messages");
    assert.equal(((await raw.xPending(stream, "tandem-n2")) as { pending: number }).pending > 0, true);
    await c.restart("n2");
    await waitFor(
      "n2 applying the three from its pending list",
      async () => (c.applied("n2").length === 4 ? true : undefined),
      c.dump,
    );
    await waitFor(
      "nothing pending for n2",
      async () =>
        ((await raw.xPending(stream, "tandem-n2")) as { pending: number }).pending === 0 ? true : undefined,
      c.dump,
    );
  });
});
