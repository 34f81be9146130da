import assert from "node:assert/strict";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { test } from "node:test";
import { pino } from "pino";
import { sendJson } from "../../../src/api/errors.ts";
import { InflightLimit } from "../../../src/api/inflight_limit.ts";
import { createApiRouter } from "../../../src/api/router.ts";

test("inflight limit: slots are taken up to the max and given back once per release", () => {
  const limit = new InflightLimit(2);
  const first = limit.tryAcquire();
  const second = limit.tryAcquire();
  assert.ok(first && second);
  assert.equal(limit.tryAcquire(), null);
  first();
  first();
  assert.equal(limit.count, 1, "a repeated release frees one slot only");
  assert.ok(limit.tryAcquire());
  assert.throws(() => new InflightLimit(0), RangeError);
});

test("inflight limit: the router answers 429 with Retry-After beyond inflightMax; streams hold no slot", async (t) => {
  const parked: Array<() => void> = [];
  let entered = 0;
  const router = createApiRouter({
    nodeId: "n1",
    status: () => ({}),
    acl: [],
    logger: pino({ level: "silent" }),
    inflightMax: 2,
    routes: [
      {
        path: "/slow",
        methods: {
          GET: async (_req, res) => {
            entered++;
            await new Promise<void>((resolve) => parked.push(resolve));
            sendJson(res, 200, { ok: true });
          },
        },
      },
      {
        path: "/stream",
        streaming: true,
        methods: { GET: (_req, res) => sendJson(res, 200, { stream: true }) },
      },
    ],
  });
  const server = createServer((req, res) => router(req, res, { kind: "local", name: "local" }));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.after(() => {
    server.close();
    server.closeAllConnections();
  });
  const url = (path: string) => `http://127.0.0.1:${(server.address() as AddressInfo).port}${path}`;

  const slow = [fetch(url("/slow")), fetch(url("/slow"))];
  while (entered < 2) await new Promise((resolve) => setImmediate(resolve));
  const shed = await fetch(url("/slow"));
  assert.equal(shed.status, 429);
  assert.equal(shed.headers.get("retry-after"), "1");
  assert.equal(((await shed.json()) as { error: { code: string } }).error.code, "too_many_requests");
  assert.equal((await fetch(url("/stream"))).status, 200, "a streaming route is not counted");

  for (const release of parked.splice(0)) release();
  for (const response of await Promise.all(slow)) assert.equal(response.status, 200);
  const after = fetch(url("/slow"));
  while (entered < 3) await new Promise((resolve) => setImmediate(resolve));
  for (const release of parked.splice(0)) release();
  assert.equal((await after).status, 200, "slots come back when responses finish");
});

test("router: an async handler that throws answers a typed 500", async (t) => {
  const router = createApiRouter({
    nodeId: "n1",
    status: () => ({}),
    acl: [],
    logger: pino({ level: "silent" }),
    routes: [{ path: "/boom", methods: { GET: async () => Promise.reject(new Error("bug")) } }],
  });
  const server = createServer((req, res) => router(req, res, { kind: "local", name: "local" }));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.after(() => server.close());
  const response = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/boom`);
  assert.equal(response.status, 500);
  assert.deepEqual(await response.json(), { error: { code: "internal", message: "internal error" } });
});

test("inflight limit: one limit for both listeners; /healthz answers a saturated node with 200", async (t) => {
  const parked: Array<() => void> = [];
  let entered = 0;
  const router = createApiRouter({
    nodeId: "n1",
    status: () => ({}),
    acl: [{ path: ".*", cn: ".*" }],
    logger: pino({ level: "silent" }),
    inflightMax: 2,
    routes: [
      {
        path: "/slow",
        methods: {
          GET: async (_req, res) => {
            entered++;
            await new Promise<void>((resolve) => parked.push(resolve));
            sendJson(res, 200, { ok: true });
          },
        },
      },
    ],
  });
  // The loopback listener and the TLS port (a certificate identity stands in for the handshake).
  const local = createServer((req, res) => router(req, res, { kind: "local", name: "local" }));
  const tls = createServer((req, res) => router(req, res, { kind: "certificate", name: "client" }));
  for (const server of [local, tls]) {
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    t.after(() => {
      server.close();
      server.closeAllConnections();
    });
  }
  const url = (server: typeof local, path: string) =>
    `http://127.0.0.1:${(server.address() as AddressInfo).port}${path}`;

  const slow = [fetch(url(local, "/slow")), fetch(url(local, "/slow"))];
  while (entered < 2) await new Promise((resolve) => setImmediate(resolve));
  assert.equal((await fetch(url(tls, "/slow"))).status, 429, "the TLS port shares the loopback's slots");
  assert.equal((await fetch(url(tls, "/api/v1/status"))).status, 429);
  for (const server of [local, tls]) {
    const health = await fetch(url(server, "/healthz"));
    assert.equal(health.status, 200);
    assert.deepEqual(await health.json(), { status: "ok", node: "n1" });
  }
  for (const release of parked.splice(0)) release();
  for (const response of await Promise.all(slow)) assert.equal(response.status, 200);
});
