import assert from "node:assert/strict";
import { test } from "node:test";
import { MemoryStoreService } from "../../support/memory_store_service.ts";
import { nextChange, openEvents, rawRequest, startStoreServer } from "./store_http.ts";

// What an operator writes to keep certificates to the web tier: the first rule whose path matches decides.
const acl = [
  { path: "^/api/v1/store/certs/", cn: "^web" },
  { path: "^/", cn: ".*" },
];
const as = (cn: string, more: Record<string, string> = {}) => ({ "x-test-cn": cn, ...more });
const json = { "content-type": "application/json" };

test("store acl: a path rule covers single writes however the path is spelled", async (t) => {
  const service = new MemoryStoreService();
  const api = await startStoreServer(service, { acl });
  t.after(() => api.close());
  for (const path of [
    "/api/v1/store/certs/x.pem",
    "/api/v1/store/certs%2Fx.pem",
    "/api/v1/store/%63erts/x.pem",
  ]) {
    const denied = await rawRequest(api.base, "PUT", `${path}?min_acks=0`, {
      headers: as("alice"),
      body: "x",
    });
    assert.equal(denied.status, 403, path);
    assert.equal(denied.json().error?.code, "forbidden");
  }
  assert.equal(service.writeCalls.length, 0);
  const allowed = await rawRequest(api.base, "PUT", "/api/v1/store/certs/x.pem?min_acks=0", {
    headers: as("web1"),
    body: "x",
  });
  assert.equal(allowed.status, 200);
  assert.equal(
    (await rawRequest(api.base, "GET", "/api/v1/store/certs%2Fx.pem", { headers: as("alice") })).status,
    403,
  );
  assert.equal(
    (await rawRequest(api.base, "GET", "/api/v1/store/certs/x.pem", { headers: as("web1") })).status,
    200,
  );
});

test("store acl: every path of a batch is checked; one forbidden path refuses the whole batch", async (t) => {
  const service = new MemoryStoreService();
  const api = await startStoreServer(service, { acl });
  t.after(() => api.close());
  const body = JSON.stringify({
    writes: [
      { path: "app/config", value: "QQ==" },
      { path: "certs/x.pem", value: "QQ==" },
    ],
    minAcks: 0,
  });
  const denied = await rawRequest(api.base, "POST", "/api/v1/store", { headers: as("alice", json), body });
  assert.equal(denied.status, 403);
  assert.match(denied.json().error?.message ?? "", /certs\/x\.pem/);
  assert.equal(service.writeCalls.length, 0, "nothing of the batch was written");
  const allowed = await rawRequest(api.base, "POST", "/api/v1/store", { headers: as("web2", json), body });
  assert.equal(allowed.status, 200);
});

test("store acl: listings and watches hide entries the caller may not read", async (t) => {
  const service = new MemoryStoreService();
  const api = await startStoreServer(service, { acl });
  t.after(() => api.close());
  await service.write(
    [
      { path: "app/a", value: Buffer.from("a") },
      { path: "certs/x.pem", value: Buffer.from("secret") },
    ],
    { minAcks: 0 },
  );
  const paths = async (cn: string, query: string) => {
    const response = await rawRequest(api.base, "GET", `/api/v1/store${query}`, { headers: as(cn) });
    return response.status === 200
      ? (response.json().entries as Array<{ path: string }>).map((e) => e.path)
      : response.status;
  };
  assert.deepEqual(await paths("alice", ""), ["app/a"]);
  assert.deepEqual(await paths("web1", ""), ["app/a", "certs/x.pem"]);
  assert.equal(await paths("alice", "?prefix=certs/"), 403);

  const stream = await openEvents(api.base, "/api/v1/store-watch?from_seq=0", as("alice"));
  t.after(() => stream.close());
  assert.equal(JSON.parse((await nextChange(stream)).data ?? "").path, "app/a");
  await service.write([{ path: "certs/y.pem", value: Buffer.from("s") }], { minAcks: 0 });
  await service.write([{ path: "app/b", value: Buffer.from("b") }], { minAcks: 0 });
  assert.equal(JSON.parse((await nextChange(stream)).data ?? "").path, "app/b", "certs/y.pem skipped");
});
