// Tandem in bench/services.ts: three agents of the compiled build (dist/tandem.js, with the agent's V8 flags
// and malloc setting, as `tandem dev` starts them), one per node namespace of the lab, with configs as `tandem
// dev` writes them (mTLS) moved onto the lab's addresses, plus one service: a `vip` driver holding the lab's
// VIP on eth0. Every config passes the real `tandem config check` before an agent starts. Statuses and the
// services table are read through a relay inside each namespace (the APIs listen on loopback there).
import { type ChildProcess, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse, stringify } from "yaml";
import { agentEnv, agentNodeFlags } from "../../src/cli/agent_flags.ts";
import { type DevNode, formatLogLine, prepareDevCluster } from "../../src/cli/dev_cluster.ts";
import { loadConfig, type Timings, TimingsPreset } from "../../src/config/index.ts";
import { collectLines } from "../../test/support/child_lines.ts";
import { CLI_ENTRY, type NodeStatus } from "../../test/support/cluster_harness.ts";
import { setPriority } from "../../test/support/dev_config_edit.ts";
import { NetnsHttpRelay } from "../../test/support/netns.ts";
import { placeInNamespaces } from "../../test/support/netns_cluster.ts";
import { type LogRecord, parseLogRecords, steadyLeadership } from "./bench_cluster.ts";
import { LAB_NODE_IDS, type ServicesLab, type VipSystem } from "./services_lab.ts";
import { stopChildren } from "./stop_children.ts";

export const SERVICE_NAME = "web";
/** Ports inside the namespaces (each has its own), so nothing on the machine can collide with them. */
const BASE_PORT = 7400;
const STATUS_TIMEOUT_MS = 1_000;
const STOP_TIMEOUT_MS = 15_000;
const CHECK_TIMEOUT_MS = 30_000;
/** Owner-leads runs: at most this many kills of a leader to make the owner lead before a trial. */
const ARRANGE_KILLS_MAX = 4;
const ELECTION_TIMEOUT_MS = 10_000;
/** Owner-a-follower runs: this node leads (a higher priority) and is never the owner, so never killed. */
const FOLLOWER_MODE_LEADER = "n3";
const LEADER_PRIORITY = 200;

export type BenchedPreset = typeof TimingsPreset.Lan | typeof TimingsPreset.Fast;

interface ServicesJson {
  term: number;
  services: Array<{ name: string; owner: string | null; state: string | null; fence: string | null }>;
}

/** `tandem config check -c FILE` with the compiled CLI: exit code and what it printed. */
export function configCheck(configPath: string): { ok: boolean; output: string } {
  const run = spawnSync(process.execPath, [CLI_ENTRY.build, "config", "check", "-c", configPath], {
    encoding: "utf8",
    timeout: CHECK_TIMEOUT_MS,
  });
  return { ok: run.status === 0, output: `${run.stdout ?? ""}${run.stderr ?? ""}`.trim() };
}

function editYaml(path: string, edit: (config: Record<string, unknown>) => void): void {
  const config = parse(readFileSync(path, "utf8")) as Record<string, unknown>;
  edit(config);
  writeFileSync(path, stringify(config));
}

export class TandemVipCluster implements VipSystem {
  readonly key: string;
  readonly label: string;
  readonly settings: Record<string, unknown>;
  private readonly lab: ServicesLab;
  private readonly dir: string;
  private readonly nodes: readonly DevNode[];
  private readonly agents = new Map<string, ChildProcess>();
  private readonly logs = new Map<string, string[]>();
  private readonly relays = new Map<string, NetnsHttpRelay>();
  /** Log lines per node at the moment of the last kill. */
  private killOffsets = new Map<string, number>();
  private lastLeader: { leaderId: string; term: number } | null = null;
  /** Before each trial, make the owner lead too (see arrange). */
  private readonly ownerLeads: boolean;

  private constructor(
    lab: ServicesLab,
    dir: string,
    nodes: readonly DevNode[],
    preset: BenchedPreset,
    failoverAfterMs: number,
    timings: Timings,
    floorCheck: string | null,
    ownerLeads: boolean,
  ) {
    this.lab = lab;
    this.dir = dir;
    this.nodes = nodes;
    this.ownerLeads = ownerLeads;
    this.key = `tandem_${preset}${ownerLeads ? "_owner_leads" : ""}`;
    this.label = `Tandem ${preset}, owner ${ownerLeads ? "the leader" : "a follower"}, failover_after_ms ${failoverAfterMs}`;
    this.settings = {
      build: "dist/tandem.js",
      security: "mtls",
      preset,
      ownerLeads,
      priorities: ownerLeads ? "all 100" : `${FOLLOWER_MODE_LEADER} ${LEADER_PRIORITY}, others 100`,
      failoverAfterMs,
      timings,
      service: { name: SERVICE_NAME, drivers: [{ type: "vip", address: lab.vipCidr, interface: "eth0" }] },
      ...(floorCheck === null ? {} : { failoverAfterMsFloorCheck: floorCheck }),
    };
  }

  /**
   * Writes the configs and checks them with `tandem config check`. `failoverAfterMs` null: the lowest the
   * check allows for the preset (its down_after_ms), and the check is shown to refuse one tick less.
   * `ownerLeads` false: n3 gets a higher priority, so it leads (a leader hands over to a healthy node of
   * higher priority) and, never killed, keeps leading, while placement (the fewest services, then the lowest
   * id) keeps the service on n1 or n2: every kill hits a follower. True: equal priorities, and `arrange`
   * makes the owner lead before each trial.
   */
  static async create(
    lab: ServicesLab,
    preset: BenchedPreset,
    failoverAfterMs: number | null,
    ownerLeads = false,
  ): Promise<TandemVipCluster> {
    const dir = mkdtempSync(join(tmpdir(), `tandem-bench-services-${preset}-`));
    const nodes = await prepareDevCluster({
      nodes: LAB_NODE_IDS.length,
      dir,
      basePort: BASE_PORT,
      security: "mtls",
      witness: false,
    });
    placeInNamespaces(lab.lab, nodes);
    const first = nodes[0] as DevNode;
    const write = (path: string, afterMs: number) =>
      editYaml(path, (config) => {
        if (preset !== TimingsPreset.Lan) config.timings = { preset };
        config.services = [
          {
            name: SERVICE_NAME,
            description: "bench/services.ts: the lab's virtual IP",
            failover_after_ms: afterMs,
            drivers: [{ type: "vip", address: lab.vipCidr, interface: "eth0" }],
          },
        ];
      });
    // The preset's timings as the real loader reads them (before the service, which needs them to check).
    write(first.configPath, 60_000);
    const loaded = loadConfig(first.configPath);
    if (!loaded.ok) throw new Error(loaded.error.format());
    const timings = loaded.value.timings;
    let floorCheck: string | null = null;
    let afterMs = failoverAfterMs;
    if (afterMs === null) {
      afterMs = timings.downAfterMs;
      const below = join(dir, "floor-check.yml");
      writeFileSync(below, readFileSync(first.configPath, "utf8"));
      write(below, afterMs - timings.tickMs);
      const refused = configCheck(below);
      if (refused.ok)
        throw new Error(`tandem config check accepted failover_after_ms ${afterMs - timings.tickMs}`);
      floorCheck = `${afterMs - timings.tickMs} refused: ${refused.output.split("\n")[0] ?? ""}`;
    }
    for (const node of nodes) write(node.configPath, afterMs);
    if (!ownerLeads) {
      setPriority(
        nodes.map((n) => n.configPath),
        FOLLOWER_MODE_LEADER,
        LEADER_PRIORITY,
      );
    }
    for (const node of nodes) {
      const check = configCheck(node.configPath);
      if (!check.ok) throw new Error(`tandem config check ${node.configPath}: ${check.output}`);
    }
    return new TandemVipCluster(lab, dir, nodes, preset, afterMs, timings, floorCheck, ownerLeads);
  }

  private node(id: string): DevNode {
    const node = this.nodes.find((n) => n.id === id);
    if (node === undefined) throw new Error(`no node ${id}`);
    return node;
  }

  private start(id: string): void {
    const args = [...agentNodeFlags(), CLI_ENTRY.build, "agent", "--config", this.node(id).configPath];
    const agent = this.lab.lab.spawn(id, process.execPath, args, {
      stdio: ["ignore", "pipe", "pipe"],
      env: agentEnv(),
      // Its own process group: a Ctrl-C reaches only the bench, which then kills every agent by pid.
      detached: true,
    });
    const lines = this.logs.get(id) ?? [];
    this.logs.set(id, lines);
    collectLines(agent, lines);
    this.agents.set(id, agent);
    agent.once("exit", () => {
      if (this.agents.get(id) === agent) this.agents.delete(id);
    });
    if (!this.relays.has(id)) this.relays.set(id, new NetnsHttpRelay(this.lab.lab, id));
  }

  async startAll(): Promise<void> {
    for (const id of LAB_NODE_IDS) this.start(id);
  }

  private get(id: string, path: string): Promise<unknown> {
    const relay = this.relays.get(id);
    if (relay === undefined) return Promise.resolve(null);
    return relay.getJson(`${this.node(id).apiUrl}${path}`, STATUS_TIMEOUT_MS);
  }

  async steadyWith(owner: string): Promise<boolean> {
    if (this.agents.size !== LAB_NODE_IDS.length) return false;
    const answers = await Promise.all(
      LAB_NODE_IDS.map(
        async (id): Promise<[string, NodeStatus | null]> => [
          id,
          (await this.get(id, "/api/v1/status")) as NodeStatus | null,
        ],
      ),
    );
    const statuses = new Map(answers.filter((a): a is [string, NodeStatus] => a[1] !== null));
    const leadership = steadyLeadership(statuses, LAB_NODE_IDS);
    if (leadership === undefined) return false;
    const table = (await this.get(leadership.leaderId, "/api/v1/services")) as ServicesJson | null;
    const web = table?.services.find((s) => s.name === SERVICE_NAME);
    if (web?.owner !== owner || web.state !== "running") return false;
    this.lastLeader = leadership;
    return true;
  }

  /**
   * Brings about the case this run measures before a trial. The owner the leader: kill -9 the leader (not
   * the owner: a leader change leaves a running service where it is) until the owner wins the election;
   * ranks (priority, then id) decide who campaigns first, and placement takes the lowest id too, so after the
   * first trial this rarely has anything to do. The owner a follower: only needed if the service started on
   * n3, the leader; that owner is stopped with SIGTERM (it hands the service over at once) and started again.
   * Bounded, not guaranteed: each trial records whether the owner led.
   */
  async arrange(
    owner: string,
    steady: () => Promise<string>,
  ): Promise<{ owner: string; setupKills: number }> {
    let current = owner;
    let setupKills = 0;
    while (setupKills < ARRANGE_KILLS_MAX) {
      const leader = this.lastLeader?.leaderId;
      if (leader === undefined || (leader === current) === this.ownerLeads) break;
      const target = this.ownerLeads ? leader : current;
      const pid = this.agents.get(target)?.pid;
      if (pid === undefined) break;
      process.kill(pid, this.ownerLeads ? "SIGKILL" : "SIGTERM");
      setupKills += 1;
      if (this.ownerLeads) await this.waitForLeaderAmong(LAB_NODE_IDS.filter((id) => id !== target));
      await this.restart(target);
      current = await steady();
    }
    return { owner: current, setupKills };
  }

  /** Until `ids` agree on a leader among them (bounded; a failure shows in the next steady wait). */
  private async waitForLeaderAmong(ids: readonly string[]): Promise<void> {
    const deadline = Date.now() + ELECTION_TIMEOUT_MS;
    while (Date.now() < deadline) {
      const statuses = await Promise.all(ids.map((id) => this.get(id, "/api/v1/status")));
      const leaders = statuses.map((s) => (s as NodeStatus | null)?.leaderId ?? null);
      const first = leaders[0];
      if (first != null && ids.includes(first) && leaders.every((l) => l === first)) return;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  kill(id: string): void {
    const agent = this.agents.get(id);
    if (agent?.pid === undefined) throw new Error(`${id} is not running`);
    this.killOffsets = new Map(LAB_NODE_IDS.map((n) => [n, this.logs.get(n)?.length ?? 0]));
    process.kill(agent.pid, "SIGKILL");
  }

  async restart(id: string): Promise<void> {
    const agent = this.agents.get(id);
    if (agent !== undefined && agent.exitCode === null && agent.signalCode === null) {
      await new Promise<void>((resolve) => agent.once("exit", () => resolve()));
    }
    this.start(id);
  }

  async stopAll(): Promise<void> {
    await stopChildren([...this.agents.values()], STOP_TIMEOUT_MS, (pid) => process.kill(pid, "SIGKILL"));
    rmSync(this.dir, { recursive: true, force: true });
  }

  phases(
    victim: string,
    killAtMs: number,
    newOwner: string,
  ): Record<string, number | string | boolean | null> {
    const since = (id: string): LogRecord[] =>
      parseLogRecords((this.logs.get(id) ?? []).slice(this.killOffsets.get(id) ?? 0)).filter(
        (r) => r.time >= killAtMs,
      );
    const survivors = LAB_NODE_IDS.filter((id) => id !== victim);
    const first = (records: LogRecord[], match: (r: LogRecord) => boolean) => {
      const times = records.filter(match).map((r) => r.time - killAtMs);
      return times.length > 0 ? Math.min(...times) : null;
    };
    const ofSurvivors = survivors.flatMap(since);
    const ofOwner = since(newOwner);
    return {
      victimLed: this.lastLeader?.leaderId === victim,
      leaderBefore: this.lastLeader?.leaderId ?? null,
      /** A new leader's "became leader" (only when the owner was the leader). */
      leaderElectedMs: first(ofSurvivors, (r) => r.msg === "became leader"),
      /** The leader's placement decision moving the service off the victim. */
      placedMs: first(ofSurvivors, (r) => r.msg.startsWith("placement:") && r.from === victim),
      startingMs: first(ofOwner, (r) => r.msg === "service starting" && r.service === SERVICE_NAME),
      /** `ip addr replace` done on the new owner. */
      addedMs: first(ofOwner, (r) => r.msg === "add ran"),
      /** arping done (its 3 announcements, 100 ms apart). */
      announcedMs: first(ofOwner, (r) => r.msg === "announce ran"),
      runningMs: first(ofOwner, (r) => r.msg === "service running" && r.service === SERVICE_NAME),
    };
  }

  dumpLogs(): string {
    return [...this.logs.entries()]
      .flatMap(([id, lines]) => lines.slice(-30).map((line) => formatLogLine(line, id)))
      .join("\n");
  }
}
