// status [1 2 ...]: role, term, known leader, vote and lease of each named (default: every) node.
import type { ElectionStatus } from "../../../src/core/election_types.ts";
import { type Command, nodeId } from "./command.ts";
import type { InteractionEnv } from "./env.ts";

export function handleStatus(env: InteractionEnv, command: Command): void {
  printPerNode(env, command, (s) => {
    const lease =
      s.role === "leader" ? ` lease=${s.leaseValid ? `${s.leaseRemainingTicks} ticks` : "expired"}` : "";
    return `${s.role} term=${s.term} leader=${s.leaderId ?? "-"} vote=${s.votedFor ?? "-"}${lease}`;
  });
}

/** One line per named (default: every) node: "<id> down", or "<id> " and what `describe` makes of its status. */
export function printPerNode(
  env: InteractionEnv,
  command: Command,
  describe: (status: ElectionStatus) => string,
): void {
  const ids = command.args.length > 0 ? command.args.map(nodeId) : [...env.nodes.keys()];
  for (const id of ids) {
    const core = env.node(id).core;
    env.print(core === null ? `${id} down` : `${id} ${describe(core.status())}`);
  }
}
