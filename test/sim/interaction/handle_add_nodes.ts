// add-nodes 3 [witness=(3)] [priority=(1:2 2:1)] [T=10] [hb=2] [lease=9] [prevote=false] [seed=s]
//   [join=(4)] [fresh=true] [peers=(1 2 3)] [peers2=(1 2 4)]
// Replaces the cluster with n1..nN; unnamed priorities are 0. `join` nodes start in join mode (no list);
// the others bootstrap from `peers` (default: every node not joining), node K from `peersK` if given, and
// start with that list agreed as version 1 on disk unless `fresh=true` (then they exchange it first).
import type { ElectionConfig } from "../../../src/core/election_types.ts";
import type { NodeId } from "../../../src/core/types.ts";
import { type Command, CommandError, intKey, nodeId, nodeList } from "./command.ts";
import type { InteractionEnv } from "./env.ts";

export function handleAddNodes(env: InteractionEnv, command: Command): void {
  const count = Number(command.args[0]);
  if (!Number.isInteger(count) || count < 1) throw new CommandError("add-nodes needs a node count");
  const ids = Array.from({ length: count }, (_, i) => `n${i + 1}`);
  const witnesses = optionalList(command, "witness") ?? [];
  const priorities: Record<NodeId, number> = {};
  for (const id of ids) priorities[id] = 0;
  for (const pair of nodeListPairs(command.keys.get("priority"))) priorities[pair.id] = pair.priority;
  const joining = optionalList(command, "join") ?? [];
  const clusterPeers = optionalList(command, "peers") ?? ids.filter((id) => !joining.includes(id));
  const timings = {
    electionTimeoutTicks: intKey(command, "T", 10),
    heartbeatIntervalTicks: intKey(command, "hb", 2),
    leaseTicks: intKey(command, "lease", 9),
    preVote: command.keys.get("prevote") !== "false",
    checkQuorum: true,
  };
  const configs: ElectionConfig[] = ids.map((selfId) => {
    if (joining.includes(selfId)) {
      return { ...timings, selfId, members: [], witnesses: [], priorities: {}, join: true };
    }
    const peers = optionalList(command, `peers${selfId.slice(1)}`) ?? clusterPeers;
    const listed: Record<NodeId, number> = {};
    for (const id of peers) listed[id] = priorities[id] ?? 0;
    return {
      ...timings,
      selfId,
      members: peers.filter((id) => !witnesses.includes(id)),
      witnesses: peers.filter((id) => witnesses.includes(id)),
      priorities: listed,
    };
  });
  env.reset(configs, command.keys.get("seed") ?? "interaction", command.keys.get("fresh") === "true");
}

function optionalList(command: Command, key: string): NodeId[] | undefined {
  const raw = command.keys.get(key);
  return raw === undefined ? undefined : nodeList(raw);
}

/** "(1:2 2:1)" -> n1 priority 2, n2 priority 1. */
function nodeListPairs(raw: string | undefined): { id: NodeId; priority: number }[] {
  if (raw === undefined) return [];
  const inner = raw.match(/^\((.*)\)$/)?.[1];
  if (inner === undefined) throw new CommandError(`priority wants (node:priority ...), got ${raw}`);
  return inner
    .split(" ")
    .filter((t) => t !== "")
    .map((pair) => {
      const [node, priority] = pair.split(":");
      if (node === undefined || priority === undefined) throw new CommandError(`bad priority ${pair}`);
      return { id: nodeId(node), priority: Number(priority) };
    });
}
