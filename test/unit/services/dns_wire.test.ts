import assert from "node:assert/strict";
import { test } from "node:test";
import {
  addressRecord,
  DnsWireError,
  decodeMessage,
  decodeName,
  encodeMessage,
  encodeName,
  formatAddress,
  Opcode,
  type ParsedRecord,
  RRClass,
  RRType,
  rcodeName,
} from "../../../src/services/dns_wire.ts";
import { nsupdateVectors } from "../../support/dns_vectors.ts";

const hex = (text: string) => Buffer.from(text.replace(/\s+/g, ""), "hex");
const web = "03776562 076578616d706c65 03636f6d 00";
const zone = "076578616d706c65 03636f6d 00";

/** The dns driver's start update, byte by byte (RFC 2136 2.5.2 then 2.5.1). */
const startUpdate = hex(`
  1234 2800 0001 0000 0002 0000
  ${zone} 0006 0001
  ${web} 0001 00ff 00000000 0000
  ${web} 0001 0001 0000001e 0004 c0000201`);

function without(records: ParsedRecord[]) {
  return records.map(({ name, type, class: klass, ttl, rdata }) => ({
    name,
    type,
    class: klass,
    ttl,
    rdata,
  }));
}

test("dns wire: names go out as uncompressed labels; bad ones are refused", () => {
  assert.deepEqual(encodeName("web.example.com"), hex(web));
  assert.deepEqual(encodeName("web.example.com."), hex(web));
  assert.deepEqual(encodeName("."), hex("00"));
  assert.deepEqual(encodeName("_acme-challenge.x"), hex("0f5f61636d652d6368616c6c656e6765 0178 00"));
  assert.throws(() => encodeName("a..b"), DnsWireError);
  assert.throws(() => encodeName(`${"a".repeat(64)}.com`), DnsWireError);
  assert.throws(() => encodeName(Array.from({ length: 130 }, () => "a").join(".")), /longer than 255/);
  assert.throws(() => encodeName("we b.example.com"), DnsWireError);
  assert.throws(() => encodeName("wéb.example.com"), DnsWireError);
});

test("dns wire: the start update is a zone section and two update records", () => {
  const message = encodeMessage({
    id: 0x1234,
    opcode: Opcode.UPDATE,
    questions: [{ name: "example.com", type: RRType.SOA, class: RRClass.IN }],
    authorities: [
      { name: "web.example.com", type: RRType.A, class: RRClass.ANY, ttl: 0, rdata: Buffer.alloc(0) },
      { name: "web.example.com", type: RRType.A, class: RRClass.IN, ttl: 30, rdata: hex("c0000201") },
    ],
  });
  assert.deepEqual(message, startUpdate);
});

test("dns wire: our updates read back as what nsupdate sends for the same commands", () => {
  // nsupdate compresses names; decoded, its records must equal ours.
  const ours = (authorities: Parameters<typeof encodeMessage>[0]["authorities"]) =>
    decodeMessage(
      encodeMessage({
        id: 1,
        opcode: Opcode.UPDATE,
        questions: [{ name: "example.com", type: RRType.SOA, class: RRClass.IN }],
        authorities,
      }),
    );
  const theirs = (request: Buffer) => {
    const parsed = decodeMessage(request);
    assert.equal(parsed.opcode, Opcode.UPDATE);
    assert.equal(parsed.response, false);
    assert.deepEqual(parsed.questions, [{ name: "example.com", type: RRType.SOA, class: RRClass.IN }]);
    assert.deepEqual(parsed.answers, []);
    assert.equal(parsed.additionals.at(-1)?.type, RRType.TSIG);
    return without(parsed.authorities);
  };
  const a = addressRecord("192.0.2.1");
  const v6 = addressRecord("2001:db8::1");
  // "update delete web.example.com. A" + "update add web.example.com. 30 A 192.0.2.1"
  assert.deepEqual(
    theirs(nsupdateVectors.sha256.request),
    without(
      ours([
        { name: "web.example.com", type: a.type, class: RRClass.ANY, ttl: 0, rdata: Buffer.alloc(0) },
        { name: "web.example.com", type: a.type, class: RRClass.IN, ttl: 30, rdata: a.rdata },
      ]).authorities,
    ),
  );
  // The same for AAAA with TTL 60.
  assert.deepEqual(
    theirs(nsupdateVectors.sha512.request),
    without(
      ours([
        { name: "web.example.com", type: v6.type, class: RRClass.ANY, ttl: 0, rdata: Buffer.alloc(0) },
        { name: "web.example.com", type: v6.type, class: RRClass.IN, ttl: 60, rdata: v6.rdata },
      ]).authorities,
    ),
  );
  // "update delete web.example.com. A 192.0.2.1": stop's update (RFC 2136 2.5.4, class NONE).
  assert.deepEqual(
    theirs(nsupdateVectors.sha1.request),
    without(
      ours([{ name: "web.example.com", type: a.type, class: RRClass.NONE, ttl: 0, rdata: a.rdata }])
        .authorities,
    ),
  );
});

test("dns wire: a response decodes with its flags, its rcode and each record's offsets", () => {
  const response = decodeMessage(nsupdateVectors.sha512.badKeyResponse);
  assert.equal(response.response, true);
  assert.equal(response.opcode, Opcode.UPDATE);
  assert.equal(response.authoritative, false);
  assert.equal(response.truncated, false);
  assert.equal(rcodeName(response.rcode), "NOTAUTH");
  const [tsig, ...more] = response.additionals;
  assert.deepEqual(more, []);
  assert.equal(tsig?.name, "tandem-key");
  assert.equal(tsig?.type, RRType.TSIG);
  assert.equal(tsig?.class, RRClass.ANY);
  assert.equal(tsig?.end, nsupdateVectors.sha512.badKeyResponse.length);
  assert.equal(tsig?.rdataOffset, tsig!.start + "tandem-key".length + 2 + 10);
  assert.equal(rcodeName(42), "RCODE42");
});

test("dns wire: compression pointers are followed backwards only", () => {
  const message = hex(`0001 8400 0001 0001 0000 0000 ${web} 0001 0001 c00c 0001 0001 0000001e 0004 c0000201`);
  const parsed = decodeMessage(message);
  assert.equal(parsed.answers[0]?.name, "web.example.com");
  assert.deepEqual(parsed.answers[0]?.rdata, hex("c0000201"));
  assert.equal(parsed.authoritative, true);
  // A pointer to itself, or forward, would loop or read what is not there yet.
  assert.throws(() => decodeName(hex("c000"), 0), /forward or looping/);
  assert.throws(() => decodeName(hex("00 c002 03616263 c001"), 1), /forward or looping/);
  assert.throws(() => decodeName(hex("03 6162"), 0), /cut short/);
  assert.throws(() => decodeName(hex("40"), 0), /unknown label type/);
  // Odd bytes are escaped, so two different names never read the same.
  assert.equal(decodeName(hex("03612e62 00"), 0).name, "a\\046b");
  assert.equal(decodeName(hex("00"), 0).name, ".");
});

test("dns wire: malformed messages are refused, never half read", () => {
  assert.throws(() => decodeMessage(hex("0001 8400 0000")), /cut short/);
  assert.throws(() => decodeMessage(hex("0001 8400 0001 0000 0000 0000")), /cut short/);
  assert.throws(() => decodeMessage(Buffer.concat([startUpdate, hex("00")])), /trailing bytes/);
  // An RDLENGTH past the end.
  assert.throws(() => decodeMessage(startUpdate.subarray(0, startUpdate.length - 1)), /cut short/);
});

test("dns wire: addresses become A or AAAA RDATA", () => {
  assert.deepEqual(addressRecord("192.0.2.1"), { type: RRType.A, rdata: hex("c0000201") });
  assert.deepEqual(addressRecord("2001:db8::1"), {
    type: RRType.AAAA,
    rdata: hex("20010db8000000000000000000000001"),
  });
  assert.deepEqual(addressRecord("::"), { type: RRType.AAAA, rdata: Buffer.alloc(16) });
  assert.deepEqual(addressRecord("fe80::1:2"), {
    type: RRType.AAAA,
    rdata: hex("fe800000000000000000000000010002"),
  });
  assert.deepEqual(addressRecord("2001:db8:0:0:1:0:0:1").rdata, hex("20010db8000000000001000000000001"));
  assert.deepEqual(addressRecord("::ffff:192.0.2.1").rdata, hex("00000000000000000000ffffc0000201"));
  assert.deepEqual(addressRecord("1::").rdata, hex("00010000000000000000000000000000"));
  assert.throws(() => addressRecord("web.example.com"), /not an IP address/);
  assert.throws(() => addressRecord("192.0.2.256"), /not an IP address/);
  assert.equal(formatAddress(hex("c0000201")), "192.0.2.1");
  assert.equal(formatAddress(hex("20010db8000000000000000000000001")), "2001:db8:0:0:0:0:0:1");
});
