// The `dns` driver's keys in tandem.yml: which server, zone and name, the TSIG key that signs the update
// (its secret in a file, never inline), and how this node's address is found. Schema, normalised type and
// the pure step from one to the other.
import { isIP, isIPv4, isIPv6 } from "node:net";
import { resolve } from "node:path";
import { z } from "zod";
import { type NodeId, nodeIdPattern } from "../core/types.ts";
import { type HostPort, type HostPortParse, parseHostPort } from "./address.ts";

/** RFC 8945 section 6, without HMAC-MD5 (MUST NOT be used) and the truncated variants. */
export const dnsTsigAlgorithms = [
  "hmac-sha256",
  "hmac-sha512",
  "hmac-sha384",
  "hmac-sha224",
  "hmac-sha1",
] as const;
export type DnsTsigAlgorithm = (typeof dnsTsigAlgorithms)[number];

export const dnsPortDefault = 53;

/** Host names and key names: letters, digits, `-` and `_` (for names like _acme), a trailing dot or not. */
const dnsNamePattern =
  /^(?=.{1,254}$)[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*\.?$/;

/** Lower case, without the trailing dot: how names are compared and kept. */
export function normaliseDnsName(name: string): string {
  return (name.endsWith(".") ? name.slice(0, -1) : name).toLowerCase();
}

export function inZone(name: string, zone: string): boolean {
  const n = normaliseDnsName(name);
  const z = normaliseDnsName(zone);
  return n === z || n.endsWith(`.${z}`);
}

/** "192.0.2.53", "192.0.2.53:5353", "2001:db8::53", "[2001:db8::53]:5353": an IP literal, port 53 by default. */
export function parseDnsServer(text: string): HostPortParse {
  if (isIP(text) !== 0) return { ok: true, value: { host: text, port: dnsPortDefault } };
  if (text.startsWith("[") && text.endsWith("]") && isIPv6(text.slice(1, -1))) {
    return { ok: true, value: { host: text.slice(1, -1), port: dnsPortDefault } };
  }
  const parsed = parseHostPort(text);
  if (parsed.ok && isIP(parsed.value.host) === 0) {
    return { ok: false, reason: "expected an IP address, not a name (the driver resolves nothing)" };
  }
  return parsed;
}

const dnsName = z
  .string()
  .regex(dnsNamePattern, { error: "expected a DNS name, e.g. web.example.com" })
  .meta({ pattern: dnsNamePattern.source });

const ipLiteral = z
  .string()
  .refine((text) => isIP(text) !== 0, { error: "expected an IPv4 or IPv6 address" });

const tsigSchema = z
  .strictObject({
    name: dnsName.describe("The key's name, as the DNS server knows it"),
    algorithm: z.enum(dnsTsigAlgorithms).default("hmac-sha256").describe("The key's HMAC algorithm"),
    secret_file: z
      .string()
      .min(1)
      .describe("File holding the key's base64 secret, and nothing else; relative to tandem.yml"),
  })
  .describe("The TSIG key (RFC 8945) that signs every request");

export const dnsDriverSchema = z
  .strictObject({
    type: z.literal("dns").describe("Points a DNS name at the owner"),
    server: z
      .string()
      .superRefine((text, ctx) => {
        const parsed = parseDnsServer(text);
        if (!parsed.ok) ctx.addIssue({ code: "custom", message: parsed.reason });
      })
      .describe('The primary DNS server of the zone: "ip" or "ip:port" ("[ipv6]:port"), port 53 by default'),
    zone: dnsName.describe("The zone the name is in, e.g. example.com"),
    name: dnsName.describe("The name pointed at the owner, inside the zone, e.g. web.example.com"),
    ttl: z.int().min(0).max(86_400).default(30).describe("TTL of the record, in seconds"),
    addresses: z
      .record(z.string().regex(nodeIdPattern, { error: "expected a node id" }), ipLiteral)
      .optional()
      .describe("The address each node's record holds; default: the node's advertise host, if an IP address"),
    tsig: tsigSchema,
    timeout_ms: z
      .int()
      .min(1)
      .max(300_000)
      .default(5_000)
      .describe("Each request fails after this long without a verified answer"),
  })
  .superRefine((driver, ctx) => {
    if (!inZone(driver.name, driver.zone)) {
      ctx.addIssue({
        code: "custom",
        path: ["name"],
        message: `"${driver.name}" is not inside the zone "${driver.zone}"`,
      });
    }
    // Start replaces the records of its own type only: with owners of both families, a dead IPv4 owner's A
    // record would outlive an IPv6 owner's start.
    const families = new Set(Object.values(driver.addresses ?? {}).map((a) => (isIPv4(a) ? 4 : 6)));
    if (families.size > 1) {
      ctx.addIssue({
        code: "custom",
        path: ["addresses"],
        message: "expected addresses of one family, all IPv4 (A records) or all IPv6 (AAAA)",
      });
    }
  })
  .describe("Points a DNS name at the owner: an RFC 2136 update signed with TSIG");

export type DnsDriverFile = z.output<typeof dnsDriverSchema>;

export interface DnsDriverConfig {
  type: "dns";
  server: HostPort;
  /** Lower case, no trailing dot (as are name and tsig.name). */
  zone: string;
  name: string;
  ttl: number;
  /** null: each node's advertise host. */
  addresses: Readonly<Record<NodeId, string>> | null;
  tsig: { name: string; algorithm: DnsTsigAlgorithm; secretFile: string };
  timeoutMs: number;
}

/** `parsed` passed the schema; relative paths are read from `baseDir` (tandem.yml's folder). */
export function toDnsDriverConfig(parsed: DnsDriverFile, baseDir: string): DnsDriverConfig {
  const server = parseDnsServer(parsed.server);
  if (!server.ok) throw new Error(`dns server passed the schema but does not parse: ${server.reason}`);
  return {
    type: "dns",
    server: server.value,
    zone: normaliseDnsName(parsed.zone),
    name: normaliseDnsName(parsed.name),
    ttl: parsed.ttl,
    addresses: parsed.addresses === undefined ? null : { ...parsed.addresses },
    tsig: {
      name: normaliseDnsName(parsed.tsig.name),
      algorithm: parsed.tsig.algorithm,
      secretFile: resolve(baseDir, parsed.tsig.secret_file),
    },
    timeoutMs: parsed.timeout_ms,
  };
}

export type DnsAddressChoice = { ok: true; address: string } | { ok: false; reason: string };

/** The address `node`'s record holds: its entry in `addresses`, else its advertise host if that is an IP. */
export function dnsDriverAddress(
  config: DnsDriverConfig,
  node: NodeId,
  advertiseHost: string,
): DnsAddressChoice {
  if (config.addresses !== null) {
    const address = config.addresses[node];
    if (address !== undefined) return { ok: true, address };
  }
  if (isIP(advertiseHost) !== 0) return { ok: true, address: advertiseHost };
  return {
    ok: false,
    reason: `node ${node} advertises "${advertiseHost}", not an IP address: give it one under the dns driver's addresses`,
  };
}
