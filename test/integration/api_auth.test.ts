// The `tandem` CLI against a real agent: https to the TLS port with a client certificate from
// `tandem tls cert NAME --client`, verified against the cluster CA, under the configured ACL.
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { createClusterCa, issueCertificate } from "../../src/pki/index.ts";
import { runTandem as tandem } from "../support/cli_run.ts";
import { ClusterHarness } from "../support/cluster_harness.ts";

describe("api auth: the CLI against a real agent", { timeout: 120_000 }, () => {
  let harness: ClusterHarness;
  let tlsDir: string;
  let https: string;
  let clientTls: string[];

  before(async () => {
    harness = await ClusterHarness.create({ nodes: 1, security: "mtls" });
    tlsDir = join(harness.dir, "tls");
    harness.editConfig("n1", (config) => {
      config.acl = [
        { path: "^/api/v1/store/certs/", cn: "^ops$" },
        { path: "^/api/v1/status$", cn: ".*" },
        { path: "^/", cn: "^ops$" },
      ];
    });
    const issued = await tandem(["tls", "cert", "ops", "--client", "--dir", tlsDir]);
    assert.equal(issued.code, 0, issued.stderr);
    const readerIssued = await tandem(["tls", "cert", "reader", "--client", "--dir", tlsDir]);
    assert.equal(readerIssued.code, 0, readerIssued.stderr);
    harness.start("n1");
    await harness.waitForApi(["n1"]);
    https = `https://127.0.0.1:${harness.node("n1").meshPort}`;
    clientTls = ["--ca", join(tlsDir, "ca.pem"), "--cert", join(tlsDir, "ops.pem")];
    clientTls.push("--key", join(tlsDir, "ops-key.pem"));
  });
  after(() => harness.dispose());

  it("put, get, ls and status over https with a client certificate", async () => {
    const value = join(harness.dir, "web.pem");
    writeFileSync(value, "CERTIFICATE BYTES");
    const put = await tandem(["put", "certs/web.pem", value, "--api", https, ...clientTls]);
    assert.equal(put.code, 0, put.stderr);
    const get = await tandem(["get", "certs/web.pem", "--api", https, ...clientTls]);
    assert.equal(get.code, 0, get.stderr);
    assert.equal(get.stdout, "CERTIFICATE BYTES");
    const ls = await tandem(["ls", "certs/", "--api", https, ...clientTls]);
    assert.match(ls.stdout, /certs\/web\.pem/);
    const status = await tandem(["status", "--api", https, "--json", ...clientTls]);
    assert.equal(status.code, 0, status.stderr);
    assert.equal((JSON.parse(status.stdout) as { node: { id: string } }).node.id, "n1");
  });

  it("the same options from TANDEM_CA, TANDEM_CERT and TANDEM_KEY", async () => {
    const env = {
      TANDEM_CA: join(tlsDir, "ca.pem"),
      TANDEM_CERT: join(tlsDir, "ops.pem"),
      TANDEM_KEY: join(tlsDir, "ops-key.pem"),
    };
    const get = await tandem(["get", "certs/web.pem", "--api", https], env);
    assert.equal(get.code, 0, get.stderr);
    assert.equal(get.stdout, "CERTIFICATE BYTES");
  });

  it("the ACL applies to the certificate's CN", async () => {
    const reader = ["--ca", join(tlsDir, "ca.pem"), "--cert", join(tlsDir, "reader.pem")];
    reader.push("--key", join(tlsDir, "reader-key.pem"));
    const denied = await tandem(["get", "certs/web.pem", "--api", https, ...reader]);
    assert.equal(denied.code, 1);
    assert.match(denied.stderr, /reader may not access \/api\/v1\/store\/certs\/web\.pem/);
    const status = await tandem(["status", "--api", https, "--json", ...reader]);
    assert.equal(status.code, 0, status.stderr);
  });

  it("a server outside the CA, or a client certificate from another CA, is refused", async () => {
    const rogueCa = await createClusterCa({ commonName: "rogue-ca", validDays: 1 });
    const rogue = await issueCertificate(rogueCa, { commonName: "ops", kind: "client", validDays: 1 });
    writeFileSync(join(tlsDir, "rogue-ca.pem"), rogueCa.certPem);
    writeFileSync(join(tlsDir, "rogue-ops.pem"), rogue.certPem);
    writeFileSync(join(tlsDir, "rogue-ops-key.pem"), rogue.keyPem, { mode: 0o600 });
    const wrongCa = ["--ca", join(tlsDir, "rogue-ca.pem"), ...clientTls.slice(2)];
    const unverified = await tandem(["get", "certs/web.pem", "--api", https, ...wrongCa]);
    assert.equal(unverified.code, 1);
    assert.match(unverified.stderr, /self-signed certificate/);
    const forged = ["--ca", join(tlsDir, "ca.pem"), "--cert", join(tlsDir, "rogue-ops.pem")];
    forged.push("--key", join(tlsDir, "rogue-ops-key.pem"));
    const refused = await tandem(["get", "certs/web.pem", "--api", https, ...forged]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /no store API endpoint answered/, "the TLS handshake is refused");
    assert.equal(refused.stdout, "");
  });
});
