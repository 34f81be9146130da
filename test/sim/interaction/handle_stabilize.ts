// stabilize: delivers rounds of messages until none is in flight (no ticks pass meanwhile).
import { CommandError } from "./command.ts";
import type { InteractionEnv } from "./env.ts";
import { deliverRound } from "./handle_deliver.ts";

/** An exchange of votes and heartbeats settles in a few rounds; more means messages ping-pong forever. */
const stabilizeRoundsMax = 32;

export function handleStabilize(env: InteractionEnv): void {
  for (let round = 0; env.inflight.length > 0; round++) {
    if (round === stabilizeRoundsMax) throw new CommandError(`not stable after ${round} rounds`);
    deliverRound(env, () => true);
  }
}
