// Requests Node's HTTP parser refuses before any route sees them (a URL over the header size limit, a
// malformed request) still get the typed JSON error, on the loopback listener and on the TLS port.
import assert from "node:assert/strict";
import type { AddressInfo } from "node:net";
import { connect as netConnect } from "node:net";
import { before, test } from "node:test";
import { connect as tlsConnect } from "node:tls";
import { pino } from "pino";
import { createApiRouter, startLocalApi } from "../../../src/api/index.ts";
import { storeRoutes } from "../../../src/api/store_routes.ts";
import { Mesh } from "../../../src/mesh/index.ts";
import { createClusterCa, issueCertificate, type PemPair } from "../../../src/pki/index.ts";
import { MemoryStoreService } from "../../support/memory_store_service.ts";

const logger = pino({ level: "silent" });
const service = new MemoryStoreService();
const router = createApiRouter({
  nodeId: "n1",
  status: () => ({}),
  acl: [{ path: "^/", cn: ".*" }],
  logger,
  routes: storeRoutes(service, { nodeId: "n1", logger, minAcksDefault: 0 }),
});
/** Far over Node's default 16 KiB header limit. */
const longPath = `/api/v1/store/${"a/".repeat(12_000)}a`;

interface Answer {
  status: number;
  headers: string;
  body: string;
}

/** Sends `request` verbatim on a fresh connection and reads until the server closes it. */
function exchange(open: () => import("node:net").Socket, request: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const socket = open();
    const chunks: Buffer[] = [];
    socket.on("data", (chunk: Buffer) => chunks.push(chunk));
    socket.on("error", reject);
    socket.on("close", () => {
      const text = Buffer.concat(chunks).toString("utf8");
      const [head = "", body = ""] = text.split("\r\n\r\n", 2);
      resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0), headers: head, body });
    });
    socket.write(request);
  });
}

function assertTypedError(answer: Answer, status: number, code: string): void {
  assert.equal(answer.status, status, answer.headers);
  assert.match(answer.headers, /content-type: application\/json/i);
  const body = JSON.parse(answer.body) as { error: { code: string; message: string } };
  assert.deepEqual(Object.keys(body), ["error"]);
  assert.equal(body.error.code, code);
  assert.ok(body.error.message.length > 0);
}

let ca: PemPair & { certPem: string };
let node: PemPair;
let operator: PemPair;
before(async () => {
  ca = await createClusterCa({ commonName: "test-ca", validDays: 1 });
  node = await issueCertificate(ca, { commonName: "n1", kind: "node", validDays: 1 });
  operator = await issueCertificate(ca, { commonName: "ops", kind: "client", validDays: 1 });
});

test("api client errors: loopback listener answers an oversized URL with 431 and a typed error", async (t) => {
  const server = await startLocalApi("127.0.0.1", 0, router);
  t.after(() => server.close());
  const { port } = server.address() as AddressInfo;
  const open = () => netConnect(port, "127.0.0.1");
  const tooLong = await exchange(open, `GET ${longPath} HTTP/1.1\r\nHost: x\r\n\r\n`);
  assertTypedError(tooLong, 431, "headers_too_large");
  const put = await exchange(open, `PUT ${longPath} HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx`);
  assertTypedError(put, 431, "headers_too_large");
  assertTypedError(await exchange(open, "NOT HTTP AT ALL\r\n\r\n"), 400, "bad_request");
  const badLength = "PUT /api/v1/store/a HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n";
  assertTypedError(await exchange(open, badLength), 400, "bad_request");
  // "//" parses as a request target but is no URL path: once a throw out of the listener (the fuzz found it).
  for (const target of ["//", "//?limit=1", "//:x"]) {
    const answer = await exchange(open, `GET ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    assertTypedError(answer, 400, "bad_request");
  }
  // A path over the store's 1024 bytes but within the header limit reaches the route: its typed 400.
  const long = await exchange(
    open,
    `GET /api/v1/store/${"b".repeat(2_000)} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
  );
  assertTypedError(long, 400, "bad_request");
  assert.equal(service.writeCalls.length, 0);
});

test("api client errors: the TLS port answers an oversized URL with 431 and a typed error", async (t) => {
  const mesh = await Mesh.start({
    selfId: "n1",
    clusterName: "test",
    listenHost: "127.0.0.1",
    listenPort: 0,
    peers: [],
    security: { mode: "mtls", caCertPem: ca.certPem, certPem: node.certPem, keyPem: node.keyPem },
    logger,
    httpHandler: (req, res, identity) => router(req, res, identity),
  });
  t.after(() => mesh.close());
  const { port } = mesh.address();
  const open = () =>
    tlsConnect({
      port,
      host: "127.0.0.1",
      ca: ca.certPem,
      cert: operator.certPem,
      key: operator.keyPem,
      checkServerIdentity: () => undefined,
    });
  const tooLong = await exchange(open, `GET ${longPath} HTTP/1.1\r\nHost: x\r\n\r\n`);
  assertTypedError(tooLong, 431, "headers_too_large");
  assertTypedError(await exchange(open, "NOT HTTP AT ALL\r\n\r\n"), 400, "bad_request");
  const fine = await exchange(open, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  assert.equal(fine.status, 200, "a well-formed request on the same port is served");
  assert.equal(service.writeCalls.length, 0);
});
