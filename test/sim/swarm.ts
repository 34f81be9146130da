// The VOPR-style swarm: a seed draws a whole cluster (size, witnesses, priorities, timings, clock drift)
// and its fault rates (network delay, loss, duplication, clogs, partitions, crashes, torn drains, stalls,
// leadership transfers, closed-link hints, true or spurious). The history runs a fault phase, then heals
// everything: the network goes quiet (delays only), crashed nodes restart, stalls end. Within
// ticksMaxConvergence every live node must know one leader, and it must be a member of the highest
// priority; it must then hold for ticksStable. Safety is checked after every event throughout
// (checkers/election_safety.ts).
import { Election } from "../../src/core/election.ts";
import { Prng } from "../../src/core/prng.ts";
import type { NodeId } from "../../src/core/types.ts";
import { clockDriftMax, unitsPerTick } from "./clock.ts";
import { Cluster, type ElectionFactory, type LeaderAgreement, type NodeSpec } from "./cluster.ts";
import { type NetworkOptions, PartitionMode, PartitionSymmetry, quietNetworkOptions } from "./network.ts";

export const realElection: ElectionFactory = (config, persisted, rng) => new Election(config, persisted, rng);

export const clusterSizeMax = 7;

export interface SwarmOptions {
  nodes: NodeSpec[];
  electionTimeoutTicks: number;
  heartbeatIntervalTicks: number;
  leaseTicks: number;
  preVote: boolean;
  network: NetworkOptions;
  /** Per live node, per nominal tick. */
  crashProbability: number;
  /** Per crashed node, per nominal tick. */
  restartProbability: number;
  /** Share of crashes that tear the node's next drain instead of falling between events. */
  tornCrashShare: number;
  /** Share of clean crashes that close the node's links (kill -9), telling its peers at once. */
  crashClosesLinksShare: number;
  /**
   * Per nominal tick: a random live node hears that its link to a random peer closed although both live
   * (a reset link, a keepalive timeout in a partition). The hint must never cost safety.
   */
  spuriousDisconnectProbability: number;
  pauseProbability: number;
  pauseTicksMax: number;
  /** Per nominal tick: the leader is asked to hand over to a random member. */
  transferProbability: number;
  /**
   * Per nominal tick: the leader is singled out, either stalled past its lease (up to 3 T) or cut off
   * (symmetric or one-way) until the network heals: the failovers where two leases could overlap.
   */
  leaderFaultProbability: number;
  /** Per nominal tick: a random live node is asked to campaign (witnesses must ignore it). */
  campaignProbability: number;
  faultTicks: number;
  /** Time allowed after healing, counted from the end of the fault phase. */
  ticksMaxConvergence: number;
  /** How long the converged leader must then stay, unchanged, known by all. */
  ticksStable: number;
}

/** Convergence bound in election timeouts: stalls end (<= 3T), stale terms settle, pre-vote rounds. */
export const convergenceTimeouts = 30;

/** `sizeMax` caps the voters (the membership swarm adds spares of its own). */
export function swarmOptions(rng: Prng, sizeMax = clusterSizeMax): SwarmOptions {
  const size = rng.intBetween(1, sizeMax);
  const witnessesMax = size === 2 ? 1 : Math.floor((size - 1) / 2);
  const witnesses = witnessesMax > 0 && rng.chance(0.3) ? rng.intBetween(1, witnessesMax) : 0;
  const equalPriorities = rng.chance(0.5);
  const T = rng.intBetween(6, 16);
  const heartbeatIntervalTicks = rng.intBetween(1, Math.max(1, Math.floor(T / 4)));
  // At least two heartbeats fit in a lease; half the seeds take the longest lease allowed (0.9 T), the
  // edge where clock drift and tick quantisation could let two leases overlap.
  const leaseTicksMax = Math.floor(0.9 * T);
  const leaseTicksMin = Math.max(2 * heartbeatIntervalTicks + 2, Math.ceil(T / 2));
  const leaseTicks = rng.chance(0.5) ? leaseTicksMax : rng.intBetween(leaseTicksMin, leaseTicksMax);
  const extremeDrift = rng.chance(0.3);
  const nodes: NodeSpec[] = [];
  for (let i = 1; i <= size; i++) {
    const witness = i > size - witnesses;
    const drift = extremeDrift
      ? rng.pick([-clockDriftMax, clockDriftMax])
      : Math.round((rng.next() * 2 - 1) * clockDriftMax * 1e4) / 1e4;
    nodes.push({
      id: `n${i}`,
      witness,
      priority: witness || equalPriorities ? 0 : rng.intBetween(0, 3),
      drift,
      firstTickUnits: rng.intBetween(0, unitsPerTick - 1),
    });
  }
  const delayMinUnits = rng.intBetween(0, 200);
  const faulty = rng.chance(0.9);
  const network: NetworkOptions = {
    delayMinUnits,
    // Round trips stay well inside the lease (a mean one-way delay up to T/10), as on a real network.
    delayMeanUnits: delayMinUnits + rng.intBetween(0, (T * unitsPerTick) / 10),
    lossProbability: faulty && rng.chance(0.7) ? rng.next() * 0.2 : 0,
    duplicateProbability: faulty && rng.chance(0.5) ? rng.next() * 0.1 : 0,
    pathCapacityMax: rng.intBetween(8, 64),
    clogProbability: faulty && rng.chance(0.3) ? rng.next() * 0.01 : 0,
    clogTicksMean: rng.intBetween(1, 2 * T),
    partitionMode: faulty ? rng.pick(Object.values(PartitionMode)) : PartitionMode.None,
    partitionSymmetry: rng.pick(Object.values(PartitionSymmetry)),
    partitionProbability: rng.next() * 0.05,
    unpartitionProbability: 0.01 + rng.next() * 0.2,
  };
  return {
    nodes,
    electionTimeoutTicks: T,
    heartbeatIntervalTicks,
    leaseTicks,
    preVote: rng.chance(0.75),
    network,
    crashProbability: faulty && rng.chance(0.6) ? rng.next() * 0.005 : 0,
    restartProbability: 0.02 + rng.next() * 0.2,
    tornCrashShare: rng.next() * 0.5,
    pauseProbability: faulty && rng.chance(0.4) ? rng.next() * 0.003 : 0,
    pauseTicksMax: rng.intBetween(1, 3 * T),
    transferProbability: rng.chance(0.3) ? rng.next() * 0.01 : 0,
    leaderFaultProbability: faulty && rng.chance(0.5) ? rng.next() * 0.01 : 0,
    campaignProbability: rng.chance(0.3) ? rng.next() * 0.005 : 0,
    faultTicks: rng.intBetween(10 * T, 30 * T),
    ticksMaxConvergence: convergenceTimeouts * T,
    ticksStable: 2 * T,
    // Drawn last, so that every other option of a seed stays what it was before these existed.
    crashClosesLinksShare: rng.next(),
    spuriousDisconnectProbability: faulty && rng.chance(0.5) ? rng.next() * 0.05 : 0,
  };
}

export class SwarmFailureError extends Error {
  override name = "SwarmFailureError";
  readonly seed: string;

  constructor(seed: string, what: string, cause?: unknown, replay = replayCommand(seed)) {
    super(`seed=${seed} ${what}\n  replay: ${replay} --verbose`, { cause });
    this.seed = seed;
  }
}

export function replayCommand(seed: string): string {
  return `npm run sim -- --seed ${seed}`;
}

export interface HistoryResult {
  seed: string;
  size: number;
  witnesses: number;
  events: number;
  ticks: number;
  /** Ticks from the end of the fault phase until every live node knew the expected leader. */
  convergenceTicks: number;
  electionTimeoutTicks: number;
  leader: LeaderAgreement;
  termsWithLeader: number;
}

export interface HistoryHooks {
  log?: (line: string) => void;
  logMessages?: boolean;
  /** The core under test; the real Election by default (tests swap in deliberately broken ones). */
  createElection?: ElectionFactory;
}

/** Runs one history from its seed; throws SwarmFailureError (with the seed) on any failure. */
export function runHistory(seed: string, hooks: HistoryHooks = {}): HistoryResult {
  const rng = new Prng(seed);
  const options = swarmOptions(rng.fork("options"));
  try {
    return runOptions(seed, rng, options, hooks);
  } catch (error) {
    if (error instanceof SwarmFailureError) throw error;
    const reason = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    throw new SwarmFailureError(seed, reason, error);
  }
}

function runOptions(seed: string, rng: Prng, o: SwarmOptions, hooks: HistoryHooks): HistoryResult {
  const cluster = new Cluster({
    rng: rng.fork("cluster"),
    nodes: o.nodes,
    electionTimeoutTicks: o.electionTimeoutTicks,
    heartbeatIntervalTicks: o.heartbeatIntervalTicks,
    leaseTicks: o.leaseTicks,
    preVote: o.preVote,
    checkQuorum: true,
    network: o.network,
    log: hooks.log,
    logMessages: hooks.logMessages,
    createElection: hooks.createElection ?? realElection,
  });
  cluster.line(describeOptions(o));
  const faults = rng.fork("faults");
  for (let t = 0; t < o.faultTicks; t++) {
    injectFaults(cluster, o, faults);
    cluster.network.tickFaults(cluster.nowUnits, unitsPerTick);
    cluster.runTicks(1);
  }
  heal(cluster, o);
  const { leader, convergenceTicks } = awaitStableLeader(cluster, o, seed);
  return {
    seed,
    size: o.nodes.length,
    witnesses: o.nodes.filter((n) => n.witness).length,
    events: cluster.eventsProcessed,
    ticks: Math.ceil(cluster.nowUnits / unitsPerTick),
    convergenceTicks,
    electionTimeoutTicks: o.electionTimeoutTicks,
    leader,
    termsWithLeader: cluster.checker.termsWithLeader,
  };
}

/**
 * After healing: every live node must know one leader of the highest member priority, and that agreement
 * must then hold for ticksStable; the agreement must start within ticksMaxConvergence. An agreement left
 * over from the fault phase that breaks (say a lease that was about to lapse) does not count.
 */
function awaitStableLeader(
  cluster: Cluster,
  o: SwarmOptions,
  seed: string,
): { leader: LeaderAgreement; convergenceTicks: number } {
  const healedAtUnits = cluster.nowUnits;
  const deadlineUnits = healedAtUnits + o.ticksMaxConvergence * unitsPerTick;
  const expectedPriority = Math.max(...o.nodes.filter((n) => !n.witness).map((n) => n.priority));
  const accept = (a: LeaderAgreement) => cluster.spec(a.leaderId).priority === expectedPriority;
  for (;;) {
    const ticksLeft = Math.max(0, Math.ceil((deadlineUnits - cluster.nowUnits) / unitsPerTick));
    const leader = cluster.runUntilAgreement({ ticksMax: ticksLeft, accept });
    if (leader === null) {
      const what = `no leader of priority ${expectedPriority} known by all and stable for ${o.ticksStable} ticks`;
      throw new SwarmFailureError(seed, `${what} within ${o.ticksMaxConvergence} ticks after healing`);
    }
    const convergenceTicks = Math.ceil((cluster.nowUnits - healedAtUnits) / unitsPerTick);
    cluster.line(`all know leader ${leader.leaderId} term=${leader.term} after ${convergenceTicks} ticks`);
    if (holdsFor(cluster, leader, o.ticksStable)) return { leader, convergenceTicks };
    cluster.line(`agreement on ${leader.leaderId} term=${leader.term} broke`);
  }
}

/** Whether `leader` stays the agreed leader for `ticks` (agreed as `agreement` judges; all nodes by default). */
export function holdsFor(
  cluster: Cluster,
  leader: LeaderAgreement,
  ticks: number,
  agreement: () => LeaderAgreement | null = () => cluster.leaderAgreement(),
): boolean {
  for (let t = 0; t < ticks; t++) {
    cluster.runTicks(1);
    const now = agreement();
    if (now?.leaderId !== leader.leaderId || now.term !== leader.term) return false;
  }
  return true;
}

export function injectFaults(cluster: Cluster, o: SwarmOptions, rng: Prng): void {
  for (const id of cluster.ids) {
    if (!cluster.isAlive(id)) {
      if (rng.chance(o.restartProbability)) cluster.restart(id);
    } else if (rng.chance(o.crashProbability)) {
      if (rng.chance(o.tornCrashShare)) cluster.crashAtDrainStep(id, rng.intBetween(0, 4));
      else cluster.crash(id, rng.chance(o.crashClosesLinksShare));
    } else if (rng.chance(o.pauseProbability)) {
      cluster.pause(id, rng.intBetween(1, o.pauseTicksMax));
    }
  }
  if (rng.chance(o.leaderFaultProbability)) {
    const leader = currentLeader(cluster);
    if (leader !== undefined && rng.chance(0.5)) {
      cluster.pause(leader, rng.intBetween(o.leaseTicks, 3 * o.electionTimeoutTicks));
    } else if (leader !== undefined && cluster.ids.length > 1) {
      const symmetry = rng.pick(Object.values(PartitionSymmetry));
      cluster.line(`${leader} cut off (${symmetry})`);
      cluster.network.partition([leader], symmetry);
    }
  }
  if (rng.chance(o.spuriousDisconnectProbability) && cluster.ids.length > 1) {
    const id = rng.pick(cluster.ids);
    // Mostly the link to the leader, the one the hint acts on.
    const leader = currentLeader(cluster);
    const peer =
      leader !== undefined && leader !== id && rng.chance(0.7)
        ? leader
        : rng.pick(cluster.ids.filter((other) => other !== id));
    cluster.disconnect(id, peer);
  }
  if (rng.chance(o.transferProbability)) {
    const leader = currentLeader(cluster);
    const members = o.nodes.filter((n) => !n.witness && n.id !== leader).map((n) => n.id);
    if (leader !== undefined && members.length > 0) {
      const to = rng.pick(members);
      cluster.line(`${leader} asked to transfer leadership to ${to}`);
      cluster.transferLeadership(leader, to);
    }
  }
  if (rng.chance(o.campaignProbability)) {
    const id = rng.pick(cluster.ids);
    if (cluster.isAlive(id)) {
      cluster.line(`${id} asked to campaign`);
      cluster.campaign(id);
    }
  }
}

export function currentLeader(cluster: Cluster): NodeId | undefined {
  return cluster.ids.find((id) => cluster.status(id)?.role === "leader");
}

export function heal(cluster: Cluster, o: SwarmOptions): void {
  cluster.line("heal: network quiet, crashed nodes restart");
  cluster.network.heal();
  // A healthy network: the drawn minimum delay, and a mean one-way delay of at most T/20.
  const delayMeanUnits = Math.min(
    o.network.delayMeanUnits,
    o.network.delayMinUnits + (o.electionTimeoutTicks * unitsPerTick) / 20,
  );
  cluster.network.setOptions(quietNetworkOptions(o.network.delayMinUnits, delayMeanUnits));
  for (const id of cluster.ids) {
    cluster.disarmTornCrash(id);
    if (!cluster.isAlive(id)) cluster.restart(id);
  }
}

export function describeOptions(o: SwarmOptions): string {
  const nodes = o.nodes
    .map((n) => `${n.id}${n.witness ? "(w)" : ""}:p${n.priority}:drift${(n.drift * 100).toFixed(2)}%`)
    .join(" ");
  const n = o.network;
  return [
    `nodes ${nodes}`,
    `T=${o.electionTimeoutTicks} hb=${o.heartbeatIntervalTicks} lease=${o.leaseTicks} preVote=${o.preVote}`,
    `delay=${n.delayMinUnits}+${n.delayMeanUnits - n.delayMinUnits}u loss=${n.lossProbability.toFixed(3)} dup=${n.duplicateProbability.toFixed(3)} cap=${n.pathCapacityMax}`,
    `clog=${n.clogProbability.toFixed(4)}/${n.clogTicksMean}t partition=${n.partitionMode}/${n.partitionSymmetry}`,
    `crash=${o.crashProbability.toFixed(4)} restart=${o.restartProbability.toFixed(3)} pause=${o.pauseProbability.toFixed(4)} leaderFault=${o.leaderFaultProbability.toFixed(4)}`,
    `crashClosesLinks=${o.crashClosesLinksShare.toFixed(2)} spuriousDisconnect=${o.spuriousDisconnectProbability.toFixed(4)}`,
    `faultTicks=${o.faultTicks} convergenceMax=${o.ticksMaxConvergence}`,
  ].join("\n  ");
}
