// A fake DNS server on 127.0.0.1 (UDP and TCP on one port) for the dns driver's unit tests: each request
// goes to a handler that returns the answers (framed here for TCP), or null to stay silent.
import { createSocket, type Socket as UdpSocket } from "node:dgram";
import { createServer, type Server, type Socket } from "node:net";
import { signMessage, type TsigKey } from "../../src/services/dns_tsig.ts";
import { decodeMessage, encodeMessage, type ResourceRecord, RRType } from "../../src/services/dns_wire.ts";

export type Transport = "udp" | "tcp";
export type Handler = (request: Buffer, transport: Transport) => Buffer | null | Buffer[];

export interface FakeDns {
  port: number;
  requests: { transport: Transport; request: Buffer }[];
  /** TCP connections that ended with a reset (ECONNRESET) rather than a close. */
  resets: number;
  close(): Promise<void>;
}

function listenUdp(port: number): Promise<UdpSocket> {
  return new Promise((resolve, reject) => {
    const socket = createSocket("udp4");
    socket.once("error", reject);
    socket.bind(port, "127.0.0.1", () => {
      socket.off("error", reject);
      resolve(socket);
    });
  });
}

function listenTcp(server: Server, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
}

export async function fakeDns(handler: Handler): Promise<FakeDns> {
  const requests: FakeDns["requests"] = [];
  const sockets = new Set<Socket>();
  const fake = { requests, resets: 0 } as FakeDns;
  const tcp = createServer((socket) => {
    sockets.add(socket);
    let buffered = Buffer.alloc(0);
    socket.on("error", (error: NodeJS.ErrnoException) => {
      if (error.code === "ECONNRESET") fake.resets++;
    });
    socket.on("close", () => sockets.delete(socket));
    socket.on("data", (chunk) => {
      buffered = Buffer.concat([buffered, chunk]);
      if (buffered.length < 2 || buffered.length < 2 + buffered.readUInt16BE(0)) return;
      const request = buffered.subarray(2, 2 + buffered.readUInt16BE(0));
      requests.push({ transport: "tcp", request });
      const answer = handler(request, "tcp");
      if (answer === null) return;
      for (const part of Array.isArray(answer) ? answer : [answer]) socket.write(framed(part));
    });
  });
  // A UDP port whose TCP twin is free too.
  for (let attempt = 0; ; attempt++) {
    const udp = await listenUdp(0);
    const port = udp.address().port;
    try {
      await listenTcp(tcp, port);
    } catch (error) {
      udp.close();
      if (attempt < 10) continue;
      throw error;
    }
    udp.on("message", (request, from) => {
      requests.push({ transport: "udp", request });
      const answer = handler(request, "udp");
      if (answer === null) return;
      for (const part of Array.isArray(answer) ? answer : [answer]) udp.send(part, from.port, from.address);
    });
    fake.port = port;
    fake.close = async () => {
      udp.close();
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => tcp.close(resolve));
    };
    return fake;
  }
}

function framed(message: Buffer): Buffer {
  const length = Buffer.alloc(2);
  length.writeUInt16BE(message.length);
  return Buffer.concat([length, message]);
}

/** The MAC inside the TSIG record that ends `message`. */
export function macOf(message: Buffer): Buffer {
  const tsig = decodeMessage(message).additionals.at(-1)!;
  if (tsig.type !== RRType.TSIG) throw new Error("no TSIG record");
  const algorithmBytes = tsig.rdata.indexOf(0) + 1;
  const size = tsig.rdata.readUInt16BE(algorithmBytes + 8);
  return tsig.rdata.subarray(algorithmBytes + 10, algorithmBytes + 10 + size);
}

export interface AnswerOptions {
  rcode?: number;
  answers?: ResourceRecord[];
  authoritative?: boolean;
  truncated?: boolean;
  id?: number;
  /** null: unsigned. */
  key?: TsigKey | null;
}

/** A response to `request` (its id, opcode and question), signed with `key` against its MAC. */
export function answer(request: Buffer, key: TsigKey | null, options: AnswerOptions = {}): Buffer {
  const parsed = decodeMessage(request);
  const message = encodeMessage({
    id: options.id ?? parsed.id,
    opcode: parsed.opcode,
    questions: parsed.questions,
    answers: options.answers ?? [],
  });
  message[2] =
    message[2]! | 0x80 | (options.authoritative === false ? 0 : 0x04) | (options.truncated ? 0x02 : 0);
  message[3] = options.rcode ?? 0;
  if (key === null) return message;
  return signMessage(message, key, Date.now() / 1000, macOf(request)).signed;
}
