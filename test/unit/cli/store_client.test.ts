import assert from "node:assert/strict";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { test } from "node:test";
import {
  parseApiUrls,
  resolveEndpoints,
  StoreApiError,
  StoreClient,
  StorePathError,
  StoreUnreachableError,
  storeUrlPath,
} from "../../../src/cli/store_client.ts";
import { MemoryStoreService } from "../../support/memory_store_service.ts";
import { startStoreServer } from "../api/store_http.ts";

/** A loopback port with nothing listening: bound, then closed. */
async function deadUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return `http://127.0.0.1:${port}`;
}

test("store client: --api values split on commas and repeat; only http(s) URLs", () => {
  assert.deepEqual(
    parseApiUrls(["http://127.0.0.1:1,http://127.0.0.1:2", " http://127.0.0.1:3 "]).map((u) => u.port),
    ["1", "2", "3"],
  );
  assert.throws(() => parseApiUrls(["ftp://127.0.0.1"]), TypeError);
  assert.throws(() => parseApiUrls(["not a url"]), TypeError);
});

test("store client: fails over from a dead URL to a live one, then prefers the live one", async (t) => {
  const api = await startStoreServer(new MemoryStoreService());
  t.after(() => api.close());
  const client = await StoreClient.connect(parseApiUrls([await deadUrl(), api.base]));
  const result = await client.put("a/b", Buffer.from("v"), 0);
  assert.equal(result.status, 200);
  assert.equal(client.current.url.origin, api.base);
  assert.equal((await client.getRaw("a/b"))?.toString(), "v");
  assert.equal(await client.get("missing"), null);
});

test("store client: a 4xx is the answer (no failover); a 5xx fails over", async (t) => {
  const first = new MemoryStoreService({ readOnly: true });
  const second = new MemoryStoreService();
  const readOnlyApi = await startStoreServer(first);
  const writableApi = await startStoreServer(second);
  const broken = createServer((_req, res) => {
    res.writeHead(503, { "content-type": "application/json" });
    res.end('{"error":{"code":"unavailable","message":"down for maintenance"}}');
  });
  await new Promise<void>((resolve) => broken.listen(0, "127.0.0.1", resolve));
  t.after(async () => {
    await readOnlyApi.close();
    await writableApi.close();
    broken.close();
  });
  const brokenUrl = `http://127.0.0.1:${(broken.address() as AddressInfo).port}`;

  const refused = await StoreClient.connect(parseApiUrls([readOnlyApi.base, writableApi.base]));
  await assert.rejects(refused.put("a", Buffer.from("v")), (error: unknown) => {
    assert.ok(error instanceof StoreApiError);
    assert.equal(error.status, 409);
    assert.equal(error.code, "read_only_replica");
    return true;
  });
  assert.equal(second.writeCalls.length, 0, "a 4xx never goes to the next node");

  const failover = await StoreClient.connect(parseApiUrls([brokenUrl, writableApi.base]));
  assert.equal((await failover.put("a", Buffer.from("v"), 0)).status, 200);

  const onlyBroken = await StoreClient.connect(parseApiUrls([brokenUrl]));
  await assert.rejects(onlyBroken.list(""), { name: "StoreApiError", message: "down for maintenance" });
  const nothing = await StoreClient.connect(parseApiUrls([await deadUrl()]));
  await assert.rejects(nothing.list(""), StoreUnreachableError);
});

test("store client: a hostname expands to each of its addresses, Host header kept", async () => {
  const endpoints = await resolveEndpoints(parseApiUrls(["http://localhost:7401/"]));
  assert.ok(endpoints.length >= 1);
  assert.ok(endpoints.some((e) => e.url.hostname === "127.0.0.1" || e.url.hostname === "[::1]"));
  for (const endpoint of endpoints) {
    assert.equal(endpoint.host, "localhost:7401");
    assert.equal(endpoint.hostname, "localhost");
  }
});

test("store client: a hostname whose addresses include a dead one still reaches the live one", async (t) => {
  const api = await startStoreServer(new MemoryStoreService());
  t.after(() => api.close());
  const { port } = new URL(api.base);
  // localhost may resolve to ::1 too, where nothing listens: that attempt fails over to 127.0.0.1.
  const client = await StoreClient.connect(parseApiUrls([`http://localhost:${port}`]));
  assert.equal((await client.put("x", Buffer.from("1"), 0)).status, 200);
  assert.equal(client.current.url.hostname, "127.0.0.1");
});

test("store client: paginated listing and a watch that resumes across a dropped stream", async (t) => {
  const service = new MemoryStoreService();
  const api = await startStoreServer(service);
  t.after(() => api.close());
  const client = await StoreClient.connect(parseApiUrls([api.base]));
  await client.batch(
    Array.from({ length: 5 }, (_, i) => ({ path: `p/${i}`, value: Buffer.from(String(i)) })),
    0,
  );
  assert.deepEqual((await client.list("p/", { limit: 2 })).next, "p/1");
  const all: string[] = [];
  for await (const entry of client.listAll("p/")) all.push(entry.path);
  assert.deepEqual(all, ["p/0", "p/1", "p/2", "p/3", "p/4"]);

  const abort = new AbortController();
  const seen: string[] = [];
  for await (const event of client.watch("p/", { fromSeq: 3, signal: abort.signal })) {
    seen.push(`${event.id} ${event.path}`);
    if (seen.length === 2) api.server.closeAllConnections();
    if (seen.length === 2) await client.remove("p/0", 0);
    if (seen.length === 3) abort.abort();
  }
  assert.deepEqual(seen, ["n1:4 p/3", "n1:5 p/4", "n1:6 p/0"]);
});

test("store client: a path the store refuses is refused before any request (no URL normalisation)", () => {
  assert.throws(() => storeUrlPath("../etc/passwd"), StorePathError);
  assert.throws(() => storeUrlPath("a//b"), StorePathError);
  assert.equal(storeUrlPath("certs/my site.pem"), "/api/v1/store/certs/my%20site.pem");
});
