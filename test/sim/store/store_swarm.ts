// The store swarm: a seed draws a cluster (size, clock drift and skew, sync timings and message bounds,
// bucket count, key space) and its faults (network delay, loss, duplication, clogs, partitions, crashes,
// torn drains, membership changes with spare nodes joining empty), then runs random writes and deletes on
// every member with random minAcks through a fault phase. Then everything heals: the network goes quiet,
// crashed nodes restart, every node learns the latest membership, links come up. Within
// ticksMaxConvergence every member must hold identical entries (storeConverged), and no write reported
// acknowledged may be missing from a host that acknowledged it (noAckedWriteLost, also checked at every
// ack); then every member must report itself caught up with every other (syncProgress). Reuses the
// election simulator's clock, network and PRNG.
import { Prng } from "../../../src/core/prng.ts";
import type { StoreSyncLimits, SyncMinAcks } from "../../../src/core/store_sync_types.ts";
import type { NodeId } from "../../../src/core/types.ts";
import type { StoreWrite } from "../../../src/store/types.ts";
import { clockDriftMax, unitsPerTick } from "../clock.ts";
import { type NetworkOptions, PartitionMode, PartitionSymmetry, quietNetworkOptions } from "../network.ts";
import { digestsAgree, StoreViolationError, storeDifference } from "./store_checkers.ts";
import {
  StoreCluster,
  type StoreClusterOptions,
  type StoreNodeSpec,
  type SyncFactory,
} from "./store_cluster.ts";
import { MembershipChurn } from "./store_membership.ts";

export const storeClusterSizeMax = 5;

/** The cluster's settings (what a seed draws for it) plus the workload and fault rates. */
export interface StoreSwarmOptions
  extends Omit<StoreClusterOptions, "rng" | "nodes" | "createSync" | "log" | "logMessages"> {
  nodes: StoreNodeSpec[];
  /** Paths written are drawn from this many. */
  keySpace: number;
  /** Per live node, per nominal tick. */
  writeProbability: number;
  writesPerBatchMax: number;
  deleteShare: number;
  crashProbability: number;
  restartProbability: number;
  tornCrashShare: number;
  faultTicks: number;
  ticksMaxConvergence: number;
  /** Merged batches are reported persisted up to this many units later (the replicator's async fsync). */
  flushDelayUnitsMax: number;
  /** The nodes in the cluster at start; the others in `nodes` are spares that may join later. */
  members: NodeId[];
  /** Per fault tick: a member leaves or a node outside joins (store_membership.ts). */
  membershipChangeProbability: number;
  /** Each node learns a membership change up to this many ticks after it was made. */
  membershipLagTicksMax: number;
}

export function storeSwarmOptions(rng: Prng): StoreSwarmOptions {
  const size = rng.intBetween(1, storeClusterSizeMax);
  const clockSkewMsMax = 60_000;
  const skewMsMax = rng.pick([0, 50, 2000, 20_000]);
  const nodes: StoreNodeSpec[] = [];
  for (let i = 1; i <= size; i++) {
    nodes.push({
      id: `n${i}`,
      drift: Math.round((rng.next() * 2 - 1) * clockDriftMax * 1e4) / 1e4,
      firstTickUnits: rng.intBetween(0, unitsPerTick - 1),
      skewMs: rng.intBetween(-skewMsMax, skewMsMax),
    });
  }
  // Tight bounds on half the seeds: divergences then take many bounded rounds.
  const tight = rng.chance(0.5);
  const limits: StoreSyncLimits = {
    entriesPerMessageMax: tight ? rng.intBetween(1, 4) : rng.intBetween(8, 64),
    valueBytesPerMessageMax: tight ? rng.intBetween(1, 64) : 4096,
    pathsPerPullMax: tight ? rng.intBetween(1, 4) : rng.intBetween(16, 256),
    valueBytesPerPullMax: tight ? rng.intBetween(1, 48) : 1024 * 1024,
    stampsPerMessageMax: tight ? rng.intBetween(1, 8) : rng.intBetween(32, 1024),
  };
  const delayMinUnits = rng.intBetween(0, 300);
  const faulty = rng.chance(0.9);
  const network: NetworkOptions = {
    delayMinUnits,
    delayMeanUnits: delayMinUnits + rng.intBetween(0, 2 * unitsPerTick),
    lossProbability: faulty && rng.chance(0.7) ? rng.next() * 0.2 : 0,
    duplicateProbability: faulty && rng.chance(0.5) ? rng.next() * 0.1 : 0,
    pathCapacityMax: rng.intBetween(8, 64),
    clogProbability: faulty && rng.chance(0.3) ? rng.next() * 0.01 : 0,
    clogTicksMean: rng.intBetween(1, 20),
    partitionMode: faulty ? rng.pick(Object.values(PartitionMode)) : PartitionMode.None,
    partitionSymmetry: rng.pick(Object.values(PartitionSymmetry)),
    partitionProbability: rng.next() * 0.03,
    unpartitionProbability: 0.01 + rng.next() * 0.1,
  };
  const antiEntropyIntervalTicks = rng.intBetween(5, 40);
  const roundTimeoutTicks = rng.intBetween(5, 20);
  const digestRoundEvery = rng.intBetween(1, 6);
  return {
    nodes,
    tickMs: rng.pick([5, 20, 50]),
    writeTimeoutTicks: rng.intBetween(3, 40),
    antiEntropyIntervalTicks,
    roundTimeoutTicks,
    digestRoundEvery,
    limits,
    bucketCount: rng.pick([1, 4, 16, 64, 256]),
    clockSkewMsMax,
    network,
    keySpace: rng.intBetween(3, 120),
    writeProbability: 0.01 + rng.next() * 0.25,
    writesPerBatchMax: rng.intBetween(1, 5),
    deleteShare: rng.chance(0.7) ? rng.next() * 0.3 : 0,
    crashProbability: faulty && rng.chance(0.6) ? rng.next() * 0.01 : 0,
    restartProbability: 0.02 + rng.next() * 0.2,
    tornCrashShare: rng.next() * 0.5,
    faultTicks: rng.intBetween(100, 400),
    // Links come up at healing, so rounds start at once; a lost round waits for its timeout and the next
    // turn of the round robin; what only a digest round repairs (an entry refused for clock skew) waits for
    // one. Generous: the sweep prints the slowest convergence actually seen.
    ticksMaxConvergence: 3000 + 4 * size * digestRoundEvery * (antiEntropyIntervalTicks + roundTimeoutTicks),
    // Drawn last, so that every other option of a seed stays what it was before flushes were modelled.
    flushDelayUnitsMax: rng.chance(0.5) ? rng.intBetween(1, 3 * unitsPerTick) : 0,
    ...membershipOptions(rng, nodes, skewMsMax),
  };
}

/** Membership changes on half the seeds, with up to two spare nodes (drawn after everything else). */
function membershipOptions(
  rng: Prng,
  nodes: StoreNodeSpec[],
  skewMsMax: number,
): Pick<StoreSwarmOptions, "members" | "membershipChangeProbability" | "membershipLagTicksMax"> {
  const members = nodes.map((n) => n.id);
  if (!rng.chance(0.5)) return { members, membershipChangeProbability: 0, membershipLagTicksMax: 0 };
  for (let spares = rng.intBetween(0, 2); spares > 0; spares--) {
    nodes.push({
      id: `n${nodes.length + 1}`,
      drift: Math.round((rng.next() * 2 - 1) * clockDriftMax * 1e4) / 1e4,
      firstTickUnits: rng.intBetween(0, unitsPerTick - 1),
      skewMs: rng.intBetween(-skewMsMax, skewMsMax),
    });
  }
  return {
    members,
    membershipChangeProbability: 0.005 + rng.next() * 0.03,
    membershipLagTicksMax: rng.intBetween(0, 40),
  };
}

export class StoreSwarmFailureError extends Error {
  override name = "StoreSwarmFailureError";
  readonly seed: string;

  constructor(seed: string, what: string, cause?: unknown) {
    super(`seed=${seed} ${what}\n  replay: ${storeReplayCommand(seed)} --verbose`, { cause });
    this.seed = seed;
  }
}

export function storeReplayCommand(seed: string): string {
  return `node test/sim/store/store_swarm_cli.ts --seed ${seed}`;
}

export interface StoreHistoryResult {
  seed: string;
  size: number;
  events: number;
  ticks: number;
  writes: number;
  writesAcked: number;
  acks: number;
  entries: number;
  convergenceTicks: number;
  membershipChanges: number;
  /** Ticks after convergence until every member reported itself caught up with every other. */
  caughtUpTicks: number;
}

export interface StoreHistoryHooks {
  log?: (line: string) => void;
  logMessages?: boolean;
  /** The core under test; the real StoreSync by default (tests swap in deliberately broken ones). */
  createSync?: SyncFactory;
}

/** Runs one history from its seed; throws StoreSwarmFailureError (with the seed) on any failure. */
export function runStoreHistory(seed: string, hooks: StoreHistoryHooks = {}): StoreHistoryResult {
  const rng = new Prng(seed);
  const options = storeSwarmOptions(rng.fork("options"));
  try {
    return runOptions(seed, rng, options, hooks);
  } catch (error) {
    if (error instanceof StoreSwarmFailureError) throw error;
    const reason = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    throw new StoreSwarmFailureError(seed, reason, error);
  }
}

function runOptions(
  seed: string,
  rng: Prng,
  o: StoreSwarmOptions,
  hooks: StoreHistoryHooks,
): StoreHistoryResult {
  const cluster = new StoreCluster({
    rng: rng.fork("cluster"),
    nodes: o.nodes,
    tickMs: o.tickMs,
    writeTimeoutTicks: o.writeTimeoutTicks,
    antiEntropyIntervalTicks: o.antiEntropyIntervalTicks,
    roundTimeoutTicks: o.roundTimeoutTicks,
    digestRoundEvery: o.digestRoundEvery,
    limits: o.limits,
    bucketCount: o.bucketCount,
    clockSkewMsMax: o.clockSkewMsMax,
    network: o.network,
    flushDelayUnitsMax: o.flushDelayUnitsMax,
    members: o.members,
    createSync: hooks.createSync,
    log: hooks.log,
    logMessages: hooks.logMessages,
  });
  cluster.line(describeOptions(o));
  const faults = rng.fork("faults");
  const workload = rng.fork("workload");
  const membership = new MembershipChurn(cluster, o.members, o.membershipLagTicksMax, rng.fork("membership"));
  for (let t = 0; t < o.faultTicks; t++) {
    injectFaults(cluster, o, faults);
    membership.tick(t, o.membershipChangeProbability);
    issueWrites(cluster, o, workload, membership);
    cluster.network.tickFaults(cluster.nowUnits, unitsPerTick);
    cluster.runTicks(1);
  }
  heal(cluster, o, membership);
  const members = membership.current;
  const convergenceTicks = awaitConvergence(cluster, o, seed, members);
  cluster.checker.checkAll();
  const caughtUpTicks = awaitCaughtUp(cluster, o, seed, members);
  return {
    seed,
    size: o.nodes.length,
    events: cluster.eventsProcessed,
    ticks: Math.ceil(cluster.nowUnits / unitsPerTick),
    writes: cluster.writesIssued,
    writesAcked: cluster.checker.writesAcked,
    acks: cluster.checker.acks,
    entries: cluster.store(members[0]!).all().length,
    convergenceTicks,
    membershipChanges: membership.changes,
    caughtUpTicks,
  };
}

/** Writes on the live nodes that believe they are members (a node that learned it left writes no more). */
function issueWrites(
  cluster: StoreCluster,
  o: StoreSwarmOptions,
  rng: Prng,
  membership: MembershipChurn,
): void {
  for (const id of cluster.ids) {
    if (!cluster.isAlive(id) || !membership.believesMember(id)) continue;
    if (!rng.chance(o.writeProbability)) continue;
    const writes: StoreWrite[] = [];
    const count = rng.intBetween(1, o.writesPerBatchMax);
    for (let i = 0; i < count; i++) {
      const path = `k/${rng.intBetween(0, o.keySpace - 1)}`;
      const bytes = Array.from({ length: rng.intBetween(0, 24) }, () => rng.intBetween(0, 255));
      writes.push({ path, value: rng.chance(o.deleteShare) ? null : new Uint8Array(bytes) });
    }
    const peers = cluster.peersOf(id).length;
    const minAcks: SyncMinAcks = rng.chance(0.2) ? "all" : rng.intBetween(0, peers + 1);
    cluster.write(id, writes, minAcks);
  }
}

function injectFaults(cluster: StoreCluster, o: StoreSwarmOptions, rng: Prng): void {
  for (const id of cluster.ids) {
    if (!cluster.isAlive(id)) {
      if (rng.chance(o.restartProbability)) cluster.restart(id);
    } else if (rng.chance(o.crashProbability)) {
      if (rng.chance(o.tornCrashShare)) cluster.crashAtPersist(id, rng.intBetween(0, 3));
      else cluster.crash(id);
    }
  }
}

function heal(cluster: StoreCluster, o: StoreSwarmOptions, membership: MembershipChurn): void {
  cluster.line("heal: network quiet, crashed nodes restart, every node learns the membership, links up");
  cluster.network.heal();
  cluster.network.setOptions(quietNetworkOptions(o.network.delayMinUnits, o.network.delayMeanUnits));
  for (const id of cluster.ids) {
    cluster.disarmTornCrash(id);
    if (!cluster.isAlive(id)) cluster.restart(id);
  }
  membership.settle();
  cluster.linksUp();
}

function memberStores(cluster: StoreCluster, members: readonly NodeId[]) {
  return new Map(members.map((id) => [id, cluster.store(id)]));
}

/** Runs tick by tick until the digests agree and the full sets match; returns the ticks it took. */
function awaitConvergence(
  cluster: StoreCluster,
  o: StoreSwarmOptions,
  seed: string,
  members: readonly NodeId[],
): number {
  for (let t = 0; t <= o.ticksMaxConvergence; t++) {
    const stores = memberStores(cluster, members);
    if (digestsAgree(stores)) {
      const difference = storeDifference(stores);
      if (difference !== null)
        throw new StoreViolationError("store-converged", `digests agree but ${difference}`);
      cluster.line(`converged after ${t} ticks`);
      return t;
    }
    cluster.runTicks(1);
  }
  const difference = storeDifference(memberStores(cluster, members)) ?? "unknown";
  throw new StoreSwarmFailureError(
    seed,
    `not converged ${o.ticksMaxConvergence} ticks after healing: ${difference}`,
  );
}

/**
 * Once converged and quiet, every member must report itself caught up with every other member (at some
 * tick: a since round with a far-behind cursor reports it behind again until its chain of rounds ends);
 * returns the ticks until the last pair did. Time enough for a digest round with each peer, four times over,
 * after the last move of a cursor still behind: a chain of since rounds reads a long log in bounded steps.
 */
function awaitCaughtUp(
  cluster: StoreCluster,
  o: StoreSwarmOptions,
  seed: string,
  members: readonly NodeId[],
): number {
  const ticksMax =
    4 * cluster.ids.length * o.digestRoundEvery * (o.antiEntropyIntervalTicks + o.roundTimeoutTicks);
  const cursorSeq = (id: NodeId, peer: NodeId) => cluster.core(id)?.syncProgress(peer).cursorSeq ?? null;
  let behind = members.flatMap((id) =>
    cluster.peersOf(id).map((peer) => ({ id, peer, seq: cursorSeq(id, peer) })),
  );
  for (let t = 0, stillTicks = 0; stillTicks <= ticksMax; t++, stillTicks++) {
    behind = behind.filter(({ id, peer }) => !cluster.core(id)?.syncProgress(peer).caughtUp);
    if (behind.length === 0) return t;
    for (const pair of behind) {
      const seq = cursorSeq(pair.id, pair.peer);
      if (seq !== pair.seq) stillTicks = 0;
      pair.seq = seq;
    }
    cluster.runTicks(1);
  }
  const pairs = behind.map(({ id, peer }) => `${id}→${peer}`).join(" ");
  throw new StoreSwarmFailureError(
    seed,
    `not caught up ${ticksMax} ticks after a cursor last moved: ${pairs}`,
  );
}

function describeOptions(o: StoreSwarmOptions): string {
  const nodes = o.nodes.map((n) => `${n.id}:drift${(n.drift * 100).toFixed(2)}%:skew${n.skewMs}ms`).join(" ");
  const n = o.network;
  const l = o.limits;
  return [
    `nodes ${nodes}`,
    `tick=${o.tickMs}ms writeTimeout=${o.writeTimeoutTicks} antiEntropy=${o.antiEntropyIntervalTicks} roundTimeout=${o.roundTimeoutTicks} buckets=${o.bucketCount}`,
    `limits entries=${l.entriesPerMessageMax} bytes=${l.valueBytesPerMessageMax} pull=${l.pathsPerPullMax}/${l.valueBytesPerPullMax}B stamps=${l.stampsPerMessageMax}`,
    `keys=${o.keySpace} write=${o.writeProbability.toFixed(3)} batch<=${o.writesPerBatchMax} delete=${o.deleteShare.toFixed(2)}`,
    `delay=${n.delayMinUnits}+${n.delayMeanUnits - n.delayMinUnits}u loss=${n.lossProbability.toFixed(3)} dup=${n.duplicateProbability.toFixed(3)} cap=${n.pathCapacityMax}`,
    `clog=${n.clogProbability.toFixed(4)}/${n.clogTicksMean}t partition=${n.partitionMode}/${n.partitionSymmetry}`,
    `members [${o.members}] change=${o.membershipChangeProbability.toFixed(4)} lag<=${o.membershipLagTicksMax}t`,
    `flushDelay<=${o.flushDelayUnitsMax}u crash=${o.crashProbability.toFixed(4)} restart=${o.restartProbability.toFixed(3)} faultTicks=${o.faultTicks} convergenceMax=${o.ticksMaxConvergence}`,
  ].join("\n  ");
}
