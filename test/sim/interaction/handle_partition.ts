// partition (1)|(2 3): cuts both directions between the groups; partition (1)>(2 3): only from the first
// group to the second. heal: reconnects everything. Messages already in flight are judged on delivery.
import { type Command, CommandError, nodeList } from "./command.ts";
import type { InteractionEnv } from "./env.ts";

export function handlePartition(env: InteractionEnv, command: Command): void {
  const spec = command.args.join(" ");
  const match = spec.match(/^(\(.*?\))([|>])(\(.*\))$/);
  if (match === null) throw new CommandError(`partition wants (a b)|(c d) or (a)>(b c), got ${spec}`);
  const left = nodeList(match[1]!);
  const right = nodeList(match[3]!);
  for (const a of left) {
    for (const b of right) {
      env.cut.add(`${a}>${b}`);
      if (match[2] === "|") env.cut.add(`${b}>${a}`);
    }
  }
  env.print(`cut: ${[...env.cut].sort().join(" ")}`);
}

export function handleHeal(env: InteractionEnv): void {
  env.cut.clear();
  env.print("all paths open");
}
