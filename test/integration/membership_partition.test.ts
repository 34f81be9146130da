// Issue 23's scenario in network namespaces: four agents whose tandem.yml files disagree about the cluster
// (n1 and n3 list {n1,n2,n3}; n2 and n4 list {n1,n2,n4}, halfway through replacing n3 by n4). A new cluster
// bootstraps only once every listed node announced the same list, so nobody may lead, with every link up
// and with the n1-n2 link cut. The control: n1..n3 agreeing elect one leader, and cutting n1-n2 never
// yields two leaders at once or two in one term.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type DevNode, prepareDevCluster } from "../../src/cli/dev_cluster.ts";
import { editConfigFile, setPriority } from "../support/dev_config_edit.ts";
import {
  assertLoggedTenuresDisjoint,
  describeRound,
  LeadershipRecord,
  type StatusRound,
  watchLeadership,
} from "../support/leadership_record.ts";
import type { MemberNodeStatus } from "../support/membership_cluster.ts";
import { NetnsLab, netnsTestGate } from "../support/netns.ts";
import { NetnsAgents } from "../support/netns_agents.ts";
import { placeInNamespaces } from "../support/netns_cluster.ts";
import { cutLink, healLink } from "../support/netns_link_cut.ts";

const nodeIds = ["n1", "n2", "n3", "n4"];
/** Every agent has its own namespace, so fixed ports cannot collide with anything else on the machine. */
const basePort = 7400;
/** Each watch lasts at least this long and this many rounds in which every started node answered. */
const watchMs = 5_000;
const watchRoundsMin = 40;
/** Bounds a broken build; a loaded machine may take long to get there. */
const waitTimeoutMs = 30_000;

/** Dev nodes placed in the lab, each configured with the peers `peersOf` names (the rest dropped). */
async function prepareNodes(
  lab: NetnsLab,
  dir: string,
  peersOf: Record<string, readonly string[]>,
): Promise<DevNode[]> {
  const nodes = await prepareDevCluster({
    nodes: nodeIds.length,
    dir,
    basePort,
    security: "mtls",
    witness: false,
  });
  for (const node of nodes) {
    const wanted = peersOf[node.id] ?? [];
    editConfigFile(node.configPath, (config) => {
      config.peers = config.peers.filter((p) => wanted.includes(p.id));
    });
  }
  placeInNamespaces(lab, nodes);
  return nodes;
}

/** The pino records of one node's log with this message. */
function logged(lines: readonly string[], msg: string): Array<Record<string, unknown>> {
  return lines.flatMap((line) => {
    try {
      const record = JSON.parse(line) as Record<string, unknown>;
      return record.msg === msg ? [record] : [];
    } catch {
      return [];
    }
  });
}

/** The cut took: n1 and n2 each see their link to the other down (else the watch would prove nothing). */
async function waitForCut(agents: NetnsAgents, record: LeadershipRecord): Promise<void> {
  const down = (round: StatusRound, self: string, other: string) =>
    (round.get(self) as MemberNodeStatus | undefined)?.peers.find((p) => p.id === other)?.link === "down";
  await agents.waitFor(
    "n1 and n2 to see their link down",
    (round) => {
      record.add(round);
      return down(round, "n1", "n2") && down(round, "n2", "n1") ? true : undefined;
    },
    waitTimeoutMs,
  );
}

function assertNobodyLeads(round: StatusRound): void {
  for (const [id, status] of round) {
    assert.notEqual(status.role, "leader", `${id} leads: ${describeRound(round)}`);
    assert.equal(status.leaderId, null, `${id} follows ${status.leaderId}: ${describeRound(round)}`);
  }
}

const { unsupported, skip } = netnsTestGate();

/** One lab and one dev-cluster folder per describe, removed afterwards whatever happened. */
function useLab(prefix: string): { lab: () => NetnsLab; dir: () => string } {
  let lab: NetnsLab | undefined;
  let dir: string | undefined;
  before(() => {
    if (unsupported) assert.fail(unsupported);
    lab = NetnsLab.create(nodeIds);
    dir = mkdtempSync(join(tmpdir(), prefix));
  });
  after(async () => {
    await lab?.dispose();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });
  return { lab: () => lab!, dir: () => dir! };
}

describe("membership partition: mismatched peer lists in tandem.yml (4 agents, one namespace each)", {
  skip,
  timeout: 240_000,
}, () => {
  const env = useLab("tandem-membership-mismatch-");

  it("nobody leads with every link up, nor with the n1-n2 link cut; each node logs the mismatch", async () => {
    const lab = env.lab();
    const nodes = await prepareNodes(lab, env.dir(), {
      n1: ["n2", "n3"],
      n3: ["n1", "n2"],
      n2: ["n1", "n4"],
      n4: ["n1", "n2"],
    });
    const agents = new NetnsAgents(lab, nodes);
    for (const id of nodeIds) agents.start(id);
    const record = new LeadershipRecord();
    const read = () => agents.statuses();

    // Every node hears a peer proposing another list: proof that the nodes talk, before watching.
    await agents.waitFor(
      "every node to log a membership mismatch",
      () =>
        nodeIds.every((id) =>
          logged(agents.logLines().get(id) ?? [], "membership mismatch").some((r) =>
            String(r.detail).includes("proposes a different bootstrap list"),
          ),
        )
          ? true
          : undefined,
      waitTimeoutMs,
    );
    const check = (round: StatusRound) => assertNobodyLeads(round);
    const linked = await watchLeadership(record, {
      durationMs: watchMs,
      roundsMin: watchRoundsMin,
      read,
      expected: nodeIds,
      check,
    });

    cutLink(lab, "n1", "n2");
    await waitForCut(agents, record);
    const cut = await watchLeadership(record, {
      durationMs: watchMs,
      roundsMin: watchRoundsMin,
      read,
      expected: nodeIds,
      check,
    });

    const final = await agents.statuses();
    for (const [id, status] of final) {
      const { standing } = (status as MemberNodeStatus).membership;
      assert.equal(standing, "bootstrapping", `${id} took a membership from disagreeing lists`);
    }
    record.addLogged(agents.logLines());
    assert.equal(record.leaders().size, 0, `a node logged an election: ${[...record.leaders()].join(" ")}`);
    console.log(`mismatched lists: no leader in ${linked} rounds with every link up, ${cut} with n1-n2 cut`);
  });
});

describe("membership partition: the control, n1..n3 agreeing (n4 not started)", {
  skip,
  timeout: 240_000,
}, () => {
  const env = useLab("tandem-membership-agree-");

  it("one leader; with the n1-n2 link cut never two leaders at once nor two in one term", async () => {
    const lab = env.lab();
    const three = ["n1", "n2", "n3"];
    const nodes = await prepareNodes(lab, env.dir(), {
      n1: ["n2", "n3"],
      n2: ["n1", "n3"],
      n3: ["n1", "n2"],
      n4: ["n1", "n2"],
    });
    // n3 ranks below n1 and n2, so the leader ends up on one side of the cut link.
    setPriority(
      nodes.map((n) => n.configPath),
      "n3",
      50,
    );
    const agents = new NetnsAgents(lab, nodes);
    for (const id of three) agents.start(id);
    const record = new LeadershipRecord();
    const read = () => agents.statuses();

    const first = await agents.waitFor(
      "one leader, n1 or n2, agreed by n1..n3",
      (round) => {
        record.add(round);
        const leaders = [...round].filter(([, s]) => s.role === "leader" && s.leaseValid);
        const leader = leaders[0]?.[0];
        return round.size === 3 &&
          leaders.length === 1 &&
          leader !== "n3" &&
          [...round.values()].every((s) => s.leaderId === leader)
          ? leader
          : undefined;
      },
      waitTimeoutMs,
    );
    await watchLeadership(record, {
      durationMs: watchMs / 2,
      roundsMin: watchRoundsMin / 2,
      read,
      expected: three,
    });

    cutLink(lab, "n1", "n2");
    await waitForCut(agents, record);
    const cut = await watchLeadership(record, {
      durationMs: watchMs,
      roundsMin: watchRoundsMin,
      read,
      expected: three,
    });
    // n3 still reaches both: a quorum keeps (or elects) a leader with a valid lease.
    const kept = await agents.waitFor(
      "a lease-holding leader followed by a majority with n1-n2 cut",
      (round) => {
        record.add(round);
        const leader = [...round].find(([, s]) => s.role === "leader" && s.leaseValid)?.[0];
        const followers = [...round.values()].filter((s) => s.leaderId === leader).length;
        return leader !== undefined && followers >= 2 ? leader : undefined;
      },
      waitTimeoutMs,
    );

    healLink(lab, "n1", "n2");
    await agents.waitFor(
      "n1..n3 to agree on one leader again",
      (round) => {
        record.add(round);
        const leader = [...round].find(([, s]) => s.role === "leader")?.[0];
        return round.size === 3 && [...round.values()].every((s) => s.leaderId === leader)
          ? leader
          : undefined;
      },
      waitTimeoutMs,
    );
    record.addLogged(agents.logLines());
    assertLoggedTenuresDisjoint(agents.logLines());
    console.log(
      `agreeing lists: ${first} led; n1-n2 cut for ${cut} rounds, then ${kept} led; ` +
        `${record.rounds} rounds, leaders by term ${JSON.stringify(Object.fromEntries(record.leaders()))}`,
    );
  });
});
