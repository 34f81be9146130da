import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { once } from "node:events";
import type { AddressInfo } from "node:net";
import { before, test } from "node:test";
import * as tls from "node:tls";
import {
  certificateCommonName,
  createClusterCa,
  issueCertificate,
  type PemPair,
  PkiInputError,
} from "../../../src/pki/index.ts";

const handshakeTimeoutMs = 5_000;

let ca: PemPair;
let otherCa: PemPair;
let server: PemPair;
let client: PemPair;
let stranger: PemPair;

before(async () => {
  ca = await createClusterCa({ commonName: "test-ca", validDays: 30 });
  otherCa = await createClusterCa({ commonName: "other-ca", validDays: 30 });
  server = await issueCertificate(ca, { commonName: "n1", kind: "node", validDays: 30 });
  client = await issueCertificate(ca, { commonName: "operator", kind: "client", validDays: 30 });
  stranger = await issueCertificate(otherCa, { commonName: "n9", kind: "node", validDays: 30 });
});

interface HandshakeResult {
  serverSawPeer: string | null;
  serverError: string | null;
  clientError: string | null;
  protocol: string | null;
}

/** One mutual-TLS handshake on loopback; resolves once both sides settled, never hangs. */
async function handshake(serverPair: PemPair, clientPair: PemPair, caPem: string): Promise<HandshakeResult> {
  const result: HandshakeResult = {
    serverSawPeer: null,
    serverError: null,
    clientError: null,
    protocol: null,
  };
  const tlsServer = tls.createServer({
    ca: caPem,
    cert: serverPair.certPem,
    key: serverPair.keyPem,
    requestCert: true,
    rejectUnauthorized: true,
    minVersion: "TLSv1.3",
  });
  const serverSettled = new Promise<void>((resolve) => {
    tlsServer.on("secureConnection", (socket) => {
      const commonName = socket.getPeerCertificate().subject?.CN;
      result.serverSawPeer = typeof commonName === "string" ? commonName : null;
      result.protocol = socket.getProtocol();
      socket.end("hello");
      resolve();
    });
    tlsServer.on("tlsClientError", (err) => {
      result.serverError = err.message;
      resolve();
    });
  });
  tlsServer.listen(0, "127.0.0.1");
  await once(tlsServer, "listening");
  const { port } = tlsServer.address() as AddressInfo;
  const socket = tls.connect({
    host: "127.0.0.1",
    port,
    ca: caPem,
    cert: clientPair.certPem,
    key: clientPair.keyPem,
    minVersion: "TLSv1.3",
  });
  const clientSettled = new Promise<void>((resolve) => {
    socket.on("error", (err) => {
      result.clientError = err.message;
      resolve();
    });
    socket.on("close", () => resolve());
    socket.resume();
  });
  const timer = setTimeout(() => socket.destroy(new Error("handshake timed out")), handshakeTimeoutMs);
  try {
    await Promise.all([serverSettled, clientSettled]);
  } finally {
    clearTimeout(timer);
    socket.destroy();
    tlsServer.close();
  }
  return result;
}

test("pki: node and client certificates from one CA complete a TLS 1.3 mutual handshake", async () => {
  const result = await handshake(server, client, ca.certPem);
  assert.equal(result.serverError, null);
  assert.equal(result.serverSawPeer, "operator");
  assert.equal(result.protocol, "TLSv1.3");
});

test("pki: two node certificates authenticate each other (serverAuth and clientAuth)", async () => {
  const peer = await issueCertificate(ca, { commonName: "n2", kind: "node", validDays: 30 });
  const result = await handshake(server, peer, ca.certPem);
  assert.equal(result.serverSawPeer, "n2");
});

test("pki: a client certificate from another CA is rejected by the server", async () => {
  const result = await handshake(server, stranger, ca.certPem);
  assert.equal(result.serverSawPeer, null);
  assert.notEqual(result.serverError, null);
});

test("pki: a server certificate from another CA is rejected by the client", async () => {
  const result = await handshake(stranger, client, ca.certPem);
  assert.equal(result.serverSawPeer, null);
  assert.match(result.clientError ?? "", /certificate/i);
});

test("pki: a client certificate cannot serve (clientAuth only)", async () => {
  const other = await issueCertificate(ca, { commonName: "n3", kind: "node", validDays: 30 });
  const result = await handshake(client, other, ca.certPem);
  assert.equal(result.serverSawPeer, null);
  assert.notEqual(result.clientError, null);
});

test("pki: common name is read back from the PEM", () => {
  assert.equal(certificateCommonName(server.certPem), "n1");
  assert.equal(certificateCommonName(ca.certPem), "test-ca");
  assert.throws(() => certificateCommonName("not a cert"), PkiInputError);
});

test("pki: CA is a CA with keyCertSign, leaf is not; keys are PKCS#8", () => {
  const caCert = new X509Certificate(ca.certPem);
  const leaf = new X509Certificate(server.certPem);
  assert.equal(caCert.ca, true);
  assert.equal(leaf.ca, false);
  assert.equal(leaf.checkIssued(caCert), true);
  assert.equal(leaf.verify(caCert.publicKey), true);
  assert.match(ca.keyPem, /^-----BEGIN PRIVATE KEY-----\n/);
  assert.match(server.keyPem, /^-----BEGIN PRIVATE KEY-----\n/);
  assert.equal(leaf.publicKey.asymmetricKeyDetails?.namedCurve, "prime256v1");
});

test("pki: node SAN has loopback, localhost, node id and the extra names; client EKU is clientAuth", async () => {
  const extra = await issueCertificate(ca, {
    commonName: "n4",
    kind: "node",
    dnsNames: ["n4.example.internal"],
    ipAddresses: ["10.0.0.4"],
    validDays: 30,
  });
  const san = new X509Certificate(extra.certPem).subjectAltName ?? "";
  for (const name of ["DNS:localhost", "DNS:n4", "DNS:n4.example.internal", "IP Address:127.0.0.1"]) {
    assert.ok(san.includes(name), `${name} in ${san}`);
  }
  assert.ok(san.includes("IP Address:10.0.0.4"));
  assert.ok(/IP Address:0:0:0:0:0:0:0:1|IP Address:::1/.test(san), san);
  assert.deepEqual(new X509Certificate(client.certPem).keyUsage, ["1.3.6.1.5.5.7.3.2"]);
  assert.deepEqual(new X509Certificate(server.certPem).keyUsage?.sort(), [
    "1.3.6.1.5.5.7.3.1",
    "1.3.6.1.5.5.7.3.2",
  ]);
});

test("pki: validity starts a minute in the past, serials are random", async () => {
  const again = await issueCertificate(ca, { commonName: "n1", kind: "node", validDays: 30 });
  const a = new X509Certificate(server.certPem);
  const b = new X509Certificate(again.certPem);
  assert.notEqual(a.serialNumber, b.serialNumber);
  const startMs = Date.parse(b.validFrom);
  assert.ok(startMs <= Date.now() - 30_000, `validFrom ${b.validFrom}`);
  const lengthDays = (Date.parse(b.validTo) - startMs) / 86_400_000;
  assert.ok(lengthDays > 29.9 && lengthDays < 30.1, `${lengthDays}`);
});

test("pki: a CA key that does not match the CA certificate is refused", async () => {
  await assert.rejects(
    issueCertificate(
      { certPem: ca.certPem, keyPem: otherCa.keyPem },
      { commonName: "x", kind: "node", validDays: 1 },
    ),
    PkiInputError,
  );
  await assert.rejects(
    issueCertificate(
      { certPem: ca.certPem, keyPem: "garbage" },
      { commonName: "x", kind: "node", validDays: 1 },
    ),
    PkiInputError,
  );
  await assert.rejects(createClusterCa({ commonName: "ca", validDays: 0 }), PkiInputError);
});
