// disconnect 2 1: node 2 hears that its link to node 1 closed (node 1 was killed, or the link reset).
import { type Command, nodeId } from "./command.ts";
import type { InteractionEnv } from "./env.ts";

export function handleDisconnect(env: InteractionEnv, command: Command): void {
  const id = nodeId(command.args[0] ?? "");
  const peer = nodeId(command.args[1] ?? "");
  env.apply(id, `${id} link to ${peer} closed`, (core) => core.peerDisconnected(peer));
}
