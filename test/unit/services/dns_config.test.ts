import assert from "node:assert/strict";
import { test } from "node:test";
import {
  dnsDriverAddress,
  dnsDriverSchema,
  parseDnsServer,
  toDnsDriverConfig,
} from "../../../src/config/dns_driver_schema.ts";

const smallest = {
  type: "dns",
  server: "192.0.2.53",
  zone: "example.com",
  name: "web.example.com",
  tsig: { name: "tandem-key", secret_file: "keys/tandem.secret" },
};

/** The schema's messages for `driver`, each as "path: message". */
function problems(driver: unknown): string[] {
  const parsed = dnsDriverSchema.safeParse(driver);
  return parsed.success ? [] : parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
}

test("dns config: the smallest driver gets its defaults, camelCase, names lower case, the secret path absolute", () => {
  const parsed = dnsDriverSchema.parse(smallest);
  assert.deepEqual(toDnsDriverConfig(parsed, "/etc/tandem"), {
    type: "dns",
    server: { host: "192.0.2.53", port: 53 },
    zone: "example.com",
    name: "web.example.com",
    ttl: 30,
    addresses: null,
    tsig: { name: "tandem-key", algorithm: "hmac-sha256", secretFile: "/etc/tandem/keys/tandem.secret" },
    timeoutMs: 5000,
  });
});

test("dns config: every key given", () => {
  const parsed = dnsDriverSchema.parse({
    type: "dns",
    server: "[2001:db8::53]:5353",
    zone: "Example.COM.",
    name: "Web.Example.com.",
    ttl: 0,
    addresses: { n1: "2001:db8::1", n2: "2001:db8::2" },
    tsig: { name: "Tandem.Key.", algorithm: "hmac-sha512", secret_file: "/run/secrets/dns" },
    timeout_ms: 800,
  });
  assert.deepEqual(toDnsDriverConfig(parsed, "/etc/tandem"), {
    type: "dns",
    server: { host: "2001:db8::53", port: 5353 },
    zone: "example.com",
    name: "web.example.com",
    ttl: 0,
    addresses: { n1: "2001:db8::1", n2: "2001:db8::2" },
    tsig: { name: "tandem.key", algorithm: "hmac-sha512", secretFile: "/run/secrets/dns" },
    timeoutMs: 800,
  });
});

test("dns config: the server is an IP address, with port 53 unless another is given", () => {
  assert.deepEqual(parseDnsServer("192.0.2.53:5353"), {
    ok: true,
    value: { host: "192.0.2.53", port: 5353 },
  });
  assert.deepEqual(parseDnsServer("2001:db8::53"), { ok: true, value: { host: "2001:db8::53", port: 53 } });
  assert.deepEqual(parseDnsServer("[2001:db8::53]"), { ok: true, value: { host: "2001:db8::53", port: 53 } });
  assert.deepEqual(problems({ ...smallest, server: "ns1.example.com:53" }), [
    "server: expected an IP address, not a name (the driver resolves nothing)",
  ]);
  assert.deepEqual(problems({ ...smallest, server: "ns1.example.com" }), ["server: expected host:port"]);
  assert.match(
    problems({ ...smallest, server: "192.0.2.53:0" })[0] ?? "",
    /^server: expected host:port with a port/,
  );
});

test("dns config: the name must lie inside the zone (the apex counts)", () => {
  assert.deepEqual(problems({ ...smallest, name: "web.example.org" }), [
    'name: "web.example.org" is not inside the zone "example.com"',
  ]);
  assert.equal(problems({ ...smallest, name: "webexample.com" }).length, 1);
  assert.deepEqual(problems({ ...smallest, name: "example.com." }), []);
  assert.deepEqual(problems({ ...smallest, name: "_svc.web.EXAMPLE.com" }), []);
  assert.match(problems({ ...smallest, name: "web..example.com" })[0] ?? "", /^name: expected a DNS name/);
  assert.match(problems({ ...smallest, zone: "exa mple.com" })[0] ?? "", /^zone: expected a DNS name/);
});

test("dns config: the secret lives in a file, never inline; algorithms are the HMACs of RFC 8945", () => {
  assert.match(
    problems({ ...smallest, tsig: { name: "k", secret: "c2VjcmV0" } }).join("\n"),
    /tsig: Unrecognized key: "secret"/,
  );
  assert.match(problems({ ...smallest, tsig: { name: "k" } })[0] ?? "", /^tsig\.secret_file: /);
  assert.match(
    problems({ ...smallest, tsig: { ...smallest.tsig, algorithm: "hmac-md5" } })[0] ?? "",
    /^tsig\.algorithm: /,
  );
  for (const algorithm of ["hmac-sha1", "hmac-sha224", "hmac-sha256", "hmac-sha384", "hmac-sha512"]) {
    assert.deepEqual(problems({ ...smallest, tsig: { ...smallest.tsig, algorithm } }), [], algorithm);
  }
});

test("dns config: addresses are IPs of one family, keyed by node id; ttl and timeout in range; no other keys", () => {
  assert.deepEqual(problems({ ...smallest, addresses: { n1: "192.0.2.1", n2: "2001:db8::2" } }), [
    "addresses: expected addresses of one family, all IPv4 (A records) or all IPv6 (AAAA)",
  ]);
  assert.deepEqual(problems({ ...smallest, addresses: { n1: "web1.example.com" } }), [
    "addresses.n1: expected an IPv4 or IPv6 address",
  ]);
  assert.match(problems({ ...smallest, addresses: { N1: "192.0.2.1" } })[0] ?? "", /^addresses\.N1: /);
  assert.match(problems({ ...smallest, ttl: -1 })[0] ?? "", /^ttl: /);
  assert.match(problems({ ...smallest, ttl: 1.5 })[0] ?? "", /^ttl: /);
  assert.match(problems({ ...smallest, timeout_ms: 0 })[0] ?? "", /^timeout_ms: /);
  assert.match(problems({ ...smallest, port: 53 })[0] ?? "", /Unrecognized key: "port"/);
});

test("dns config: a node's address comes from addresses, else from its advertise host if that is an IP", () => {
  const config = toDnsDriverConfig(
    dnsDriverSchema.parse({ ...smallest, addresses: { n1: "198.51.100.1" } }),
    "/etc/tandem",
  );
  assert.deepEqual(dnsDriverAddress(config, "n1", "10.0.0.1"), { ok: true, address: "198.51.100.1" });
  assert.deepEqual(dnsDriverAddress(config, "n2", "10.0.0.2"), { ok: true, address: "10.0.0.2" });
  assert.deepEqual(dnsDriverAddress(config, "n3", "n3.internal"), {
    ok: false,
    reason:
      'node n3 advertises "n3.internal", not an IP address: give it one under the dns driver\'s addresses',
  });
});
