// The dns driver: points a name at the service's owner with RFC 2136 dynamic updates signed with TSIG
// (RFC 8945), so it works with any standard primary server (the tests run it against Knot and BIND).
//   start:  one UPDATE: delete the name's A (or AAAA) RRset, add "name TTL A <this node's address>".
//   stop:   delete only this node's record, so a late stop of an old owner leaves the new owner's alone.
//   status: a signed, non-recursive query: "running" when the records are exactly this node's address.
// Every response must carry a valid TSIG (else it could be spoofed); no retries here (the service runner
// retries); every call is bounded by timeout_ms.
// Updates always go over TCP: a UDP datagram delayed in the network is applied whenever it arrives (the
// signature stays valid for the fudge, 300 s), possibly after this start was given up and another node
// took over; a TCP connection reset on the timeout drops what the server has not read. Queries go over
// UDP, and again over TCP when the answer is truncated.

import { randomInt } from "node:crypto";
import { readFile } from "node:fs/promises";
import type { Logger } from "pino";
import { type DnsDriverConfig, formatHostPort } from "../config/index.ts";
import { exchangeTcp, exchangeUdp } from "./dns_transport.ts";
import { signMessage, type TsigKey, verifyMessage } from "./dns_tsig.ts";
import {
  addressRecord,
  decodeMessage,
  encodeMessage,
  formatAddress,
  Opcode,
  type ParsedMessage,
  type ResourceRecord,
  RRClass,
  RRType,
  rcodeName,
  sameName,
} from "./dns_wire.ts";
import type { Driver, DriverContext, DriverStatus } from "./exec_driver.ts";

const rcodeNoError = 0;
const rcodeNxDomain = 3;

/** An update or query that did not get a verified, successful answer; the message says why. */
export class DnsDriverError extends Error {
  override name = "DnsDriverError";
}

/** The secret file holds the base64 secret alone; its content never appears in an error or a log. */
export async function readTsigSecret(path: string): Promise<Buffer> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    throw new DnsDriverError(
      `cannot read the TSIG secret_file ${path}: ${(error as NodeJS.ErrnoException).code}`,
    );
  }
  const base64 = text.replace(/\s+/g, "");
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(base64) || base64.length % 4 !== 0) {
    const hint = /algorithm|secret\s*[":]/i.test(text)
      ? " (it looks like a key block: keep only the base64 value of its secret)"
      : "";
    throw new DnsDriverError(`the TSIG secret_file ${path} does not hold one base64 secret${hint}`);
  }
  return Buffer.from(base64, "base64");
}

export class DnsDriver implements Driver {
  readonly kind = "dns";
  private readonly config: DnsDriverConfig;
  private readonly logger: Logger;
  private readonly record: { type: number; rdata: Buffer };
  private readonly typeName: "A" | "AAAA";

  /** `address`: this node's IPv4 or IPv6 address, what its record holds. */
  constructor(config: DnsDriverConfig, address: string, logger: Logger) {
    this.config = config;
    this.record = addressRecord(address);
    this.typeName = this.record.type === RRType.A ? "A" : "AAAA";
    const server = formatHostPort(config.server);
    this.logger = logger.child({ driver: "dns", server, name: config.name, type: this.typeName, address });
  }

  async start(context: DriverContext): Promise<boolean> {
    return this.run("start", context, () => this.pointHere());
  }

  async stop(context: DriverContext): Promise<boolean> {
    return this.run("stop", context, () => this.withdrawHere());
  }

  async status(context: DriverContext): Promise<DriverStatus> {
    try {
      const addresses = await this.lookup();
      const running = addresses.length > 0 && addresses.every((a) => a.equals(this.record.rdata));
      this.logger.debug(
        { step: "status", fence: context.fence, records: addresses.map(formatAddress) },
        "status",
      );
      return running ? "running" : "stopped";
    } catch (error) {
      this.logger.warn(
        { step: "status", fence: context.fence, reason: (error as Error).message },
        "status failed",
      );
      return "unknown";
    }
  }

  /** Start's update: the name's records of this type become this node's address alone. Throws DnsDriverError. */
  async pointHere(): Promise<void> {
    const { name, ttl } = this.config;
    await this.update([
      { name, type: this.record.type, class: RRClass.ANY, ttl: 0, rdata: Buffer.alloc(0) },
      { name, type: this.record.type, class: RRClass.IN, ttl, rdata: this.record.rdata },
    ]);
  }

  /** Stop's update: this node's record goes, any other stays. Throws DnsDriverError. */
  async withdrawHere(): Promise<void> {
    const { name } = this.config;
    await this.update([
      { name, type: this.record.type, class: RRClass.NONE, ttl: 0, rdata: this.record.rdata },
    ]);
  }

  /** The RDATA of the name's records of this node's type, from the server itself. Throws DnsDriverError. */
  async lookup(): Promise<Buffer[]> {
    const deadline = performance.now() + this.config.timeoutMs;
    const { name } = this.config;
    const query = encodeMessage({
      id: randomInt(0x10000),
      opcode: Opcode.QUERY,
      recursionDesired: false,
      questions: [{ name, type: this.record.type, class: RRClass.IN }],
    });
    const response = await this.exchange(query, "query", deadline, "udp");
    if (response.rcode !== rcodeNoError && response.rcode !== rcodeNxDomain) {
      throw new DnsDriverError(
        `query of ${name} ${this.typeName}: the server answered ${rcodeName(response.rcode)}`,
      );
    }
    const question = response.questions[0];
    if (
      response.questions.length !== 1 ||
      !sameName(question!.name, name) ||
      question!.type !== this.record.type
    ) {
      throw new DnsDriverError(`query of ${name} ${this.typeName}: the answer is for another question`);
    }
    if (!response.authoritative) {
      throw new DnsDriverError(`query of ${name} ${this.typeName}: the server is not authoritative for it`);
    }
    return response.answers
      .filter((rr) => rr.type === this.record.type && rr.class === RRClass.IN && sameName(rr.name, name))
      .map((rr) => rr.rdata);
  }

  private async update(records: ResourceRecord[]): Promise<void> {
    const deadline = performance.now() + this.config.timeoutMs;
    const request = encodeMessage({
      id: randomInt(0x10000),
      opcode: Opcode.UPDATE,
      questions: [{ name: this.config.zone, type: RRType.SOA, class: RRClass.IN }],
      authorities: records,
    });
    const response = await this.exchange(request, "update", deadline, "tcp");
    if (response.rcode !== rcodeNoError) {
      throw new DnsDriverError(
        `update of ${this.config.name} in zone ${this.config.zone} refused: ${rcodeName(response.rcode)}`,
      );
    }
  }

  /** Signs, sends, reads and verifies one exchange; a query whose UDP answer is truncated goes again over TCP. */
  private async exchange(
    message: Buffer,
    what: "query" | "update",
    deadline: number,
    transport: "udp" | "tcp",
  ): Promise<ParsedMessage> {
    const key = await this.key();
    const { signed, mac } = signMessage(message, key, Date.now() / 1000);
    let raw: Buffer;
    try {
      raw = await (transport === "udp" ? exchangeUdp : exchangeTcp)(this.config.server, signed, deadline);
    } catch (error) {
      throw new DnsDriverError(`${what} of ${this.config.name}: ${(error as Error).message}`);
    }
    let response: ParsedMessage;
    try {
      response = decodeMessage(raw);
    } catch (error) {
      throw new DnsDriverError(
        `${what} of ${this.config.name}: a malformed answer (${(error as Error).message})`,
      );
    }
    const opcode = what === "update" ? Opcode.UPDATE : Opcode.QUERY;
    if (!response.response || response.opcode !== opcode) {
      throw new DnsDriverError(`${what} of ${this.config.name}: the answer is not a response to it`);
    }
    if (response.truncated && transport === "udp") return this.exchange(message, what, deadline, "tcp");
    const check = verifyMessage(raw, key, mac, Date.now() / 1000, response);
    if (!check.ok) {
      throw new DnsDriverError(
        `${what} of ${this.config.name}: the server answered ${rcodeName(response.rcode)}, ` +
          `and its answer fails TSIG: ${check.reason}`,
      );
    }
    return response;
  }

  private async key(): Promise<TsigKey> {
    const { name, algorithm, secretFile } = this.config.tsig;
    return { name, algorithm, secret: await readTsigSecret(secretFile) };
  }

  private async run(
    step: "start" | "stop",
    context: DriverContext,
    act: () => Promise<void>,
  ): Promise<boolean> {
    const fields = { step, fence: context.fence };
    try {
      await act();
      this.logger.info(fields, step === "start" ? "record points here" : "record withdrawn");
      return true;
    } catch (error) {
      this.logger.warn({ ...fields, reason: (error as Error).message }, `${step} failed`);
      return false;
    }
  }
}
