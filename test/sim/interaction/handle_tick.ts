// tick 1 [2 ...] [count=N]: N rounds, each ticking the named live nodes in order (drained after each).
import { type Command, CommandError, intKey, nodeId } from "./command.ts";
import type { InteractionEnv } from "./env.ts";

export function handleTick(env: InteractionEnv, command: Command): void {
  const ids = command.args.map(nodeId);
  if (ids.length === 0) throw new CommandError("tick needs at least one node");
  const count = intKey(command, "count", 1);
  for (let round = 1; round <= count; round++) {
    for (const id of ids) {
      if (env.node(id).core === null) continue;
      env.apply(id, `${id} tick ${round}/${count}`, (core) => core.tick(), true);
    }
  }
}
