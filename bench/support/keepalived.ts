// keepalived (Debian's package) in bench/services.ts: one keepalived per node namespace of the lab, each in
// the foreground as a child of the bench with its own config, pid files and log in a temporary folder (the
// system's keepalived service and /etc/keepalived are never touched). The usual active/passive setup: one
// VRRP instance holding the lab's VIP on eth0, every node starting as BACKUP with `nopreempt` (sticky, as
// Tandem's placement is: a node coming back does not take the VIP back) and priorities 150, 100, 50, far
// enough apart that two backups never time out at the same moment. Two variants: VRRPv2 with keepalived's
// default 1 s adverts, and VRRPv3 with 0.2 s adverts (centisecond intervals need version 3).
//
// keepalived runs as two processes (a parent that watches, a VRRP child holding the state). Stopping the
// parent alone sends the child SIGTERM, which releases the VIP and sends a priority-0 advert: a clean
// hand-over, not a crash. So a kill here is SIGKILL to the whole process group (one kill(2) reaches both),
// checked beforehand to hold every keepalived process of that node.
import { type ChildProcess, spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { LAB_NODE_IDS, type ServicesLab, type VipSystem } from "./services_lab.ts";
import { stopChildren } from "./stop_children.ts";

export interface KeepalivedVariant {
  key: string;
  label: string;
  vrrpVersion: 2 | 3;
  advertIntS: number;
  virtualRouterId: number;
}

export const KEEPALIVED_VARIANTS: readonly KeepalivedVariant[] = [
  {
    key: "keepalived_v2_1s",
    label: "keepalived VRRPv2, 1 s adverts",
    vrrpVersion: 2,
    advertIntS: 1,
    virtualRouterId: 51,
  },
  {
    key: "keepalived_v3_200ms",
    label: "keepalived VRRPv3, 0.2 s adverts",
    vrrpVersion: 3,
    advertIntS: 0.2,
    virtualRouterId: 52,
  },
];

const PRIORITIES = [150, 100, 50] as const;
const INSTANCE = "bench";
const STOP_TIMEOUT_MS = 10_000;
const LOG_LINES_KEPT = 2_000;
/** How long a killed keepalived may take to disappear from /proc (init reaps the orphaned VRRP child). */
const REAP_TIMEOUT_MS = 10_000;

export type KeepalivedSupport = { ok: true; version: string } | { ok: false; missing: string };

export function keepalivedSupport(): KeepalivedSupport {
  const run = spawnSync("keepalived", ["--version"], { encoding: "utf8", timeout: 5_000 });
  if (run.error !== undefined) return { ok: false, missing: "keepalived (`apt-get install keepalived`)" };
  const version = `${run.stdout}${run.stderr}`.split("\n").find((l) => l.startsWith("Keepalived"));
  return { ok: true, version: version?.trim() ?? "keepalived (version unknown)" };
}

export function keepalivedConfigText(options: {
  node: string;
  priority: number;
  vipCidr: string;
  variant: KeepalivedVariant;
}): string {
  const { node, priority, vipCidr, variant } = options;
  return [
    `# bench/services.ts: node ${node}, ${variant.label}`,
    "global_defs {",
    `    router_id bench_${node}`,
    `    vrrp_version ${variant.vrrpVersion}`,
    "}",
    `vrrp_instance ${INSTANCE} {`,
    "    state BACKUP",
    "    nopreempt",
    "    interface eth0",
    `    virtual_router_id ${variant.virtualRouterId}`,
    `    priority ${priority}`,
    `    advert_int ${variant.advertIntS}`,
    "    virtual_ipaddress {",
    `        ${vipCidr} dev eth0`,
    "    }",
    "}",
    "",
  ].join("\n");
}

type VrrpState = "MASTER" | "BACKUP" | "FAULT" | "INIT";

interface StateChange {
  atMs: number;
  state: VrrpState;
}

/** `(bench) Entering MASTER STATE` and its siblings. */
const statePattern = new RegExp(`\\(${INSTANCE}\\) Entering (MASTER|BACKUP|FAULT|INIT) STATE`);

/** pid, parent pid and process group of a process, from /proc; null once it is gone. */
function procStat(pid: number): { ppid: number; pgrp: number; comm: string } | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, "utf8");
    const close = text.lastIndexOf(")");
    const comm = text.slice(text.indexOf("(") + 1, close);
    const fields = text.slice(close + 2).split(" ");
    return { ppid: Number(fields[1]), pgrp: Number(fields[2]), comm };
  } catch {
    return null;
  }
}

/** `pid` and its descendants that are keepalived processes. */
function keepalivedTree(pid: number): number[] {
  const parents = new Map<number, number>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = procStat(Number(entry));
    if (stat?.comm === "keepalived") parents.set(Number(entry), stat.ppid);
  }
  const tree = [pid];
  for (let grew = true; grew; ) {
    grew = false;
    for (const [child, parent] of parents) {
      if (tree.includes(parent) && !tree.includes(child)) {
        tree.push(child);
        grew = true;
      }
    }
  }
  return tree.filter((p) => parents.has(p));
}

export class KeepalivedCluster implements VipSystem {
  readonly key: string;
  readonly label: string;
  readonly settings: Record<string, unknown>;
  private readonly lab: ServicesLab;
  private readonly dir: string;
  private readonly daemons = new Map<string, ChildProcess>();
  private readonly states = new Map<string, StateChange[]>();
  private readonly logs = new Map<string, string[]>();
  /** Each node's keepalived processes (parent and VRRP child), once seen all in one process group. */
  private readonly groups = new Map<string, number[]>();

  constructor(lab: ServicesLab, variant: KeepalivedVariant, version: string) {
    this.lab = lab;
    this.key = variant.key;
    this.label = variant.label;
    this.dir = mkdtempSync(join(tmpdir(), `tandem-bench-keepalived-${variant.vrrpVersion}-`));
    const configs: Record<string, string> = {};
    LAB_NODE_IDS.forEach((id, index) => {
      const text = keepalivedConfigText({
        node: id,
        priority: PRIORITIES[index] as number,
        vipCidr: lab.vipCidr,
        variant,
      });
      writeFileSync(this.configPath(id), text);
      configs[id] = text;
    });
    this.settings = { version, vrrpVersion: variant.vrrpVersion, advertIntS: variant.advertIntS, configs };
  }

  private configPath(id: string): string {
    return join(this.dir, `${id}.conf`);
  }

  private start(id: string): void {
    const args = [
      "--dont-fork",
      "--log-console",
      "--log-detail",
      "--no-syslog",
      "--vrrp",
      "--use-file",
      this.configPath(id),
      "--pid",
      join(this.dir, `${id}.pid`),
      "--vrrp_pid",
      join(this.dir, `${id}-vrrp.pid`),
    ];
    // Its own process group (and session), which its VRRP child shares: one kill(2) ends both.
    const daemon = this.lab.lab.spawn(id, "keepalived", args, {
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
    });
    const changes: StateChange[] = [];
    this.states.set(id, changes);
    const log = this.logs.get(id) ?? [];
    this.logs.set(id, log);
    for (const stream of [daemon.stdout, daemon.stderr]) {
      if (!stream) continue;
      createInterface({ input: stream }).on("line", (line) => {
        const atMs = Date.now();
        log.push(`${new Date(atMs).toISOString().slice(11, 23)} ${id} ${line}`);
        if (log.length > LOG_LINES_KEPT) log.splice(0, log.length - LOG_LINES_KEPT);
        const state = statePattern.exec(line)?.[1] as VrrpState | undefined;
        if (state !== undefined) changes.push({ atMs, state });
      });
    }
    this.daemons.set(id, daemon);
    this.groups.delete(id);
    daemon.once("exit", () => {
      if (this.daemons.get(id) === daemon) this.daemons.delete(id);
    });
  }

  async startAll(): Promise<void> {
    for (const id of LAB_NODE_IDS) this.start(id);
  }

  private state(id: string): VrrpState | null {
    return this.states.get(id)?.at(-1)?.state ?? null;
  }

  /** Every keepalived process of `id` is in the group the kill targets (checked once per start). */
  private oneGroup(id: string): boolean {
    if (this.groups.has(id)) return true;
    const pid = this.daemons.get(id)?.pid;
    if (pid === undefined) return false;
    const tree = keepalivedTree(pid);
    // The parent and its VRRP child, both in the parent's group.
    if (tree.length < 2 || !tree.every((p) => procStat(p)?.pgrp === pid)) return false;
    this.groups.set(id, tree);
    return true;
  }

  async steadyWith(owner: string): Promise<boolean> {
    if (this.daemons.size !== LAB_NODE_IDS.length) return false;
    return LAB_NODE_IDS.every(
      (id) => this.state(id) === (id === owner ? "MASTER" : "BACKUP") && this.oneGroup(id),
    );
  }

  kill(id: string): void {
    const pid = this.daemons.get(id)?.pid;
    if (pid === undefined) throw new Error(`keepalived on ${id} is not running`);
    process.kill(-pid, "SIGKILL");
  }

  /**
   * As after a reboot: the killed processes are gone (the VRRP child, orphaned, is reaped by init, not by
   * us: until then keepalived would take its pid file for a running daemon), and the pid files with them.
   */
  async restart(id: string): Promise<void> {
    const daemon = this.daemons.get(id);
    if (daemon !== undefined && daemon.exitCode === null && daemon.signalCode === null) {
      await new Promise<void>((resolve) => daemon.once("exit", () => resolve()));
    }
    const killed = this.groups.get(id) ?? [];
    const deadline = Date.now() + REAP_TIMEOUT_MS;
    while (killed.some((pid) => procStat(pid)?.comm === "keepalived")) {
      if (Date.now() > deadline) throw new Error(`keepalived ${killed.join(", ")} on ${id} still exist`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    for (const file of [`${id}.pid`, `${id}-vrrp.pid`]) rmSync(join(this.dir, file), { force: true });
    this.start(id);
  }

  async stopAll(): Promise<void> {
    // The whole process group: the parent and its VRRP child.
    await stopChildren([...this.daemons.values()], STOP_TIMEOUT_MS, (pid) => {
      try {
        process.kill(-pid, "SIGKILL");
      } catch {
        // Already gone.
      }
    });
    rmSync(this.dir, { recursive: true, force: true });
  }

  phases(
    victim: string,
    killAtMs: number,
    newOwner: string,
  ): Record<string, number | string | boolean | null> {
    const master = (this.states.get(newOwner) ?? []).find((c) => c.state === "MASTER" && c.atMs >= killAtMs);
    const others = LAB_NODE_IDS.filter((id) => id !== victim && id !== newOwner);
    const otherMaster = others.some((id) =>
      (this.states.get(id) ?? []).some((c) => c.state === "MASTER" && c.atMs >= killAtMs),
    );
    return {
      /** When the bench read the new master's "Entering MASTER STATE" line (its own log has no ms). */
      masterLoggedMs: master === undefined ? null : master.atMs - killAtMs,
      /** A third node also entered MASTER after the kill (two masters, at least for a moment). */
      secondMaster: otherMaster,
      newOwnerPriority: PRIORITIES[LAB_NODE_IDS.indexOf(newOwner as (typeof LAB_NODE_IDS)[number])] ?? null,
    };
  }

  dumpLogs(): string {
    return [...this.logs.values()].flatMap((lines) => lines.slice(-30)).join("\n");
  }
}
