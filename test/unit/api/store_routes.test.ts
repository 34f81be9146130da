import assert from "node:assert/strict";
import { test } from "node:test";
import { StoreFlushError } from "../../../src/store/wal_flusher.ts";
import { MemoryStoreService } from "../../support/memory_store_service.ts";
import { rawRequest, startStoreServer } from "./store_http.ts";

const json = { "content-type": "application/json" };
const b64 = (text: string) => Buffer.from(text).toString("base64");

test("store api: PUT raw, GET as JSON and raw, list, DELETE", async (t) => {
  const service = new MemoryStoreService({ peers: ["n2", "n3"] });
  const api = await startStoreServer(service);
  t.after(() => api.close());

  const put = await rawRequest(api.base, "PUT", "/api/v1/store/certs/web.pem", { body: "PEM" });
  assert.equal(put.status, 200);
  const outcome = put.json();
  assert.equal(outcome.acked, true);
  assert.deepEqual(outcome.hostsOk, ["n2", "n3"]);
  assert.equal(outcome.minAcks, 1);

  const got = (await rawRequest(api.base, "GET", "/api/v1/store/certs/web.pem")).json();
  assert.equal(got.path, "certs/web.pem");
  assert.equal(Buffer.from(got.value as string, "base64").toString(), "PEM");
  assert.equal(got.size, 3);
  assert.equal((got.version as { nodeId: string }).nodeId, "n1");

  const raw = await rawRequest(api.base, "GET", "/api/v1/store/certs/web.pem?raw=1");
  assert.equal(raw.headers["content-type"], "application/octet-stream");
  assert.equal(raw.body.toString(), "PEM");
  assert.equal(JSON.parse(String(raw.headers["x-tandem-version"])).nodeId, "n1");

  await rawRequest(api.base, "PUT", "/api/v1/store/certs/api.pem", {
    headers: json,
    body: '{"value":"QUJD"}',
  });
  assert.equal(service.get("certs/api.pem")?.value.toString(), "65,66,67");

  const listed = (await rawRequest(api.base, "GET", "/api/v1/store?prefix=certs/")).json();
  assert.deepEqual(
    (listed.entries as Array<{ path: string; value?: string }>).map((e) => [e.path, e.value]),
    [
      ["certs/api.pem", undefined],
      ["certs/web.pem", undefined],
    ],
  );
  const withValues = (
    await rawRequest(api.base, "GET", "/api/v1/store?prefix=certs&values=1&limit=1")
  ).json();
  assert.deepEqual(withValues.entries, [{ ...(withValues.entries as object[])[0], value: "QUJD" }]);
  assert.equal(withValues.next, "certs/api.pem");
  const second = (
    await rawRequest(api.base, "GET", "/api/v1/store?prefix=certs&limit=1&after=certs/api.pem")
  ).json();
  assert.equal((second.entries as Array<{ path: string }>)[0]?.path, "certs/web.pem");

  const removed = await rawRequest(api.base, "DELETE", "/api/v1/store/certs/web.pem");
  assert.equal(removed.status, 200);
  assert.equal((removed.json().entries as Array<{ deleted?: boolean }>)[0]?.deleted, true);
  const gone = await rawRequest(api.base, "GET", "/api/v1/store/certs/web.pem");
  assert.equal(gone.status, 404);
  assert.equal(gone.json().error?.code, "not_found");
});

test("store api: a write short of min_acks answers 202 with acked false and the failing hosts", async (t) => {
  const service = new MemoryStoreService({ peers: ["n2", "n3"], peersAcking: new Set(["n2"]) });
  const api = await startStoreServer(service);
  t.after(() => api.close());
  const partial = await rawRequest(api.base, "PUT", "/api/v1/store/a?min_acks=all", { body: "x" });
  assert.equal(partial.status, 202);
  const body = partial.json();
  assert.equal(body.acked, false);
  assert.equal(body.minAcks, "all");
  assert.deepEqual(body.hostsOk, ["n2"]);
  assert.deepEqual(body.hostsErr, [{ host: "n3", error: "timed out" }]);
  assert.ok(service.get("a"), "the write stays committed locally");
  assert.equal((await rawRequest(api.base, "PUT", "/api/v1/store/a?min_acks=1", { body: "x" })).status, 200);
});

test("store api: a batch writes and deletes in one request, min_acks in the body", async (t) => {
  const service = new MemoryStoreService({ peers: ["n2"] });
  const api = await startStoreServer(service);
  t.after(() => api.close());
  await rawRequest(api.base, "PUT", "/api/v1/store/old", { body: "x" });
  const batch = {
    writes: [
      { path: "cfg/a", value: b64("A") },
      { path: "cfg/b", value: b64("B") },
      { path: "old", value: null },
    ],
    minAcks: "all",
  };
  const response = await rawRequest(api.base, "POST", "/api/v1/store", {
    headers: json,
    body: JSON.stringify(batch),
  });
  assert.equal(response.status, 200);
  assert.deepEqual(
    (response.json().entries as Array<{ path: string; deleted?: boolean }>).map((e) => [e.path, e.deleted]),
    [
      ["cfg/a", undefined],
      ["cfg/b", undefined],
      ["old", true],
    ],
  );
  assert.equal(service.writeCalls.at(-1)?.length, 3, "one service write for the whole batch");
  assert.equal(service.get("old")?.deleted, true);
});

test("store api: a read-only replica refuses writes with 409 read_only_replica and serves reads", async (t) => {
  const service = new MemoryStoreService({ readOnly: true });
  const api = await startStoreServer(service);
  t.after(() => api.close());
  for (const [method, path, body] of [
    ["PUT", "/api/v1/store/a", "x"],
    ["DELETE", "/api/v1/store/a", undefined],
    ["POST", "/api/v1/store", JSON.stringify({ writes: [{ path: "a", value: null }] })],
  ] as const) {
    const response = await rawRequest(api.base, method, path, { headers: json, ...(body ? { body } : {}) });
    assert.equal(response.status, 409, `${method} ${path}`);
    assert.equal(response.json().error?.code, "read_only_replica");
  }
  assert.equal((await rawRequest(api.base, "GET", "/api/v1/store")).status, 200);
});

test("store api: a write this node could not flush to disk is 500 internal, saying its outcome is unknown", async (t) => {
  const service = new MemoryStoreService();
  service.write = () => Promise.reject(new StoreFlushError("fsync of the store's WAL failed: EIO"));
  const api = await startStoreServer(service);
  t.after(() => api.close());
  const response = await rawRequest(api.base, "PUT", "/api/v1/store/a", { body: "x" });
  assert.equal(response.status, 500);
  assert.equal(response.json().error?.code, "internal");
  assert.match(response.json().error?.message ?? "", /could not flush the write to its disk/);
});

test("store api: oversize values and bodies are 413 payload_too_large and change nothing", async (t) => {
  const service = new MemoryStoreService();
  const api = await startStoreServer(service, {
    routes: { valueBytesMax: 8, batchBytesMax: 200, batchWritesMax: 2 },
  });
  t.after(() => api.close());
  const cases = [
    { method: "PUT", path: "/api/v1/store/a", body: "123456789" },
    {
      method: "PUT",
      path: "/api/v1/store/a",
      headers: json,
      body: JSON.stringify({ value: b64("123456789") }),
    },
    {
      method: "POST",
      path: "/api/v1/store",
      headers: json,
      body: JSON.stringify({ writes: [{ path: "a", value: b64("123456789") }] }),
    },
    {
      method: "POST",
      path: "/api/v1/store",
      headers: json,
      body: JSON.stringify({ writes: ["a", "b", "c"].map((path) => ({ path, value: null })) }),
    },
    {
      method: "POST",
      path: "/api/v1/store",
      headers: json,
      body: JSON.stringify({ writes: [], pad: "x".repeat(300) }),
    },
  ];
  for (const c of cases) {
    const response = await rawRequest(api.base, c.method, c.path, c);
    assert.equal(response.status, 413, c.body.slice(0, 60));
    assert.equal(response.json().error?.code, "payload_too_large");
  }
  assert.equal(service.lastSeq(), 0);
  assert.equal(service.writeCalls.length, 0);
});

test("store api: min_acks and list parameters out of range are 400", async (t) => {
  const service = new MemoryStoreService();
  const api = await startStoreServer(service);
  t.after(() => api.close());
  for (const path of [
    "/api/v1/store/a?min_acks=-1",
    "/api/v1/store/a?min_acks=some",
    "/api/v1/store/a?min_acks=99999",
  ]) {
    const response = await rawRequest(api.base, "PUT", path, { body: "x" });
    assert.equal(response.status, 400, path);
  }
  for (const path of ["/api/v1/store?limit=0", "/api/v1/store?limit=1e3", "/api/v1/store?prefix=../x"]) {
    assert.equal((await rawRequest(api.base, "GET", path)).status, 400, path);
  }
  assert.equal(service.lastSeq(), 0);
});

test("store api: min_acks above the peer count is a typed 400 naming the count; all peers is fine", async (t) => {
  const service = new MemoryStoreService({ peers: ["n2", "n3"] });
  const api = await startStoreServer(service);
  t.after(() => api.close());
  const batch = JSON.stringify({ writes: [{ path: "b", value: b64("B") }], minAcks: 3 });
  const refused = [
    await rawRequest(api.base, "PUT", "/api/v1/store/a?min_acks=3", { body: "x" }),
    await rawRequest(api.base, "DELETE", "/api/v1/store/a?min_acks=4"),
    await rawRequest(api.base, "POST", "/api/v1/store", { headers: json, body: batch }),
    await rawRequest(api.base, "POST", "/api/v1/store?min_acks=3", {
      headers: json,
      body: JSON.stringify({ writes: [{ path: "b", value: null }] }),
    }),
  ];
  for (const response of refused) {
    assert.equal(response.status, 400);
    assert.equal(response.json().error?.code, "bad_request");
    assert.match(response.json().error?.message ?? "", /min_acks \d is more than this node's 2 peer\(s\)/);
  }
  assert.equal(service.writeCalls.length, 0, "a refused min_acks writes nothing");
  for (const minAcks of ["2", "all"]) {
    const put = await rawRequest(api.base, "PUT", `/api/v1/store/a?min_acks=${minAcks}`, { body: "x" });
    assert.equal(put.status, 200, minAcks);
    assert.equal(put.json().acked, true, minAcks);
  }
});
