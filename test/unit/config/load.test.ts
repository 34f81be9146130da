import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { loadConfig, resolveConfigPath } from "../../../src/config/index.ts";
import { configProblems, parsedConfig } from "../../support/config_text.ts";

const full = `cluster_name: prod
node:
  id: n1
  role: member
  priority: 150
listen: 0.0.0.0:7400
advertise: 10.0.0.1:7400
api:
  listen: 127.0.0.1:7401
data_dir: state
peers:
  - { id: n2, address: 10.0.0.2:7400 }
  - { id: w3, address: "[fd00::3]:7400", role: witness, priority: 0 }
security:
  mode: mtls
  ca_file: tls/ca.pem
  cert_file: /etc/tandem/n1.pem
  key_file: tls/n1-key.pem
timings:
  preset: lan
  election_timeout_ms: 800
log:
  level: debug
`;

/** Formatted problems, one string each, for a file named tandem.yml. */
function problems(text: string): string[] {
  return configProblems(text).split("\n");
}

const minimal = "node: { id: n1 }\nlisten: 127.0.0.1:7400\n";

test("config: full example loads into camelCase with absolute paths and parsed addresses", () => {
  const c = parsedConfig(full);
  assert.equal(c.sourcePath, "/etc/tandem/tandem.yml");
  assert.equal(c.clusterName, "prod");
  assert.deepEqual(c.node, { id: "n1", role: "member", priority: 150 });
  assert.deepEqual(c.listen, { host: "0.0.0.0", port: 7400 });
  assert.deepEqual(c.advertise, { host: "10.0.0.1", port: 7400 });
  assert.deepEqual(c.api.listen, { host: "127.0.0.1", port: 7401 });
  assert.equal(c.dataDir, "/etc/tandem/state");
  assert.deepEqual(c.peers, [
    { id: "n2", address: { host: "10.0.0.2", port: 7400 }, role: "member", priority: 100 },
    { id: "w3", address: { host: "fd00::3", port: 7400 }, role: "witness", priority: 0 },
  ]);
  assert.deepEqual(c.security, {
    mode: "mtls",
    caFile: "/etc/tandem/tls/ca.pem",
    certFile: "/etc/tandem/n1.pem",
    keyFile: "/etc/tandem/tls/n1-key.pem",
  });
  assert.equal(c.timings.electionTimeoutMs, 800);
  assert.equal(c.timings.leaseMs, 550);
  assert.equal(c.log.level, "debug");
  assert.deepEqual(c.acl, [
    { path: "^/api/internal/", cn: "^(n2|w3)$" },
    { path: "^/", cn: ".*" },
  ]);
});

test("config: defaults fill a minimal file", () => {
  const c = parsedConfig(minimal);
  assert.equal(c.clusterName, "tandem");
  assert.deepEqual(c.node, { id: "n1", role: "member", priority: 100 });
  assert.deepEqual(c.advertise, c.listen);
  assert.deepEqual(c.api.listen, { host: "127.0.0.1", port: 7401 });
  assert.equal(c.dataDir, "/etc/tandem/data");
  assert.deepEqual(c.peers, []);
  assert.deepEqual(c.security, {
    mode: "mtls",
    caFile: "/etc/tandem/tls/ca.pem",
    certFile: "/etc/tandem/tls/n1.pem",
    keyFile: "/etc/tandem/tls/n1-key.pem",
  });
  assert.equal(c.timings.electionTimeoutMs, 700);
  assert.equal(c.log.level, "info");
});

test("config: api.listen null disables the plain API", () => {
  assert.equal(parsedConfig(`${minimal}api: { listen: null }\n`).api.listen, null);
});

test("config: unknown keys are reported with line and column, several at once", () => {
  const text = "node:\n  id: n1\n  colour: blue\nlisten: 127.0.0.1:7400\nextra: 1\n";
  assert.deepEqual(problems(text), [
    "tandem.yml:3:3: node.colour: unknown key",
    "tandem.yml:5:1: extra: unknown key",
  ]);
});

test("config: bad node ids are refused", () => {
  for (const id of ["N1", "-n1", "n 1", "a".repeat(64), '""']) {
    const [first] = problems(`node: { id: ${id} }\nlisten: 127.0.0.1:7400\n`);
    assert.match(first ?? "", /^tandem\.yml:1:\d+: node\.id: /, id);
  }
  parsedConfig(`node: { id: ${"a".repeat(63)} }\nlisten: 127.0.0.1:7400\n`);
  parsedConfig("node: { id: db-1.eu_west }\nlisten: 127.0.0.1:7400\n");
});

test("config: bad addresses name the key and line", () => {
  const text = `${minimal}peers:\n  - { id: n2, address: 10.0.0.2:7400 }\n  - { id: n3, address: nohost }\n`;
  assert.deepEqual(problems(text), ["tandem.yml:5:24: peers[1].address: expected host:port"]);
  for (const address of [
    "10.0.0.2:0",
    "10.0.0.2:65536",
    "10.0.0.2:x",
    "::1:7400",
    "[nope]:7400",
    "a_b:7400",
  ]) {
    const found = problems(`${minimal}peers:\n  - { id: n2, address: "${address}" }\n`);
    assert.match(found[0] ?? "", /^tandem\.yml:4:\d+: peers\[0\]\.address: expected/, address);
  }
});

test("config: duplicate peer ids and self in peers are refused", () => {
  const text = `${minimal}peers:
  - { id: n2, address: 10.0.0.2:7400 }
  - { id: n2, address: 10.0.0.3:7400 }
  - { id: n1, address: 10.0.0.4:7400 }
`;
  assert.deepEqual(problems(text), [
    'tandem.yml:5:11: peers[1].id: duplicate peer id "n2" (see peers[0])',
    'tandem.yml:6:11: peers[2].id: "n1" is this node; list only the other nodes',
  ]);
});

test("config: duplicate peer addresses and this node's own address are refused", () => {
  const text = `${minimal}peers:
  - { id: n2, address: 10.0.0.2:7400 }
  - { id: n3, address: 10.0.0.2:7400 }
  - { id: n4, address: 127.0.0.1:7400 }
  - { id: n5, address: 0.0.0.0:7400 }
`;
  const found = problems(text);
  assert.deepEqual(
    found.map((line) => line.replace(/^tandem\.yml:\d+:\d+: /, "")),
    [
      "peers[1].address: same address as peers[0]",
      "peers[2].address: is this node's own (advertised) address",
      "peers[3].address: must be an address to dial, not 0.0.0.0 or ::",
    ],
  );
});

test("config: a wildcard listen needs advertise", () => {
  assert.deepEqual(problems("node: { id: n1 }\nlisten: 0.0.0.0:7400\n"), [
    "tandem.yml:2:9: listen: binds every interface, so `advertise` (the host:port peers dial) is required",
  ]);
  assert.match(
    problems('node: { id: n1 }\nlisten: "[::]:7400"\nadvertise: 0.0.0.0:7400\n')[0] ?? "",
    /advertise: must/,
  );
});

test("config: a non-loopback api.listen is refused", () => {
  for (const address of ["0.0.0.0:7401", "10.0.0.1:7401", "[::]:7401", "example.com:7401"]) {
    const found = problems(`${minimal}api:\n  listen: "${address}"\n`);
    assert.match(found[0] ?? "", /^tandem\.yml:4:11: api\.listen: must be a loopback address/, address);
  }
  for (const address of ["127.0.0.2:7401", "[::1]:7401", "localhost:7401"]) {
    parsedConfig(`${minimal}api:\n  listen: "${address}"\n`);
  }
});

test("config: enums, ranges and types are checked with readable messages", () => {
  const text = `node: { id: n1, role: boss, priority: 1001 }
listen: 127.0.0.1:7400
log: { level: verbose }
timings: { preset: moon, tick_ms: "50" }
`;
  assert.deepEqual(problems(text), [
    'tandem.yml:1:23: node.role: expected one of "member", "witness"',
    "tandem.yml:1:39: node.priority: must be <= 1000",
    'tandem.yml:3:15: log.level: expected one of "trace", "debug", "info", "warn", "error"',
    'tandem.yml:4:20: timings.preset: expected one of "lan", "fast", "wan", "local"',
    "tandem.yml:4:35: timings.tick_ms: expected number",
  ]);
});

test("config: missing required keys point at the enclosing block", () => {
  assert.deepEqual(problems("node:\n  role: member\n"), [
    "tandem.yml:1:1: listen: required (string)",
    "tandem.yml:2:3: node.id: required (string)",
  ]);
});

test("config: security mode psk needs exactly one of psk_file or psk_env", () => {
  const psk = (body: string) => `${minimal}security:\n  mode: psk\n${body}`;
  assert.deepEqual(problems(psk("")), [
    "tandem.yml:4:3: security: psk mode needs exactly one of psk_file or psk_env",
  ]);
  assert.equal(problems(psk("  psk_file: a\n  psk_env: B\n")).length, 1);
  assert.deepEqual(parsedConfig(psk("  psk_env: TANDEM_PSK\n")).security, {
    mode: "psk",
    pskEnv: "TANDEM_PSK",
  });
  assert.deepEqual(parsedConfig(psk("  psk_file: psk.key\n")).security, {
    mode: "psk",
    pskFile: "/etc/tandem/psk.key",
  });
  assert.match(problems(psk("  psk_env: 1BAD\n"))[0] ?? "", /security\.psk_env: expected an environment/);
  assert.match(
    problems(`${minimal}security:\n  mode: psk\n  ca_file: x\n`).join("\n"),
    /security\.ca_file: unknown/,
  );
  assert.match(
    problems(`${minimal}security: { mode: tls }\n`)[0] ?? "",
    /security\.mode: expected one of "mtls", "psk"/,
  );
});

test("config: timings cross-checks name the field and the rule", () => {
  const timings = (body: string) => problems(`${minimal}timings:\n${body}`);
  assert.match(
    timings("  lease_ms: 600\n")[0] ?? "",
    /^tandem\.yml:4:13: timings\.lease_ms: must be <= 0\.9 \* \(election_timeout_ms - tick_ms\)/,
  );
  assert.match(
    timings("  leader_heartbeat_ms: 400\n").join("\n"),
    /leader_heartbeat_ms: must be <= election_timeout_ms \/ 2 \(350\)/,
  );
  assert.match(
    timings("  down_after_ms: 600\n")[0] ?? "",
    /timings\.down_after_ms: must be > suspect_after_missed \* heartbeat_interval_ms \(750\)/,
  );
  assert.match(
    timings("  election_timeout_ms: 725\n")[0] ?? "",
    /election_timeout_ms: 725 is not a multiple of tick_ms \(50\); use 700 or 750/,
  );
  // A rule broken by a preset value names the preset and points at the timings block.
  assert.deepEqual(timings("  election_timeout_ms: 400\n"), [
    'tandem.yml:4:3: timings.lease_ms: must be <= 0.9 * (election_timeout_ms - tick_ms) (315), so a leader\'s lease ends before a follower may vote elsewhere (value from preset "lan")',
  ]);
});

test("config: a timings preset supplies every field and fields override it", () => {
  const wan = parsedConfig(`${minimal}timings: { preset: wan, down_after_ms: 6000 }\n`).timings;
  assert.equal(wan.electionTimeoutMs, 3000);
  assert.equal(wan.downAfterMs, 6000);
  assert.equal(parsedConfig(`${minimal}timings: { preset: local }\n`).timings.tickMs, 10);
});

test("config: acl regexes are checked and kept as written", () => {
  assert.match(
    problems(`${minimal}acl:\n  - { path: "^/(", cn: ".*" }\n`)[0] ?? "",
    /^tandem\.yml:4:13: acl\[0\]\.path: not a valid regular expression/,
  );
  assert.deepEqual(parsedConfig(`${minimal}acl:\n  - { path: "^/", cn: "^ops-" }\n`).acl, [
    { path: "^/", cn: "^ops-" },
  ]);
});

test("config: a cluster needs at least one member", () => {
  const text =
    "node: { id: w1, role: witness }\nlisten: 127.0.0.1:7400\npeers:\n  - { id: w2, address: 10.0.0.2:7400, role: witness }\n";
  assert.deepEqual(problems(text), ["tandem.yml:1:23: node.role: the cluster needs at least one member"]);
});

test("config: YAML syntax errors and duplicate keys carry positions", () => {
  assert.deepEqual(problems("node: { id: n1 }\nlisten: 127.0.0.1:7400\nlisten: 127.0.0.1:7401\n"), [
    "tandem.yml:3:1: YAML: Map keys must be unique",
  ]);
  assert.match(problems("node: {id: n1\nlisten: x\n")[0] ?? "", /^tandem\.yml:2:1: YAML: /);
  assert.match(problems("")[0] ?? "", /^tandem\.yml:1:1: the file must be a mapping of keys/);
});

test("config: loadConfig reads a file and reports an unreadable one", () => {
  const dir = mkdtempSync(join(tmpdir(), "tandem-config-"));
  try {
    const path = join(dir, "tandem.yml");
    writeFileSync(path, minimal);
    const loaded = loadConfig(path);
    assert.ok(loaded.ok);
    assert.equal(loaded.value.dataDir, join(dir, "data"));
    const missing = loadConfig(join(dir, "nope.yml"));
    assert.ok(!missing.ok);
    assert.equal(missing.error.format(), `${join(dir, "nope.yml")}: cannot read the file (ENOENT)`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("config: path comes from --config, then TANDEM_CONFIG, then ./tandem.yml", () => {
  assert.equal(resolveConfigPath("a.yml", { TANDEM_CONFIG: "b.yml" }), "a.yml");
  assert.equal(resolveConfigPath(undefined, { TANDEM_CONFIG: "b.yml" }), "b.yml");
  assert.equal(resolveConfigPath(undefined, {}), "tandem.yml");
});
