// add-nodes 3 [witness=(3)] [priority=(1:2 2:1)] [T=10] [hb=2] [lease=9] [prevote=false] [seed=s]
// Replaces the cluster with n1..nN; unnamed priorities are 0.
import type { ElectionConfig } from "../../../src/core/election_types.ts";
import type { NodeId } from "../../../src/core/types.ts";
import { type Command, CommandError, intKey, nodeId, nodeList } from "./command.ts";
import type { InteractionEnv } from "./env.ts";

export function handleAddNodes(env: InteractionEnv, command: Command): void {
  const count = Number(command.args[0]);
  if (!Number.isInteger(count) || count < 1) throw new CommandError("add-nodes needs a node count");
  const ids = Array.from({ length: count }, (_, i) => `n${i + 1}`);
  const witnessList = command.keys.get("witness");
  const witnesses = witnessList === undefined ? [] : nodeList(witnessList);
  const priorities: Record<NodeId, number> = {};
  for (const id of ids) priorities[id] = 0;
  for (const pair of nodeListPairs(command.keys.get("priority"))) priorities[pair.id] = pair.priority;
  const base = {
    members: ids.filter((id) => !witnesses.includes(id)),
    witnesses,
    priorities,
    electionTimeoutTicks: intKey(command, "T", 10),
    heartbeatIntervalTicks: intKey(command, "hb", 2),
    leaseTicks: intKey(command, "lease", 9),
    preVote: command.keys.get("prevote") !== "false",
    checkQuorum: true,
  };
  const configs: ElectionConfig[] = ids.map((selfId) => ({ ...base, selfId }));
  env.reset(configs, command.keys.get("seed") ?? "interaction");
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
