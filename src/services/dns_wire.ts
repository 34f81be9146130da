// DNS messages on the wire (RFC 1035 section 4, RFC 2136 for UPDATE): just what the dns driver sends and
// reads. Our own small encoder rather than the npm package dns-packet (the ecosystem's usual one): it
// cannot write class NONE (RFC 2136 2.5.4, "delete this one record", which stop needs; its class table
// turns NONE into 0) nor an A or AAAA record with empty RDATA (2.5.2, "delete the RRset", which start
// needs), and TSIG needs each record's byte offset, which its decoder does not give.
import { isIPv4, isIPv6 } from "node:net";

export const RRType = { A: 1, SOA: 6, CNAME: 5, AAAA: 28, TSIG: 250 } as const;
export const RRClass = { IN: 1, NONE: 254, ANY: 255 } as const;
export const Opcode = { QUERY: 0, UPDATE: 5 } as const;

const rcodeNames = [
  "NOERROR",
  "FORMERR",
  "SERVFAIL",
  "NXDOMAIN",
  "NOTIMP",
  "REFUSED",
  "YXDOMAIN",
  "YXRRSET",
  "NXRRSET",
  "NOTAUTH",
  "NOTZONE",
];

export function rcodeName(rcode: number): string {
  return rcodeNames[rcode] ?? `RCODE${rcode}`;
}

export const headerBytes = 12;
const nameBytesMax = 255;
const labelBytesMax = 63;
const flagQr = 0x8000;
const flagAa = 0x0400;
const flagTc = 0x0200;
const flagRd = 0x0100;

export class DnsWireError extends Error {
  override name = "DnsWireError";
}

/** A name as text ("web.example.com", a trailing dot or not) to uncompressed wire labels. */
export function encodeName(text: string): Buffer {
  const trimmed = text.endsWith(".") ? text.slice(0, -1) : text;
  if (trimmed === "") return Buffer.from([0]);
  const parts: Buffer[] = [];
  for (const label of trimmed.split(".")) {
    const bytes = Buffer.from(label, "ascii");
    if (bytes.length === 0 || bytes.length > labelBytesMax || !/^[\x21-\x7e]+$/.test(label)) {
      throw new DnsWireError(`not a DNS name: "${text}" (labels of 1-63 printable ASCII characters)`);
    }
    parts.push(Buffer.from([bytes.length]), bytes);
  }
  parts.push(Buffer.from([0]));
  const wire = Buffer.concat(parts);
  if (wire.length > nameBytesMax) throw new DnsWireError(`DNS name longer than 255 bytes: "${text}"`);
  return wire;
}

/** RFC 4034 6.2: lower case, uncompressed; what TSIG signs its key and algorithm names in. */
export function canonicalName(text: string): Buffer {
  return encodeName(text.toLowerCase());
}

export function sameName(a: string, b: string): boolean {
  const strip = (n: string) => (n.endsWith(".") ? n.slice(0, -1) : n).toLowerCase();
  return strip(a) === strip(b);
}

/** An IPv4 or IPv6 literal to the RDATA of its A or AAAA record. */
export function addressRecord(address: string): { type: number; rdata: Buffer } {
  if (isIPv4(address)) return { type: RRType.A, rdata: Buffer.from(address.split(".").map(Number)) };
  if (!isIPv6(address)) throw new DnsWireError(`not an IP address: "${address}"`);
  let text = address.replace(/%.*$/, "");
  // A trailing dotted quad (::ffff:192.0.2.1) becomes two groups.
  const quad = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (quad !== null) {
    const [a, b, c, d] = quad.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, quad.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = "", tail] = text.split("::");
  const headGroups = head === "" ? [] : head.split(":");
  const tailGroups = tail === undefined || tail === "" ? [] : tail.split(":");
  const zeros = tail === undefined ? 0 : 8 - headGroups.length - tailGroups.length;
  const groups = [...headGroups, ...Array<string>(zeros).fill("0"), ...tailGroups];
  const rdata = Buffer.alloc(16);
  groups.forEach((group, i) => {
    rdata.writeUInt16BE(Number.parseInt(group, 16), i * 2);
  });
  return { type: RRType.AAAA, rdata };
}

/** The text of an A or AAAA record's RDATA (IPv6 unabbreviated), for logs and errors. */
export function formatAddress(rdata: Buffer): string {
  if (rdata.length === 4) return [...rdata].join(".");
  if (rdata.length === 16) {
    return Array.from({ length: 8 }, (_, i) => rdata.readUInt16BE(i * 2).toString(16)).join(":");
  }
  return `0x${rdata.toString("hex")}`;
}

export interface Question {
  name: string;
  type: number;
  class: number;
}

export interface ResourceRecord {
  name: string;
  type: number;
  class: number;
  ttl: number;
  rdata: Buffer;
}

export interface MessageToEncode {
  id: number;
  opcode: number;
  recursionDesired?: boolean;
  /** The question section; an UPDATE's zone section. */
  questions: Question[];
  /** An UPDATE's prerequisite section. */
  answers?: ResourceRecord[];
  /** An UPDATE's update section. */
  authorities?: ResourceRecord[];
  additionals?: ResourceRecord[];
}

function u16(value: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(value);
  return b;
}

export function encodeRecord(rr: ResourceRecord): Buffer {
  if (rr.rdata.length > 0xffff) throw new DnsWireError("RDATA longer than 65535 bytes");
  const fixed = Buffer.alloc(10);
  fixed.writeUInt16BE(rr.type, 0);
  fixed.writeUInt16BE(rr.class, 2);
  fixed.writeUInt32BE(rr.ttl, 4);
  fixed.writeUInt16BE(rr.rdata.length, 8);
  return Buffer.concat([encodeName(rr.name), fixed, rr.rdata]);
}

/** A query or request (QR clear), names uncompressed. */
export function encodeMessage(message: MessageToEncode): Buffer {
  const answers = message.answers ?? [];
  const authorities = message.authorities ?? [];
  const additionals = message.additionals ?? [];
  const header = Buffer.alloc(headerBytes);
  header.writeUInt16BE(message.id, 0);
  header.writeUInt16BE(((message.opcode & 0xf) << 11) | (message.recursionDesired ? flagRd : 0), 2);
  header.writeUInt16BE(message.questions.length, 4);
  header.writeUInt16BE(answers.length, 6);
  header.writeUInt16BE(authorities.length, 8);
  header.writeUInt16BE(additionals.length, 10);
  return Buffer.concat([
    header,
    ...message.questions.flatMap((q) => [encodeName(q.name), u16(q.type), u16(q.class)]),
    ...[...answers, ...authorities, ...additionals].map(encodeRecord),
  ]);
}

export interface ParsedRecord extends ResourceRecord {
  /** Where the record starts and ends in the message (TSIG strips its own record by these). */
  start: number;
  end: number;
  /** Where its RDATA starts (names inside it may point back into the message). */
  rdataOffset: number;
}

export interface ParsedMessage {
  id: number;
  response: boolean;
  opcode: number;
  authoritative: boolean;
  truncated: boolean;
  rcode: number;
  questions: Question[];
  answers: ParsedRecord[];
  authorities: ParsedRecord[];
  additionals: ParsedRecord[];
}

function need(message: Buffer, offset: number, bytes: number): void {
  if (offset + bytes > message.length) throw new DnsWireError("DNS message cut short");
}

/**
 * Reads the name at `offset`, following compression pointers (each must point before the previous one,
 * so a loop cannot be built). Labels come back as text, lower case kept as sent; odd bytes as \DDD.
 */
export function decodeName(message: Buffer, offset: number): { name: string; next: number } {
  const labels: string[] = [];
  let at = offset;
  let next = -1;
  let bytes = 1;
  let lowestPointer = offset;
  for (;;) {
    need(message, at, 1);
    const length = message[at]!;
    if (length === 0) {
      if (next === -1) next = at + 1;
      break;
    }
    if ((length & 0xc0) === 0xc0) {
      need(message, at, 2);
      const target = message.readUInt16BE(at) & 0x3fff;
      if (target >= lowestPointer) throw new DnsWireError("DNS name with a forward or looping pointer");
      if (next === -1) next = at + 2;
      lowestPointer = target;
      at = target;
      continue;
    }
    if ((length & 0xc0) !== 0) throw new DnsWireError("DNS name with an unknown label type");
    need(message, at + 1, length);
    bytes += length + 1;
    if (bytes > nameBytesMax) throw new DnsWireError("DNS name longer than 255 bytes");
    labels.push(
      [...message.subarray(at + 1, at + 1 + length)]
        .map((c) =>
          c > 0x20 && c < 0x7f && c !== 0x2e && c !== 0x5c
            ? String.fromCharCode(c)
            : `\\${String(c).padStart(3, "0")}`,
        )
        .join(""),
    );
    at += 1 + length;
  }
  return { name: labels.length === 0 ? "." : labels.join("."), next };
}

function decodeRecord(message: Buffer, start: number): ParsedRecord {
  const { name, next } = decodeName(message, start);
  need(message, next, 10);
  const rdLength = message.readUInt16BE(next + 8);
  const rdataOffset = next + 10;
  need(message, rdataOffset, rdLength);
  return {
    name,
    type: message.readUInt16BE(next),
    class: message.readUInt16BE(next + 2),
    ttl: message.readUInt32BE(next + 4),
    rdata: message.subarray(rdataOffset, rdataOffset + rdLength),
    start,
    end: rdataOffset + rdLength,
    rdataOffset,
  };
}

/** Reads a whole message; throws DnsWireError on anything malformed or trailing bytes. */
export function decodeMessage(message: Buffer): ParsedMessage {
  need(message, 0, headerBytes);
  const flags = message.readUInt16BE(2);
  const counts = [4, 6, 8, 10].map((at) => message.readUInt16BE(at)) as [number, number, number, number];
  let offset = headerBytes;
  const questions: Question[] = [];
  for (let i = 0; i < counts[0]; i++) {
    const { name, next } = decodeName(message, offset);
    need(message, next, 4);
    questions.push({ name, type: message.readUInt16BE(next), class: message.readUInt16BE(next + 2) });
    offset = next + 4;
  }
  const section = (count: number): ParsedRecord[] =>
    Array.from({ length: count }, () => {
      const record = decodeRecord(message, offset);
      offset = record.end;
      return record;
    });
  const answers = section(counts[1]);
  const authorities = section(counts[2]);
  const additionals = section(counts[3]);
  if (offset !== message.length) throw new DnsWireError("DNS message with trailing bytes");
  return {
    id: message.readUInt16BE(0),
    response: (flags & flagQr) !== 0,
    opcode: (flags >> 11) & 0xf,
    authoritative: (flags & flagAa) !== 0,
    truncated: (flags & flagTc) !== 0,
    rcode: flags & 0xf,
    questions,
    answers,
    authorities,
    additionals,
  };
}
