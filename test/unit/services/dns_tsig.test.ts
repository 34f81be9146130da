import assert from "node:assert/strict";
import { test } from "node:test";
import {
  signMessage,
  type TsigAlgorithm,
  type TsigKey,
  verifyMessage,
} from "../../../src/services/dns_tsig.ts";
import { decodeMessage, RRType } from "../../../src/services/dns_wire.ts";
import { macOf } from "../../support/dns_fake_server.ts";
import { nsupdateVectors, vectorKey } from "../../support/dns_vectors.ts";

const key = (algorithm: TsigAlgorithm, secret = vectorKey.secret): TsigKey => ({
  name: vectorKey.name,
  algorithm,
  secret,
});

/** The request as it was before its signer appended the TSIG record. */
function unsigned(request: Buffer): Buffer {
  const tsig = decodeMessage(request).additionals.at(-1)!;
  assert.equal(tsig.type, RRType.TSIG);
  const copy = Buffer.from(request.subarray(0, tsig.start));
  copy.writeUInt16BE(copy.readUInt16BE(10) - 1, 10);
  return copy;
}

test("dns tsig: we sign nsupdate's messages byte for byte as nsupdate did", () => {
  for (const [algorithm, vector] of [
    ["hmac-sha256", nsupdateVectors.sha256],
    ["hmac-sha512", nsupdateVectors.sha512],
    ["hmac-sha1", nsupdateVectors.sha1],
  ] as const) {
    const { signed, mac } = signMessage(unsigned(vector.request), key(algorithm), vector.timeSigned);
    assert.deepEqual(signed, vector.request, algorithm);
    assert.deepEqual(mac, macOf(vector.request), algorithm);
  }
});

test("dns tsig: requests signed by nsupdate verify; a wrong key, a changed byte or a stale time do not", () => {
  const { request, timeSigned } = nsupdateVectors.sha256;
  assert.deepEqual(verifyMessage(request, key("hmac-sha256"), null, timeSigned + 10), { ok: true });
  assert.deepEqual(
    verifyMessage(nsupdateVectors.sha1.request, key("hmac-sha1"), null, nsupdateVectors.sha1.timeSigned),
    {
      ok: true,
    },
  );
  const wrong = verifyMessage(request, key("hmac-sha256", Buffer.alloc(32)), null, timeSigned);
  assert.deepEqual(wrong, { ok: false, reason: "its TSIG MAC does not verify with our key" });
  // The TTL of the added record, 30 → 31: inside the signed part.
  const changed = Buffer.from(request);
  const ttlAt = request.indexOf(Buffer.from("0000001e0004", "hex"));
  changed[ttlAt + 3] = 31;
  assert.equal(verifyMessage(changed, key("hmac-sha256"), null, timeSigned).ok, false);
  const late = verifyMessage(request, key("hmac-sha256"), null, timeSigned + 301);
  assert.equal(late.ok, false);
  assert.match((late as { reason: string }).reason, /301 s off our clock \(fudge 300 s\)/);
  assert.equal(verifyMessage(request, key("hmac-sha256"), null, timeSigned - 300).ok, true);
  assert.match(
    (verifyMessage(request, key("hmac-sha512"), null, timeSigned) as { reason: string }).reason,
    /signed with hmac-sha256, not hmac-sha512/,
  );
  assert.match(
    (verifyMessage(request, { ...key("hmac-sha256"), name: "other" }, null, timeSigned) as { reason: string })
      .reason,
    /the key "tandem-key", not "other"/,
  );
});

test("dns tsig: Knot's signed response verifies against our request's MAC, and only against it", () => {
  const { request, response, timeSigned } = nsupdateVectors.sha256;
  const requestMac = macOf(request);
  assert.deepEqual(verifyMessage(response, key("hmac-sha256"), requestMac, timeSigned), { ok: true });
  // The same response to another request (another MAC) is not ours.
  const otherMac = Buffer.from(requestMac);
  otherMac[0]! ^= 1;
  assert.equal(verifyMessage(response, key("hmac-sha256"), otherMac, timeSigned).ok, false);
  // Nor does it verify as if it were a request.
  assert.equal(verifyMessage(response, key("hmac-sha256"), null, timeSigned).ok, false);
  // Its rcode is signed: a forged SERVFAIL in a replayed answer fails.
  const forged = Buffer.from(response);
  forged[3] = (forged[3]! & 0xf0) | 2;
  assert.equal(verifyMessage(forged, key("hmac-sha256"), requestMac, timeSigned).ok, false);
});

test("dns tsig: error answers (BADKEY, BADSIG) and unsigned answers never verify, and say why", () => {
  const badKey = nsupdateVectors.sha512;
  assert.deepEqual(
    verifyMessage(badKey.badKeyResponse, key("hmac-sha512"), macOf(badKey.request), badKey.timeSigned),
    {
      ok: false,
      reason:
        "BADKEY: the server refuses this key (an unknown name or algorithm; Knot also answers so when no ACL lets the key make this update)",
    },
  );
  const badSig = nsupdateVectors.wrongSecret;
  const check = verifyMessage(
    badSig.badSigResponse,
    key("hmac-sha256", badSig.secret),
    macOf(badSig.request),
    badSig.timeSigned,
  );
  assert.equal(check.ok, false);
  assert.match((check as { reason: string }).reason, /^BADSIG: .*wrong secret/);
  // The response with its TSIG record cut off.
  const { request, response } = nsupdateVectors.sha256;
  const parsed = decodeMessage(response);
  const bare = Buffer.from(response.subarray(0, parsed.additionals[0]!.start));
  bare.writeUInt16BE(0, 10);
  assert.deepEqual(verifyMessage(bare, key("hmac-sha256"), macOf(request), badSig.timeSigned), {
    ok: false,
    reason: "it is not signed (no TSIG record)",
  });
});

test("dns tsig: a truncated MAC is refused", () => {
  const { request, timeSigned } = nsupdateVectors.sha256;
  const { signed } = signMessage(unsigned(request), key("hmac-sha256"), timeSigned);
  // Rebuild the TSIG record with the first 16 of its 32 MAC bytes.
  const tsig = decodeMessage(signed).additionals.at(-1)!;
  const algorithmBytes = tsig.rdata.indexOf(0) + 1;
  const rdata = Buffer.concat([
    tsig.rdata.subarray(0, algorithmBytes + 8),
    Buffer.from([0, 16]),
    tsig.rdata.subarray(algorithmBytes + 10, algorithmBytes + 26),
    tsig.rdata.subarray(algorithmBytes + 42),
  ]);
  const rdLength = Buffer.alloc(2);
  rdLength.writeUInt16BE(rdata.length);
  const cut = Buffer.concat([signed.subarray(0, tsig.rdataOffset - 2), rdLength, rdata]);
  assert.deepEqual(verifyMessage(cut, key("hmac-sha256"), null, timeSigned), {
    ok: false,
    reason: "a MAC of 16 bytes, not 32",
  });
});
