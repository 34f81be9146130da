import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, test } from "node:test";
import { pino } from "pino";
import { createApiRouter, startLocalApi } from "../../../src/api/index.ts";
import { NonLoopbackError } from "../../../src/api/local_listener.ts";
import type { ApiIdentity } from "../../../src/api/router.ts";
import { defaultAcl } from "../../../src/config/index.ts";

const router = createApiRouter({
  nodeId: "n1",
  status: () => ({ leaderId: "n2", term: 4 }),
  acl: defaultAcl(["n2", "n3"]),
  logger: pino({ level: "silent" }),
});

// The TLS port hands the router an authenticated identity; here a header stands in for the certificate.
let tlsStandIn: Server;
let local: Server;
const url = (server: Server, path: string) =>
  `http://127.0.0.1:${(server.address() as AddressInfo).port}${path}`;
before(async () => {
  tlsStandIn = createServer((req, res) => {
    const identity: ApiIdentity = { kind: "certificate", name: String(req.headers["x-test-cn"]) };
    router(req, res, identity);
  });
  await new Promise<void>((resolve) => tlsStandIn.listen(0, "127.0.0.1", resolve));
  local = await startLocalApi("127.0.0.1", 0, router);
});
after(() => {
  tlsStandIn.close();
  local.close();
});

async function get(server: Server, path: string, cn?: string, method = "GET") {
  const response = await fetch(url(server, path), { method, headers: cn ? { "x-test-cn": cn } : {} });
  return {
    status: response.status,
    body: (await response.json()) as Record<string, unknown>,
    allow: response.headers.get("allow"),
  };
}

test("api: status and healthz answer JSON on the local listener", async () => {
  assert.deepEqual((await get(local, "/api/v1/status")).body, { leaderId: "n2", term: 4 });
  assert.deepEqual((await get(local, "/healthz")).body, { status: "ok", node: "n1" });
});

test("api: unknown routes and methods are typed errors", async () => {
  const missing = await get(local, "/nope");
  assert.equal(missing.status, 404);
  assert.deepEqual(Object.keys(missing.body), ["error"]);
  assert.equal((missing.body.error as { code: string }).code, "not_found");
  const wrongMethod = await get(local, "/api/v1/status", undefined, "DELETE");
  assert.equal(wrongMethod.status, 405);
  assert.equal(wrongMethod.allow, "GET");
});

test("api: the ACL admits peers to /api/internal/ and any client elsewhere; n10 is not n1", async () => {
  assert.equal((await get(tlsStandIn, "/api/v1/status", "alice")).status, 200);
  assert.equal((await get(tlsStandIn, "/api/internal/anything", "alice")).status, 403);
  assert.equal((await get(tlsStandIn, "/api/internal/anything", "n20")).status, 403);
  assert.equal(
    (await get(tlsStandIn, "/api/internal/anything", "n2")).status,
    404,
    "admitted, then no route",
  );
  const denied = await get(tlsStandIn, "/api/internal/x", "alice");
  assert.equal((denied.body.error as { code: string }).code, "forbidden");
});

test("api: peer routes are never served on the plain local listener", async () => {
  assert.equal((await get(local, "/api/internal/mesh")).status, 403);
});

test("api: the plain listener refuses a non-loopback address", async () => {
  await assert.rejects(startLocalApi("0.0.0.0", 0, router), NonLoopbackError);
});
