// A real network partition: three agents, each in its own network namespace, the leader cut off by nftables.
// The majority elects a new leader, the old one steps down when its lease runs out (before the new leader
// exists) and stays leaderless; once the rules are gone all three agree on one leader again.
import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { mkdtempSync, realpathSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type DevNode, formatLogLine, prepareDevCluster } from "../../src/cli/dev_cluster.ts";
import { collectLines } from "../support/child_lines.ts";
import { CLI_ENTRY, type NodeStatus } from "../support/cluster_harness.ts";
import { NetnsHttpRelay, NetnsLab, netnsTestGate, type PartitionDirection } from "../support/netns.ts";
import { placeInNamespaces } from "../support/netns_cluster.ts";

const nodeIds = ["n1", "n2", "n3"];
/** Every agent has its own namespace, so fixed ports cannot collide with anything else on the machine. */
const basePort = 7400;
const pollIntervalMs = 50;
/** Generous: a status answer late under CPU load must not read as a dead node. */
const statusTimeoutMs = 3_000;
/** The isolated node is watched for any claim of leadership for at least this long and this many samples. */
const leaderlessWatchMs = 3_000;
const leaderlessSamplesMin = 10;
/** Bounds a broken build; a loaded machine may take long to get there. */
const waitTimeoutMs = 30_000;

type Statuses = Map<string, NodeStatus>;

interface Transition {
  atMs: number;
  role: string;
  term: number;
}

/** A `tandem dev`-shaped cluster whose agents listen on their namespace's address and dial each other there. */
class NamespacedCluster {
  private readonly lab: NetnsLab;
  private readonly nodes: DevNode[];
  private readonly relays = new Map<string, NetnsHttpRelay>();
  private readonly agents = new Map<string, ChildProcess>();
  private readonly logs = new Map<string, string[]>();

  private constructor(lab: NetnsLab, nodes: DevNode[]) {
    this.lab = lab;
    this.nodes = nodes;
  }

  static async create(lab: NetnsLab, dir: string): Promise<NamespacedCluster> {
    const nodes = await prepareDevCluster({
      nodes: nodeIds.length,
      dir,
      basePort,
      security: "mtls",
      witness: false,
    });
    placeInNamespaces(lab, nodes);
    return new NamespacedCluster(lab, nodes);
  }

  startAll(): void {
    for (const node of this.nodes) {
      const agent = this.lab.spawn(
        node.id,
        process.execPath,
        [CLI_ENTRY.source, "agent", "--config", node.configPath],
        {
          stdio: ["ignore", "pipe", "pipe"],
        },
      );
      const lines: string[] = [];
      this.logs.set(node.id, lines);
      collectLines(agent, lines);
      this.agents.set(node.id, agent);
      this.relays.set(node.id, new NetnsHttpRelay(this.lab, node.id));
    }
  }

  pid(id: string): number {
    const pid = this.agents.get(id)?.pid;
    if (pid === undefined) throw new Error(`${id} is not running`);
    return pid;
  }

  async statuses(): Promise<Statuses> {
    const entries = await Promise.all(
      this.nodes.map(async (node) => {
        const url = `${node.apiUrl}/api/v1/status`;
        const status = (await this.relays.get(node.id)?.getJson(url, statusTimeoutMs)) as NodeStatus | null;
        return [node.id, status] as const;
      }),
    );
    return new Map(entries.filter((e): e is readonly [string, NodeStatus] => e[1] !== null));
  }

  /** Polls until `check` returns a value, or throws with the last statuses and every node's recent logs. */
  async waitFor<T>(
    what: string,
    check: (statuses: Statuses) => T | undefined,
    timeoutMs: number,
  ): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    let last: Statuses = new Map();
    while (Date.now() < deadline) {
      last = await this.statuses();
      const result = check(last);
      if (result !== undefined) return result;
      await new Promise((resolve) => setTimeout(resolve, pollIntervalMs));
    }
    throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; ${this.describe(last)}`);
  }

  describe(statuses: Statuses): string {
    const seen = [...statuses].map(([id, s]) => `${id}: ${s.role} leader=${s.leaderId} term=${s.term}`);
    return `statuses ${seen.join(", ")}\n${this.dumpLogs()}`;
  }

  dumpLogs(): string {
    return [...this.logs.entries()]
      .flatMap(([id, lines]) => lines.slice(-40).map((l) => formatLogLine(l, id)))
      .join("\n");
  }

  /** Role changes a node logged (`became <role>`), with the wall time of each. */
  transitions(id: string): Transition[] {
    return (this.logs.get(id) ?? []).flatMap((line) => {
      const record = JSON.parse(line) as { time?: number; msg?: string; term?: number };
      const role = record.msg?.match(/^became (\S+)$/)?.[1];
      return role && record.time !== undefined && record.term !== undefined
        ? [{ atMs: record.time, role, term: record.term }]
        : [];
    });
  }
}

/** The leader every listed node reports, in one term, if the leader itself says it leads. */
function agreedLeader(statuses: Statuses, ids: string[]): { leaderId: string; term: number } | undefined {
  const listed = ids.map((id) => statuses.get(id));
  const first = listed[0];
  if (!first?.leaderId || !ids.includes(first.leaderId)) return undefined;
  const agreed = listed.every((s) => s?.leaderId === first.leaderId && s.term === first.term);
  return agreed && statuses.get(first.leaderId)?.role === "leader"
    ? { leaderId: first.leaderId, term: first.term }
    : undefined;
}

/**
 * Lease (550 ms) < election timeout (>= 700 ms): the old leader must step down before the majority's leader
 * takes office, so there is never a moment with two leaders. Both times come from the agents' own logs, on
 * this one machine's clock.
 */
async function stepDownOrder(
  cluster: NamespacedCluster,
  isolated: string,
  isolatedTerm: number,
  elected: { leaderId: string; term: number },
): Promise<{ steppedDownAtMs: number; electedAtMs: number }> {
  const logged = () => {
    const history = cluster.transitions(isolated);
    const tenure = history.findLastIndex((t) => t.role === "leader" && t.term === isolatedTerm);
    const steppedDown =
      tenure < 0 ? undefined : history.slice(tenure + 1).find((t) => t.term === isolatedTerm);
    const tookOffice = cluster
      .transitions(elected.leaderId)
      .find((t) => t.role === "leader" && t.term === elected.term);
    return { tenure, steppedDown, tookOffice };
  };
  // The status that showed the new leader may be read before the log lines written earlier: wait for them.
  const deadline = Date.now() + waitTimeoutMs;
  let seen = logged();
  while ((!seen.steppedDown || !seen.tookOffice) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, pollIntervalMs));
    seen = logged();
  }
  const { tenure, steppedDown, tookOffice } = seen;
  assert.ok(tenure >= 0, `${isolated} logged no election in term ${isolatedTerm}`);
  assert.ok(steppedDown, `${isolated} logged no step-down in term ${isolatedTerm}\n${cluster.dumpLogs()}`);
  assert.ok(tookOffice, `${elected.leaderId} logged no election in term ${elected.term}`);
  assert.ok(
    steppedDown.atMs < tookOffice.atMs,
    `old leader stepped down at ${steppedDown.atMs}, new leader elected at ${tookOffice.atMs}`,
  );
  return { steppedDownAtMs: steppedDown.atMs, electedAtMs: tookOffice.atMs };
}

/**
 * While partitioned the old leader claims nothing, follows no one and (pre-vote) does not inflate its term;
 * the majority keeps its leader throughout.
 */
async function assertLeaderless(
  cluster: NamespacedCluster,
  isolated: string,
  isolatedTerm: number,
  elected: { leaderId: string; term: number },
): Promise<void> {
  const majority = nodeIds.filter((id) => id !== isolated);
  // Both bounds must be met: on a loaded machine fewer samples fit in the time, so the watch runs longer.
  const watchUntilMs = Date.now() + leaderlessWatchMs;
  let samples = 0;
  let answeredAtMs = Date.now();
  while (Date.now() < watchUntilMs || samples < leaderlessSamplesMin) {
    const statuses = await cluster.statuses();
    if (statuses.size < nodeIds.length) {
      // A late answer proves nothing either way; a node that stays silent has stopped serving its API.
      assert.ok(Date.now() - answeredAtMs < waitTimeoutMs, `no full sample for ${waitTimeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, pollIntervalMs));
      continue;
    }
    answeredAtMs = Date.now();
    const minority = statuses.get(isolated)!;
    assert.notEqual(minority.role, "leader", `${isolated} claims leadership while partitioned`);
    assert.equal(minority.leaderId, null, `${isolated} follows ${minority.leaderId} while partitioned`);
    assert.equal(minority.term, isolatedTerm, `${isolated} raised its term while partitioned`);
    assert.deepEqual(agreedLeader(statuses, majority), elected, "the majority's leader changed");
    samples += 1;
    await new Promise((resolve) => setTimeout(resolve, pollIntervalMs));
  }
}

const { unsupported, skip } = netnsTestGate();

describe("partition: leader cut off by nftables (3 members, mTLS, one namespace each)", {
  skip,
  timeout: 240_000,
}, () => {
  let lab: NetnsLab | undefined;
  let dir: string | undefined;
  let cluster: NamespacedCluster;

  before(async () => {
    if (unsupported) assert.fail(unsupported);
    lab = NetnsLab.create(nodeIds);
    dir = mkdtempSync(join(tmpdir(), "tandem-partition-"));
    cluster = await NamespacedCluster.create(lab, dir);
    cluster.startAll();
  });

  after(async () => {
    await lab?.dispose();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function partitionLeader(direction: PartitionDirection): Promise<void> {
    // From a settled cluster: one agreed leader and every peer alive everywhere.
    const first = await cluster.waitFor(
      "a leader agreed by all, every peer alive",
      (s) =>
        [...s.values()].every((status) => status.peers.every((p) => p.state === "alive"))
          ? agreedLeader(s, nodeIds)
          : undefined,
      waitTimeoutMs,
    );
    const isolated = first.leaderId;
    const cutAtMs = Date.now();
    lab!.isolate(isolated, direction);
    try {
      await partitioned(direction, first, cutAtMs);
    } finally {
      // Healed also when an assertion failed, so the next test starts from a whole cluster.
      lab!.heal(isolated);
    }
  }

  async function partitioned(
    direction: PartitionDirection,
    first: { leaderId: string; term: number },
    cutAtMs: number,
  ): Promise<void> {
    const isolated = first.leaderId;
    const majority = nodeIds.filter((id) => id !== isolated);

    const elected = await cluster.waitFor(
      "the majority to elect a new leader",
      (s) => {
        const agreed = agreedLeader(s, majority);
        return agreed && agreed.term > first.term ? agreed : undefined;
      },
      waitTimeoutMs,
    );
    const electedAfterMs = Date.now() - cutAtMs;

    const order = await stepDownOrder(cluster, isolated, first.term, elected);
    await assertLeaderless(cluster, isolated, first.term, elected);

    const healAtMs = Date.now();
    lab!.heal(isolated);
    const healed = await cluster.waitFor(
      "all three to agree again",
      (s) => agreedLeader(s, nodeIds),
      waitTimeoutMs,
    );
    assert.ok(healed.term >= elected.term, `term ${healed.term} fell below the majority's ${elected.term}`);
    const healedAfterMs = Date.now() - healAtMs;
    console.log(
      `partition ${direction}: ${isolated} isolated; stepped down after ${order.steppedDownAtMs - cutAtMs} ms, ` +
        `${elected.leaderId} elected (term ${elected.term}) after ${electedAfterMs} ms (logged ` +
        `${order.electedAtMs - cutAtMs} ms); healed to ${healed.leaderId} (term ${healed.term}) in ${healedAfterMs} ms`,
    );
  }

  it("every agent runs inside its own namespace, under the pid the test holds", async () => {
    await cluster.waitFor(
      "every API to answer",
      (s) => (s.size === nodeIds.length ? true : undefined),
      waitTimeoutMs,
    );
    for (const id of nodeIds) {
      const pid = cluster.pid(id);
      assert.ok(lab!.runsIn(pid, id), `${id} (pid ${pid}) is not in its namespace`);
      const program = realpathSync(`/proc/${pid}/exe`);
      assert.equal(program, realpathSync(process.execPath), `pid ${pid} runs ${program}, not node`);
    }
  });

  it("both ways: the majority elects a new leader, the old one steps down and stays leaderless, then all agree", async () => {
    await partitionLeader("both");
  });

  it("inbound only (the leader still sends, hears nothing): same outcome", async () => {
    await partitionLeader("inbound");
  });
});
