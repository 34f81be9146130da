// Tandem as a StoreTarget: three compiled agents started here (with or without the agent's V8 flags),
// driven through the real HTTP API over keep-alive connections (node:http), killed by pid at the end.
import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import { Agent, request } from "node:http";
import { join } from "node:path";
import { AGENT_NODE_FLAGS_ENV } from "../src/cli/agent_flags.ts";
import { sseEvents } from "../src/cli/store_client.ts";
import { CLI_ENTRY } from "../test/support/cluster_harness.ts";
import type { ConvergenceProbe, KeyValue, StoreTarget } from "./store_workloads.ts";
import { CLUSTER_NODE_IDS, createBenchCluster, waitForSteadyCluster } from "./support/bench_cluster.ts";

const steadyTimeoutMs = 30_000;
const requestTimeoutMs = 30_000;

interface HttpAnswer {
  status: number;
  body: string;
}

export class TandemTarget implements StoreTarget {
  /** Configs, data and agent logs (<id>.log); removed by stop(). */
  readonly dir: string;
  private readonly urls: string[];
  private readonly agents: ChildProcess[];
  private readonly cleanup: () => Promise<void>;
  /** One pool for the writer, sized to the most requests a workload keeps in flight. */
  private readonly http = new Agent({ keepAlive: true, maxSockets: 64 });

  private constructor(dir: string, urls: string[], agents: ChildProcess[], cleanup: () => Promise<void>) {
    this.dir = dir;
    this.urls = urls;
    this.agents = agents;
    this.cleanup = cleanup;
  }

  /**
   * `v8Flags`: the agent's own (AGENT_NODE_FLAGS) or none, to show what they cost. They reach the agent as
   * TANDEM_AGENT_NODE_FLAGS, through the re-exec every installed agent goes through.
   */
  static async start(v8Flags: readonly string[]): Promise<TandemTarget> {
    const harness = await createBenchCluster("build");
    const agents = CLUSTER_NODE_IDS.map((id) => {
      // Logs go to a file beside the node's config (removed with it): a pipe nobody reads would block.
      const log = openSync(join(harness.dir, `${id}.log`), "a");
      const agent = spawn(
        process.execPath,
        [CLI_ENTRY.build, "agent", "--config", harness.node(id).configPath],
        {
          stdio: ["ignore", log, log],
          detached: true,
          env: { ...process.env, [AGENT_NODE_FLAGS_ENV]: v8Flags.join(" ") },
        },
      );
      closeSync(log);
      return agent;
    });
    const killAll = () => {
      for (const agent of agents) {
        if (agent.pid !== undefined && agent.exitCode === null && agent.signalCode === null) {
          try {
            process.kill(agent.pid, "SIGKILL");
          } catch {
            // Already gone.
          }
        }
      }
    };
    process.once("exit", killAll);
    const cleanup = async () => {
      killAll();
      await harness.dispose();
    };
    try {
      await waitForSteadyCluster(harness, steadyTimeoutMs);
    } catch (error) {
      await cleanup();
      throw error;
    }
    return new TandemTarget(
      harness.dir,
      CLUSTER_NODE_IDS.map((id) => harness.node(id).apiUrl),
      agents,
      cleanup,
    );
  }

  async writeBatch(entries: readonly KeyValue[]): Promise<number> {
    const body = JSON.stringify({
      writes: entries.map((e) => ({ path: e.key, value: Buffer.from(e.value).toString("base64") })),
      minAcks: 1,
    });
    const answer = await this.send("POST", this.url(0, "/api/v1/store"), body, "application/json");
    return answer.status === 200 ? entries.length : 0;
  }

  async writeOne(entry: KeyValue): Promise<boolean> {
    const path = `/api/v1/store/${entry.key.split("/").map(encodeURIComponent).join("/")}?min_acks=1`;
    const answer = await this.send("PUT", this.url(0, path), entry.value, "application/octet-stream");
    return answer.status === 200;
  }

  watch(prefix: string, seen: (key: string) => void): Promise<() => void> {
    return new Promise((resolve, reject) => {
      const url = this.url(2, `/api/v1/store-watch?prefix=${encodeURIComponent(prefix)}`);
      const req = request(url, { method: "GET", headers: { accept: "text/event-stream" } }, (res) => {
        if (res.statusCode !== 200) {
          reject(new Error(`watch answered ${res.statusCode}`));
          res.resume();
          return;
        }
        void (async () => {
          for await (const event of sseEvents(res)) {
            if (event.event === "change" && event.data !== undefined) {
              seen((JSON.parse(event.data) as { path: string }).path);
            }
          }
        })();
        resolve(() => req.destroy());
      });
      req.on("error", reject);
      req.end();
    });
  }

  pids(): number[] {
    return this.agents.flatMap((agent) => (agent.pid === undefined ? [] : [agent.pid]));
  }

  pauseNode2(paused: boolean): void {
    const pid = this.agents[2]?.pid;
    if (pid === undefined) throw new Error("node 2 is not running");
    process.kill(pid, paused ? "SIGSTOP" : "SIGCONT");
  }

  /**
   * A watch on node 2 counts the paths that arrived; once all have, node 2's listing must equal node 0's
   * in paths and versions (a version names one write, so equal versions mean equal values). Listing 10,000
   * entries costs a node tens of ms, so it is only asked for when the watch says it can match.
   */
  async convergenceProbe(prefix: string, entries: number): Promise<ConvergenceProbe> {
    const arrived = new Set<string>();
    const stopWatch = await this.watch(prefix, (key) => arrived.add(key));
    let expected: string | null = null;
    const listing = async (node: number) => {
      const answer = await this.send(
        "GET",
        this.url(node, `/api/v1/store?prefix=${encodeURIComponent(prefix)}&limit=${entries}`),
      );
      if (answer.status !== 200) throw new Error(`listing answered ${answer.status}`);
      const page = JSON.parse(answer.body) as { entries: Array<{ path: string; version: unknown }> };
      return JSON.stringify(page.entries.map((e) => [e.path, e.version]));
    };
    return {
      node2Identical: async () => {
        if (arrived.size < entries) return false;
        expected ??= await listing(0);
        return (await listing(2)) === expected;
      },
      close: stopWatch,
    };
  }

  async stop(): Promise<void> {
    this.http.destroy();
    await this.cleanup();
  }

  private url(node: number, path: string): string {
    const base = this.urls[node];
    if (base === undefined) throw new Error(`no node ${node}`);
    return `${base}${path}`;
  }

  private send(
    method: string,
    url: string,
    body?: string | Uint8Array,
    contentType?: string,
  ): Promise<HttpAnswer> {
    return new Promise((resolve, reject) => {
      const headers: Record<string, string> = contentType ? { "content-type": contentType } : {};
      const req = request(url, { method, agent: this.http, headers, timeout: requestTimeoutMs }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("end", () =>
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }),
        );
        res.on("error", reject);
      });
      req.on("timeout", () => req.destroy(new Error(`${method} ${url} timed out`)));
      req.on("error", reject);
      req.end(body);
    });
  }
}
