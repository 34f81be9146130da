// Agents of a harness-prepared cluster started from a chosen CLI entry (source .ts or compiled .js); the
// integration harness always starts the source one. Output is drained (a full pipe would stall an agent);
// every agent is killed by pid at the end, or when this process exits.
import type { ChildProcess } from "node:child_process";
import { spawnAgent } from "../../src/cli/dev_cluster.ts";

export class AgentGroup {
  private readonly processes = new Map<string, ChildProcess>();
  private readonly configPaths: ReadonlyMap<string, string>;
  private readonly entry: string;

  constructor(nodes: ReadonlyArray<{ id: string; configPath: string }>, entry: string) {
    this.configPaths = new Map(nodes.map((n) => [n.id, n.configPath]));
    this.entry = entry;
    process.once("exit", () => {
      for (const child of this.processes.values()) if (child.pid) process.kill(child.pid, "SIGKILL");
    });
  }

  startAll(): void {
    for (const [id, configPath] of this.configPaths) {
      const child = spawnAgent(configPath, this.entry);
      child.stdout?.resume();
      child.stderr?.resume();
      this.processes.set(id, child);
      child.once("exit", () => {
        if (this.processes.get(id) === child) this.processes.delete(id);
      });
    }
  }

  pid(id: string): number {
    const pid = this.processes.get(id)?.pid;
    if (pid === undefined) throw new Error(`agent ${id} is not running`);
    return pid;
  }

  async stopAll(): Promise<void> {
    await Promise.all(
      [...this.processes.values()].map((child) => {
        if (child.pid === undefined) return Promise.resolve();
        const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
        process.kill(child.pid, "SIGKILL");
        return exited;
      }),
    );
  }
}
