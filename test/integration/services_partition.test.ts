// Services across a real network partition: three agents (real CLI, config files), each in its own network
// namespace, three services (s1 prefers n1, s2 n2, s3 n3) whose exec drivers journal every start and stop
// (node, fencing token, wall-clock ms) into files the namespaces share. nftables cuts a service's owner off
// from the other two, first an owner that does not lead, then the leader itself. The journal must show the
// cut-off owner stopping its services by itself before the majority starts them elsewhere (stop.atMs <=
// start.atMs, one machine's clock), the new start under a newer fencing token, and, once the cut heals, the
// services staying where they moved (sticky): the old owner never starts them again, each runs on exactly
// one node, and every node's GET /api/v1/services agrees.
import assert from "node:assert/strict";
import { appendFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { ServiceJson, ServicesJson } from "../../src/api/index.ts";
import { type DevNode, prepareDevCluster } from "../../src/cli/dev_cluster.ts";
import { editConfigFile } from "../support/dev_config_edit.ts";
import type { StatusRound } from "../support/leadership_record.ts";
import { NetnsHttpRelay, NetnsLab, netnsTestGate } from "../support/netns.ts";
import { NetnsAgents } from "../support/netns_agents.ts";
import { placeInNamespaces } from "../support/netns_cluster.ts";
import {
  assertNeverTwoAtOnce,
  compareFenceText,
  type DriverLine,
  formatLines,
  grantedLines,
  journalCommand,
  readDriverLines,
  runningNodes,
} from "../support/service_driver_log.ts";

const nodeIds = ["n1", "n2", "n3"];
/** s1 prefers n1, s2 n2, s3 n3: whoever leads, some node that does not lead runs a service. */
const serviceNames = nodeIds.map((_, index) => `s${index + 1}`);
/** Every agent has its own namespace, so fixed ports cannot collide with anything else on the machine. */
const basePort = 7400;
/** The owner may be unreachable this long before its services move (>= the lan preset's down_after_ms). */
const failoverAfterMs = 2_000;
/** Generous: an answer late under CPU load must not read as a dead node. */
const apiTimeoutMs = 3_000;
/** After the cut healed and all agree: watched this long, and this many full samples, for any move. */
const stickyWatchMs = 4_000;
const stickySamplesMin = 8;
/** Bounds a broken build; a loaded machine may take long to get there. */
const waitTimeoutMs = 60_000;

interface Settled {
  leaderId: string;
  term: number;
  /** service → its entry, as every node shows it. */
  services: Map<string, ServiceJson>;
}

/** The three agents, their services' journals, and GET /api/v1/services read from inside each namespace. */
class ServicesLab {
  readonly agents: NetnsAgents;
  private readonly lab: NetnsLab;
  private readonly dir: string;
  private readonly nodes: readonly DevNode[];
  private readonly relays = new Map<string, NetnsHttpRelay>();

  private constructor(lab: NetnsLab, dir: string, nodes: readonly DevNode[]) {
    this.lab = lab;
    this.dir = dir;
    this.nodes = nodes;
    this.agents = new NetnsAgents(lab, nodes);
  }

  static async create(lab: NetnsLab, dir: string): Promise<ServicesLab> {
    const nodes = await prepareDevCluster({
      nodes: nodeIds.length,
      dir,
      basePort,
      security: "mtls",
      witness: false,
    });
    placeInNamespaces(lab, nodes);
    const services = serviceNames.map((name, index) => {
      const log = join(dir, `${name}.log`);
      appendFileSync(log, "");
      return {
        name,
        prefer: [nodeIds[index]],
        failover_after_ms: failoverAfterMs,
        drivers: [
          {
            type: "exec",
            start: journalCommand(log, "start"),
            stop: journalCommand(log, "stop"),
            timeout_ms: 10_000,
          },
        ],
      };
    });
    for (const node of nodes) {
      editConfigFile(node.configPath, (config) => {
        config.services = services;
      });
    }
    return new ServicesLab(lab, dir, nodes);
  }

  startAll(): void {
    for (const node of this.nodes) {
      this.agents.start(node.id);
      this.relays.set(node.id, new NetnsHttpRelay(this.lab, node.id));
    }
  }

  journal(service: string): DriverLine[] {
    return readDriverLines(join(this.dir, `${service}.log`));
  }

  journals(): string {
    return serviceNames.map((name) => `${name}:\n${formatLines(this.journal(name))}`).join("\n");
  }

  /** Every node's GET /api/v1/services; nodes that did not answer in time are left out. */
  async views(ids: readonly string[] = nodeIds): Promise<Map<string, ServicesJson>> {
    const entries = await Promise.all(
      ids.map(async (id) => {
        const url = `${this.agents.node(id).apiUrl}/api/v1/services`;
        const view = (await this.relays.get(id)?.getJson(url, apiTimeoutMs)) as ServicesJson | null;
        return [id, view] as const;
      }),
    );
    return new Map(entries.filter((e): e is readonly [string, ServicesJson] => e[1] !== null));
  }

  dump(views?: Map<string, ServicesJson>): string {
    const seen = views
      ? [...views].map(([id, v]) => `${id} (term ${v.term}): ${describeServices(v)}`).join("\n")
      : "";
    return `${seen}\n${this.journals()}\n${this.agents.dumpLogs()}`;
  }
}

function describeServices(view: ServicesJson): string {
  return view.services
    .map((s) => `${s.name}=${s.owner}/${s.state}/${s.fence} (${s.code}: ${s.reason})`)
    .join(", ");
}

/** The leader every listed node reports, in one term, if the leader itself says it leads. */
function agreedLeader(round: StatusRound, ids: readonly string[]): { leaderId: string; term: number } | null {
  const listed = ids.map((id) => round.get(id));
  const first = listed[0];
  if (!first?.leaderId || !ids.includes(first.leaderId)) return null;
  const agreed = listed.every((s) => s?.leaderId === first.leaderId && s.term === first.term);
  return agreed && round.get(first.leaderId)?.role === "leader"
    ? { leaderId: first.leaderId, term: first.term }
    : null;
}

/** Every service placed and running, the same in every listed view (owner, state, fence), from `term` on. */
function agreedServices(
  views: Map<string, ServicesJson>,
  ids: readonly string[],
  term: number,
): Map<string, ServiceJson> | null {
  const listed = ids.map((id) => views.get(id));
  const first = listed[0];
  if (first === undefined || first.term < term || first.services.length !== serviceNames.length) return null;
  const same = (a: ServiceJson, b: ServiceJson | undefined) =>
    b !== undefined && a.owner === b.owner && a.state === b.state && a.fence === b.fence;
  for (const service of first.services) {
    if (service.owner === null || service.state !== "running" || service.fence === null) return null;
    const everywhere = listed.every(
      (view) =>
        view?.term === first.term &&
        same(
          service,
          view.services.find((s) => s.name === service.name),
        ),
    );
    if (!everywhere) return null;
  }
  return new Map(first.services.map((s) => [s.name, s]));
}

const { unsupported, skip } = netnsTestGate();

describe("services: an owner cut off by nftables (3 agents, one namespace each)", {
  skip,
  timeout: 300_000,
}, () => {
  let lab: NetnsLab | undefined;
  let dir: string | undefined;
  let cluster: ServicesLab;

  before(async () => {
    if (unsupported) assert.fail(unsupported);
    lab = NetnsLab.create(nodeIds);
    dir = mkdtempSync(join(tmpdir(), "tandem-services-partition-"));
    cluster = await ServicesLab.create(lab, dir);
    cluster.startAll();
  });

  after(async () => {
    await lab?.dispose();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /**
   * One leader agreed by all, every peer alive everywhere, and every node showing each service running
   * on the one node its journal says runs it.
   */
  async function settled(what: string, minTerm = 0): Promise<Settled> {
    const deadline = Date.now() + waitTimeoutMs;
    let views = new Map<string, ServicesJson>();
    while (Date.now() < deadline) {
      const round = await cluster.agents.statuses();
      const leader = agreedLeader(round, nodeIds);
      const allAlive = [...round.values()].every((s) => s.peers.every((p) => p.state === "alive"));
      views = await cluster.views();
      if (leader !== null && leader.term >= minTerm && allAlive) {
        const services = agreedServices(views, nodeIds, leader.term);
        const journalsAgree =
          services !== null &&
          [...services].every(([name, s]) => runningNodes(cluster.journal(name)).join() === s.owner);
        if (services !== null && journalsAgree) return { ...leader, services };
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.fail(`not settled (${what}) within ${waitTimeoutMs} ms\n${cluster.dump(views)}`);
  }

  /** Nothing moves and the journals stay as they are, for a while after the cluster settled. */
  async function assertSticky(expected: Settled, journalLengths: Map<string, number>): Promise<void> {
    const watchUntilMs = Date.now() + stickyWatchMs;
    let samples = 0;
    while (Date.now() < watchUntilMs || samples < stickySamplesMin) {
      const views = await cluster.views();
      for (const [id, view] of views) {
        for (const service of view.services) {
          const owner = expected.services.get(service.name)?.owner;
          assert.equal(service.owner, owner, `${id} shows ${service.name} on ${service.owner}, not ${owner}`);
        }
      }
      if (views.size === nodeIds.length) samples += 1;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    // Only where it runs: a holder whose renewal came back late may restart it there (logged), never elsewhere.
    for (const name of serviceNames) {
      const since = cluster.journal(name).slice(journalLengths.get(name));
      const owner = expected.services.get(name)?.owner;
      assert.deepEqual(
        since.filter((l) => l.node !== owner),
        [],
        `${name} was started or stopped off ${owner} after the cluster settled\n${cluster.journals()}`,
      );
      if (since.length > 0)
        console.log(`${name} restarted on ${owner}: ${formatLines(since).replaceAll("\n", "; ")}`);
    }
  }

  /**
   * Cuts `isolated` off, checks what its services did, heals, checks they stay put. Returns the services it
   * owned and the node each one moved to.
   */
  async function cutOff(isolated: string, before: Settled): Promise<Map<string, string>> {
    const majority = nodeIds.filter((id) => id !== isolated);
    const moving = [...before.services.values()].filter((s) => s.owner === isolated);
    const staying = [...before.services.values()].filter((s) => s.owner !== isolated);
    const linesBefore = new Map(serviceNames.map((name) => [name, cluster.journal(name).length]));
    const cutAtMs = Date.now();
    lab!.isolate(isolated, "both");
    let moved: Map<string, ServiceJson>;
    try {
      // The majority runs every service, none on the isolated node.
      const deadline = Date.now() + waitTimeoutMs;
      let views = new Map<string, ServicesJson>();
      for (;;) {
        views = await cluster.views(majority);
        const agreed = agreedServices(views, majority, 0);
        if (agreed !== null && [...agreed.values()].every((s) => s.owner !== isolated)) {
          moved = agreed;
          break;
        }
        assert.ok(
          Date.now() < deadline,
          `${isolated}'s services did not move within ${waitTimeoutMs} ms\n${cluster.dump(views)}`,
        );
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      const movedAfterMs = Date.now() - cutAtMs;
      for (const service of moving) {
        const lines = cluster.journal(service.name);
        const since = grantedLines(lines.slice(linesBefore.get(service.name)));
        const stop = since.find((l) => l.step === "stop" && l.node === isolated);
        const start = since.find((l) => l.step === "start");
        const context = `${service.name}, cut at ${cutAtMs}\n${formatLines(lines)}`;
        assert.ok(stop, `${isolated} never stopped ${context}`);
        assert.ok(
          compareFenceText(stop.fence, service.fence ?? "") >= 0,
          `${isolated} stopped under ${stop.fence}, older than the ${service.fence} it ran under: ${context}`,
        );
        assert.ok(start, `no new start of ${context}`);
        assert.notEqual(start.node, isolated, `restarted on the cut-off node: ${context}`);
        assert.equal(start.node, moved.get(service.name)?.owner, `started elsewhere than shown: ${context}`);
        assert.ok(stop.atMs <= start.atMs, `${start.node} started it before ${isolated} stopped: ${context}`);
        assert.ok(
          compareFenceText(start.fence, stop.fence) > 0,
          `${start.fence} is not newer than ${stop.fence}: ${context}`,
        );
        console.log(
          `${service.name}: ${isolated} cut off; it stopped there ${stop.atMs - cutAtMs} ms after the cut, ` +
            `started on ${start.node} (${stop.fence} -> ${start.fence}) ${start.atMs - stop.atMs} ms later; ` +
            `the majority showed it moved after ${movedAfterMs} ms`,
        );
      }
    } finally {
      // Healed also when an assertion failed, so that the next test starts from a whole cluster.
      lab!.heal(isolated);
    }

    const healed = await settled(`after ${isolated}'s cut healed`, before.term);
    for (const service of moving) {
      const now = healed.services.get(service.name);
      assert.equal(now?.owner, moved.get(service.name)?.owner, `${service.name} moved again after the heal`);
    }
    const journalLengths = new Map(serviceNames.map((name) => [name, cluster.journal(name).length]));
    await assertSticky(healed, journalLengths);
    for (const name of serviceNames) {
      const lines = cluster.journal(name);
      assertNeverTwoAtOnce(lines, name);
      assert.deepEqual(
        runningNodes(lines),
        [healed.services.get(name)?.owner],
        `${name} runs on exactly one node, the one every node shows\n${formatLines(lines)}`,
      );
    }
    for (const service of moving) {
      const since = grantedLines(cluster.journal(service.name).slice(linesBefore.get(service.name)));
      const restarted = since.filter((l) => l.step === "start" && l.node === isolated);
      assert.deepEqual(restarted, [], `${isolated} started ${service.name} again after its cut`);
    }
    // The services it did not run stay where they are. (When the leader is cut off, their holders cannot
    // renew their grants until a new leader exists, so they may stop and start again there: logged.)
    for (const service of staying) {
      assert.equal(healed.services.get(service.name)?.owner, service.owner, `${service.name} moved`);
      const since = grantedLines(cluster.journal(service.name).slice(linesBefore.get(service.name)));
      console.log(
        `${service.name} on ${service.owner} (not cut off): ${since.length === 0 ? "untouched" : `restarted there: ${formatLines(since).replaceAll("\n", "; ")}`}`,
      );
    }
    return new Map(moving.map((s) => [s.name, moved.get(s.name)?.owner ?? ""]));
  }

  it("every service starts on one node, the same in every node's view", async () => {
    const first = await settled("at start");
    for (const name of serviceNames) {
      const lines = grantedLines(cluster.journal(name));
      const owner = first.services.get(name)?.owner;
      assert.equal(lines[0]?.step, "start", formatLines(lines));
      assert.deepEqual(
        lines.filter((l) => l.node !== owner),
        [],
        `${name} started on ${owner} only\n${formatLines(lines)}`,
      );
      if (lines.length > 1)
        console.log(`${name} restarted on ${owner}: ${formatLines(lines).replaceAll("\n", "; ")}`);
    }
  });

  it("an owner that does not lead, cut off: it stops before its services start elsewhere, under newer grants; healed, they stay", async () => {
    const before = await settled("before the cut");
    const isolated = nodeIds.find(
      (id) => id !== before.leaderId && [...before.services.values()].some((s) => s.owner === id),
    );
    assert.ok(isolated, `every service runs on the leader ${before.leaderId}\n${cluster.dump()}`);
    const moved = await cutOff(isolated, before);
    assert.ok(moved.size >= 1);
    console.log(`${isolated} (a follower of ${before.leaderId}) cut off and healed`);
  });

  it("the owner that leads, cut off: the same, under a new leader", async () => {
    const before = await settled("before the cut");
    const owned = [...before.services.values()].filter((s) => s.owner === before.leaderId);
    assert.ok(owned.length >= 1, `the leader ${before.leaderId} runs no service\n${cluster.dump()}`);
    await cutOff(before.leaderId, before);
    const after = await settled("after the second case");
    console.log(
      `${before.leaderId} (the leader, term ${before.term}) cut off; ${after.leaderId} leads in term ${after.term}`,
    );
  });
});
