// What the vip driver's namespace test needs beyond NetnsLab: the announcing tools, IPv6 on the lab's link,
// and a look at a host's addresses, MAC address and neighbour table. Every command acts inside one of the
// lab's namespaces (`ip -n`, `ip netns exec`), never in the root namespace.
import { execFileSync, spawnSync } from "node:child_process";
import { type NetnsHost, type NetnsLab, type NetnsSupport, netnsSupport } from "./netns.ts";

export const vipLabInstallHint =
  "install the tools with `apt-get install iproute2 nftables arping libndp-tools` and run as root";

/** The lab's IPv6 prefix; like its IPv4 subnet it exists only inside the lab's namespaces. */
export const labIpv6Prefix = "fd00:213::";

const commandTimeoutMs = 5_000;
const pollIntervalMs = 25;

/** NetnsLab's needs, plus Thomas Habets' arping (Debian's arping package) and ndptool (libndp-tools). */
export function vipLabSupport(): NetnsSupport {
  const lab = netnsSupport();
  if (!lab.ok) return lab;
  const arping = spawnSync("arping", ["--help"], { encoding: "utf8", timeout: commandTimeoutMs });
  if (arping.error !== undefined) return { ok: false, missing: "the `arping` command" };
  if (!`${arping.stdout}${arping.stderr}`.includes("Thomas Habets")) {
    return { ok: false, missing: "Debian's arping package (Thomas Habets' arping), not iputils-arping" };
  }
  const ndptool = spawnSync("ndptool", ["-h"], { encoding: "utf8", timeout: commandTimeoutMs });
  if (ndptool.error !== undefined) return { ok: false, missing: "the `ndptool` command" };
  return { ok: true };
}

/** `ip -n <host's namespace> ...`; throws with ip's stderr. */
export function ipIn(host: NetnsHost, args: readonly string[]): string {
  try {
    return execFileSync("ip", ["-n", host.namespace, ...args], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
      timeout: commandTimeoutMs,
    });
  } catch (cause) {
    const stderr = (cause as { stderr?: string }).stderr?.trim();
    throw new Error(`ip -n ${host.namespace} ${args.join(" ")} failed${stderr ? `: ${stderr}` : ""}`, {
      cause,
    });
  }
}

/** Gives every host labIpv6Prefix + its number (as in its IPv4 address), skipping duplicate detection. */
export function addIpv6Addresses(lab: NetnsLab): void {
  lab.hosts.forEach((host, index) => {
    ipIn(host, ["addr", "add", `${labIpv6Prefix}${index + 1}/64`, "dev", "eth0", "nodad"]);
  });
}

export function macOf(host: NetnsHost): string {
  const [link] = JSON.parse(ipIn(host, ["-j", "link", "show", "eth0"])) as Array<{ address: string }>;
  if (link === undefined) throw new Error(`no eth0 in ${host.namespace}`);
  return link.address;
}

/** The MAC address `host` has for `address`, or null (no entry, or one still resolving). */
export function neighbourMac(host: NetnsHost, address: string): string | null {
  const entries = JSON.parse(ipIn(host, ["-j", "neigh", "show", address, "dev", "eth0"])) as Array<{
    lladdr?: string;
  }>;
  return entries[0]?.lladdr ?? null;
}

/** How many times `address` is on `host`'s eth0 (with any prefix length). */
export function addressCount(host: NetnsHost, address: string): number {
  const [link] = JSON.parse(ipIn(host, ["-j", "addr", "show", "dev", "eth0"])) as Array<{
    addr_info: Array<{ local?: string }>;
  }>;
  return link?.addr_info.filter((a) => a.local === address).length ?? 0;
}

/** One UDP datagram from `host` to `address`: makes its kernel resolve the address, as any traffic would. */
export function sendDatagram(host: NetnsHost, address: string): void {
  const script = `
    const socket = require("node:dgram").createSocket(process.argv[1].includes(":") ? "udp6" : "udp4");
    socket.send("vip test", 9, process.argv[1], (error) => { socket.close(); if (error) throw error; });`;
  execFileSync("ip", ["netns", "exec", host.namespace, process.execPath, "-e", script, address], {
    stdio: "ignore",
    timeout: commandTimeoutMs,
  });
}

/** Polls `observe` until it returns `expected`; fails after `limitMs` with what it saw last. */
export async function waitForValue<T>(
  what: string,
  observe: () => T,
  expected: T,
  limitMs: number,
): Promise<void> {
  const deadline = Date.now() + limitMs;
  let seen = observe();
  while (seen !== expected) {
    if (Date.now() >= deadline)
      throw new Error(`${what}: expected ${String(expected)}, still ${String(seen)}`);
    await new Promise((resolve) => setTimeout(resolve, pollIntervalMs));
    seen = observe();
  }
}
