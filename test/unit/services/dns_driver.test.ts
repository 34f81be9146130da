import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { pino } from "pino";
import type { DnsDriverConfig } from "../../../src/config/dns_driver_schema.ts";
import { DnsDriver, readTsigSecret } from "../../../src/services/dns_driver.ts";
import type { TsigKey } from "../../../src/services/dns_tsig.ts";
import { decodeMessage, Opcode, RRClass, RRType } from "../../../src/services/dns_wire.ts";
import { answer, type FakeDns, fakeDns, type Handler } from "../../support/dns_fake_server.ts";

const secretText = "tYeJMxp2eWcVsh8d3KxH3mlVpi9HvW2Smtp3oVAqnwU=";
const key: TsigKey = {
  name: "tandem-key",
  algorithm: "hmac-sha256",
  secret: Buffer.from(secretText, "base64"),
};
const context = { service: "web", node: "n1", fence: "3.1" };
const here = "192.0.2.1";
const mine = {
  name: "web.example.com",
  type: RRType.A,
  class: RRClass.IN,
  ttl: 30,
  rdata: Buffer.from([192, 0, 2, 1]),
};
const theirs = { ...mine, rdata: Buffer.from([192, 0, 2, 2]) };

let dir = "";
const servers: FakeDns[] = [];

before(() => {
  dir = mkdtempSync(join(tmpdir(), "tandem-dns-unit-"));
  writeFileSync(join(dir, "secret"), `${secretText}\n`);
});

after(async () => {
  for (const server of servers) await server.close();
  rmSync(dir, { recursive: true, force: true });
});

async function serve(handler: Handler): Promise<FakeDns> {
  const server = await fakeDns(handler);
  servers.push(server);
  return server;
}

function driver(
  server: FakeDns,
  options: { timeoutMs?: number; secretFile?: string; address?: string } = {},
): { driver: DnsDriver; logs: string[] } {
  const config: DnsDriverConfig = {
    type: "dns",
    server: { host: "127.0.0.1", port: server.port },
    zone: "example.com",
    name: "web.example.com",
    ttl: 30,
    addresses: null,
    tsig: {
      name: "tandem-key",
      algorithm: "hmac-sha256",
      secretFile: options.secretFile ?? join(dir, "secret"),
    },
    timeoutMs: options.timeoutMs ?? 2000,
  };
  const logs: string[] = [];
  const logger = pino({ level: "debug" }, { write: (line: string) => logs.push(line) });
  return { driver: new DnsDriver(config, options.address ?? here, logger), logs };
}

test("dns driver: start sends one signed update over TCP: delete the A RRset, add this node's record", async () => {
  const server = await serve((request) => answer(request, key));
  const { driver: d, logs } = driver(server);
  assert.equal(await d.start(context), true);
  assert.equal(server.requests.length, 1);
  const { transport, request } = server.requests[0]!;
  assert.equal(transport, "tcp");
  const update = decodeMessage(request);
  assert.equal(update.opcode, Opcode.UPDATE);
  assert.deepEqual(update.questions, [{ name: "example.com", type: RRType.SOA, class: RRClass.IN }]);
  assert.deepEqual(
    update.authorities.map(({ name, type, class: c, ttl, rdata }) => ({ name, type, class: c, ttl, rdata })),
    [{ name: "web.example.com", type: RRType.A, class: RRClass.ANY, ttl: 0, rdata: Buffer.alloc(0) }, mine],
  );
  assert.equal(update.additionals.at(-1)?.type, RRType.TSIG);
  assert.match(logs.join(""), /"step":"start","fence":"3.1".*"msg":"record points here"/);
});

test("dns driver: stop deletes only this node's own record (class NONE), AAAA for an IPv6 node", async () => {
  const server = await serve((request) => answer(request, key));
  const { driver: d } = driver(server, { address: "2001:db8::1" });
  assert.equal(await d.stop(context), true);
  const update = decodeMessage(server.requests[0]!.request);
  assert.deepEqual(
    update.authorities.map(({ name, type, class: c, ttl, rdata }) => ({ name, type, class: c, ttl, rdata })),
    [
      {
        name: "web.example.com",
        type: RRType.AAAA,
        class: RRClass.NONE,
        ttl: 0,
        rdata: Buffer.from("20010db8000000000000000000000001", "hex"),
      },
    ],
  );
});

test("dns driver: status is running only when the records are exactly this node's address", async () => {
  let records = [mine];
  let rcode = 0;
  const server = await serve((request) => answer(request, key, { answers: records, rcode }));
  const { driver: d } = driver(server);
  assert.equal(await d.status(context), "running");
  const query = decodeMessage(server.requests[0]!.request);
  assert.equal(server.requests[0]!.transport, "udp");
  assert.equal(query.opcode, Opcode.QUERY);
  assert.equal(server.requests[0]!.request[2]! & 0x01, 0, "recursion not desired");
  assert.deepEqual(query.questions, [{ name: "web.example.com", type: RRType.A, class: RRClass.IN }]);
  records = [theirs];
  assert.equal(await d.status(context), "stopped");
  records = [mine, theirs];
  assert.equal(await d.status(context), "stopped");
  records = [];
  assert.equal(await d.status(context), "stopped");
  // Another name's record in the answer (a CNAME's target) is not ours.
  records = [{ ...mine, name: "other.example.com" }];
  assert.equal(await d.status(context), "stopped");
  records = [];
  rcode = 3; // NXDOMAIN
  assert.equal(await d.status(context), "stopped");
  rcode = 5; // REFUSED
  assert.equal(await d.status(context), "unknown");
});

test("dns driver: a truncated UDP answer is asked again over TCP", async () => {
  const server = await serve((request, transport) =>
    transport === "udp"
      ? answer(request, key, { truncated: true })
      : answer(request, key, { answers: [mine] }),
  );
  const { driver: d } = driver(server);
  assert.equal(await d.status(context), "running");
  assert.deepEqual(
    server.requests.map((r) => r.transport),
    ["udp", "tcp"],
  );
});

test("dns driver: answers without a valid TSIG, or not authoritative, or for another question, are not believed", async () => {
  const other: TsigKey = { ...key, secret: Buffer.alloc(32, 7) };
  let respond: Handler = (request) => answer(request, null, { answers: [mine] });
  const server = await serve((request, transport) => respond(request, transport));
  const { driver: d, logs } = driver(server);
  assert.equal(await d.status(context), "unknown");
  assert.match(logs.at(-1)!, /fails TSIG: it is not signed/);
  respond = (request) => answer(request, null);
  assert.equal(await d.start(context), false);
  assert.match(
    logs.at(-1)!,
    /update of web.example.com: the server answered NOERROR, and its answer fails TSIG/,
  );
  respond = (request) => answer(request, other, { answers: [mine] });
  assert.equal(await d.status(context), "unknown");
  assert.match(logs.at(-1)!, /does not verify with our key/);
  respond = (request) => answer(request, key, { answers: [mine], authoritative: false });
  assert.equal(await d.status(context), "unknown");
  assert.match(logs.at(-1)!, /not authoritative/);
  respond = (request) => {
    const copy = Buffer.from(request);
    copy.write("\x03www", 12 + 0, "latin1"); // the question's first label: web -> www
    return answer(copy, key, { answers: [mine] });
  };
  assert.equal(await d.status(context), "unknown");
  assert.match(logs.at(-1)!, /the answer is for another question/);
});

test("dns driver: a UDP datagram with another id is ignored; the answer after it counts", async () => {
  const server = await serve((request) => {
    const id = request.readUInt16BE(0);
    return [answer(request, key, { id: id ^ 1 }), answer(request, key, { answers: [mine] })];
  });
  const { driver: d } = driver(server);
  assert.equal(await d.status(context), "running");
});

test("dns driver: a silent server fails the call at timeout_ms; the TCP connection is reset, not left open", async () => {
  const server = await serve(() => null);
  const { driver: d, logs } = driver(server, { timeoutMs: 300 });
  const started = performance.now();
  assert.equal(await d.start(context), false);
  const took = performance.now() - started;
  assert.ok(took >= 290 && took < 2000, `took ${took} ms`);
  assert.match(logs.at(-1)!, /no answer from 127\.0\.0\.1:\d+ over TCP in \d+ ms/);
  for (let i = 0; i < 50 && server.resets === 0; i++) await new Promise((r) => setTimeout(r, 20));
  assert.equal(server.resets, 1);
  assert.equal(await d.status(context), "unknown");
  assert.match(logs.at(-1)!, /over UDP in \d+ ms/);
});

test("dns driver: the secret file holds base64 alone; its content is never logged", async () => {
  const server = await serve((request) => answer(request, { ...key, secret: Buffer.alloc(32) }));
  const block = join(dir, "block.key");
  writeFileSync(block, `key "tandem-key" {\n\talgorithm hmac-sha256;\n\tsecret "${secretText}";\n};\n`);
  await assert.rejects(readTsigSecret(block), /does not hold one base64 secret \(it looks like a key block/);
  await assert.rejects(
    readTsigSecret(join(dir, "missing")),
    /cannot read the TSIG secret_file .*missing: ENOENT/,
  );
  assert.deepEqual(await readTsigSecret(join(dir, "secret")), key.secret);
  const { driver: d, logs } = driver(server);
  assert.equal(await d.start(context), false);
  assert.equal(await d.status(context), "unknown");
  const { driver: badFile, logs: badLogs } = driver(server, { secretFile: block });
  assert.equal(await badFile.start(context), false);
  for (const line of [...logs, ...badLogs]) assert.ok(!line.includes(secretText), line);
});
