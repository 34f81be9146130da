import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import type { Command } from "commander";
import { registerConfigCommand } from "../../../src/cli/commands/config.ts";
import { registerInitCommand } from "../../../src/cli/commands/init.ts";
import { registerTlsCommand } from "../../../src/cli/commands/tls.ts";
import { configJsonSchema, loadConfig } from "../../../src/config/index.ts";
import { runCli } from "./harness.ts";

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), "tandem-cli-init-"));
});
after(() => rmSync(dir, { recursive: true, force: true }));

const all = (program: Command) => {
  registerInitCommand(program);
  registerConfigCommand(program);
  registerTlsCommand(program);
};
const cli = (...args: string[]) => runCli(all, args);

test("cli init: the starter config loads, keeps the flags and explains every key", async () => {
  const out = join(dir, "cluster.yml");
  const peers = "n2=10.0.0.2:7400,n3=[fd00::3]:7400";
  const run = await cli("init", "--id", "n1", "--advertise", "10.0.0.1:7400", "--peers", peers, "--out", out);
  assert.equal(run.exitCode, 0, run.stderr);
  const loaded = loadConfig(out);
  assert.ok(loaded.ok, loaded.ok ? "" : loaded.error.format());
  assert.equal(loaded.value.node.id, "n1");
  assert.deepEqual(loaded.value.listen, { host: "0.0.0.0", port: 7400 });
  assert.deepEqual(loaded.value.advertise, { host: "10.0.0.1", port: 7400 });
  assert.deepEqual(
    loaded.value.peers.map((p) => [p.id, p.address.host]),
    [
      ["n2", "10.0.0.2"],
      ["n3", "fd00::3"],
    ],
  );
  const text = readFileSync(out, "utf8");
  const documented = [
    "cluster_name",
    "id",
    "role",
    "priority",
    "listen",
    "advertise",
    "data_dir",
    "peers",
    "mode",
  ];
  for (const key of [...documented, "ca_file", "acl", "preset", "tick_ms", "lease_ms", "level"]) {
    const line = text.split("\n").findIndex((l) => new RegExp(`^\\s*#?\\s*(- )?${key}:`).test(l));
    assert.ok(line > 0, `${key} present`);
    assert.match(text.split("\n")[line - 1] ?? "", /^\s*#/, `${key} has a comment above it`);
  }
});

test("cli init: psk starter and loopback default load too", async () => {
  const out = join(dir, "psk.yml");
  assert.equal((await cli("init", "--security", "psk", "--out", out)).exitCode, 0);
  const loaded = loadConfig(out);
  assert.ok(loaded.ok, loaded.ok ? "" : loaded.error.format());
  assert.deepEqual(loaded.value.security, { mode: "psk", pskFile: join(dir, "psk.key") });
  assert.deepEqual(loaded.value.listen, { host: "127.0.0.1", port: 7400 });
});

test("cli init: refuses to overwrite without --force", async () => {
  const out = join(dir, "exists.yml");
  writeFileSync(out, "mine\n");
  const refused = await cli("init", "--out", out);
  assert.equal(refused.exitCode, 1);
  assert.match(refused.stderr, /already exists; use --force/);
  assert.equal(readFileSync(out, "utf8"), "mine\n");
  assert.equal((await cli("init", "--out", out, "--force")).exitCode, 0);
  assert.match(readFileSync(out, "utf8"), /^# Tandem node configuration/);
});

test("cli init: flags that make an invalid config are refused before writing", async () => {
  const out = join(dir, "self.yml");
  const run = await cli("init", "--id", "n1", "--peers", "n1=10.0.0.9:7400", "--out", out);
  assert.equal(run.exitCode, 1);
  assert.match(run.stderr, /peers\[0\]\.id: "n1" is this node/);
  assert.throws(() => readFileSync(out), /ENOENT/);
  assert.notEqual((await cli("init", "--peers", "n2:7400", "--out", out)).exitCode, 0);
  assert.notEqual((await cli("init", "--security", "ssh", "--out", out)).exitCode, 0);
});

test("cli config check: init + tls → ok; every problem with its position otherwise", async () => {
  const out = join(dir, "check.yml");
  assert.equal((await cli("init", "--id", "n1", "--out", out)).exitCode, 0);
  const missingFiles = await cli("config", "check", "-c", out);
  assert.equal(missingFiles.exitCode, 1);
  assert.match(missingFiles.stderr, /tls\/ca\.pem: security\.ca_file: cannot be read \(ENOENT\)/);
  assert.equal((await cli("tls", "ca", "--dir", join(dir, "tls"))).exitCode, 0);
  assert.equal((await cli("tls", "cert", "n1", "--dir", join(dir, "tls"))).exitCode, 0);
  const good = await cli("config", "check", "-c", out);
  assert.equal(good.exitCode, 0, good.stderr);
  assert.equal(good.stdout, `ok: ${out}\n`);
  assert.equal(good.stderr, "");

  const bad = join(dir, "bad.yml");
  writeFileSync(bad, "node:\n  id: N1\nlisten: 127.0.0.1:7400\nbogus: 1\n");
  const refused = await cli("config", "check", "--config", bad);
  assert.equal(refused.exitCode, 1);
  assert.equal(refused.stdout, "");
  assert.match(refused.stderr, new RegExp(`${bad}:2:7: node\\.id: expected`));
  assert.match(refused.stderr, new RegExp(`${bad}:4:1: bogus: unknown key`));
});

test("cli config schema: prints the JSON Schema", async () => {
  const run = await cli("config", "schema");
  assert.equal(run.exitCode, 0);
  assert.deepEqual(JSON.parse(run.stdout), configJsonSchema());
});
