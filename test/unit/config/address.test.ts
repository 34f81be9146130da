import assert from "node:assert/strict";
import { test } from "node:test";
import { formatHostPort, isLoopbackHost, parseHostPort } from "../../../src/config/index.ts";

test("address: host:port forms that parse", () => {
  const cases: [string, string, number][] = [
    ["10.0.0.1:7400", "10.0.0.1", 7400],
    ["[::1]:1", "::1", 1],
    ["[fd00::3]:65535", "fd00::3", 65535],
    ["node-1.example.com:7400", "node-1.example.com", 7400],
    ["localhost:80", "localhost", 80],
  ];
  for (const [text, host, port] of cases) {
    assert.deepEqual(parseHostPort(text), { ok: true, value: { host, port } }, text);
    assert.equal(formatHostPort({ host, port }), text);
  }
});

test("address: malformed host:port is refused with a reason", () => {
  for (const text of [
    "",
    ":7400",
    "host",
    "host:",
    "host:0",
    "host:65536",
    "host:+1",
    "::1:7400",
    "[x]:1",
    "a b:1",
  ]) {
    const parsed = parseHostPort(text);
    assert.equal(parsed.ok, false, text);
    if (!parsed.ok) assert.match(parsed.reason, /^expected/);
  }
});

test("address: loopback hosts", () => {
  for (const host of ["127.0.0.1", "127.1.2.3", "::1", "localhost"])
    assert.equal(isLoopbackHost(host), true, host);
  for (const host of ["0.0.0.0", "::", "10.0.0.1", "128.0.0.1", "localhost.evil.com"]) {
    assert.equal(isLoopbackHost(host), false, host);
  }
});
