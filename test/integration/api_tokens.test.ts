// Bearer tokens against a real agent: `tandem token create` writes the file the agent reads
// (api.tokens_file), the CLI sends the token to the loopback API, the ACL sees token:<name>, and a
// revocation takes effect on the running agent.
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { runTandem as tandem } from "../support/cli_run.ts";
import { ClusterHarness } from "../support/cluster_harness.ts";

describe("api tokens: the CLI with a bearer token against a real agent", { timeout: 120_000 }, () => {
  let harness: ClusterHarness;
  let configPath: string;
  let local: string;
  let value: string;

  before(async () => {
    harness = await ClusterHarness.create({ nodes: 1, security: "mtls" });
    configPath = harness.node("n1").configPath;
    local = harness.node("n1").apiUrl;
    harness.editConfig("n1", (config) => {
      config.api = { ...(config.api as object), tokens_file: "tokens.yml" };
      config.acl = [
        { path: "^/api/v1/store/certs/", cn: "^token:deploy$" },
        { path: "^/", cn: "^token:admin$" },
      ];
    });
    value = join(harness.dir, "value.txt");
    writeFileSync(value, "VALUE");
    harness.start("n1");
    await harness.waitForApi(["n1"]);
  });
  after(() => harness.dispose());

  it("a token created while the agent runs is accepted, under the ACL as token:<name>", async () => {
    const created = await tandem(["token", "create", "deploy", "--config", configPath]);
    assert.equal(created.code, 0, created.stderr);
    const token = created.stdout.trim();
    const put = await tandem(["put", "certs/web.pem", value, "--api", local], { TANDEM_TOKEN: token });
    assert.equal(put.code, 0, put.stderr);
    const denied = await tandem(["put", "other/x", value, "--api", local, "--token", token]);
    assert.equal(denied.code, 1);
    assert.match(denied.stderr, /token:deploy may not access/);
    const operator = await tandem(["put", "other/x", value, "--api", local]);
    assert.equal(operator.code, 0, "no token on loopback: the local operator, outside the ACL");
    const logs = harness.logLines("n1").join("\n");
    assert.ok(!logs.includes(token.slice(4)), "the token is not in the agent's logs");
  });

  it("a revoked token is refused by the running agent with 401", async () => {
    const created = await tandem(["token", "create", "admin", "--config", configPath]);
    const token = created.stdout.trim();
    const pid = harness.pid("n1");
    const before = await tandem(["ls", "--api", local, "--token", token]);
    assert.equal(before.code, 0, before.stderr);
    const revoked = await tandem(["token", "revoke", "admin", "--config", configPath]);
    assert.equal(revoked.code, 0, revoked.stderr);
    const after = await tandem(["ls", "--api", local, "--token", token]);
    assert.equal(after.code, 1);
    assert.match(after.stderr, /invalid or revoked bearer token/);
    assert.equal(harness.pid("n1"), pid, "no restart");
    const listed = await tandem(["token", "list", "--config", configPath]);
    assert.match(listed.stdout, /^deploy /);
    assert.doesNotMatch(listed.stdout, /admin/);
  });
});
