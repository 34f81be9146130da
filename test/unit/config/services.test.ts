import assert from "node:assert/strict";
import { test } from "node:test";
import { configProblems, parsedConfig } from "../../support/config_text.ts";

const base = "node: { id: n1 }\nlisten: 127.0.0.1:7400\n";

const web = `services:
  - name: web
    description: nginx behind the virtual IP
    nodes: [n1, n2]
    prefer: [n1]
    failover_after_ms: 2000
    restore_window: { cron: "0 2 * * *", length: 1h, timezone: Europe/Berlin }
    drivers:
      - { type: exec, start: [systemctl, start, nginx], stop: [systemctl, stop, nginx], status: [systemctl, is-active, nginx] }
`;

test("config: services: a full service loads into camelCase with its defaults", () => {
  const [service, ...rest] = parsedConfig(base + web).services;
  assert.deepEqual(rest, []);
  assert.deepEqual(service, {
    name: "web",
    description: "nginx behind the virtual IP",
    nodes: ["n1", "n2"],
    prefer: ["n1"],
    failover: true,
    failoverAfterMs: 2000,
    stopMustSucceed: false,
    restoreWindow: { cron: "0 2 * * *", lengthMs: 3_600_000, timezone: "Europe/Berlin" },
    drivers: [
      {
        type: "exec",
        start: ["systemctl", "start", "nginx"],
        stop: ["systemctl", "stop", "nginx"],
        status: ["systemctl", "is-active", "nginx"],
        timeoutMs: 30_000,
      },
    ],
    health: null,
    actions: {},
    admins: [],
  });
});

test("config: services: none by default; the smallest service needs a name and a driver", () => {
  assert.deepEqual(parsedConfig(base).services, []);
  const [s] = parsedConfig(
    `${base}services:\n  - { name: cron, drivers: [{ type: exec, start: [a], stop: [b] }] }\n`,
  ).services;
  assert.equal(s?.failoverAfterMs, 3000);
  assert.equal(s?.nodes, null);
  assert.equal(s?.restoreWindow, null);
  assert.match(
    configProblems(`${base}services:\n  - { name: cron, drivers: [] }\n`),
    /services\[0\]\.drivers/,
  );
});

test("config: services: rules across fields, each at its line", () => {
  const driver = "drivers: [{ type: exec, start: [a], stop: [b] }]";
  const text =
    `${base}services:\n` +
    `  - { name: web, nodes: [n1, n2], prefer: [n3], ${driver} }\n` +
    `  - { name: web, failover_after_ms: 500, ${driver} }\n`;
  const lines = configProblems(text).split("\n");
  assert.ok(
    lines.some((l) =>
      /^tandem.yml:4:.*services\[0\]\.prefer\[0\]: "n3" is not in this service's nodes/.test(l),
    ),
    lines.join("\n"),
  );
  assert.ok(
    lines.some((l) => /^tandem.yml:5:.*services\[1\]\.name: duplicate service "web"/.test(l)),
    lines.join("\n"),
  );
  assert.ok(
    lines.some((l) =>
      /^tandem.yml:5:.*failover_after_ms: must be at least timings.down_after_ms \(1000\)/.test(l),
    ),
    lines.join("\n"),
  );
});

test("config: services: bad names, durations, time zones and driver types are refused", () => {
  const driver = "drivers: [{ type: exec, start: [a], stop: [b] }]";
  assert.match(
    configProblems(`${base}services:\n  - { name: Web!, ${driver} }\n`),
    /services\[0\]\.name: expected 1-63/,
  );
  assert.match(
    configProblems(
      `${base}services:\n  - { name: web, restore_window: { cron: "0 2 * * *", length: 1d }, ${driver} }\n`,
    ),
    /restore_window\.length/,
  );
  assert.match(
    configProblems(
      `${base}services:\n  - { name: web, restore_window: { cron: "0 2 * * *", length: 1h, timezone: Mars/Olympus }, ${driver} }\n`,
    ),
    /unknown time zone "Mars\/Olympus"/,
  );
  assert.match(
    configProblems(
      `${base}services:\n  - { name: web, restore_window: { cron: "0 25 * * *", length: 1h }, ${driver} }\n`,
    ),
    /restore_window\.cron: not a cron pattern/,
  );
  assert.match(
    configProblems(`${base}services:\n  - { name: web, drivers: [{ type: systemd, unit: nginx }] }\n`),
    /services\[0\]\.drivers\[0\]/,
  );
});

test("config: services: a health check is an exec command or an HTTP GET, with defaults", () => {
  const driver = "drivers: [{ type: exec, start: [a], stop: [b] }]";
  const [http, exec] = parsedConfig(
    `${base}services:\n` +
      `  - { name: web, health: { http: "http://127.0.0.1:8080/healthz" }, ${driver} }\n` +
      `  - { name: db, health: { exec: [pg_isready], interval_ms: 500, timeout_ms: 300, failures: 2 }, ${driver} }\n`,
  ).services;
  assert.deepEqual(http?.health, {
    check: { type: "http", url: "http://127.0.0.1:8080/healthz" },
    intervalMs: 2000,
    timeoutMs: 1000,
    failures: 3,
  });
  assert.deepEqual(exec?.health, {
    check: { type: "exec", argv: ["pg_isready"] },
    intervalMs: 500,
    timeoutMs: 300,
    failures: 2,
  });
  assert.match(
    configProblems(`${base}services:\n  - { name: web, health: { interval_ms: 500 }, ${driver} }\n`),
    /services\[0\]\.health: give exactly one of exec or http/,
  );
  assert.match(
    configProblems(
      `${base}services:\n  - { name: web, health: { exec: [a], http: "http://x/" }, ${driver} }\n`,
    ),
    /give exactly one of exec or http/,
  );
  assert.match(
    configProblems(`${base}services:\n  - { name: web, health: { http: "ftp://x/" }, ${driver} }\n`),
    /health\.http: expected an http:\/\/ or https:\/\/ URL/,
  );
});

test("config: services: vip and dns drivers load beside exec; every node that may run a dns service has an address of one family", () => {
  const peers = `peers:\n  - { id: n2, address: "10.0.0.2:7400" }\n  - { id: n3, address: "db3.example.net:7400" }\n`;
  const vip = `{ type: vip, address: 192.0.2.10/24, interface: eth0 }`;
  const dns = (extra: string) =>
    `{ type: dns, server: 127.0.0.1, zone: example.com, name: web.example.com, tsig: { name: k, secret_file: k.secret }${extra} }`;
  const ok = parsedConfig(
    `${base}${peers}services:\n  - { name: web, nodes: [n1, n2], drivers: [${vip}, ${dns("")}] }\n`,
  );
  const [vipDriver, dnsDriver] = ok.services[0]?.drivers ?? [];
  assert.deepEqual(vipDriver, {
    type: "vip",
    address: "192.0.2.10",
    prefixLength: 24,
    family: 4,
    interface: "eth0",
    announce: 3,
    timeoutMs: 5000,
  });
  assert.equal(dnsDriver?.type, "dns");
  assert.equal(dnsDriver?.type === "dns" && dnsDriver.tsig.secretFile, "/etc/tandem/k.secret");
  // n3 advertises a host name: a record needs an address.
  assert.match(
    configProblems(`${base}${peers}services:\n  - { name: web, drivers: [${dns("")}] }\n`),
    /services\[0\]\.drivers\[0\]\.addresses: node n3 advertises "db3\.example\.net"/,
  );
  assert.match(
    configProblems(
      `${base}${peers}services:\n  - { name: web, drivers: [${dns(", addresses: { n3: '2001:db8::3' }")}] }\n`,
    ),
    /would get records of different types \(A and AAAA\)/,
  );
  assert.equal(
    parsedConfig(
      `${base}${peers}services:\n  - { name: web, drivers: [${dns(", addresses: { n3: 10.0.0.3 }")}] }\n`,
    ).services.length,
    1,
  );
});
