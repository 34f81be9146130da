// crash 2: node 2 loses its process and its page cache; what it fsynced stays. restart 2: a new core
// boots from that disk.
import { type Command, CommandError, nodeId } from "./command.ts";
import type { InteractionEnv } from "./env.ts";

export function handleCrash(env: InteractionEnv, command: Command): void {
  const id = nodeId(command.args[0] ?? "");
  const node = env.node(id);
  if (node.core === null) throw new CommandError(`${id} is already down`);
  node.core = null;
  node.disk.crash();
  const disk = node.disk.durableState;
  env.print(`${id} crashed (disk term=${disk.term} vote=${disk.votedFor ?? "-"})`);
  env.check();
}

export function handleRestart(env: InteractionEnv, command: Command): void {
  const id = nodeId(command.args[0] ?? "");
  if (env.node(id).core !== null) throw new CommandError(`${id} is running`);
  env.boot(id);
  env.check();
}
