// Real multi-process clusters for integration tests: configs written like `tandem dev` does, agents
// started through the real CLI, killed by pid (SIGKILL for crash tests), every process reaped at the end.
import type { ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parse, stringify } from "yaml";
import { type DevNode, formatLogLine, prepareDevCluster, spawnAgent } from "../../src/cli/dev_cluster.ts";
import { collectLines } from "./child_lines.ts";
import { type PortRange, reservePortRange, waitForPortsFree } from "./free_ports.ts";

/** Tests run the TypeScript sources; benchmarks run the compiled build that operators run (`npm run build`). */
export const CLI_ENTRY = {
  source: fileURLToPath(new URL("../../src/cli/main.ts", import.meta.url)),
  build: fileURLToPath(new URL("../../dist/tandem.js", import.meta.url)),
} as const;

export interface NodeStatus {
  node: { id: string };
  leaderId: string | null;
  term: number;
  role: string;
  leaseValid: boolean;
  peers: Array<{
    id: string;
    state: string;
    link: string;
    rttMs: number | null;
    lastHeardMsAgo: number | null;
  }>;
}

export interface ClusterHarnessOptions {
  nodes: number;
  witness?: boolean;
  security?: "mtls" | "psk";
  /** Which CLI the agents run (default: source). */
  entry?: keyof typeof CLI_ENTRY;
  /** A script run instead of the CLI, as `node SCRIPT agent --config FILE` (an app embedding the agent). */
  script?: string;
}

/** Deadlines for a loaded machine: they bound a broken build, they are not timing claims. */
const waitTimeoutMsDefault = 30_000;
/** One status answer; a late answer is retried by the polling loops. */
const statusTimeoutMsDefault = 3_000;

export class ClusterHarness {
  readonly dir: string;
  readonly nodes: DevNode[];
  private readonly processes = new Map<string, ChildProcess>();
  private readonly logs = new Map<string, string[]>();

  private readonly entry: string;
  private readonly ports: PortRange;

  private constructor(dir: string, nodes: DevNode[], entry: string, ports: PortRange) {
    this.dir = dir;
    this.nodes = nodes;
    this.entry = entry;
    this.ports = ports;
    // Agents run in their own process groups: reap them even if a test dies before dispose().
    process.once("exit", () => {
      for (const child of this.processes.values()) if (child.pid) process.kill(child.pid, "SIGKILL");
    });
  }

  static async create(options: ClusterHarnessOptions): Promise<ClusterHarness> {
    const dir = mkdtempSync(join(tmpdir(), "tandem-it-"));
    const ports = await reservePortRange(options.nodes);
    const nodes = await prepareDevCluster({
      nodes: options.nodes,
      dir,
      basePort: ports.base,
      security: options.security ?? "mtls",
      witness: options.witness ?? false,
    });
    return new ClusterHarness(dir, nodes, options.script ?? CLI_ENTRY[options.entry ?? "source"], ports);
  }

  node(id: string): DevNode {
    const node = this.nodes.find((n) => n.id === id);
    if (!node) throw new Error(`no node ${id}`);
    return node;
  }

  /** Rewrites one node's YAML config (e.g. a wrong PSK file or a forged certificate). */
  editConfig(id: string, edit: (config: Record<string, unknown>) => void): void {
    const path = this.node(id).configPath;
    const config = parse(readFileSync(path, "utf8")) as Record<string, unknown>;
    edit(config);
    writeFileSync(path, stringify(config));
  }

  /** `agentArgs` follow `agent --config FILE` (e.g. `--join HOST:PORT`). */
  start(id: string, agentArgs: readonly string[] = []): ChildProcess {
    if (this.processes.has(id)) throw new Error(`${id} already running`);
    const configPath = this.node(id).configPath;
    const child = spawnAgent(configPath, this.entry, agentArgs);
    const lines = this.logs.get(id) ?? [];
    this.logs.set(id, lines);
    collectLines(child, lines);
    this.processes.set(id, child);
    child.on("exit", () => {
      if (this.processes.get(id) === child) this.processes.delete(id);
    });
    return child;
  }

  /** Starts a node that ran before, once its ports are free again (a clear error if they never are). */
  async restart(id: string): Promise<ChildProcess> {
    const node = this.node(id);
    await waitForPortsFree([node.meshPort, node.apiPort]);
    return this.start(id);
  }

  startAll(): void {
    for (const node of this.nodes) this.start(node.id);
  }

  running(): string[] {
    return [...this.processes.keys()];
  }

  pid(id: string): number {
    const pid = this.processes.get(id)?.pid;
    if (pid === undefined) throw new Error(`${id} is not running`);
    return pid;
  }

  /** Raw pino JSON lines a node printed. */
  logLines(id: string): string[] {
    return this.logs.get(id) ?? [];
  }

  /** Human-readable logs of every node, for assertion messages. */
  dumpLogs(): string {
    return [...this.logs.entries()]
      .flatMap(([id, lines]) => lines.slice(-40).map((l) => formatLogLine(l, id)))
      .join("\n");
  }

  async kill(id: string, signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
    const child = this.processes.get(id);
    if (!child?.pid) return;
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    process.kill(child.pid, signal);
    await exited;
  }

  async status(id: string, timeoutMs = statusTimeoutMsDefault): Promise<NodeStatus | null> {
    try {
      const response = await fetch(`${this.node(id).apiUrl}/api/v1/status`, {
        signal: AbortSignal.timeout(timeoutMs),
      });
      return response.ok ? ((await response.json()) as NodeStatus) : null;
    } catch {
      return null;
    }
  }

  /** Polls until `check` returns a value for the statuses of the given nodes, or throws with the logs. */
  async waitFor<T>(
    what: string,
    ids: string[],
    check: (statuses: Map<string, NodeStatus>) => T | undefined,
    timeoutMs = waitTimeoutMsDefault,
  ): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    let last = new Map<string, NodeStatus>();
    while (Date.now() < deadline) {
      const answers = await Promise.all(ids.map(async (id) => [id, await this.status(id)] as const));
      last = new Map(answers.filter((a): a is readonly [string, NodeStatus] => a[1] !== null));
      const result = check(last);
      if (result !== undefined) return result;
      await new Promise((r) => setTimeout(r, 50));
    }
    const seen = JSON.stringify(
      Object.fromEntries(
        [...last].map(([id, s]) => [id, { leader: s.leaderId, term: s.term, role: s.role }]),
      ),
    );
    throw new Error(`timed out waiting for ${what}; last statuses ${seen}\n${this.dumpLogs()}`);
  }

  async waitForApi(ids: string[], timeoutMs = waitTimeoutMsDefault): Promise<void> {
    await this.waitFor(
      "the API to answer",
      ids,
      (statuses) => (statuses.size === ids.length ? true : undefined),
      timeoutMs,
    );
  }

  /** One leader among the listed nodes that all of them agree on, in the same term, and that says it leads. */
  async waitForAgreedLeader(
    ids: string[],
    timeoutMs = waitTimeoutMsDefault,
  ): Promise<{ leaderId: string; term: number }> {
    return this.waitFor(
      `a leader among ${ids.join(",")} agreed by all of them`,
      ids,
      (statuses) => {
        if (statuses.size !== ids.length) return undefined;
        const first = [...statuses.values()][0]!;
        const leaderId = first.leaderId;
        if (!leaderId || !ids.includes(leaderId)) return undefined;
        const agreed = [...statuses.values()].every((s) => s.leaderId === leaderId && s.term === first.term);
        return agreed && statuses.get(leaderId)?.role === "leader"
          ? { leaderId, term: first.term }
          : undefined;
      },
      timeoutMs,
    );
  }

  async stopAll(): Promise<void> {
    await Promise.all([...this.processes.keys()].map((id) => this.kill(id, "SIGKILL")));
  }

  async dispose(): Promise<void> {
    await this.stopAll();
    rmSync(this.dir, { recursive: true, force: true });
    this.ports.release();
  }
}
