// Mesh subscriptions return their unsubscribe (a stopped capability leaves nothing behind), over real
// loopback links between two meshes.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, test } from "node:test";
import { pino } from "pino";
import { Mesh, RemoteError } from "../../src/mesh/index.ts";
import { reservePortRange } from "../support/free_ports.ts";

const psk = randomBytes(32);
const encoder = new TextEncoder();
const decoder = new TextDecoder();

async function pair(): Promise<{ a: Mesh; b: Mesh }> {
  const { base, release } = await reservePortRange(2);
  const ports = { a: base, b: base + 10 };
  const start = (id: "a" | "b") =>
    Mesh.start({
      selfId: id,
      clusterName: "subscriptions",
      listenHost: "127.0.0.1",
      listenPort: ports[id],
      peers: (["a", "b"] as const)
        .filter((peer) => peer !== id)
        .map((peer) => ({ id: peer, address: `127.0.0.1:${ports[peer]}` })),
      security: { mode: "psk", key: psk },
      logger: pino({ level: "silent" }),
    });
  const [a, b] = await Promise.all([start("a"), start("b")]);
  after(async () => {
    await Promise.all([a.close(), b.close()]);
    release();
  });
  while (!a.peers().every((p) => p.connected)) await new Promise((resolve) => setTimeout(resolve, 10));
  return { a, b };
}

test("mesh: an unsubscribed message listener and request handler are no longer called", async () => {
  const { a, b } = await pair();
  const heard: string[] = [];
  const stopFirst = b.onMessage("t", (_from, payload) => heard.push(`first ${decoder.decode(payload)}`));
  b.onMessage("t", (_from, payload) => heard.push(`second ${decoder.decode(payload)}`));
  const received = () => heard.filter((h) => h.startsWith("second")).length;

  a.send("b", "t", encoder.encode("1"));
  while (received() < 1) await new Promise((resolve) => setTimeout(resolve, 5));
  stopFirst();
  stopFirst(); // idempotent
  a.send("b", "t", encoder.encode("2"));
  while (received() < 2) await new Promise((resolve) => setTimeout(resolve, 5));
  // Listeners of one channel run in turn for each message: the second heard "2", the first did not.
  assert.deepEqual(heard, ["first 1", "second 1", "second 2"]);

  const stopEcho = b.onRequest("echo", (_from, payload) => payload);
  assert.equal(decoder.decode(await a.request("b", "echo", encoder.encode("hi"))), "hi");
  stopEcho();
  await assert.rejects(a.request("b", "echo", encoder.encode("hi")), RemoteError);
  // The channel is free again for another handler.
  b.onRequest("echo", () => encoder.encode("again"));
  assert.equal(decoder.decode(await a.request("b", "echo", new Uint8Array())), "again");
});

test("mesh: an unsubscribed link listener misses the next link event", async () => {
  const { a, b } = await pair();
  const downs: string[] = [];
  const stopWatching = a.on("link:down", (peer) => downs.push(`watched ${peer}`));
  a.on("link:down", (peer) => downs.push(`kept ${peer}`));
  stopWatching();
  await b.close();
  while (downs.length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
  assert.deepEqual(downs, ["kept b"]);
});
