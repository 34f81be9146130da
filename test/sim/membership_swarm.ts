// The membership swarm: the election swarm's faults (swarm.ts) on clusters of 1..5 voters plus 0..3 spare
// nodes in join mode, while the current leader is asked at random moments for membership changes
// (membership_changes.ts); a change asked for while another is in flight is refused, which is fine. After
// healing, every live voter of the newest committed list must know one leader within
// ticksMaxConvergence, a leader whose list is committed and who has the highest priority among its
// list's voting members, and that must hold for ticksStable. The safety checker runs after every event,
// across every node whatever list it holds.
import { Prng } from "../../src/core/prng.ts";
import type { NodeId } from "../../src/core/types.ts";
import { clockDriftMax, unitsPerTick } from "./clock.ts";
import { Cluster, type LeaderAgreement, type NodeSpec } from "./cluster.ts";
import { drawChange, type Replacement } from "./membership_changes.ts";
import {
  describeOptions,
  type HistoryHooks,
  heal,
  holdsFor,
  injectFaults,
  realElection,
  SwarmFailureError,
  type SwarmOptions,
  swarmOptions,
} from "./swarm.ts";

export const votersMax = 5;
export const sparesMax = 3;

export interface MembershipSwarmOptions extends SwarmOptions {
  /** Nodes that start in join mode, after the voters in `nodes`. */
  spares: number;
  /** Start from the bootstrap exchange rather than an agreed version 1 on disk. */
  fresh: boolean;
  /** Per nominal tick of the fault phase: the leader is asked for one change. */
  proposeProbability: number;
}

export function membershipSwarmOptions(rng: Prng): MembershipSwarmOptions {
  const base = swarmOptions(rng.fork("election"), votersMax);
  const own = rng.fork("membership");
  const spares = own.intBetween(0, sparesMax);
  const nodes: NodeSpec[] = [...base.nodes];
  for (let i = 1; i <= spares; i++) {
    nodes.push({
      id: `n${base.nodes.length + i}`,
      witness: false,
      join: true,
      priority: own.intBetween(0, 3),
      drift: Math.round((own.next() * 2 - 1) * clockDriftMax * 1e4) / 1e4,
      firstTickUnits: own.intBetween(0, unitsPerTick - 1),
    });
  }
  return {
    ...base,
    // Always on, as in the agent: without pre-vote a node holding an older list keeps raising the term
    // with vote requests nobody grants, which delays recovery past the bound (seed 8439, ~55 T).
    preVote: true,
    nodes,
    spares,
    fresh: own.chance(0.5),
    proposeProbability: 0.01 + own.next() * 0.2,
  };
}

export function membershipReplayCommand(seed: string): string {
  return `npm run sim -- --membership --seed ${seed}`;
}

export interface MembershipHistoryResult {
  seed: string;
  voters: number;
  spares: number;
  events: number;
  ticks: number;
  convergenceTicks: number;
  electionTimeoutTicks: number;
  leader: LeaderAgreement;
  /** Changes the leaders accepted, and how many of them were committed (the newest committed version). */
  changesAccepted: number;
  committedVersion: number;
}

/** Runs one history from its seed; throws SwarmFailureError (with the seed) on any failure. */
export function runMembershipHistory(seed: string, hooks: HistoryHooks = {}): MembershipHistoryResult {
  const rng = new Prng(seed);
  const options = membershipSwarmOptions(rng.fork("options"));
  try {
    return runOptions(seed, rng, options, hooks);
  } catch (error) {
    if (error instanceof SwarmFailureError) throw error;
    const reason = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    throw new SwarmFailureError(seed, reason, error, membershipReplayCommand(seed));
  }
}

function runOptions(
  seed: string,
  rng: Prng,
  o: MembershipSwarmOptions,
  hooks: HistoryHooks,
): MembershipHistoryResult {
  const cluster = new Cluster({
    rng: rng.fork("cluster"),
    nodes: o.nodes,
    electionTimeoutTicks: o.electionTimeoutTicks,
    heartbeatIntervalTicks: o.heartbeatIntervalTicks,
    leaseTicks: o.leaseTicks,
    preVote: o.preVote,
    checkQuorum: true,
    network: o.network,
    bootstrapped: !o.fresh,
    log: hooks.log,
    logMessages: hooks.logMessages,
    createElection: hooks.createElection ?? realElection,
  });
  cluster.line(describeOptions(o));
  cluster.line(`spares=${o.spares} fresh=${o.fresh} propose=${o.proposeProbability.toFixed(3)}`);
  const faults = rng.fork("faults");
  const changes = new ChangeDriver(cluster, rng.fork("changes"));
  for (let t = 0; t < o.faultTicks; t++) {
    injectFaults(cluster, o, faults);
    if (faults.chance(o.proposeProbability)) changes.proposeOne();
    cluster.network.tickFaults(cluster.nowUnits, unitsPerTick);
    cluster.runTicks(1);
  }
  heal(cluster, o);
  const { leader, convergenceTicks } = awaitStableLeader(cluster, o, seed);
  return {
    seed,
    voters: o.nodes.length - o.spares,
    spares: o.spares,
    events: cluster.eventsProcessed,
    ticks: Math.ceil(cluster.nowUnits / unitsPerTick),
    convergenceTicks,
    electionTimeoutTicks: o.electionTimeoutTicks,
    leader,
    changesAccepted: changes.accepted,
    committedVersion: cluster.checker.newestCommitted?.version ?? 0,
  };
}

/**
 * Asks the newest live leader for changes, carrying a replacement across its steps. Any node outside the
 * leader's list may be added, removed ones too (a removed node votes for a list newer than its own).
 */
class ChangeDriver {
  accepted = 0;
  private replacement: Replacement | null = null;
  private readonly cluster: Cluster;
  private readonly rng: Prng;

  constructor(cluster: Cluster, rng: Prng) {
    this.cluster = cluster;
    this.rng = rng;
  }

  proposeOne(): void {
    const leader = newestLeader(this.cluster);
    const list = leader === null ? null : this.cluster.status(leader)?.membership.config;
    if (leader === null || list == null) return;
    const listed = new Set(list.nodes.map((n) => n.id));
    const outsiders = this.cluster.ids.filter((id) => !listed.has(id));
    const draw = drawChange(this.rng, list, leader, outsiders, this.replacement);
    if (draw === null) return;
    if (!this.cluster.propose(leader, draw.change).ok) return;
    this.accepted++;
    this.replacement = draw.replacement;
  }
}

/** The live leader of the highest term (a deposed one may not know yet), or null. */
function newestLeader(cluster: Cluster): NodeId | null {
  let best: { id: NodeId; term: number } | null = null;
  for (const id of cluster.ids) {
    const s = cluster.status(id);
    if (s?.role === "leader" && (best === null || s.term > best.term)) best = { id, term: s.term };
  }
  return best?.id ?? null;
}

/**
 * One leader known by every live voter of the newest committed list, holding that list committed and of
 * the highest priority among its voting members; null while there is none.
 */
function settledLeader(cluster: Cluster): LeaderAgreement | null {
  const committed = cluster.checker.newestCommitted?.config;
  if (committed == null) return null;
  const voters = committed.nodes.filter((n) => n.voting).map((n) => n.id);
  const agreed = cluster.leaderAgreement(voters);
  if (agreed === null) return null;
  const leader = cluster.status(agreed.leaderId)?.membership;
  if (leader?.config == null || leader.pendingVersion !== null) return null;
  if (leader.config.version !== committed.version) return null;
  const eligible = leader.config.nodes.filter((n) => n.voting && n.role === "member");
  const own = eligible.find((n) => n.id === agreed.leaderId)?.priority;
  return own === Math.max(...eligible.map((n) => n.priority)) ? agreed : null;
}

function awaitStableLeader(
  cluster: Cluster,
  o: MembershipSwarmOptions,
  seed: string,
): { leader: LeaderAgreement; convergenceTicks: number } {
  const healedAtUnits = cluster.nowUnits;
  const deadlineUnits = healedAtUnits + o.ticksMaxConvergence * unitsPerTick;
  for (;;) {
    let leader = settledLeader(cluster);
    while (leader === null && cluster.nowUnits < deadlineUnits) {
      cluster.runTicks(1);
      leader = settledLeader(cluster);
    }
    if (leader === null) {
      const what = `no settled leader known by every voter of the newest committed list, stable for ${o.ticksStable} ticks,`;
      throw new SwarmFailureError(
        seed,
        `${what} within ${o.ticksMaxConvergence} ticks after healing`,
        undefined,
        membershipReplayCommand(seed),
      );
    }
    const convergenceTicks = Math.ceil((cluster.nowUnits - healedAtUnits) / unitsPerTick);
    cluster.line(`voters know leader ${leader.leaderId} term=${leader.term} after ${convergenceTicks} ticks`);
    if (holdsFor(cluster, leader, o.ticksStable, () => settledLeader(cluster)))
      return { leader, convergenceTicks };
    cluster.line(`agreement on ${leader.leaderId} term=${leader.term} broke`);
  }
}
