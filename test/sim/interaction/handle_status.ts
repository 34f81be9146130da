// status [1 2 ...]: role, term, known leader, vote and lease of each named (default: every) node.
import { type Command, nodeId } from "./command.ts";
import type { InteractionEnv } from "./env.ts";

export function handleStatus(env: InteractionEnv, command: Command): void {
  const ids = command.args.length > 0 ? command.args.map(nodeId) : [...env.nodes.keys()];
  for (const id of ids) {
    const core = env.node(id).core;
    if (core === null) {
      env.print(`${id} down`);
      continue;
    }
    const s = core.status();
    const lease =
      s.role === "leader" ? ` lease=${s.leaseValid ? `${s.leaseRemainingTicks} ticks` : "expired"}` : "";
    env.print(`${id} ${s.role} term=${s.term} leader=${s.leaderId ?? "-"} vote=${s.votedFor ?? "-"}${lease}`);
  }
}
