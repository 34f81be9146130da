import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import type { Server } from "node:http";
import { createServer as createHttpsServer, type Server as HttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import type { TLSSocket } from "node:tls";
import type { Command } from "commander";
import { pino } from "pino";
import { createApiRouter, startLocalApi } from "../../../src/api/index.ts";
import { storeRoutes } from "../../../src/api/store_routes.ts";
import { createToken, TokensFile } from "../../../src/api/tokens.ts";
import {
  apiCredentialsFrom,
  CredentialsError,
  credentialRequestOptions,
  getJson,
} from "../../../src/cli/api_client.ts";
import { registerStatusCommand } from "../../../src/cli/commands/status.ts";
import { registerStoreCommands } from "../../../src/cli/commands/store.ts";
import { registerTokenCommand } from "../../../src/cli/commands/token.ts";
import { parseApiUrls, StoreClient } from "../../../src/cli/store_client.ts";
import { createClusterCa, issueCertificate } from "../../../src/pki/index.ts";
import { MemoryStoreService } from "../../support/memory_store_service.ts";
import { runCli } from "./harness.ts";

const dir = mkdtempSync(join(tmpdir(), "tandem-cli-credentials-"));
const tokensPath = join(dir, "tokens.yml");
const now = new Date("2026-11-24T12:00:00.000Z");
const deployToken = createToken(tokensPath, "deploy", now);
const logger = pino({ level: "silent" });
const service = new MemoryStoreService();
const router = createApiRouter({
  nodeId: "n1",
  status: () => ({ node: { id: "n1" } }),
  acl: [
    { path: "^/api/v1/store/certs/", cn: "^(token:deploy|ops)$" },
    { path: "^/", cn: "^ops$" },
  ],
  logger,
  routes: storeRoutes(service, { nodeId: "n1", logger, minAcksDefault: 0 }),
  tokens: new TokensFile(tokensPath, () => {}),
});

const file = (name: string, text: string) => {
  const path = join(dir, name);
  writeFileSync(path, text, { mode: 0o600 });
  return path;
};
let pem: { ca: string; otherCa: string; cert: string; key: string };
let local: Server;
let localBase: string;
// Stands in for the agent's TLS port: mTLS against the cluster CA, identity = the client certificate's CN.
let tlsPort: HttpsServer;
let tlsBase: string;
before(async () => {
  const ca = await createClusterCa({ commonName: "test-ca", validDays: 1 });
  const otherCa = await createClusterCa({ commonName: "other-ca", validDays: 1 });
  const server = await issueCertificate(ca, { commonName: "n1", kind: "node", validDays: 1 });
  const client = await issueCertificate(ca, { commonName: "ops", kind: "client", validDays: 1 });
  pem = {
    ca: file("ca.pem", ca.certPem),
    otherCa: file("other-ca.pem", otherCa.certPem),
    cert: file("ops.pem", client.certPem),
    key: file("ops-key.pem", client.keyPem),
  };
  local = await startLocalApi("127.0.0.1", 0, router);
  localBase = `http://127.0.0.1:${(local.address() as AddressInfo).port}`;
  tlsPort = createHttpsServer(
    { ca: ca.certPem, cert: server.certPem, key: server.keyPem, requestCert: true, rejectUnauthorized: true },
    (req, res) => {
      const cn = (req.socket as TLSSocket).getPeerCertificate().subject?.CN;
      router(req, res, { kind: "certificate", name: String(cn) });
    },
  );
  await new Promise<void>((resolve) => tlsPort.listen(0, "127.0.0.1", resolve));
  tlsBase = `https://127.0.0.1:${(tlsPort.address() as AddressInfo).port}`;
});
after(() => {
  local.close();
  tlsPort.close();
  tlsPort.closeAllConnections();
  rmSync(dir, { recursive: true, force: true });
});

/** A command's exit status, including the exitCode an action sets (then cleared). */
async function tandem(register: (program: Command) => void, args: string[]) {
  const run = await runCli(register, args);
  const exitCode = run.exitCode || Number(process.exitCode ?? 0);
  process.exitCode = 0;
  return { ...run, exitCode };
}
const store = (...args: string[]) => tandem(registerStoreCommands, args);

test("cli credentials: options win over TANDEM_* variables; files are read, not echoed", () => {
  const env = { TANDEM_TOKEN: "tdm_env", TANDEM_CA: pem.ca, TANDEM_CERT: pem.cert, TANDEM_KEY: pem.key };
  const fromEnv = apiCredentialsFrom({}, env);
  assert.equal(fromEnv.token, "tdm_env");
  assert.match(fromEnv.cert?.toString() ?? "", /BEGIN CERTIFICATE/);
  assert.equal(apiCredentialsFrom({ token: "tdm_flag" }, env).token, "tdm_flag");
  assert.deepEqual(apiCredentialsFrom({}, { TANDEM_TOKEN: "" }), {}, "an empty variable is unset");
  assert.throws(() => apiCredentialsFrom({ cert: pem.cert }, {}), /both --cert and --key/);
  assert.throws(() => apiCredentialsFrom({ token: "tdm bad" }, {}), CredentialsError);
  assert.throws(
    () => apiCredentialsFrom({ ca: join(dir, "missing.pem") }, {}),
    (error: Error) =>
      error instanceof CredentialsError &&
      /--ca file .*missing\.pem: no such file \(ENOENT\)/.test(error.message),
  );
  const keyError = (() => {
    try {
      apiCredentialsFrom({ cert: pem.key, key: join(dir, "nope") }, {});
    } catch (error) {
      return (error as Error).message;
    }
  })();
  assert.ok(keyError && !keyError.includes("PRIVATE KEY"));
});

test("cli credentials: a token never goes over plain HTTP off loopback; TLS options only for https", async () => {
  const credentials = { token: deployToken, ca: Buffer.from("ca") };
  assert.throws(
    () => credentialRequestOptions(new URL("http://10.0.0.1:7401"), "10.0.0.1", credentials),
    (error: Error) => error instanceof CredentialsError && !error.message.includes(deployToken),
  );
  const loopback = credentialRequestOptions(new URL("http://127.0.0.1:7401"), "127.0.0.1", credentials);
  assert.deepEqual(loopback, { headers: { authorization: `Bearer ${deployToken}` } });
  const tls = credentialRequestOptions(new URL("https://10.0.0.1:7400"), "10.0.0.1", credentials);
  assert.equal(tls.headers.authorization, `Bearer ${deployToken}`);
  assert.ok("ca" in tls);
  await assert.rejects(
    StoreClient.connect(parseApiUrls(["http://127.0.0.1:7401", "http://10.0.0.1:7401"]), { credentials }),
    CredentialsError,
  );
  const args = ["put", "certs/x", pem.ca, "--api", "http://10.0.0.1:7401", "--token", deployToken];
  const put = await store(...args);
  assert.equal(put.exitCode, 1, "refused before connecting");
  assert.match(put.stderr, /refusing to send a token over plain HTTP to 10\.0\.0\.1:7401/);
});

test("cli credentials: --token on the loopback API acts as token:<name> under the ACL", async () => {
  const allowed = await store("put", "certs/web.pem", pem.ca, "--api", localBase, "--token", deployToken);
  assert.equal(allowed.exitCode, 0, allowed.stderr);
  const denied = await store("put", "other/x", pem.ca, "--api", localBase, "--token", deployToken);
  assert.equal(denied.exitCode, 1);
  assert.match(denied.stderr, /token:deploy may not access/);
  const operator = await store("put", "other/x", pem.ca, "--api", localBase);
  assert.equal(operator.exitCode, 0, "no token: the local operator, outside the ACL");
  const wrong = await store("get", "certs/web.pem", "--api", localBase, "--token", `${deployToken}x`);
  assert.equal(wrong.exitCode, 1);
  assert.match(wrong.stderr, /invalid or revoked bearer token/);
  for (const run of [allowed, denied, wrong]) assert.ok(!(run.stdout + run.stderr).includes(deployToken));
});

test("cli credentials: TANDEM_TOKEN is used, and revoking it takes effect without a restart", async () => {
  const created = await tandem(registerTokenCommand, ["token", "create", "ci", "--file", tokensPath]);
  const ciToken = created.stdout.trim();
  // ci is not in the ACL for certs/, but may read nothing else either: a denial proves the token was sent.
  process.env.TANDEM_TOKEN = ciToken;
  try {
    const asCi = await store("ls", "certs/", "--api", localBase);
    assert.equal(asCi.exitCode, 1);
    assert.match(asCi.stderr, /token:ci may not access/);
    await tandem(registerTokenCommand, ["token", "revoke", "ci", "--file", tokensPath]);
    const revoked = await store("ls", "certs/", "--api", localBase);
    assert.equal(revoked.exitCode, 1);
    assert.match(revoked.stderr, /invalid or revoked bearer token/);
  } finally {
    delete process.env.TANDEM_TOKEN;
  }
});

test("cli credentials: https with the cluster CA and a client certificate reaches the TLS port as its CN", async () => {
  const tlsArgs = ["--api", tlsBase, "--ca", pem.ca, "--cert", pem.cert, "--key", pem.key];
  const put = await store("put", "notes/a", pem.ca, ...tlsArgs);
  assert.equal(put.exitCode, 0, put.stderr);
  const status = await getJson(tlsBase, "/api/v1/status", 3_000, apiCredentialsFrom({ ...pem }, {}));
  assert.deepEqual(status, { node: { id: "n1" } });
  const asToken = await store("put", "notes/b", pem.ca, ...tlsArgs, "--token", deployToken);
  assert.equal(asToken.exitCode, 1, "a token replaces the certificate's identity");
  assert.match(asToken.stderr, /token:deploy may not access/);
});

test("cli credentials: https refuses a server the CA did not sign and a client without a certificate", async () => {
  const wrongCa = await store(
    "ls",
    "--api",
    tlsBase,
    "--ca",
    pem.otherCa,
    "--cert",
    pem.cert,
    "--key",
    pem.key,
  );
  assert.equal(wrongCa.exitCode, 1);
  assert.match(wrongCa.stderr, /no store API endpoint answered.*(certificate|self-signed)/i);
  assert.match(wrongCa.stderr, /does not trust .*the --ca file .*other-ca\.pem does not vouch for it/);
  const noCert = await store("ls", "--api", tlsBase, "--ca", pem.ca);
  assert.equal(noCert.exitCode, 1);
  assert.match(
    noCert.stderr,
    /no store API endpoint answered.*requires a client certificate: pass --cert and --key/,
  );
});

/** `tandem status` with captured stderr (it writes to process.stderr). */
async function status(...args: string[]): Promise<{ exitCode: number; stderr: string }> {
  let stderr = "";
  const write = process.stderr.write;
  process.stderr.write = ((text: string) => {
    stderr += text;
    return true;
  }) as typeof process.stderr.write;
  try {
    const run = await tandem(registerStatusCommand, ["status", ...args]);
    return { exitCode: run.exitCode, stderr: stderr + run.stderr };
  } finally {
    process.stderr.write = write;
  }
}

test("cli credentials: a missing or wrong client certificate is named, not taken for a stopped agent", async () => {
  const noCert = await status("--api", tlsBase, "--ca", pem.ca);
  assert.equal(noCert.exitCode, 1);
  assert.match(noCert.stderr, /the TLS port at https:\/\/127\.0\.0\.1:\d+ requires a client certificate/);
  const otherCa = await createClusterCa({ commonName: "rogue-ca", validDays: 1 });
  const rogue = await issueCertificate(otherCa, { commonName: "ops", kind: "client", validDays: 1 });
  const rogueFiles = [
    "--cert",
    file("rogue.pem", rogue.certPem),
    "--key",
    file("rogue-key.pem", rogue.keyPem),
  ];
  const refused = await status("--api", tlsBase, "--ca", pem.ca, ...rogueFiles);
  assert.equal(refused.exitCode, 1);
  assert.match(
    refused.stderr,
    /refused the client certificate in .*rogue\.pem.*not issued by the cluster CA in the --ca file .*ca\.pem/,
  );
  const viaStore = await store("ls", "--api", tlsBase, "--ca", pem.ca, ...rogueFiles);
  assert.match(viaStore.stderr, /refused the client certificate in .*rogue\.pem/);
  const garbage = file("garbage.pem", "not a certificate\n");
  const cases: Array<[string[], RegExp]> = [
    [["--cert", garbage, "--key", pem.key], /the --cert file .*garbage\.pem is not a PEM certificate/],
    [["--cert", pem.cert, "--key", garbage], /the --key file .*garbage\.pem is not a PEM private key/],
    [["--ca", garbage, "--cert", pem.cert, "--key", pem.key], /the --ca file .*garbage\.pem is not a PEM/],
    [
      ["--cert", pem.cert, "--key", rogueFiles[3]!],
      /rogue-key\.pem is not the private key of the --cert file/,
    ],
    [["--cert", join(dir, "absent.pem"), "--key", pem.key], /--cert file .*absent\.pem: no such file/],
    [["--cert", dir, "--key", pem.key], /--cert file .*: it is a directory/],
  ];
  for (const [args, reason] of cases) {
    for (const run of [
      await status("--api", tlsBase, ...args),
      await store("ls", "--api", tlsBase, ...args),
    ]) {
      assert.equal(run.exitCode, 1, args.join(" "));
      assert.match(run.stderr, reason);
      assert.doesNotMatch(run.stderr, /is the agent running|PRIVATE KEY|BEGIN/);
    }
  }
  const stopped = await status("--api", "http://127.0.0.1:1");
  assert.match(
    stopped.stderr,
    /cannot reach the Tandem API at http:\/\/127\.0\.0\.1:1 \(is the agent running\?\)/,
  );
});
