import assert from "node:assert/strict";
import { test } from "node:test";
import {
  lanTimings,
  localTimings,
  presetTimings,
  type Timings,
  toTicks,
  validateTimings,
  wanTimings,
} from "../../../src/config/index.ts";

const presets: [string, Timings][] = [
  ["lan", lanTimings()],
  ["wan", wanTimings()],
  ["local", localTimings()],
];

test("timings: every preset passes every rule and converts to whole ticks", () => {
  for (const [name, t] of presets) {
    assert.deepEqual(validateTimings(t), [], name);
    const ticks = toTicks(t);
    for (const value of Object.values(ticks)) assert.ok(Number.isInteger(value) && value >= 1, name);
  }
});

test("timings: lan meets its stated targets", () => {
  const t = lanTimings();
  // Failover median <= 1 s: the first of two followers fires ~776 ms after the last heartbeat.
  const firstOfTwoMedianMs = t.electionTimeoutMs * (1 + (1 - Math.SQRT1_2));
  assert.ok(firstOfTwoMedianMs < 1000);
  // A 300 ms CPU stall of the leader does not depose it.
  assert.ok(t.electionTimeoutMs > t.leaderHeartbeatMs + 300);
  assert.equal(t.downAfterMs, 1000);
  assert.equal(t.heartbeatIntervalMs, 200);
  assert.equal(t.suspectAfterMissed, 3);
});

test("timings: wan and local derive from lan, overriding only what differs", () => {
  assert.equal(wanTimings().suspectAfterMissed, lanTimings().suspectAfterMissed);
  assert.equal(localTimings().suspectAfterMissed, lanTimings().suspectAfterMissed);
  assert.ok(wanTimings().electionTimeoutMs > lanTimings().electionTimeoutMs);
  assert.ok(localTimings().electionTimeoutMs < lanTimings().electionTimeoutMs);
  assert.deepEqual(presetTimings("wan"), wanTimings());
});

test("timings: toTicks converts lan to ticks of 50 ms", () => {
  assert.deepEqual(toTicks(lanTimings()), {
    tickMs: 50,
    heartbeatIntervalTicks: 4,
    suspectAfterMissed: 3,
    downAfterTicks: 20,
    electionTimeoutTicks: 12,
    leaderHeartbeatTicks: 2,
    leaseTicks: 9,
  });
  assert.throws(() => toTicks({ ...lanTimings(), leaseMs: 475 }), /not a whole number of ticks/);
});

test("timings: each cross-field rule is enforced on its own", () => {
  const keys = (t: Timings) => validateTimings(t).map((p) => p.key);
  const lan = lanTimings();
  assert.deepEqual(keys({ ...lan, leaseMs: 550 }), ["leaseMs"]);
  assert.deepEqual(keys({ ...lan, leaseMs: 100 }), ["leaseMs"]);
  assert.deepEqual(keys({ ...lan, leaderHeartbeatMs: 350, leaseMs: 500 }), ["leaderHeartbeatMs"]);
  assert.deepEqual(keys({ ...lan, downAfterMs: 600 }), ["downAfterMs"]);
  assert.deepEqual(keys({ ...lan, heartbeatIntervalMs: 210 }), ["heartbeatIntervalMs"]);
  // Exactly at the bounds is allowed.
  assert.deepEqual(keys({ ...lan, tickMs: 10, leaseMs: 550 }), ["leaseMs"]);
  assert.deepEqual(keys({ ...lan, tickMs: 10, leaseMs: 540 }), []);
  assert.deepEqual(keys({ ...lan, leaderHeartbeatMs: 300, leaseMs: 350 }), []);
});

test("timings: a value below one tick suggests the tick itself", () => {
  const [problem] = validateTimings({ ...lanTimings(), leaderHeartbeatMs: 30 });
  assert.equal(problem?.message, "30 is not a multiple of tick_ms (50); use 50");
});
