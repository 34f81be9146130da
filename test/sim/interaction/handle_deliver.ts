// deliver [2 ...] [drop=(3)]: delivers, in send order, the messages in flight now (only those to the
// named nodes, if any); messages to `drop` nodes are discarded, as are those crossing a cut path or
// addressed to a crashed node. Messages sent while delivering wait for the next deliver.
import type { ElectionMessage } from "../../../src/core/election_types.ts";
import type { Envelope } from "../../../src/core/types.ts";
import { formatMessage } from "../cluster.ts";
import { type Command, nodeId, nodeList } from "./command.ts";
import type { InteractionEnv } from "./env.ts";

export function handleDeliver(env: InteractionEnv, command: Command): void {
  const targets = command.args.map(nodeId);
  const dropList = command.keys.get("drop");
  const drop = new Set(dropList === undefined ? [] : nodeList(dropList));
  deliverRound(env, (e) => targets.length === 0 || targets.includes(e.to), drop);
}

/** Delivers (or drops) the in-flight messages `select` picks; returns how many it took. */
export function deliverRound(
  env: InteractionEnv,
  select: (e: Envelope<ElectionMessage>) => boolean,
  drop: ReadonlySet<string> = new Set(),
): number {
  const taken = env.inflight.filter(select);
  env.inflight = env.inflight.filter((e) => !select(e));
  for (const envelope of taken) {
    const what = `${envelope.to} <- ${envelope.from} ${formatMessage(envelope.message)}`;
    if (drop.has(envelope.to)) env.print(`${what}: dropped`);
    else if (env.cut.has(`${envelope.from}>${envelope.to}`)) env.print(`${what}: dropped (partition)`);
    else if (env.node(envelope.to).core === null) env.print(`${what}: dropped (${envelope.to} down)`);
    else env.apply(envelope.to, what, (core) => core.step(envelope));
  }
  return taken.length;
}
