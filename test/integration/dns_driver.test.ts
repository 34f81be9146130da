// The dns driver against real DNS servers from Debian: Knot (knotd) and BIND (named), each started here on
// 127.0.0.1 with its own config, zone and TSIG key in a temporary folder (nothing of the system's is used
// or started), killed by its pid at the end. What the name holds is read with kdig or dig, not with the
// driver's own query, so the two checks are independent.
import assert from "node:assert/strict";
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { pino } from "pino";
import type { DnsDriverConfig } from "../../src/config/dns_driver_schema.ts";
import { DnsDriver } from "../../src/services/dns_driver.ts";
import { collectLines } from "../support/child_lines.ts";
import { type PortRange, reservePortRange } from "../support/free_ports.ts";
import { findBinary, testGate } from "../support/tool_gate.ts";

const run = promisify(execFile);
const keyName = "tandem-key";
const zone = "example.com";
const name = "web.example.com";
const n1 = "192.0.2.1";
const n2 = "192.0.2.2";
const n6 = "2001:db8::6";
const readyTimeoutMs = 15_000;
const stopTimeoutMs = 5_000;

const zoneText = `$ORIGIN ${zone}.
$TTL 300
@   IN SOA ns.${zone}. hostmaster.${zone}. 1 3600 600 86400 300
@   IN NS  ns.${zone}.
ns  IN A   127.0.0.1
`;

interface ServerKind {
  label: string;
  binary: string;
  install: string;
  /** How it refuses an update its policy does not allow to a key it knows. */
  outsidePolicy: RegExp;
  /** Writes its config into `dir`; returns the argv after the binary. */
  configure(dir: string, port: number, secret: string): string[];
}

const knot: ServerKind = {
  label: "Knot",
  binary: "knotd",
  install: "apt-get install knot",
  // Knot answers an update no ACL allows as if it did not know the key.
  outsidePolicy:
    /^DnsDriverError: update of other\.example\.com: the server answered NOTAUTH, and its answer fails TSIG: BADKEY/,
  configure(dir, port, secret) {
    mkdirSync(join(dir, "db"));
    writeFileSync(
      join(dir, "knot.conf"),
      `server:
    rundir: "${dir}"
    listen: 127.0.0.1@${port}
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
log:
  - target: stderr
    any: info
database:
    storage: "${join(dir, "db")}"
control:
    listen: "${join(dir, "knot.sock")}"
key:
  - id: ${keyName}
    algorithm: hmac-sha256
    secret: ${secret}
acl:
  - id: tandem_update
    key: ${keyName}
    action: update
    update-owner: name
    update-owner-match: equal
    update-owner-name: [${name}.]
    update-type: [A, AAAA]
zone:
  - domain: ${zone}
    storage: "${dir}"
    file: ${zone}.zone
    acl: tandem_update
    zonefile-sync: -1
`,
      { mode: 0o600 },
    );
    return ["-c", join(dir, "knot.conf")];
  },
};

const bind: ServerKind = {
  label: "BIND",
  binary: "named",
  install: "apt-get install bind9",
  // BIND answers REFUSED, signed: the answer verifies, only its rcode says no.
  outsidePolicy: /^DnsDriverError: update of other\.example\.com in zone example\.com refused: REFUSED$/,
  configure(dir, port, secret) {
    writeFileSync(
      join(dir, "named.conf"),
      `options {
    directory "${dir}";
    pid-file "${join(dir, "named.pid")}";
    session-keyfile "${join(dir, "session.key")}";
    managed-keys-directory "${dir}";
    listen-on port ${port} { 127.0.0.1; };
    listen-on-v6 { none; };
    recursion no;
    notify no;
    dnssec-validation no;
};
controls { };
key "${keyName}" { algorithm hmac-sha256; secret "${secret}"; };
zone "${zone}" {
    type primary;
    file "${join(dir, `${zone}.zone`)}";
    update-policy { grant ${keyName} name ${name}. A AAAA; };
};
`,
      { mode: 0o600 },
    );
    return ["-g", "-4", "-n", "1", "-c", join(dir, "named.conf")];
  },
};

const queryTool = findBinary("kdig") ?? findBinary("dig");

function missingFor(kind: ServerKind): string | undefined {
  const missing = [
    ...(findBinary(kind.binary) === undefined ? [`${kind.binary} (${kind.install})`] : []),
    ...(queryTool === undefined ? ["kdig or dig (apt-get install knot-dnsutils, or bind9-dnsutils)"] : []),
  ];
  return missing.length === 0 ? undefined : `this test needs ${missing.join(" and ")}`;
}

/** What the server itself holds for `name`, read with kdig/dig (no recursion, one try). */
async function records(port: number, type: "A" | "AAAA" | "SOA", owner = name): Promise<string[]> {
  const { stdout } = await run(
    queryTool!,
    ["@127.0.0.1", "-p", String(port), "+norec", "+short", "+timeout=2", "+retry=0", owner, type],
    { timeout: 10_000 },
  );
  return stdout
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l.length > 0 && !l.startsWith(";"))
    .sort();
}

function logCapture(): { logger: pino.Logger; lines: string[] } {
  const lines: string[] = [];
  return { logger: pino({ level: "debug" }, { write: (line: string) => lines.push(line) }), lines };
}

for (const kind of [knot, bind]) {
  const { unsupported, skip } = testGate(missingFor(kind));

  describe(`dns driver against ${kind.label}`, { skip, timeout: 120_000 }, () => {
    let dir = "";
    let ports: PortRange | undefined;
    let port = 0;
    let server: ChildProcess | undefined;
    let exited: Promise<unknown> | undefined;
    const serverLines: string[] = [];
    const killOnExit = () => server?.kill("SIGKILL");
    const log = logCapture();
    let secretFile = "";

    const config = (overrides: Partial<DnsDriverConfig> = {}): DnsDriverConfig => ({
      type: "dns",
      server: { host: "127.0.0.1", port },
      zone,
      name,
      ttl: 30,
      addresses: null,
      tsig: { name: keyName, algorithm: "hmac-sha256", secretFile },
      timeoutMs: 5_000,
      ...overrides,
    });
    const driver = (address: string, overrides: Partial<DnsDriverConfig> = {}) =>
      new DnsDriver(config(overrides), address, log.logger);
    const context = (node: string) => ({ service: "web", node, fence: "1.1" });
    const serverOutput = () => serverLines.slice(-40).join("\n");

    before(async () => {
      if (unsupported !== undefined) assert.fail(unsupported);
      dir = mkdtempSync(join(tmpdir(), `tandem-dns-${kind.binary}-`));
      ports = await reservePortRange(1);
      port = ports.base;
      const secret = randomBytes(32).toString("base64");
      secretFile = join(dir, "tandem.secret");
      writeFileSync(secretFile, `${secret}\n`, { mode: 0o600 });
      writeFileSync(join(dir, `${zone}.zone`), zoneText);
      const args = kind.configure(dir, port, secret);
      server = spawn(findBinary(kind.binary)!, args, { cwd: dir, stdio: ["ignore", "pipe", "pipe"] });
      exited = once(server, "exit");
      process.once("exit", killOnExit);
      collectLines(server, serverLines);
      const deadline = Date.now() + readyTimeoutMs;
      for (;;) {
        assert.equal(server.exitCode, null, `${kind.binary} exited:\n${serverOutput()}`);
        const soa = await records(port, "SOA", zone).catch(() => []);
        if (soa.length === 1) break;
        assert.ok(
          Date.now() < deadline,
          `${kind.binary} did not answer within ${readyTimeoutMs} ms:\n${serverOutput()}`,
        );
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    });

    after(async () => {
      if (server !== undefined && server.exitCode === null && server.signalCode === null) {
        server.kill("SIGTERM");
        const timer = setTimeout(() => server?.kill("SIGKILL"), stopTimeoutMs);
        await exited;
        clearTimeout(timer);
      }
      process.off("exit", killOnExit);
      ports?.release();
      if (dir !== "") rmSync(dir, { recursive: true, force: true });
    });

    it("start as n1: the name points at n1, and status says so on n1 only", async () => {
      assert.equal(await driver(n1).start(context("n1")), true, log.lines.at(-1));
      assert.deepEqual(await records(port, "A"), [n1]);
      assert.equal(await driver(n1).status(context("n1")), "running");
      assert.equal(await driver(n2).status(context("n2")), "stopped");
    });

    it("start as n2: only n2's address is left", async () => {
      assert.equal(await driver(n2).start(context("n2")), true, log.lines.at(-1));
      assert.deepEqual(await records(port, "A"), [n2]);
      assert.equal(await driver(n2).status(context("n2")), "running");
      assert.equal(await driver(n1).status(context("n1")), "stopped");
    });

    it("a late stop of the old owner n1 leaves n2's record alone", async () => {
      assert.equal(await driver(n1).stop(context("n1")), true, log.lines.at(-1));
      assert.deepEqual(await records(port, "A"), [n2]);
      assert.equal(await driver(n2).status(context("n2")), "running");
      assert.equal(await driver(n1).status(context("n1")), "stopped");
    });

    it("stop as n2: no record left; stopping again is harmless", async () => {
      assert.equal(await driver(n2).stop(context("n2")), true, log.lines.at(-1));
      assert.deepEqual(await records(port, "A"), []);
      assert.equal(await driver(n2).status(context("n2")), "stopped");
      assert.equal(await driver(n2).stop(context("n2")), true, log.lines.at(-1));
      assert.deepEqual(await records(port, "A"), []);
    });

    it("an IPv6 node's record is an AAAA record", async () => {
      const v6 = driver(n6);
      assert.equal(await v6.start(context("n6")), true, log.lines.at(-1));
      assert.deepEqual(await records(port, "AAAA"), [n6]);
      assert.deepEqual(await records(port, "A"), []);
      assert.equal(await v6.status(context("n6")), "running");
      assert.equal(await v6.stop(context("n6")), true, log.lines.at(-1));
      assert.deepEqual(await records(port, "AAAA"), []);
      assert.equal(await v6.status(context("n6")), "stopped");
    });

    it("a wrong TSIG secret: the update is refused with a clear error, and nothing changes", async () => {
      assert.equal(await driver(n1).start(context("n1")), true, log.lines.at(-1));
      const wrongFile = join(dir, "wrong.secret");
      writeFileSync(wrongFile, randomBytes(32).toString("base64"), { mode: 0o600 });
      const wrong = driver(n2, { tsig: { name: keyName, algorithm: "hmac-sha256", secretFile: wrongFile } });
      await assert.rejects(wrong.pointHere(), {
        name: "DnsDriverError",
        message:
          /^update of web\.example\.com: the server answered NOTAUTH, and its answer fails TSIG: BADSIG: /,
      });
      assert.equal(await wrong.start(context("n2")), false);
      assert.match(log.lines.at(-1)!, /"msg":"start failed"/);
      assert.equal(await wrong.stop(context("n2")), false);
      assert.equal(await wrong.status(context("n2")), "unknown");
      assert.match(log.lines.at(-1)!, /query of web\.example\.com: the server answered NOTAUTH.*BADSIG/);
      assert.deepEqual(await records(port, "A"), [n1]);
      assert.equal(await driver(n1).status(context("n1")), "running");
    });

    it("an unknown key name, and a name the key may not update, are refused; nothing changes", async () => {
      const unknownKey = driver(n2, { tsig: { name: "other-key", algorithm: "hmac-sha256", secretFile } });
      await assert.rejects(unknownKey.pointHere(), /NOTAUTH, and its answer fails TSIG: BADKEY/);
      const outside = driver(n2, { name: `other.${zone}` });
      await assert.rejects(outside.pointHere(), kind.outsidePolicy);
      assert.deepEqual(await records(port, "A", `other.${zone}`), []);
      assert.deepEqual(await records(port, "A"), [n1]);
      assert.equal(await driver(n1).stop(context("n1")), true, log.lines.at(-1));
      assert.deepEqual(await records(port, "A"), []);
    });

    it("no server on the port: start fails at once, status is unknown", async () => {
      const nowhere = driver(n1, { server: { host: "127.0.0.1", port: port + 1 }, timeoutMs: 2_000 });
      const started = performance.now();
      assert.equal(await nowhere.start(context("n1")), false);
      assert.equal(await nowhere.status(context("n1")), "unknown");
      assert.ok(performance.now() - started < 2_500);
      assert.match(log.lines.at(-2)!, /ECONNREFUSED/);
    });
  });
}
