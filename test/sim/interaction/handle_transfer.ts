// transfer 1 2: node 1 (the leader) is asked to hand leadership to node 2.
import { type Command, nodeId } from "./command.ts";
import type { InteractionEnv } from "./env.ts";

export function handleTransfer(env: InteractionEnv, command: Command): void {
  const id = nodeId(command.args[0] ?? "");
  const to = nodeId(command.args[1] ?? "");
  env.apply(id, `${id} transfer to ${to}`, (core) => core.transferLeadership(to));
}
