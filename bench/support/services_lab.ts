// The network of bench/services.ts: three node namespaces and a neighbour on one bridge (test/support/netns.ts),
// a virtual IP from the lab's subnet, and what watches it:
// - a UDP echo server on every node, bound to the VIP (the namespaces allow binding an address not yet held),
//   so it answers only where the VIP is, with its node's name;
// - a prober on the neighbour that sends a datagram to the VIP every PROBE_INTERVAL_MS and records who
//   answered, when;
// - `ip -ts monitor address link` in every node namespace: each add and removal of the VIP on eth0, and each
//   time eth0 goes down or up, timestamped by `ip` as the kernel reports it. Two owners at once is read from
//   this stream: two nodes holding the VIP while both their links are up.
// A crashed node is one whose daemon got SIGKILL and whose link the bench then takes down (`ip link set eth0
// down` in its namespace): what it left behind, the VIP included, serves nobody. Bringing it back is what a
// reboot does: its interface comes up without the VIP, then its daemon starts.
import { type ChildProcess, execFileSync } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { NetnsLab } from "../../test/support/netns.ts";
import { addressCount, ipIn } from "../../test/support/netns_vip.ts";

export const LAB_NODE_IDS = ["n1", "n2", "n3"] as const;
export const NEIGHBOUR = "client";
export const PROBE_INTERVAL_MS = 10;
const ECHO_PORT = 7999;
const VIP_HOST_NUMBER = 100;
const PREFIX_LENGTH = 24;
const READY_TIMEOUT_MS = 10_000;
/** Probe answers kept in memory; older ones are dropped (a trial needs the last few seconds). */
const REPLY_HORIZON_MS = 120_000;
/** Added to and removed from each node's loopback to see that its address monitor listens. */
const MONITOR_MARKER = "127.0.0.99/32";
const udpScript = fileURLToPath(new URL("./services_udp.ts", import.meta.url));

export interface ProbeReply {
  seq: number;
  sentAtMs: number;
  receivedAtMs: number;
  /** The node whose echo server answered. */
  node: string;
  /** The answer's source address: the VIP, or something is wrong. */
  source: string;
}

export type HolderEventKind = "add" | "remove" | "link-up" | "link-down";

/** One line of a node's address monitor: `atMs` is `ip`'s timestamp (epoch ms, fractional). */
export interface HolderEvent {
  atMs: number;
  node: string;
  kind: HolderEventKind;
}

/** An interval during which two or more nodes held the VIP with their links up. */
export interface Overlap {
  fromMs: number;
  toMs: number | null;
  nodes: string[];
}

/** Tandem or keepalived, run by the bench in the lab's node namespaces. */
export interface VipSystem {
  /** Names its entry in the results. */
  readonly key: string;
  readonly label: string;
  /** What it ran with, for the results. */
  readonly settings: Record<string, unknown>;
  startAll(): Promise<void>;
  /** Whether the system itself says `owner` runs the VIP and every node runs and agrees. */
  steadyWith(owner: string): Promise<boolean>;
  /** SIGKILL to the node's daemon, sent before this returns. */
  kill(id: string): void;
  /** Starts the node's daemon again once the killed one has exited. */
  restart(id: string): Promise<void>;
  /** Stops every daemon the way an operator would (SIGTERM), bounded; kills what does not exit. */
  stopAll(): Promise<void>;
  /**
   * Before a trial, optionally: bring about the case this run measures (e.g. the owner also leading), using
   * `steady` to wait for a steady system after each step; returns the owner then, and what it took.
   */
  arrange?(owner: string, steady: () => Promise<string>): Promise<{ owner: string; setupKills: number }>;
  /** What the daemons logged about the failover after the kill: ms after it, or facts. */
  phases(
    victim: string,
    killAtMs: number,
    newOwner: string,
  ): Record<string, number | string | boolean | null>;
  /** Recent log lines of every node, for an error message. */
  dumpLogs(): string;
}

/** `[2026-12-07T02:20:06.435985]` (UTC, as TZ=UTC makes `ip -ts` print it) → epoch ms with the fraction. */
export function parseMonitorTime(stamp: string): number {
  const whole = Date.parse(`${stamp.slice(0, 23)}Z`);
  const rest = stamp.slice(23);
  return whole + (rest === "" ? 0 : Number(`0.${rest}`));
}

const monitorLine = /^\[([0-9T:.-]+)\] (Deleted )?(.*)$/;
const addressLine = /^\d+: (\S+)\s+inet (\d+\.\d+\.\d+\.\d+)\//;
const linkLine = /^\d+: ([^:@\s]+)(?:@\S+)?: <([^>]*)>/;

/** What one monitor line says about `vip` on eth0, or null. */
export function parseMonitorLine(
  line: string,
  vip: string,
): { atMs: number; kind: HolderEventKind | "link"; up?: boolean } | null {
  const match = monitorLine.exec(line);
  if (!match) return null;
  const atMs = parseMonitorTime(match[1] as string);
  const deleted = match[2] !== undefined;
  const rest = match[3] as string;
  const address = addressLine.exec(rest);
  if (address) {
    if (address[1] !== "eth0" || address[2] !== vip) return null;
    return { atMs, kind: deleted ? "remove" : "add" };
  }
  const link = linkLine.exec(rest);
  if (link && link[1] === "eth0" && !deleted) {
    return { atMs, kind: "link", up: (link[2] as string).split(",").includes("UP") };
  }
  return null;
}

/** Sweeps the events in time order: every interval in which two or more nodes held the VIP, links up. */
export function findOverlaps(events: readonly HolderEvent[]): Overlap[] {
  const holds = new Map<string, boolean>();
  const up = new Map<string, boolean>();
  const overlaps: Overlap[] = [];
  let open: Overlap | null = null;
  const sorted = events.map((e, i) => ({ e, i })).sort((a, b) => a.e.atMs - b.e.atMs || a.i - b.i);
  for (const { e } of sorted) {
    if (e.kind === "add") holds.set(e.node, true);
    else if (e.kind === "remove") holds.set(e.node, false);
    else up.set(e.node, e.kind === "link-up");
    const owners = [...holds].filter(([node, held]) => held && up.get(node) !== false).map(([node]) => node);
    if (owners.length >= 2) {
      if (open === null) {
        open = { fromMs: e.atMs, toMs: null, nodes: owners };
        overlaps.push(open);
      } else for (const node of owners) if (!open.nodes.includes(node)) open.nodes.push(node);
    } else if (open !== null) {
      open.toMs = e.atMs;
      open = null;
    }
  }
  return overlaps;
}

function lines(child: ChildProcess, onLine: (line: string) => void): void {
  if (child.stdout) createInterface({ input: child.stdout }).on("line", onLine);
}

export class ServicesLab {
  readonly lab: NetnsLab;
  readonly vip: string;
  readonly vipCidr: string;
  private readonly events: HolderEvent[] = [];
  private readonly holding = new Map<string, boolean>();
  private readonly linkUp = new Map<string, boolean>();
  private readonly monitorSeen = new Set<string>();
  private replies: ProbeReply[] = [];
  private prober: ChildProcess | null = null;
  /** The address monitors and echo servers: if one died, the record has a hole. */
  private readonly watchers: ChildProcess[] = [];
  private readonly stderr: string[] = [];

  private constructor(lab: NetnsLab) {
    this.lab = lab;
    const subnet = lab.host(LAB_NODE_IDS[0]).address.replace(/\.\d+$/, "");
    this.vip = `${subnet}.${VIP_HOST_NUMBER}`;
    this.vipCidr = `${this.vip}/${PREFIX_LENGTH}`;
  }

  /** The lab with its monitors, echo servers and prober running. */
  static async create(): Promise<ServicesLab> {
    const lab = NetnsLab.create([...LAB_NODE_IDS, NEIGHBOUR]);
    const services = new ServicesLab(lab);
    try {
      await services.startWatching();
    } catch (error) {
      await lab.dispose();
      throw error;
    }
    return services;
  }

  private async startWatching(): Promise<void> {
    for (const id of LAB_NODE_IDS) {
      const namespace = this.lab.host(id).namespace;
      execFileSync("ip", ["netns", "exec", namespace, "sysctl", "-qw", "net.ipv4.ip_nonlocal_bind=1"], {
        stdio: "ignore",
        timeout: 5_000,
      });
      const monitor = this.lab.spawn(id, "ip", ["-ts", "monitor", "address", "link"], {
        stdio: ["ignore", "pipe", "ignore"],
        env: { ...process.env, TZ: "UTC" },
      });
      lines(monitor, (line) => this.onMonitorLine(id, line));
      this.watchers.push(monitor);
    }
    // A marker address on loopback: once each monitor has printed it, each is listening.
    for (const id of LAB_NODE_IDS) ipIn(this.lab.host(id), ["addr", "add", MONITOR_MARKER, "dev", "lo"]);
    await this.until("every address monitor listening", () => this.monitorSeen.size === LAB_NODE_IDS.length);
    for (const id of LAB_NODE_IDS) ipIn(this.lab.host(id), ["addr", "del", MONITOR_MARKER, "dev", "lo"]);
    const nowMs = Date.now();
    for (const id of LAB_NODE_IDS) {
      const held = addressCount(this.lab.host(id), this.vip) > 0;
      this.holding.set(id, held);
      this.linkUp.set(id, true);
      this.events.push({ atMs: nowMs, node: id, kind: "link-up" });
      if (held) this.events.push({ atMs: nowMs, node: id, kind: "add" });
    }

    const listening = new Set<string>();
    for (const id of LAB_NODE_IDS) {
      const echo = this.lab.spawn(
        id,
        process.execPath,
        [udpScript, "echo", id, this.vip, String(ECHO_PORT)],
        {
          stdio: ["pipe", "pipe", "pipe"],
        },
      );
      lines(echo, (line) => {
        if (line === "listening") listening.add(id);
      });
      echo.stderr?.on("data", (chunk: Buffer) => this.stderr.push(chunk.toString()));
      this.watchers.push(echo);
    }
    await this.until("every echo server listening", () => listening.size === LAB_NODE_IDS.length);

    const probeArgs = [udpScript, "probe", this.vip, String(ECHO_PORT), String(PROBE_INTERVAL_MS)];
    this.prober = this.lab.spawn(NEIGHBOUR, process.execPath, probeArgs, { stdio: ["pipe", "pipe", "pipe"] });
    this.prober.stderr?.on("data", (chunk: Buffer) => this.stderr.push(chunk.toString()));
    lines(this.prober, (line) => this.onProbeLine(line));
  }

  private async until(what: string, done: () => boolean): Promise<void> {
    const deadline = Date.now() + READY_TIMEOUT_MS;
    while (!done()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${this.stderr.join("")}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  private onMonitorLine(node: string, line: string): void {
    if (line.includes(` inet ${MONITOR_MARKER}`)) this.monitorSeen.add(node);
    const parsed = parseMonitorLine(line, this.vip);
    if (parsed === null) return;
    if (parsed.kind === "link") {
      const up = parsed.up === true;
      if (this.linkUp.get(node) === up) return;
      this.linkUp.set(node, up);
      this.events.push({ atMs: parsed.atMs, node, kind: up ? "link-up" : "link-down" });
      return;
    }
    // `ip addr replace` of an address already there is reported as another add: keep state changes only.
    const held = parsed.kind === "add";
    if (this.holding.get(node) === held) return;
    this.holding.set(node, held);
    this.events.push({ atMs: parsed.atMs, node, kind: parsed.kind });
  }

  private onProbeLine(line: string): void {
    const [seq, sentAtMs, receivedAtMs, node, source] = line.split(" ");
    const reply = {
      seq: Number(seq),
      sentAtMs: Number(sentAtMs),
      receivedAtMs: Number(receivedAtMs),
      node: node ?? "",
      source: source ?? "",
    };
    if (!Number.isFinite(reply.receivedAtMs)) return;
    this.replies.push(reply);
    if (this.replies.length % 1_000 === 0) {
      const horizon = reply.receivedAtMs - REPLY_HORIZON_MS;
      this.replies = this.replies.filter((r) => r.receivedAtMs >= horizon);
    }
  }

  /** Probe answers received at or after `sinceMs`, oldest first. */
  repliesSince(sinceMs: number): ProbeReply[] {
    const out: ProbeReply[] = [];
    for (let i = this.replies.length - 1; i >= 0; i--) {
      const reply = this.replies[i] as ProbeReply;
      if (reply.receivedAtMs < sinceMs) break;
      out.push(reply);
    }
    return out.reverse();
  }

  /** The last answer received before `beforeMs` from `node`, if within the kept horizon. */
  lastReplyFrom(node: string, beforeMs: number): ProbeReply | null {
    for (let i = this.replies.length - 1; i >= 0; i--) {
      const reply = this.replies[i] as ProbeReply;
      if (reply.receivedAtMs < beforeMs && reply.node === node) return reply;
    }
    return null;
  }

  /** The nodes holding the VIP with their link up, as the monitors last reported. */
  owners(): string[] {
    return LAB_NODE_IDS.filter((id) => this.holding.get(id) === true && this.linkUp.get(id) !== false);
  }

  /** The same read directly from every node's interface (`ip -j addr`): a cross-check of the monitors. */
  sampledHolders(): string[] {
    return LAB_NODE_IDS.filter((id) => addressCount(this.lab.host(id), this.vip) > 0);
  }

  holderEvents(): readonly HolderEvent[] {
    return this.events;
  }

  /** The crash's second half: the node's link goes down, so what it left running answers nobody. */
  cutLink(id: string): void {
    ipIn(this.lab.host(id), ["link", "set", "eth0", "down"]);
  }

  /** A reboot's network: the VIP a crash left on the interface is gone, then the link comes up. */
  rebootNetwork(id: string): { leftoverRemoved: boolean } {
    const host = this.lab.host(id);
    const leftover = addressCount(host, this.vip) > 0;
    if (leftover) ipIn(host, ["addr", "del", this.vipCidr, "dev", "eth0"]);
    ipIn(host, ["link", "set", "eth0", "up"]);
    return { leftoverRemoved: leftover };
  }

  /** Removes the VIP wherever it is (between systems); returns where it was. */
  clearVip(): string[] {
    const held = this.sampledHolders();
    for (const id of held) ipIn(this.lab.host(id), ["addr", "del", this.vipCidr, "dev", "eth0"]);
    return held;
  }

  /** Whether the prober, every address monitor and every echo server still run. */
  watching(): boolean {
    const alive = (child: ChildProcess | null) =>
      child !== null && child.exitCode === null && child.signalCode === null;
    return alive(this.prober) && this.watchers.every(alive);
  }

  /** Kills everything the lab started (agents and keepalived included) and deletes the namespaces. */
  dispose(): Promise<void> {
    return this.lab.dispose();
  }
}
