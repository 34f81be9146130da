import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { TokensFile } from "../../../src/api/tokens.ts";
import { registerTokenCommand } from "../../../src/cli/commands/token.ts";
import { runCli } from "./harness.ts";

const dir = mkdtempSync(join(tmpdir(), "tandem-cli-token-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const token = (...args: string[]) => runCli(registerTokenCommand, ["token", ...args]);

test("cli token: create prints the token once on stdout and stores only its hash, mode 0600", async () => {
  const file = join(dir, "create.yml");
  const created = await token("create", "ci-deploy", "--file", file);
  assert.equal(created.exitCode, 0, created.stderr);
  const secret = created.stdout.trim();
  assert.match(secret, /^tdm_[A-Za-z0-9_-]{43}$/);
  assert.match(created.stderr, /created token ci-deploy .* token:ci-deploy/);
  assert.ok(!created.stderr.includes(secret));
  assert.equal(statSync(file).mode & 0o777, 0o600);
  assert.ok(!readFileSync(file, "utf8").includes(secret.slice(4)));
  assert.deepEqual(new TokensFile(file, () => {}).verify(secret), { valid: true, name: "ci-deploy" });
  const again = await token("create", "ci-deploy", "--file", file);
  assert.equal(again.exitCode, 1);
  assert.match(again.stderr, /exists/);
  assert.equal(again.stdout, "");
});

test("cli token: list shows names and dates, never tokens or hashes", async () => {
  const file = join(dir, "list.yml");
  const first = (await token("create", "ops", "--file", file)).stdout.trim();
  await token("create", "web", "--file", file);
  const listed = await token("list", "--file", file);
  assert.equal(listed.exitCode, 0, listed.stderr);
  assert.match(listed.stdout, /^ops +\d{4}-\d\d-\d\dT.*\nweb +\d{4}-/);
  assert.ok(!listed.stdout.includes(first.slice(4, 20)));
  assert.ok(!/[0-9a-f]{64}/.test(listed.stdout));
  const json = await token("list", "--file", file, "--json");
  assert.deepEqual(
    json.stdout
      .trim()
      .split("\n")
      .map((line) => Object.keys(JSON.parse(line))),
    [
      ["name", "created"],
      ["name", "created"],
    ],
  );
  assert.equal((await token("list", "--file", join(dir, "none.yml"))).stdout, "", "no file, no tokens");
});

test("cli token: revoke removes the token; an unknown name exits 1", async () => {
  const file = join(dir, "revoke.yml");
  const secret = (await token("create", "ops", "--file", file)).stdout.trim();
  const verifier = new TokensFile(file, () => {});
  assert.equal(verifier.verify(secret).valid, true);
  const revoked = await token("revoke", "ops", "--file", file);
  assert.equal(revoked.exitCode, 0, revoked.stderr);
  assert.equal(verifier.verify(secret).valid, false);
  const unknown = await token("revoke", "ops", "--file", file);
  assert.equal(unknown.exitCode, 1);
  assert.match(unknown.stderr, /no token named "ops"/);
});

test("cli token: the file comes from the config's api.tokens_file when --file is absent", async () => {
  const config = join(dir, "tandem.yml");
  writeFileSync(config, "node: { id: n1 }\nlisten: 127.0.0.1:7400\napi: { tokens_file: from-config.yml }\n");
  const created = await token("create", "ops", "--config", config);
  assert.equal(created.exitCode, 0, created.stderr);
  assert.match(created.stderr, /from-config\.yml/);
  assert.equal(statSync(join(dir, "from-config.yml")).mode & 0o777, 0o600);
});

test("cli token: bad names and malformed files are clear errors", async () => {
  const file = join(dir, "bad.yml");
  const badName = await token("create", "../x", "--file", file);
  assert.equal(badName.exitCode, 1);
  assert.match(badName.stderr, /must match/);
  writeFileSync(file, "tokens: nope\n");
  const malformed = await token("list", "--file", file);
  assert.equal(malformed.exitCode, 1);
  assert.match(malformed.stderr, /tokens file .*bad\.yml/);
});

test("cli token: --help shows no token", async () => {
  const help = await token("create", "--help");
  assert.ok(!/tdm_[A-Za-z0-9_-]{10}/.test(help.stdout + help.stderr));
});
