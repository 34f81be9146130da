import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { registerTlsCommand } from "../../../src/cli/commands/tls.ts";
import { runCli } from "./harness.ts";

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), "tandem-cli-tls-"));
});
after(() => rmSync(dir, { recursive: true, force: true }));

const tls = (...args: string[]) => runCli(registerTlsCommand, ["tls", ...args]);
const modeOf = (path: string) => statSync(path).mode & 0o777;

test("cli tls: ca writes ca.pem and a 0600 key, then refuses to overwrite", async () => {
  const tlsDir = join(dir, "ca-test");
  const first = await tls("ca", "--dir", tlsDir, "--name", "prod-ca", "--days", "30");
  assert.equal(first.exitCode, 0, first.stderr);
  assert.equal(modeOf(join(tlsDir, "ca-key.pem")), 0o600);
  assert.equal(new X509Certificate(readFileSync(join(tlsDir, "ca.pem"))).subject, "CN=prod-ca");
  assert.ok(!first.stdout.includes("PRIVATE KEY"));
  const keyBefore = readFileSync(join(tlsDir, "ca-key.pem"), "utf8");
  const again = await tls("ca", "--dir", tlsDir);
  assert.equal(again.exitCode, 1);
  assert.match(again.stderr, /already exists; refusing to overwrite/);
  assert.equal(readFileSync(join(tlsDir, "ca-key.pem"), "utf8"), keyBefore);
});

test("cli tls: cert issues node and client certificates signed by the CA in --dir", async () => {
  const tlsDir = join(dir, "cert-test");
  assert.equal((await tls("ca", "--dir", tlsDir)).exitCode, 0);
  const node = await tls("cert", "n2", "--dir", tlsDir, "--ip", "10.0.0.2", "--dns", "n2.example.internal");
  assert.equal(node.exitCode, 0, node.stderr);
  const ca = new X509Certificate(readFileSync(join(tlsDir, "ca.pem")));
  const cert = new X509Certificate(readFileSync(join(tlsDir, "n2.pem")));
  assert.equal(cert.checkIssued(ca), true);
  assert.match(cert.subjectAltName ?? "", /IP Address:10\.0\.0\.2/);
  assert.match(cert.subjectAltName ?? "", /DNS:n2\.example\.internal/);
  assert.equal(modeOf(join(tlsDir, "n2-key.pem")), 0o600);
  const client = await tls("cert", "ops-alice", "--dir", tlsDir, "--client", "--days", "7");
  assert.equal(client.exitCode, 0, client.stderr);
  assert.deepEqual(new X509Certificate(readFileSync(join(tlsDir, "ops-alice.pem"))).keyUsage, [
    "1.3.6.1.5.5.7.3.2",
  ]);
  const again = await tls("cert", "n2", "--dir", tlsDir);
  assert.equal(again.exitCode, 1);
  assert.match(again.stderr, /n2\.pem already exists/);
});

test("cli tls: cert refuses a missing CA, bad names and bad options", async () => {
  const missing = await tls("cert", "n1", "--dir", join(dir, "nowhere"));
  assert.equal(missing.exitCode, 1);
  assert.match(missing.stderr, /cannot read the CA in .*nowhere \(ENOENT\); create one with: tandem tls ca/);
  assert.equal((await tls("cert", "../evil", "--dir", dir)).exitCode, 2);
  const badIp = await tls("cert", "n1", "--dir", dir, "--ip", "10.0.0.300");
  assert.notEqual(badIp.exitCode, 0);
  assert.match(badIp.stderr, /"10\.0\.0\.300" is not an IP address/);
  assert.match((await tls("ca", "--dir", dir, "--days", "0")).stderr, /expected 1\.\.36500 days/);
});

test("cli tls: psk writes 32 random bytes as hex with mode 0600 and never prints them", async () => {
  const out = join(dir, "psk.key");
  const run = await tls("psk", "--out", out);
  assert.equal(run.exitCode, 0, run.stderr);
  const text = readFileSync(out, "utf8");
  assert.match(text, /^[0-9a-f]{64}\n$/);
  assert.equal(modeOf(out), 0o600);
  assert.ok(!run.stdout.includes(text.trim()));
  const again = await tls("psk", "--out", out);
  assert.equal(again.exitCode, 1);
  assert.equal(readFileSync(out, "utf8"), text);
});

test("cli tls: refuses to overwrite a foreign file in place of a key", async () => {
  const tlsDir = join(dir, "foreign");
  assert.equal((await tls("ca", "--dir", tlsDir)).exitCode, 0);
  writeFileSync(join(tlsDir, "n5-key.pem"), "keep me");
  const run = await tls("cert", "n5", "--dir", tlsDir);
  assert.equal(run.exitCode, 1);
  assert.equal(readFileSync(join(tlsDir, "n5-key.pem"), "utf8"), "keep me");
  assert.throws(() => statSync(join(tlsDir, "n5.pem")), /ENOENT/);
});

test("cli tls: help shows examples", async () => {
  const help = await tls("cert", "--help");
  assert.match(help.stdout, /tandem tls cert n2 --ip 10\.0\.0\.2/);
});
