// The vip driver: the service's owner holds a virtual IP address. start adds it to the interface and
// announces it, so neighbours that cached the previous owner's MAC address switch now rather than when that
// entry expires (seconds for a Linux host that keeps sending, hours for some routers); stop removes it;
// status reads it back from `ip -j addr`. Every command goes through runCommand (argv, no shell, killed after timeout_ms);
// a failure is logged with its stderr and where the tool comes from.
//
// How it announces, and why that way:
// - IPv4: gratuitous ARP requests (sender and target address both the VIP) sent by `arping` from Debian's
//   arping package (Thomas Habets' arping; iputils-arping takes other flags).
// - IPv6: unsolicited neighbour advertisements (override flag set, target link-layer address included, to
//   all nodes) sent by `ndptool` from Debian's libndp-tools. Not the kernel's ndisc_notify sysctl: it sends a
//   single advertisement, only after duplicate address detection (the address is unusable for that second)
//   and never for an address already present, so a repeated start could not announce again. Not `ndsend`:
//   Debian's ndisc6 package does not ship it.
// IPv6 addresses are added with `nodad`, as keepalived adds its VIPs: the grants, not duplicate address
// detection, keep two nodes from holding the address, and a detected duplicate would leave it unusable.
import { setTimeout as delay } from "node:timers/promises";
import type { Logger } from "pino";
import { z } from "zod";
import { canonicalAddress, type VipDriverConfig, vipAnnounceIntervalMs } from "../config/index.ts";
import { type CommandOutcome, commandSucceeded, runCommand } from "../shell/index.ts";
import { type Driver, type DriverContext, type DriverStatus, driverEnv } from "./exec_driver.ts";

export interface VipDriverOptions {
  /** Put before every command, e.g. ["ip", "netns", "exec", "blue"] to act inside a network namespace. */
  commandPrefix?: readonly string[];
}

/** For the log line of a failed command: where its tool comes from and what it needs. */
const toolHints: Record<string, string> = {
  ip: "needs Debian's iproute2 package, and root or CAP_NET_ADMIN to change addresses",
  arping:
    "needs Debian's arping package (Thomas Habets' arping; iputils-arping takes other flags), and root or CAP_NET_RAW",
  ndptool: "needs Debian's libndp-tools package, and root or CAP_NET_RAW",
};

/** What this driver reads of `ip -j addr show`; addresses the `to` filter left out are printed as `{}`. */
const ipAddrJson = z.array(
  z.object({ addr_info: z.array(z.object({ family: z.string().optional(), local: z.string().optional() })) }),
);

/** Habets' arping ends with "N packets transmitted, M packets received, ..." unless it failed. */
const arpingSentPattern = /^(\d+) packets transmitted/m;

export class VipDriver implements Driver {
  readonly kind = "vip";
  private readonly config: VipDriverConfig;
  private readonly logger: Logger;
  private readonly commandPrefix: readonly string[];
  /** As `ip addr` takes it. */
  private readonly cidr: string;

  constructor(config: VipDriverConfig, logger: Logger, options: VipDriverOptions = {}) {
    this.config = config;
    this.logger = logger;
    this.commandPrefix = options.commandPrefix ?? [];
    this.cidr = `${config.address}/${config.prefixLength}`;
  }

  async start(context: DriverContext): Promise<boolean> {
    // `replace` adds the address, or leaves it as it is when it is already there.
    const nodad = this.config.family === 6 ? ["nodad"] : [];
    const add = ["ip", "addr", "replace", this.cidr, "dev", this.config.interface, ...nodad];
    if ((await this.run("add", add, context)) === null) return false;
    if (await this.announce(context)) return true;
    // The runner does not stop a driver whose start failed, and the service may move on: remove the address.
    await this.stop(context);
    return false;
  }

  async stop(context: DriverContext): Promise<boolean> {
    const present = await this.present(context);
    if (present === null) return false;
    if (!present) return true;
    const remove = ["ip", "addr", "del", this.cidr, "dev", this.config.interface];
    return (await this.run("remove", remove, context)) !== null;
  }

  async status(context: DriverContext): Promise<DriverStatus> {
    const present = await this.present(context);
    if (present === null) return "unknown";
    return present ? "running" : "stopped";
  }

  /** Whether the address is on the interface, with any prefix length; null when `ip` could not tell. */
  private async present(context: DriverContext): Promise<boolean | null> {
    const { address, family, interface: iface } = this.config;
    // `to` the address alone keeps the answer short on an interface with many addresses (output is capped).
    const host = `${address}/${family === 4 ? 32 : 128}`;
    const show = ["ip", "-j", `-${family}`, "addr", "show", "dev", iface, "to", host];
    const outcome = await this.run("check", show, context, { successLevel: "debug" });
    if (outcome === null) return null;
    const links = ipAddrJson.safeParse(parseJson(outcome.stdout));
    if (!links.success) {
      this.logger.warn({ step: "check", stdout: outcome.stdout }, "check: unexpected output from ip -j addr");
      return null;
    }
    const inet = family === 4 ? "inet" : "inet6";
    return links.data.some((link) =>
      link.addr_info.some(
        (a) => a.family === inet && a.local !== undefined && canonicalAddress(a.local, family) === address,
      ),
    );
  }

  private async announce(context: DriverContext): Promise<boolean> {
    const { address, announce, family, interface: iface } = this.config;
    if (announce === 0) return true;
    if (family === 4) {
      // -S: the sender address is the VIP, which makes it gratuitous; arping would send the interface's own.
      const spacing = ["-c", String(announce), "-W", String(vipAnnounceIntervalMs / 1000)];
      const arping = ["arping", "-U", ...spacing, "-i", iface, "-S", address, address];
      // It exits 1 when nothing answered, and nothing answers an unsolicited ARP: its summary tells success.
      const sentAll = (outcome: CommandOutcome) =>
        Number(arpingSentPattern.exec(outcome.stdout)?.[1]) === announce;
      return (await this.run("announce", arping, context, { done: sentAll })) !== null;
    }
    const ndptool = ["ndptool", "-t", "na", "-U", "-i", iface, "-T", address, "send"];
    for (let sent = 0; sent < announce; sent++) {
      if (sent > 0) await delay(vipAnnounceIntervalMs);
      if ((await this.run("announce", ndptool, context)) === null) return false;
    }
    return true;
  }

  /** Runs one command: its outcome when it did its job (`done`), else null with the failure logged. */
  private async run(
    step: string,
    argv: readonly string[],
    context: DriverContext,
    options: { done?: (outcome: CommandOutcome) => boolean; successLevel?: "info" | "debug" } = {},
  ): Promise<CommandOutcome | null> {
    const { done = commandSucceeded, successLevel = "info" } = options;
    const outcome = await runCommand([...this.commandPrefix, ...argv], {
      env: driverEnv(context),
      timeoutMs: this.config.timeoutMs,
    });
    const fields = { step, fence: context.fence, argv, ...outcome };
    if (done(outcome)) {
      this.logger[successLevel](fields, `${step} ran`);
      return outcome;
    }
    const hint = toolHints[argv[0] ?? ""];
    this.logger.warn({ ...fields, hint }, outcome.timedOut ? `${step} timed out` : `${step} failed`);
    return null;
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
