import assert from "node:assert/strict";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { loadMeshSecurity, parseConfigText, type TandemConfig } from "../../../src/config/index.ts";
import { createClusterCa, issueCertificate, type PemPair } from "../../../src/pki/index.ts";

let dir: string;
let ca: PemPair;
let n1: PemPair;
let n2: PemPair;
let foreign: PemPair;
const pskHex = "ab".repeat(32);

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "tandem-security-"));
  ca = await createClusterCa({ commonName: "test-ca", validDays: 1 });
  n1 = await issueCertificate(ca, { commonName: "n1", kind: "node", validDays: 1 });
  n2 = await issueCertificate(ca, { commonName: "n2", kind: "node", validDays: 1 });
  const otherCa = await createClusterCa({ commonName: "other-ca", validDays: 1 });
  foreign = await issueCertificate(otherCa, { commonName: "n1", kind: "node", validDays: 1 });
  mkdirSync(join(dir, "tls"));
  write("tls/ca.pem", ca.certPem);
  write("tls/n1.pem", n1.certPem);
  write("tls/n1-key.pem", n1.keyPem, 0o600);
  write("tls/n2.pem", n2.certPem);
  write("tls/foreign.pem", foreign.certPem);
  write("tls/foreign-key.pem", foreign.keyPem, 0o600);
  write("tls/open-key.pem", n1.keyPem, 0o644);
  write("psk.key", `${pskHex}\n`, 0o600);
  write("open-psk.key", `${pskHex}\n`, 0o640);
  write("short-psk.key", "abcdef0123\n", 0o600);
});

after(() => rmSync(dir, { recursive: true, force: true }));

function write(name: string, text: string, mode = 0o644): void {
  writeFileSync(join(dir, name), text);
  chmodSync(join(dir, name), mode);
}

function config(security: string): TandemConfig {
  const result = parseConfigText(
    `node: { id: n1 }\nlisten: 127.0.0.1:7400\nsecurity: ${security}\n`,
    join(dir, "t.yml"),
  );
  assert.ok(result.ok, result.ok ? "" : result.error.format());
  return result.value;
}

async function problemOf(security: string, env: NodeJS.ProcessEnv = {}): Promise<string> {
  const loaded = await loadMeshSecurity(config(security), env);
  assert.ok(!loaded.ok, "expected a refusal");
  return loaded.error.format();
}

test("security: mtls with the default file names loads the PEMs without warnings", async () => {
  const loaded = await loadMeshSecurity(config("{ mode: mtls }"));
  assert.ok(loaded.ok, loaded.ok ? "" : loaded.error.format());
  assert.deepEqual(loaded.value.warnings, []);
  assert.deepEqual(loaded.value.security, {
    mode: "mtls",
    caCertPem: ca.certPem,
    certPem: n1.certPem,
    keyPem: n1.keyPem,
  });
});

test("security: a key file readable by others loads with a warning", async () => {
  const loaded = await loadMeshSecurity(config("{ mode: mtls, key_file: tls/open-key.pem }"));
  assert.ok(loaded.ok);
  assert.deepEqual(loaded.value.warnings, [
    `${join(dir, "tls/open-key.pem")} is readable by group or others (mode 644); run: chmod 600 ${join(dir, "tls/open-key.pem")}`,
  ]);
});

test("security: a missing file is named with the reason", async () => {
  const message = await problemOf("{ mode: mtls, ca_file: tls/none.pem }");
  assert.equal(message, `${join(dir, "tls/none.pem")}: security.ca_file: cannot be read (ENOENT)`);
});

test("security: a certificate for another node is refused", async () => {
  const message = await problemOf("{ mode: mtls, cert_file: tls/n2.pem }");
  assert.match(message, /security\.cert_file: is issued to "n2", not to this node "n1"/);
});

test("security: a certificate from another CA is refused", async () => {
  const message = await problemOf(
    "{ mode: mtls, cert_file: tls/foreign.pem, key_file: tls/foreign-key.pem }",
  );
  assert.match(message, /security\.cert_file: was not issued by the CA in ca_file/);
});

test("security: a key that does not belong to the certificate is refused, without key material", async () => {
  const message = await problemOf("{ mode: mtls, key_file: tls/foreign-key.pem }");
  assert.match(message, /security\.key_file: does not belong to cert_file/);
  assert.ok(!message.includes("PRIVATE KEY"));
});

test("security: a leaf certificate is not accepted as the CA", async () => {
  assert.match(
    await problemOf("{ mode: mtls, ca_file: tls/n2.pem }"),
    /security\.ca_file: is not a PEM CA certificate/,
  );
});

test("security: psk from a file decodes the hex; loose mode warns", async () => {
  const loaded = await loadMeshSecurity(config("{ mode: psk, psk_file: psk.key }"));
  assert.ok(loaded.ok);
  assert.deepEqual(loaded.value, {
    security: { mode: "psk", key: Buffer.from(pskHex, "hex") },
    warnings: [],
  });
  const open = await loadMeshSecurity(config("{ mode: psk, psk_file: open-psk.key }"));
  assert.ok(open.ok);
  assert.match(open.value.warnings[0] ?? "", /open-psk\.key is readable by group or others \(mode 640\)/);
});

test("security: a short psk is refused without printing it", async () => {
  const message = await problemOf("{ mode: psk, psk_file: short-psk.key }");
  assert.match(message, /security\.psk_file: must hold hex text of at least 32 bytes/);
  assert.ok(!message.includes("abcdef0123"));
});

test("security: psk from the environment", async () => {
  const loaded = await loadMeshSecurity(config("{ mode: psk, psk_env: TEST_PSK }"), { TEST_PSK: pskHex });
  assert.ok(loaded.ok);
  assert.equal(loaded.value.security.mode === "psk" && loaded.value.security.key.length, 32);
  assert.equal(
    await problemOf("{ mode: psk, psk_env: TEST_PSK }"),
    "$TEST_PSK: security.psk_env: is not set",
  );
  const bad = await problemOf("{ mode: psk, psk_env: TEST_PSK }", { TEST_PSK: "zz-secret-zz" });
  assert.ok(!bad.includes("zz-secret-zz"));
});
