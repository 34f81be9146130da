// TSIG (RFC 8945): signs a DNS request with a shared key and checks the server's signed response. The
// MAC is an HMAC over the message as it was before the TSIG record was added, then the "TSIG variables"
// (section 4.3.3); a response's MAC also covers the request's MAC (4.3.1), so a signed answer belongs to
// this one request. No truncated MACs: we send full ones and want full ones back.
import { createHmac, timingSafeEqual } from "node:crypto";
import {
  canonicalName,
  decodeMessage,
  decodeName,
  encodeRecord,
  type ParsedMessage,
  type ParsedRecord,
  RRClass,
  RRType,
  sameName,
} from "./dns_wire.ts";

/** RFC 8945 section 6; HMAC-MD5 is left out (MUST NOT be used), the truncated variants too. */
export const tsigAlgorithms = {
  "hmac-sha1": "sha1",
  "hmac-sha224": "sha224",
  "hmac-sha256": "sha256",
  "hmac-sha384": "sha384",
  "hmac-sha512": "sha512",
} as const;
export type TsigAlgorithm = keyof typeof tsigAlgorithms;

export interface TsigKey {
  name: string;
  algorithm: TsigAlgorithm;
  secret: Buffer;
}

/** Seconds a signature may be off the receiver's clock (what nsupdate and knsupdate send). */
export const tsigFudgeSeconds = 300;

const tsigErrors: Record<number, string> = {
  16: "BADSIG: the server's check of our MAC failed (a wrong secret or algorithm for the key?)",
  17: "BADKEY: the server refuses this key (an unknown name or algorithm; Knot also answers so when no ACL lets the key make this update)",
  18: "BADTIME: this node's clock and the server's differ by more than the fudge",
  22: "BADTRUNC: the server refused a truncated MAC",
};

export function tsigErrorText(error: number): string {
  return tsigErrors[error] ?? `TSIG error ${error}`;
}

function u16(value: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(value);
  return b;
}

function time48(seconds: number): Buffer {
  const b = Buffer.alloc(6);
  b.writeUInt16BE(Math.floor(seconds / 2 ** 32), 0);
  b.writeUInt32BE(seconds % 2 ** 32, 2);
  return b;
}

interface TsigFields {
  keyName: string;
  class: number;
  ttl: number;
  algorithm: string;
  timeSigned: number;
  fudge: number;
  mac: Buffer;
  originalId: number;
  error: number;
  other: Buffer;
}

/** Section 4.3.3: what is signed after the message, names in canonical form. */
function tsigVariables(f: TsigFields): Buffer {
  const classTtl = Buffer.alloc(6);
  classTtl.writeUInt16BE(f.class, 0);
  classTtl.writeUInt32BE(f.ttl, 2);
  return Buffer.concat([
    canonicalName(f.keyName),
    classTtl,
    canonicalName(f.algorithm),
    time48(f.timeSigned),
    u16(f.fudge),
    u16(f.error),
    u16(f.other.length),
    f.other,
  ]);
}

function hmac(key: TsigKey, parts: Buffer[]): Buffer {
  const h = createHmac(tsigAlgorithms[key.algorithm], key.secret);
  for (const part of parts) h.update(part);
  return h.digest();
}

/**
 * Appends a TSIG record to `message` (ARCOUNT not yet counting it) and returns the MAC too: a request's
 * when `requestMac` is null, else a response to the request that had that MAC (a test's fake server).
 */
export function signMessage(
  message: Buffer,
  key: TsigKey,
  nowSeconds: number,
  requestMac: Buffer | null = null,
): { signed: Buffer; mac: Buffer } {
  const fields: TsigFields = {
    keyName: key.name,
    class: RRClass.ANY,
    ttl: 0,
    algorithm: key.algorithm,
    timeSigned: Math.floor(nowSeconds),
    fudge: tsigFudgeSeconds,
    mac: Buffer.alloc(0),
    originalId: message.readUInt16BE(0),
    error: 0,
    other: Buffer.alloc(0),
  };
  const prefix = requestMac === null ? [] : [u16(requestMac.length), requestMac];
  const mac = hmac(key, [...prefix, message, tsigVariables(fields)]);
  const rdata = Buffer.concat([
    canonicalName(key.algorithm),
    time48(fields.timeSigned),
    u16(fields.fudge),
    u16(mac.length),
    mac,
    u16(fields.originalId),
    u16(0),
    u16(0),
  ]);
  const record = encodeRecord({
    name: key.name.toLowerCase(),
    type: RRType.TSIG,
    class: RRClass.ANY,
    ttl: 0,
    rdata,
  });
  const header = Buffer.from(message.subarray(0, 12));
  header.writeUInt16BE(header.readUInt16BE(10) + 1, 10);
  return { signed: Buffer.concat([header, message.subarray(12), record]), mac };
}

function readTsig(message: Buffer, record: ParsedRecord): TsigFields {
  const { name: algorithm, next } = decodeName(message, record.rdataOffset);
  const fixed = next - record.rdataOffset;
  const rdata = record.rdata;
  const at = (offset: number, bytes: number) => {
    if (fixed + offset + bytes > rdata.length) throw new Error("TSIG record cut short");
    return fixed + offset;
  };
  const timeSigned = rdata.readUInt16BE(at(0, 2)) * 2 ** 32 + rdata.readUInt32BE(at(2, 4));
  const fudge = rdata.readUInt16BE(at(6, 2));
  const macSize = rdata.readUInt16BE(at(8, 2));
  const mac = rdata.subarray(at(10, macSize), fixed + 10 + macSize);
  const rest = 10 + macSize;
  const otherLength = rdata.readUInt16BE(at(rest + 4, 2));
  const other = rdata.subarray(at(rest + 6, otherLength), fixed + rest + 6 + otherLength);
  if (fixed + rest + 6 + otherLength !== rdata.length) throw new Error("TSIG record with trailing bytes");
  return {
    keyName: record.name,
    class: record.class,
    ttl: record.ttl,
    algorithm,
    timeSigned,
    fudge,
    mac,
    originalId: rdata.readUInt16BE(at(rest, 2)),
    error: rdata.readUInt16BE(at(rest + 2, 2)),
    other,
  };
}

export type TsigCheck = { ok: true } | { ok: false; reason: string };

/**
 * Checks the TSIG record that ends `message`: a response to a request whose MAC was `requestMac`, or,
 * with null, a request (what a server checks; the tests use it on messages signed by nsupdate).
 * `parsed` is decodeMessage(message), passed in when the caller already has it.
 */
export function verifyMessage(
  message: Buffer,
  key: TsigKey,
  requestMac: Buffer | null,
  nowSeconds: number,
  parsed: ParsedMessage = decodeMessage(message),
): TsigCheck {
  const additionals = parsed.additionals;
  const record = additionals.at(-1);
  if (record === undefined || record.type !== RRType.TSIG) {
    return { ok: false, reason: "it is not signed (no TSIG record)" };
  }
  if (additionals.slice(0, -1).some((r) => r.type === RRType.TSIG)) {
    return { ok: false, reason: "a TSIG record that is not the last one" };
  }
  let tsig: TsigFields;
  try {
    tsig = readTsig(message, record);
  } catch (error) {
    return { ok: false, reason: `a malformed TSIG record (${(error as Error).message})` };
  }
  if (!sameName(tsig.keyName, key.name)) {
    return { ok: false, reason: `signed with the key "${tsig.keyName}", not "${key.name}"` };
  }
  if (!sameName(tsig.algorithm, key.algorithm)) {
    return { ok: false, reason: `signed with ${tsig.algorithm}, not ${key.algorithm}` };
  }
  // An error response (BADSIG, BADKEY) carries no MAC; it can only make an operation fail, never succeed.
  if (tsig.error !== 0) return { ok: false, reason: tsigErrorText(tsig.error) };
  const macBytes = createHmac(tsigAlgorithms[key.algorithm], Buffer.alloc(0)).digest().length;
  if (tsig.mac.length !== macBytes) {
    return { ok: false, reason: `a MAC of ${tsig.mac.length} bytes, not ${macBytes}` };
  }
  const header = Buffer.from(message.subarray(0, 12));
  header.writeUInt16BE(tsig.originalId, 0);
  header.writeUInt16BE(additionals.length - 1, 10);
  const signedParts = [header, message.subarray(12, record.start), tsigVariables(tsig)];
  const prefix = requestMac === null ? [] : [u16(requestMac.length), requestMac];
  const expected = hmac(key, [...prefix, ...signedParts]);
  if (!timingSafeEqual(expected, tsig.mac)) {
    return { ok: false, reason: "its TSIG MAC does not verify with our key" };
  }
  if (Math.abs(Math.floor(nowSeconds) - tsig.timeSigned) > tsig.fudge) {
    return {
      ok: false,
      reason: `signed at ${tsig.timeSigned} s, ${Math.floor(nowSeconds) - tsig.timeSigned} s off our clock (fudge ${tsig.fudge} s)`,
    };
  }
  return { ok: true };
}
