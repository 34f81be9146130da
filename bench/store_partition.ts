// Convergence after a real network partition, for bench/store.ts. Three compiled agents (configs as `tandem
// dev` writes them, default timings, mTLS), each in its own network namespace of a NetnsLab
// (test/support/netns.ts: veth pairs to a bridge, nftables inside a namespace to cut that host off). Once the
// cluster is steady, node 2 is cut off both ways; when both peers report it down on their status API,
// `entries` entries are written into node 0 in batches (min_acks=1: node 1 acknowledges), then the rules are
// deleted (the heal). The figure: from just before the heal command until node 2's listing of the prefix
// has node 0's paths and versions, checked every `checkIntervalMs` once a watch on node 2 has delivered
// every path. The APIs listen on loopback inside their namespaces, so a driver in each namespace
// (store_partition_driver.ts) talks to its agent for this process. When the mesh links to node 2 went down
// and came back up is read from its peers' logs. Everything started here runs under the lab, which kills it
// by pid and deletes the namespaces.
import type { ChildProcess } from "node:child_process";
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { prepareDevCluster } from "../src/cli/dev_cluster.ts";
import { CLI_ENTRY, type NodeStatus } from "../test/support/cluster_harness.ts";
import { NetnsLab, netnsInstallHint, netnsSupport } from "../test/support/netns.ts";
import { placeInNamespaces } from "../test/support/netns_cluster.ts";
import type { DriverCommand, DriverReply, DriverRequest } from "./store_partition_driver.ts";
import { type CpuShare, withCpu } from "./store_workloads.ts";
import {
  CLUSTER_NODE_IDS,
  type LogRecord,
  parseLogRecords,
  steadyLeadership,
} from "./support/bench_cluster.ts";

const DRIVER = fileURLToPath(new URL("./store_partition_driver.ts", import.meta.url));
/** Each agent has its own namespace, so fixed ports collide with nothing on the machine. */
const BASE_PORT = 7400;
const WRITER = CLUSTER_NODE_IDS[0];
const ISOLATED = CLUSTER_NODE_IDS[2];
const steadyTimeoutMs = 30_000;
const downTimeoutMs = 10_000;
const pollIntervalMs = 50;
const callTimeoutMs = 30_000;

export interface PartitionOptions {
  prefix: string;
  entries: number;
  batchEntries: number;
  valueBytes: number;
  checkIntervalMs: number;
  waitMs: number;
}

/** One mesh link to node 2, as the peer at the other end logged it. */
export interface LinkTimes {
  peer: string;
  /** Cut → `mesh link down` (null: not down by the end of the measurement). */
  downAfterCutMs: number | null;
  /**
   * Heal → a new link: `mesh link up` after the old one went down, or `mesh link replaced duplicate` when
   * the mesh renewed a link that lived through the partition (null: none by the end).
   */
  upAfterHealMs: number | null;
}

export interface PartitionConvergence {
  entries: number;
  /** Cut → both peers report node 2 down. */
  peersSawDownAfterMs: number;
  /** Writing the entries into node 0 while node 2 was cut off. */
  writeMs: number;
  /** Cut → heal: compare with the links' downAfterCutMs to see whether they outlived the partition. */
  healAfterCutMs: number;
  /** Heal → the first check that found node 2 identical to node 0; null when not within waitMs. */
  identicalAfterMs: number | null;
  checkIntervalMs: number;
  links: LinkTimes[];
}

/** Why this machine cannot run the partition (a missing tool or privilege), or null when it can. */
export function partitionUnsupported(): string | null {
  const support = netnsSupport();
  return support.ok ? null : `needs ${support.missing}; ${netnsInstallHint}`;
}

/** A store_partition_driver.ts process in one namespace: one JSON line per command, one per answer. */
class Driver {
  readonly child: ChildProcess;
  private readonly pending = new Map<number, (reply: DriverReply) => void>();
  private nextId = 1;

  constructor(child: ChildProcess) {
    this.child = child;
    // A write after the driver died fails with EPIPE; its pending calls are settled by the exit handler.
    child.stdin?.on("error", () => {});
    createInterface({ input: child.stdout! }).on("line", (line) => {
      const reply = JSON.parse(line) as DriverReply;
      this.pending.get(reply.id)?.(reply);
    });
    child.once("exit", () => {
      for (const [id, settle] of this.pending) settle({ id, error: "driver exited" });
    });
  }

  async call<T>(command: DriverCommand, timeoutMs = callTimeoutMs): Promise<T> {
    const id = this.nextId++;
    let timer: NodeJS.Timeout | undefined;
    const reply = await new Promise<DriverReply>((resolve) => {
      this.pending.set(id, resolve);
      timer = setTimeout(() => resolve({ id, error: `no answer within ${timeoutMs} ms` }), timeoutMs);
      this.child.stdin?.write(`${JSON.stringify({ id, command } satisfies DriverRequest)}\n`);
    });
    clearTimeout(timer);
    this.pending.delete(id);
    if (reply.error !== undefined) throw new Error(`${command.op}: ${reply.error}`);
    return reply.result as T;
  }
}

/** Agents listen on their namespace's address and dial each other there; API on the namespace's loopback. */
class PartitionCluster {
  readonly lab: NetnsLab;
  private readonly dir: string;
  private readonly agents: ChildProcess[];
  private readonly drivers: Map<string, Driver>;

  private constructor(lab: NetnsLab, dir: string, agents: ChildProcess[], drivers: Map<string, Driver>) {
    this.lab = lab;
    this.dir = dir;
    this.agents = agents;
    this.drivers = drivers;
  }

  static async start(v8Flags: readonly string[]): Promise<PartitionCluster> {
    const lab = NetnsLab.create(CLUSTER_NODE_IDS);
    const dir = mkdtempSync(join(tmpdir(), "tandem-bench-partition-"));
    try {
      const nodes = await prepareDevCluster({
        nodes: CLUSTER_NODE_IDS.length,
        dir,
        basePort: BASE_PORT,
        security: "mtls",
        witness: false,
      });
      placeInNamespaces(lab, nodes);
      const agents = nodes.map((node) => {
        // Logs go to a file beside the node's config (removed with it): a pipe nobody reads would block.
        const log = openSync(join(dir, `${node.id}.log`), "a");
        const args = [...v8Flags, CLI_ENTRY.build, "agent", "--config", node.configPath];
        const agent = lab.spawn(node.id, process.execPath, args, { stdio: ["ignore", log, log] });
        closeSync(log);
        return agent;
      });
      const drivers = new Map(
        nodes.map((node) => {
          const child = lab.spawn(node.id, process.execPath, [DRIVER, node.apiUrl], {
            stdio: ["pipe", "pipe", "inherit"],
          });
          return [node.id, new Driver(child)] as const;
        }),
      );
      return new PartitionCluster(lab, dir, agents, drivers);
    } catch (error) {
      await lab.dispose();
      rmSync(dir, { recursive: true, force: true });
      throw error;
    }
  }

  driver(id: string): Driver {
    const driver = this.drivers.get(id);
    if (driver === undefined) throw new Error(`no driver for ${id}`);
    return driver;
  }

  /** Agents first (node 0 first), then the drivers. */
  pids(): number[] {
    return [...this.agents, ...[...this.drivers.values()].map((d) => d.child)].flatMap((child) =>
      child.pid === undefined ? [] : [child.pid],
    );
  }

  /** Polls every node's status until `check` returns a value; throws after `timeoutMs`. */
  async waitFor<T>(
    what: string,
    check: (statuses: Map<string, NodeStatus>) => T | undefined,
    timeoutMs: number,
  ): Promise<T> {
    const deadline = performance.now() + timeoutMs;
    while (performance.now() < deadline) {
      const statuses = new Map<string, NodeStatus>();
      await Promise.all(
        CLUSTER_NODE_IDS.map(async (id) => {
          const status = await this.driver(id)
            .call<NodeStatus | null>({ op: "status" })
            .catch(() => null);
          if (status !== null) statuses.set(id, status);
        }),
      );
      const result = check(statuses);
      if (result !== undefined) return result;
      await sleep(pollIntervalMs);
    }
    throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
  }

  logRecords(id: string): LogRecord[] {
    return parseLogRecords(readFileSync(join(this.dir, `${id}.log`), "utf8").split("\n"));
  }

  async dispose(): Promise<void> {
    await this.lab.dispose();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Starts a namespaced cluster with these V8 flags, measures one partition, removes everything. */
export async function partitionConvergence(
  v8Flags: readonly string[],
  options: PartitionOptions,
): Promise<PartitionConvergence & { cpu: CpuShare }> {
  const cluster = await PartitionCluster.start(v8Flags);
  try {
    await cluster.waitFor(
      "a steady cluster (agreed leader, every peer alive)",
      (statuses) => steadyLeadership(statuses, CLUSTER_NODE_IDS),
      steadyTimeoutMs,
    );
    const measured = await withCpu(cluster.pids(), () => partitionedWrites(cluster, options));
    // The drivers are this bench's client, split over processes: count them with it.
    const servers = measured.cpu.serverCores;
    const drivers = servers.slice(CLUSTER_NODE_IDS.length).reduce((sum, cores) => sum + cores, 0);
    const cpu = {
      serverCores: servers.slice(0, CLUSTER_NODE_IDS.length),
      clientCores: measured.cpu.clientCores + drivers,
    };
    return { ...measured, cpu };
  } finally {
    await cluster.dispose();
  }
}

function peersSeeIsolatedDown(statuses: Map<string, NodeStatus>): true | undefined {
  const peers = CLUSTER_NODE_IDS.filter((id) => id !== ISOLATED);
  const down = peers.every((id) => statuses.get(id)?.peers.find((p) => p.id === ISOLATED)?.state === "down");
  return down ? true : undefined;
}

async function partitionedWrites(
  cluster: PartitionCluster,
  options: PartitionOptions,
): Promise<PartitionConvergence> {
  const writer = cluster.driver(WRITER);
  const isolated = cluster.driver(ISOLATED);
  await isolated.call({ op: "watch", prefix: options.prefix });
  const cutAtEpochMs = Date.now();
  const cutAtMs = performance.now();
  cluster.lab.isolate(ISOLATED, "both");
  await cluster.waitFor(`${ISOLATED}'s peers to report it down`, peersSeeIsolatedDown, downTimeoutMs);
  const peersSawDownAfterMs = performance.now() - cutAtMs;

  const writeStartMs = performance.now();
  for (let first = 0; first < options.entries; first += options.batchEntries) {
    const count = Math.min(options.batchEntries, options.entries - first);
    await writer.call({ op: "write", prefix: options.prefix, first, count, valueBytes: options.valueBytes });
  }
  const writeMs = performance.now() - writeStartMs;
  const digest = await writer.call<string>({ op: "digest", prefix: options.prefix, limit: options.entries });

  const healAtEpochMs = Date.now();
  const healAtMs = performance.now();
  cluster.lab.heal(ISOLATED);
  const identicalAfterMs = await untilIdentical(isolated, { ...options, digest }, healAtMs);
  return {
    entries: options.entries,
    peersSawDownAfterMs,
    writeMs,
    healAfterCutMs: healAtMs - cutAtMs,
    identicalAfterMs,
    checkIntervalMs: options.checkIntervalMs,
    links: linkTimes(cluster, cutAtEpochMs, healAtEpochMs),
  };
}

async function untilIdentical(
  isolated: Driver,
  check: PartitionOptions & { digest: string },
  fromMs: number,
): Promise<number | null> {
  const deadline = fromMs + check.waitMs;
  const command: DriverCommand = {
    op: "identical",
    prefix: check.prefix,
    entries: check.entries,
    digest: check.digest,
  };
  while (performance.now() < deadline) {
    if (await isolated.call<boolean>(command).catch(() => false)) return performance.now() - fromMs;
    await sleep(check.checkIntervalMs);
  }
  return null;
}

/** From each peer's log: its mesh link to the isolated node going down after the cut, new after the heal. */
function linkTimes(cluster: PartitionCluster, cutAtEpochMs: number, healAtEpochMs: number): LinkTimes[] {
  return CLUSTER_NODE_IDS.filter((id) => id !== ISOLATED).map((peer) => {
    const events = cluster.logRecords(peer).filter((r) => r.peer === ISOLATED);
    const first = (msg: string, fromMs: number) => events.find((r) => r.msg === msg && r.time >= fromMs);
    const down = first("mesh link down", cutAtEpochMs);
    const up = events.find(
      (r) =>
        (r.msg === "mesh link up" || r.msg === "mesh link replaced duplicate") && r.time >= healAtEpochMs,
    );
    return {
      peer,
      downAfterCutMs: down === undefined ? null : down.time - cutAtEpochMs,
      upAfterHealMs: up === undefined ? null : up.time - healAtEpochMs,
    };
  });
}
