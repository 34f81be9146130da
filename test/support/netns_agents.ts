// Agents of a dev cluster run one per NetnsLab host, each started on its own (so a test decides who runs),
// with statuses read through a relay inside each namespace and their log lines kept for assertions.
import type { ChildProcess } from "node:child_process";
import { type DevNode, formatLogLine } from "../../src/cli/dev_cluster.ts";
import { collectLines } from "./child_lines.ts";
import { CLI_ENTRY, type NodeStatus } from "./cluster_harness.ts";
import type { StatusRound } from "./leadership_record.ts";
import { NetnsHttpRelay, type NetnsLab } from "./netns.ts";

/** Generous: a status answer late under CPU load must not read as a dead node. */
const statusTimeoutMs = 3_000;

export class NetnsAgents {
  private readonly lab: NetnsLab;
  private readonly nodes: readonly DevNode[];
  private readonly relays = new Map<string, NetnsHttpRelay>();
  private readonly agents = new Map<string, ChildProcess>();
  private readonly logs = new Map<string, string[]>();

  /** `nodes` must already listen and dial in the lab (placeInNamespaces). */
  constructor(lab: NetnsLab, nodes: readonly DevNode[]) {
    this.lab = lab;
    this.nodes = nodes;
  }

  node(id: string): DevNode {
    const node = this.nodes.find((n) => n.id === id);
    if (node === undefined) throw new Error(`no node ${id}`);
    return node;
  }

  /** Starts `tandem agent` for `id` inside its namespace; the lab kills it on dispose. */
  start(id: string): void {
    if (this.agents.has(id)) throw new Error(`${id} already started`);
    const args = [CLI_ENTRY.source, "agent", "--config", this.node(id).configPath];
    const agent = this.lab.spawn(id, process.execPath, args, { stdio: ["ignore", "pipe", "pipe"] });
    const lines: string[] = [];
    this.logs.set(id, lines);
    collectLines(agent, lines);
    this.agents.set(id, agent);
    if (!this.relays.has(id)) this.relays.set(id, new NetnsHttpRelay(this.lab, id));
  }

  started(): string[] {
    return [...this.agents.keys()];
  }

  pid(id: string): number {
    const pid = this.agents.get(id)?.pid;
    if (pid === undefined) throw new Error(`${id} is not running`);
    return pid;
  }

  /** Statuses of every started node, read at once; nodes that did not answer in time are left out. */
  async statuses(): Promise<Map<string, NodeStatus>> {
    const entries = await Promise.all(
      this.started().map(async (id) => {
        const url = `${this.node(id).apiUrl}/api/v1/status`;
        const status = (await this.relays.get(id)?.getJson(url, statusTimeoutMs)) as NodeStatus | null;
        return [id, status] as const;
      }),
    );
    return new Map(entries.filter((e): e is readonly [string, NodeStatus] => e[1] !== null));
  }

  /** Polls until `check` returns a value, or throws with the last statuses and every node's recent logs. */
  async waitFor<T>(
    what: string,
    check: (round: StatusRound) => T | undefined,
    timeoutMs: number,
  ): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    let last: StatusRound = new Map();
    while (Date.now() < deadline) {
      last = await this.statuses();
      const result = check(last);
      if (result !== undefined) return result;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const seen = [...last].map(([id, s]) => `${id}: ${s.role} leader=${s.leaderId} term=${s.term}`);
    throw new Error(
      `timed out after ${timeoutMs} ms waiting for ${what}; ${seen.join(", ")}\n${this.dumpLogs()}`,
    );
  }

  /** Raw pino JSON lines of every started node. */
  logLines(): ReadonlyMap<string, readonly string[]> {
    return this.logs;
  }

  dumpLogs(): string {
    return [...this.logs.entries()]
      .flatMap(([id, lines]) => lines.slice(-40).map((l) => formatLogLine(l, id)))
      .join("\n");
  }
}
