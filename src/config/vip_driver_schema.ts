// The `vip` driver's keys (a virtual IP address its service's owner holds on an interface) and their
// normalised form, VipDriverConfig, which src/services/vip_driver.ts acts on.
import { BlockList, isIPv4, isIPv6 } from "node:net";
import { z } from "zod";

/**
 * Announcements go out this far apart, so that a short burst of loss (a full queue, a switch port still
 * coming up) misses only some of them.
 */
export const vipAnnounceIntervalMs = 100;
/** What an announcing command needs beyond its spacing (start-up, opening a raw socket). */
const announceSlackMs = 1_000;

export type VipFamily = 4 | 6;

interface Cidr {
  /** Canonical: as `ip` prints it for IPv4; RFC 5952 (lower case, longest zero run compressed) for IPv6. */
  address: string;
  prefixLength: number;
  family: VipFamily;
}

/**
 * No host can hold these as its own: unspecified, loopback, multicast, IPv4's reserved 240/4 and broadcast;
 * ::/96 (also IPv4-compatible, which `ip` would print in dotted form) and IPv4-mapped ::ffff:0:0/96. One list
 * per family: a BlockList also matches IPv4 addresses against IPv4-mapped IPv6 rules.
 */
const refusedAddresses = { 4: new BlockList(), 6: new BlockList() } as const;
refusedAddresses[4].addSubnet("0.0.0.0", 8, "ipv4");
refusedAddresses[4].addSubnet("127.0.0.0", 8, "ipv4");
refusedAddresses[4].addSubnet("224.0.0.0", 3, "ipv4");
refusedAddresses[6].addSubnet("::", 96, "ipv6");
refusedAddresses[6].addSubnet("::ffff:0:0", 96, "ipv6");
refusedAddresses[6].addSubnet("ff00::", 8, "ipv6");

const cidrHint = "expected an address with its prefix length, e.g. 192.0.2.10/24 or 2001:db8::10/64";

/** `address/prefix-length`, or why not. */
function parseCidr(text: string): Cidr | string {
  const [address = "", prefixText, ...rest] = text.split("/");
  if (prefixText === undefined || rest.length > 0) return cidrHint;
  // isIPv6 also takes a zone ("fe80::1%eth0"), which `ip addr` does not.
  const family = isIPv4(address) ? 4 : /^[0-9A-Fa-f:.]+$/.test(address) && isIPv6(address) ? 6 : null;
  if (family === null) return `"${address}" is not an IPv4 or IPv6 address; ${cidrHint}`;
  const prefixMax = family === 4 ? 32 : 128;
  const prefixLength = Number(prefixText);
  if (!/^[1-9][0-9]{0,2}$/.test(prefixText) || prefixLength > prefixMax) {
    return `the prefix length must be 1..${prefixMax}`;
  }
  if (refusedAddresses[family].check(address, family === 4 ? "ipv4" : "ipv6")) {
    return `${address} cannot be a virtual IP (unspecified, loopback, multicast, broadcast or IPv4-mapped)`;
  }
  return { address: canonicalAddress(address, family), prefixLength, family };
}

/**
 * One spelling per address, so the configured one compares with what `ip -j addr` reports. IPv6 goes through
 * the WHATWG URL parser, whose host serialiser is RFC 5952's; IPv4 is already canonical once isIPv4 took it.
 */
export function canonicalAddress(address: string, family: VipFamily): string {
  return family === 4 ? address : new URL(`http://[${address}]/`).hostname.slice(1, -1);
}

/** Linux's dev_valid_name(): at most 15 bytes (IFNAMSIZ - 1), not "." or "..", no "/", ":" or whitespace. */
function isInterfaceName(name: string): boolean {
  return /^[^\s/:]+$/.test(name) && Buffer.byteLength(name) <= 15 && name !== "." && name !== "..";
}

export const vipDriverSchema = z
  .strictObject({
    type: z.literal("vip"),
    address: z
      .string()
      .superRefine((text, ctx) => {
        const parsed = parseCidr(text);
        if (typeof parsed === "string") ctx.addIssue({ code: "custom", message: parsed });
      })
      .describe("The virtual IP with its prefix length, e.g. 192.0.2.10/24 or 2001:db8::10/64"),
    interface: z
      .string()
      .refine(isInterfaceName, {
        error: "expected a Linux interface name: 1-15 bytes, no /, : or whitespace, not . or ..",
      })
      .describe("The interface the address is added to, e.g. eth0"),
    announce: z
      .int()
      .min(0)
      .max(20)
      .default(3)
      .describe(
        `Gratuitous ARPs (IPv4) or unsolicited neighbour advertisements (IPv6) sent on start, ${vipAnnounceIntervalMs} ms apart; 0: none`,
      ),
    timeout_ms: z
      .int()
      .min(100)
      .max(60_000)
      .default(5_000)
      .describe("Each command is killed after this long"),
  })
  .superRefine((driver, ctx) => {
    const neededMs = driver.announce * vipAnnounceIntervalMs + announceSlackMs;
    if (driver.timeout_ms < neededMs) {
      ctx.addIssue({
        code: "custom",
        path: ["timeout_ms"],
        message: `must be at least ${neededMs} to send ${driver.announce} announcements ${vipAnnounceIntervalMs} ms apart`,
      });
    }
  })
  .describe("Holds a virtual IP address on an interface and announces it to the neighbours");

export type VipDriverFile = z.output<typeof vipDriverSchema>;

export interface VipDriverConfig {
  type: "vip";
  /** Canonical (see canonicalAddress), without the prefix length. */
  address: string;
  prefixLength: number;
  family: VipFamily;
  interface: string;
  /** How many announcements start sends; 0: none. */
  announce: number;
  timeoutMs: number;
}

/** `file` has passed vipDriverSchema. */
export function toVipDriverConfig(file: VipDriverFile): VipDriverConfig {
  const cidr = parseCidr(file.address);
  if (typeof cidr === "string") throw new RangeError(`vip address ${file.address}: ${cidr}`);
  return {
    type: "vip",
    address: cidr.address,
    prefixLength: cidr.prefixLength,
    family: cidr.family,
    interface: file.interface,
    announce: file.announce,
    timeoutMs: file.timeout_ms,
  };
}
