// The store API and CLI over the real store: three Replicators on SQLite files, linked by the in-memory
// mesh, with the HTTP API of n1 and n2 on loopback sockets.
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { pino } from "pino";
import { createApiRouter, startLocalApi } from "../../src/api/index.ts";
import { storeRoutes } from "../../src/api/store_routes.ts";
import { registerSyncCommand } from "../../src/cli/commands/sync.ts";
import { parseApiUrls, StoreClient } from "../../src/cli/store_client.ts";
import { Replicator } from "../../src/store/replicator.ts";
import { SqliteLocalStore } from "../../src/store/sqlite_store.ts";
import { MemoryNetwork } from "../support/memory_mesh.ts";
import { runCli } from "../unit/cli/harness.ts";

const ids = ["n1", "n2", "n3"];
const valueBytesMax = 8 * 1024 * 1024;

interface Node {
  replicator: Replicator;
  store: SqliteLocalStore;
  api: Server;
  base: string;
}

/** Writes that are acknowledged never wait this long; a write that cannot be acknowledged waits exactly this. */
const writeTimeoutMs = 30_000;

async function startFleet(dir: string, options: { writeTimeoutMs?: number } = {}) {
  const network = new MemoryNetwork();
  const logger = pino({ level: "silent" });
  const nodes = new Map<string, Node>();
  for (const id of ids) {
    const store = SqliteLocalStore.open({ path: join(dir, `${id}.db`), nodeId: id, valueBytesMax });
    const replicator = new Replicator({
      selfId: id,
      peers: ids.filter((p) => p !== id),
      readOnly: false,
      store,
      mesh: network.join(id),
      logger,
      writeTimeoutMs: options.writeTimeoutMs ?? writeTimeoutMs,
      antiEntropyIntervalMs: 200,
      tickMs: 5,
      valueBytesMax,
    });
    const router = createApiRouter({
      nodeId: id,
      status: () => ({}),
      acl: [],
      logger,
      routes: storeRoutes(replicator, { nodeId: id, logger, valueBytesMax }),
    });
    const api = await startLocalApi("127.0.0.1", 0, router);
    replicator.start();
    nodes.set(id, {
      replicator,
      store,
      api,
      base: `http://127.0.0.1:${(api.address() as AddressInfo).port}`,
    });
  }
  network.connectAll();
  const node = (id: string) => nodes.get(id)!;
  const close = async () => {
    for (const n of nodes.values()) {
      n.replicator.stop();
      n.api.closeAllConnections();
      await new Promise((resolve) => n.api.close(resolve));
      n.store.close();
    }
    network.close();
  };
  return { network, node, close };
}

async function until(condition: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

test("store api integration: put acked by all, readable on every node; watch on n2 sees n1's writes", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "tandem-store-api-"));
  const fleet = await startFleet(dir);
  t.after(async () => {
    await fleet.close();
    await rm(dir, { recursive: true, force: true });
  });
  const n1 = await StoreClient.connect(parseApiUrls([fleet.node("n1").base]));
  const n2 = await StoreClient.connect(parseApiUrls([fleet.node("n2").base]));
  const abort = new AbortController();
  t.after(() => abort.abort());
  const watched = (async () => {
    for await (const event of n2.watch("certs/", { signal: abort.signal })) return event;
    return null;
  })();

  const result = await n1.put("certs/web.pem", Buffer.from("PEM"), "all");
  assert.equal(result.status, 200);
  assert.deepEqual([...result.outcome.hostsOk].sort(), ["n2", "n3"]);
  assert.equal(Buffer.from(fleet.node("n3").store.get("certs/web.pem")?.value ?? []).toString(), "PEM");
  const event = await watched;
  assert.equal(event?.path, "certs/web.pem");
  assert.match(event?.id ?? "", /^n2:\d+$/);
});

test("store api integration: a write n3 cannot acknowledge answers 202, then spreads when it is back", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "tandem-store-api-"));
  // The write waits this long for n3; n2's acknowledgement must come within it, even on a loaded machine.
  const fleet = await startFleet(dir, { writeTimeoutMs: 5_000 });
  t.after(async () => {
    await fleet.close();
    await rm(dir, { recursive: true, force: true });
  });
  fleet.network.disconnect("n1", "n3");
  fleet.network.disconnect("n2", "n3");
  const client = await StoreClient.connect(parseApiUrls([fleet.node("n1").base]));
  const result = await client.put("cfg/app.yml", Buffer.from("v: 1"), "all");
  assert.equal(result.status, 202);
  assert.equal(result.outcome.acked, false);
  assert.deepEqual(result.outcome.hostsOk, ["n2"]);
  assert.deepEqual(
    result.outcome.hostsErr.map((h) => h.host),
    ["n3"],
  );
  fleet.network.connectAll();
  await until(() => fleet.node("n3").store.get("cfg/app.yml") !== null);
});

test("store api integration: the client fails over when n1's API goes away", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "tandem-store-api-"));
  const fleet = await startFleet(dir);
  t.after(async () => {
    await fleet.close();
    await rm(dir, { recursive: true, force: true });
  });
  const client = await StoreClient.connect(
    parseApiUrls([`${fleet.node("n1").base},${fleet.node("n2").base}`]),
  );
  assert.equal((await client.put("a", Buffer.from("1"))).status, 200);
  assert.equal(client.current.url.origin, fleet.node("n1").base);
  const n1 = fleet.node("n1").api;
  n1.closeAllConnections();
  await new Promise((resolve) => n1.close(resolve));
  assert.equal((await client.put("b", Buffer.from("2"))).status, 200);
  assert.equal(client.current.url.origin, fleet.node("n2").base);
  await until(() => fleet.node("n1").store.get("b") !== null);
});

test("store api integration: tandem sync mirrors a folder into the replicated store", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "tandem-store-api-"));
  const fleet = await startFleet(dir);
  const staging = join(dir, "staging");
  t.after(async () => {
    await fleet.close();
    await rm(dir, { recursive: true, force: true });
  });
  await mkdir(join(staging, "web"), { recursive: true });
  for (let i = 0; i < 120; i++) await writeFile(join(staging, "web", `site${i}.pem`), `cert ${i}`);
  const base = ["sync", staging, "certs", "--api", fleet.node("n1").base, "--min-acks", "all"];
  const first = await runCli(registerSyncCommand, [...base, "--delete"]);
  assert.equal(process.exitCode ?? 0, 0, first.stderr);
  assert.equal(first.stdout, "120 to upload, 0 to delete, 0 unchanged: done\n");
  await until(() => fleet.node("n3").store.list("certs/", { limit: 1000 }).length === 120);

  await rm(join(staging, "web", "site0.pem"));
  await writeFile(join(staging, "web", "site1.pem"), "renewed");
  const second = await runCli(registerSyncCommand, [...base, "--delete"]);
  assert.equal(second.stdout, "1 to upload, 1 to delete, 118 unchanged: done\n");
  await until(() => fleet.node("n2").store.get("certs/web/site0.pem")?.deleted === true);
  assert.equal(
    Buffer.from(fleet.node("n3").store.get("certs/web/site1.pem")?.value ?? []).toString(),
    "renewed",
  );
});
