// Waits for the named scenarios: run a hand-built cluster until something holds, or fail the test.
import assert from "node:assert/strict";
import type { AgreementWait, Cluster, LeaderAgreement } from "./cluster.ts";

/** The node that `c` agrees leads, after running at most `ticksMax`. */
export function leaderWithin(
  c: Cluster,
  ticksMax: number,
  wait: Omit<AgreementWait, "ticksMax"> = {},
): LeaderAgreement {
  const agreed = c.runUntilAgreement({ ticksMax, ...wait });
  assert.ok(agreed, `no agreed leader within ${ticksMax} ticks`);
  return agreed;
}

/** Runs tick by tick until `done` holds; returns the ticks it took. */
export function ticksUntil(c: Cluster, ticksMax: number, done: () => boolean): number {
  for (let t = 0; t <= ticksMax; t++) {
    if (done()) return t;
    c.runTicks(1);
  }
  assert.fail(`condition not reached within ${ticksMax} ticks`);
}
