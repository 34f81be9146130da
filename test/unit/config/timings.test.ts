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
  ["fast", presetTimings("fast")],
];

test("timings: every preset passes every rule and converts to whole ticks", () => {
  for (const [name, t] of presets) {
    assert.deepEqual(validateTimings(t), [], name);
    const ticks = toTicks(t);
    for (const value of Object.values(ticks)) assert.ok(Number.isInteger(value) && value >= 1, name);
  }
});

/** A dead leader's link closes: the first survivor campaigns T + 1 tick after the last heartbeat. */
const campaignAfterLinkClosedMs = (t: Timings) => t.electionTimeoutMs + t.tickMs;

/** The longest stall the leader keeps its lease through: heartbeats go out on tick boundaries. */
const leaderStallMsMax = (t: Timings) => t.leaseMs - t.leaderHeartbeatMs;

test("timings: lan meets its stated targets", () => {
  const t = lanTimings();
  // Failover after kill -9 within 750 ms of the last heartbeat, 650 ms after the kill on average (the
  // kill falls anywhere in a 200 ms heartbeat interval): p50 <= 0.7 s, p90 <= 0.9 s and max <= 1.2 s with
  // room for two round trips and two fsyncs.
  assert.equal(campaignAfterLinkClosedMs(t), 750);
  assert.ok(campaignAfterLinkClosedMs(t) - t.leaderHeartbeatMs / 2 <= 650);
  // A 300 ms CPU stall of the leader does not depose it, nor cost its lease.
  assert.ok(t.electionTimeoutMs > t.leaderHeartbeatMs + 300);
  assert.ok(leaderStallMsMax(t) > 300);
  assert.equal(t.downAfterMs, 1000);
  assert.equal(t.heartbeatIntervalMs, 250);
  // The failure detector pings only links silent for a whole interval: the leader's heartbeats (and its
  // vouches for the other peers) come more often, so an idle cluster sends no pings.
  assert.ok(t.heartbeatIntervalMs > t.leaderHeartbeatMs);
  assert.equal(t.suspectAfterMissed, 3);
});

test("timings: fast meets its stated targets and differs from lan only in the election's timings", () => {
  const t = presetTimings("fast");
  // Median failover <= 0.5 s: the campaign starts 450 ms after the last heartbeat, 400 ms after the kill
  // on average (the kill falls anywhere in a 50 ms heartbeat interval).
  assert.equal(campaignAfterLinkClosedMs(t), 450);
  assert.ok(campaignAfterLinkClosedMs(t) - t.leaderHeartbeatMs / 2 <= 425);
  // A 200 ms stall of the leader costs neither its followers' patience nor its lease.
  assert.ok(t.electionTimeoutMs > t.leaderHeartbeatMs + 200);
  assert.ok(leaderStallMsMax(t) > 200);
  // The lease ends before the earliest vote elsewhere even after rounding to ticks, with 10 % to spare.
  assert.ok(t.leaseMs <= 0.9 * (t.electionTimeoutMs - t.tickMs));
  assert.equal(t.tickMs, lanTimings().tickMs);
  const { electionTimeoutMs, leaderHeartbeatMs, leaseMs, ...rest } = t;
  const { electionTimeoutMs: _t, leaderHeartbeatMs: _h, leaseMs: _l, ...lanRest } = lanTimings();
  assert.deepEqual(rest, lanRest, "only the election's timings differ from lan");
  assert.deepEqual(
    { electionTimeoutMs, leaderHeartbeatMs, leaseMs },
    { electionTimeoutMs: 400, leaderHeartbeatMs: 50, leaseMs: 300 },
  );
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
    heartbeatIntervalTicks: 5,
    suspectAfterMissed: 3,
    downAfterTicks: 20,
    electionTimeoutTicks: 14,
    leaderHeartbeatTicks: 4,
    leaseTicks: 11,
  });
  assert.throws(() => toTicks({ ...lanTimings(), leaseMs: 475 }), /not a whole number of ticks/);
});

test("timings: each cross-field rule is enforced on its own", () => {
  const keys = (t: Timings) => validateTimings(t).map((p) => p.key);
  const lan = lanTimings();
  assert.deepEqual(keys({ ...lan, leaseMs: 650 }), ["leaseMs"]);
  assert.deepEqual(keys({ ...lan, leaseMs: 150 }), ["leaseMs"]);
  assert.deepEqual(keys({ ...lan, leaderHeartbeatMs: 400 }), ["leaderHeartbeatMs"]);
  // The lease bound leaves out one tick: 600 <= 0.9 * 700 but > 0.9 * (700 - 50).
  assert.deepEqual(keys({ ...lan, leaseMs: 600 }), ["leaseMs"]);
  assert.deepEqual(keys({ ...lan, downAfterMs: 750 }), ["downAfterMs"]);
  assert.deepEqual(keys({ ...lan, heartbeatIntervalMs: 210 }), ["heartbeatIntervalMs"]);
  // Exactly at the bounds is allowed.
  assert.deepEqual(keys({ ...lan, tickMs: 10, leaseMs: 630 }), ["leaseMs"]);
  assert.deepEqual(keys({ ...lan, tickMs: 10, leaseMs: 620 }), []);
  assert.deepEqual(keys({ ...lan, leaderHeartbeatMs: 350, leaseMs: 400 }), []);
});

test("timings: a value below one tick suggests the tick itself", () => {
  const [problem] = validateTimings({ ...lanTimings(), leaderHeartbeatMs: 30 });
  assert.equal(problem?.message, "30 is not a multiple of tick_ms (50); use 50");
});
