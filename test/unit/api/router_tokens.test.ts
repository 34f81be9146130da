import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { pino } from "pino";
import { createApiRouter, startLocalApi } from "../../../src/api/index.ts";
import type { ApiIdentity } from "../../../src/api/router.ts";
import { createToken, revokeToken, TokensFile } from "../../../src/api/tokens.ts";
import { defaultAcl } from "../../../src/config/index.ts";

const dir = mkdtempSync(join(tmpdir(), "tandem-router-tokens-"));
const tokensPath = join(dir, "tokens.yml");
const now = new Date("2026-11-24T12:00:00.000Z");
const readerToken = createToken(tokensPath, "reader", now);
const adminToken = createToken(tokensPath, "admin", now);
// A token named like a peer must not pass for that peer.
const peerNamedToken = createToken(tokensPath, "n2", now);

const logLines: string[] = [];
const logger = pino({ level: "debug" }, { write: (line: string) => logLines.push(line) });
const acl = [
  { path: "^/healthz$", cn: ".*" },
  ...defaultAcl(["n2"]).slice(0, 1),
  { path: "^/", cn: "^(token:admin|alice)$" },
];
const routerWith = (tokens?: TokensFile) =>
  createApiRouter({ nodeId: "n1", status: () => ({ ok: true }), acl, logger, ...(tokens ? { tokens } : {}) });
const router = routerWith(new TokensFile(tokensPath, () => {}));
const routerWithoutTokens = routerWith();

let local: Server;
let localWithoutTokens: Server;
// The TLS port hands the router the certificate's CN; a header stands in for it here.
let tlsStandIn: Server;
before(async () => {
  local = await startLocalApi("127.0.0.1", 0, router);
  localWithoutTokens = await startLocalApi("127.0.0.1", 0, routerWithoutTokens);
  tlsStandIn = createServer((req, res) => {
    const identity: ApiIdentity = { kind: "certificate", name: String(req.headers["x-test-cn"]) };
    router(req, res, identity);
  });
  await new Promise<void>((resolve) => tlsStandIn.listen(0, "127.0.0.1", resolve));
});
after(() => {
  for (const server of [local, localWithoutTokens, tlsStandIn]) server.close();
  rmSync(dir, { recursive: true, force: true });
});

async function get(server: Server, path: string, headers: Record<string, string> = {}) {
  const response = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}${path}`, {
    headers,
  });
  const body = (await response.json()) as { error?: { code: string; message: string } };
  return { status: response.status, body, authenticate: response.headers.get("www-authenticate") };
}
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

test("api tokens: loopback without a token is the local operator, outside the ACL", async () => {
  assert.equal((await get(local, "/api/v1/status")).status, 200);
});

test("api tokens: loopback with a token applies the ACL to token:<name>", async () => {
  assert.equal((await get(local, "/api/v1/status", bearer(adminToken))).status, 200);
  const denied = await get(local, "/api/v1/status", bearer(readerToken));
  assert.equal(denied.status, 403);
  assert.equal(denied.body.error?.code, "forbidden");
  assert.match(denied.body.error?.message ?? "", /token:reader/);
  assert.equal((await get(local, "/healthz", bearer(readerToken))).status, 200);
});

test("api tokens: peer routes stay TLS-only on loopback whatever the token", async () => {
  const refused = await get(local, "/api/internal/x", bearer(adminToken));
  assert.equal(refused.status, 403);
  assert.match(refused.body.error?.message ?? "", /need TLS/);
});

test("api tokens: on the TLS port a token replaces the certificate identity", async () => {
  assert.equal((await get(tlsStandIn, "/api/v1/status", { "x-test-cn": "alice" })).status, 200);
  const asReader = { "x-test-cn": "alice", ...bearer(readerToken) };
  assert.equal((await get(tlsStandIn, "/api/v1/status", asReader)).status, 403);
  const asPeerNamed = { "x-test-cn": "alice", ...bearer(peerNamedToken) };
  assert.equal((await get(tlsStandIn, "/api/internal/x", asPeerNamed)).status, 403, "token:n2 is not n2");
  assert.equal((await get(tlsStandIn, "/api/internal/x", { "x-test-cn": "n2" })).status, 404, "n2 itself is");
});

test("api tokens: wrong, malformed or unconfigured tokens get 401 unauthorized with WWW-Authenticate", async () => {
  const cases: Array<[Server, Record<string, string>]> = [
    [local, bearer(`${adminToken.slice(0, -2)}zz`)],
    [local, bearer("tdm_nope")],
    [local, { authorization: `Basic ${Buffer.from("a:b").toString("base64")}` }],
    [local, { authorization: "Bearer" }],
    [localWithoutTokens, bearer(adminToken)],
    [tlsStandIn, { "x-test-cn": "alice", ...bearer("tdm_nope") }],
  ];
  for (const [server, headers] of cases) {
    const reply = await get(server, "/healthz", headers);
    assert.equal(reply.status, 401, JSON.stringify(headers));
    assert.equal(reply.body.error?.code, "unauthorized");
    assert.match(reply.authenticate ?? "", /^Bearer /);
  }
});

test("api tokens: a revoked token is refused at once, with no restart", async () => {
  const path = join(dir, "revocable.yml");
  const token = createToken(path, "admin", now);
  const server = await startLocalApi("127.0.0.1", 0, routerWith(new TokensFile(path, () => {})));
  try {
    assert.equal((await get(server, "/api/v1/status", bearer(token))).status, 200);
    revokeToken(path, "admin");
    assert.equal((await get(server, "/api/v1/status", bearer(token))).status, 401);
  } finally {
    server.close();
  }
});

test("api tokens: tokens never reach the logs", async () => {
  await get(local, "/api/v1/status", bearer(readerToken));
  await get(local, "/api/v1/status", bearer(`${readerToken}x`));
  const logs = logLines.join("\n");
  assert.match(logs, /invalid token/, "the refusal itself is logged");
  for (const token of [readerToken, adminToken]) assert.ok(!logs.includes(token.slice(4, 20)));
});
