import assert from "node:assert/strict";
import { test } from "node:test";
import { toVipDriverConfig, vipDriverSchema } from "../../../src/config/vip_driver_schema.ts";

/** The first problem the schema reports, as "path: message", or "ok". */
function problem(fields: Record<string, unknown>): string {
  const parsed = vipDriverSchema.safeParse({
    type: "vip",
    address: "192.0.2.10/24",
    interface: "eth0",
    ...fields,
  });
  if (parsed.success) return "ok";
  const [issue] = parsed.error.issues;
  return `${issue?.path.join(".")}: ${issue?.message}`;
}

test("vip driver config: the smallest one gets its defaults and is normalised", () => {
  const file = vipDriverSchema.parse({ type: "vip", address: "192.0.2.10/24", interface: "eth0" });
  assert.deepEqual(toVipDriverConfig(file), {
    type: "vip",
    address: "192.0.2.10",
    prefixLength: 24,
    family: 4,
    interface: "eth0",
    announce: 3,
    timeoutMs: 5000,
  });
});

test("vip driver config: IPv6 is written the way `ip` prints it", () => {
  const file = vipDriverSchema.parse({
    type: "vip",
    address: "2001:DB8:0:0::0:10/64",
    interface: "bond0.100",
    announce: 0,
    timeout_ms: 1000,
  });
  assert.deepEqual(toVipDriverConfig(file), {
    type: "vip",
    address: "2001:db8::10",
    prefixLength: 64,
    family: 6,
    interface: "bond0.100",
    announce: 0,
    timeoutMs: 1000,
  });
});

test("vip driver config: addresses with their prefix length", () => {
  for (const address of ["10.0.0.1/32", "192.0.2.10/1", "169.254.1.1/16", "fe80::10/64", "fd00::1/128"]) {
    assert.equal(problem({ address }), "ok", address);
  }
  const refused: Array<[string, RegExp]> = [
    ["192.0.2.10", /prefix length/],
    ["192.0.2.10/", /prefix length must be 1\.\.32/],
    ["192.0.2.10/0", /1\.\.32/],
    ["192.0.2.10/33", /1\.\.32/],
    ["192.0.2.10/024", /1\.\.32/],
    ["2001:db8::10/129", /1\.\.128/],
    ["192.0.2.10/24/8", /prefix length/],
    ["192.0.2.010/24", /not an IPv4 or IPv6 address/],
    ["vip.example.com/24", /not an IPv4 or IPv6 address/],
    ["fe80::10%eth0/64", /not an IPv4 or IPv6 address/],
    [" 192.0.2.10/24", /not an IPv4 or IPv6 address/],
    ["0.0.0.0/8", /cannot be a virtual IP/],
    ["127.0.0.2/8", /cannot be a virtual IP/],
    ["224.0.0.18/24", /cannot be a virtual IP/],
    ["255.255.255.255/32", /cannot be a virtual IP/],
    ["::/64", /cannot be a virtual IP/],
    ["::1/128", /cannot be a virtual IP/],
    ["::ffff:192.0.2.10/120", /cannot be a virtual IP/],
    ["ff02::1/64", /cannot be a virtual IP/],
  ];
  for (const [address, expected] of refused) assert.match(problem({ address }), expected, address);
  assert.match(problem({ address: 3232235786 }), /^address: /);
});

test("vip driver config: interface names as Linux allows them", () => {
  for (const name of ["eth0", "enp0s31f6", "bond0.100", "br-lan", "a", "x".repeat(15)]) {
    assert.equal(problem({ interface: name }), "ok", name);
  }
  for (const name of ["", "x".repeat(16), "eth 0", "eth0\n", "eth/0", "eth0:1", ".", "..", "é".repeat(8)]) {
    assert.match(
      problem({ interface: name }),
      /^interface: expected a Linux interface name/,
      JSON.stringify(name),
    );
  }
});

test("vip driver config: announce and timeout_ms in range, the timeout room for the announcements", () => {
  assert.equal(problem({ announce: 0 }), "ok");
  assert.equal(problem({ announce: 20 }), "ok");
  assert.match(problem({ announce: 21 }), /^announce: /);
  assert.match(problem({ announce: -1 }), /^announce: /);
  assert.match(problem({ announce: 2.5 }), /^announce: /);
  assert.match(problem({ timeout_ms: 99 }), /^timeout_ms: /);
  assert.match(problem({ timeout_ms: 60_001 }), /^timeout_ms: /);
  assert.equal(problem({ announce: 20, timeout_ms: 3000 }), "ok");
  assert.equal(
    problem({ announce: 20, timeout_ms: 2999 }),
    "timeout_ms: must be at least 3000 to send 20 announcements 100 ms apart",
  );
});

test("vip driver config: unknown keys and other types are refused", () => {
  assert.match(problem({ netmask: "255.255.255.0" }), /netmask/);
  assert.equal(
    vipDriverSchema.safeParse({ type: "exec", address: "192.0.2.10/24", interface: "eth0" }).success,
    false,
  );
  assert.equal(vipDriverSchema.safeParse({ type: "vip", interface: "eth0" }).success, false);
  assert.equal(vipDriverSchema.safeParse({ type: "vip", address: "192.0.2.10/24" }).success, false);
});
