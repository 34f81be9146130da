// Hand-built clusters for named scenarios and interaction transcripts: fixed timings, a quiet network
// (small delays, no random faults), every fault applied explicitly by the scenario.
import { Prng } from "../../src/core/prng.ts";
import type { NodeId } from "../../src/core/types.ts";
import { Cluster, type NodeSpec } from "./cluster.ts";
import { quietNetworkOptions } from "./network.ts";
import { realElection } from "./swarm.ts";

export interface ScenarioOptions {
  seed?: string;
  members: number;
  witnesses?: number;
  /** By node id; missing ids get 0. */
  priorities?: Readonly<Record<NodeId, number>>;
  /** By node id; missing ids run at the nominal rate. */
  drifts?: Readonly<Record<NodeId, number>>;
  /** By node id: global time of the first tick (the ticker's phase); spread apart by default. */
  firstTickUnits?: Readonly<Record<NodeId, number>>;
  electionTimeoutTicks?: number;
  heartbeatIntervalTicks?: number;
  leaseTicks?: number;
  preVote?: boolean;
  delayMinUnits?: number;
  delayMeanUnits?: number;
  log?: (line: string) => void;
  logMessages?: boolean;
}

/** Nodes n1..n<members> are members, the next <witnesses> ids are witnesses. */
export function scenarioCluster(o: ScenarioOptions): Cluster {
  const size = o.members + (o.witnesses ?? 0);
  const nodes: NodeSpec[] = [];
  for (let i = 1; i <= size; i++) {
    const id = `n${i}`;
    nodes.push({
      id,
      witness: i > o.members,
      priority: o.priorities?.[id] ?? 0,
      drift: o.drifts?.[id] ?? 0,
      // Spread the phases so that nodes never tick at the same instant.
      firstTickUnits: o.firstTickUnits?.[id] ?? Math.floor((i * 997) % 1000),
    });
  }
  return new Cluster({
    rng: new Prng(o.seed ?? "scenario"),
    nodes,
    electionTimeoutTicks: o.electionTimeoutTicks ?? 10,
    heartbeatIntervalTicks: o.heartbeatIntervalTicks ?? 2,
    leaseTicks: o.leaseTicks ?? 9,
    preVote: o.preVote ?? true,
    checkQuorum: true,
    network: quietNetworkOptions(o.delayMinUnits ?? 100, o.delayMeanUnits ?? 200),
    createElection: realElection,
    bootstrapped: true,
    log: o.log,
    logMessages: o.logMessages,
  });
}
