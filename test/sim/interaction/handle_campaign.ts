// campaign 1: node 1 is asked to start an election now.
import { type Command, nodeId } from "./command.ts";
import type { InteractionEnv } from "./env.ts";

export function handleCampaign(env: InteractionEnv, command: Command): void {
  const id = nodeId(command.args[0] ?? "");
  env.apply(id, `${id} campaign`, (core) => core.campaign());
}
