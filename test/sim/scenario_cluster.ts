// Hand-built clusters for named scenarios and interaction transcripts: fixed timings, a quiet network
// (small delays, no random faults), every fault applied explicitly by the scenario.

import type { ElectionEvent } from "../../src/core/election_types.ts";
import { Prng } from "../../src/core/prng.ts";
import type { NodeId } from "../../src/core/types.ts";
import { type BootstrapList, Cluster, type NodeSpec } from "./cluster.ts";
import { quietNetworkOptions } from "./network.ts";
import { realElection } from "./swarm.ts";

export interface ScenarioOptions {
  seed?: string;
  members: number;
  witnesses?: number;
  /** Spare nodes after the voters, in join mode. */
  spares?: number;
  /** By node id: a bootstrap list of its own (a tandem.yml that differs from the others'). */
  bootstrapLists?: Readonly<Record<NodeId, BootstrapList>>;
  /** Start from the bootstrap exchange instead of an agreed version 1 on disk. */
  fresh?: boolean;
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
  onEvent?: (id: NodeId, event: ElectionEvent) => void;
}

/** Nodes n1..n<members> are members, the next <witnesses> ids are witnesses, then <spares> spares. */
export function scenarioCluster(o: ScenarioOptions): Cluster {
  const voters = o.members + (o.witnesses ?? 0);
  const size = voters + (o.spares ?? 0);
  const nodes: NodeSpec[] = [];
  for (let i = 1; i <= size; i++) {
    const id = `n${i}`;
    nodes.push({
      id,
      witness: i > o.members && i <= voters,
      ...(i > voters ? { join: true } : {}),
      ...(o.bootstrapLists?.[id] === undefined ? {} : { bootstrap: o.bootstrapLists[id] }),
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
    bootstrapped: o.fresh !== true,
    log: o.log,
    logMessages: o.logMessages,
    onEvent: o.onEvent,
  });
}
