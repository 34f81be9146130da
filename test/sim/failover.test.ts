// Failover after the leader's process dies, in simulated time: how many ticks from the kill until both
// survivors of a 3-node cluster follow a new leader, over many seeds (tick phases, delays, the moment of
// the kill), for the lan and fast presets in ticks. Bounds are in ticks of the simulation, never wall-clock
// time; bench/failover.ts measures the real thing.
import assert from "node:assert/strict";
import { test } from "node:test";
import { Prng } from "../../src/core/prng.ts";
import { unitsPerTick } from "./clock.ts";
import type { Cluster } from "./cluster.ts";
import { scenarioCluster } from "./scenario_cluster.ts";

const seeds = 300;

/** Election timings of src/config/timings.ts in ticks of 50 ms. */
const presets = {
  lan: { electionTimeoutTicks: 12, heartbeatIntervalTicks: 2, leaseTicks: 9 },
  fast: { electionTimeoutTicks: 8, heartbeatIntervalTicks: 1, leaseTicks: 6 },
} as const;
type Preset = keyof typeof presets;

interface Failover {
  seed: string;
  ticks: number;
}

/** Elects a leader, lets a random part of a heartbeat interval pass, crashes it; ticks to a new leader. */
function failover(preset: Preset, seed: string, closesLinks: boolean): Failover {
  const rng = new Prng(seed);
  const T = presets[preset].electionTimeoutTicks;
  const c: Cluster = scenarioCluster({
    seed,
    members: 3,
    ...presets[preset],
    // A LAN under TCP: one-way delays of 2 % of a tick (1 ms at 50 ms ticks), constant, so each path
    // delivers in order as a TCP connection does (the swarm's reordering network would let a pre-vote
    // overtake the answer sent before it, which no real link does).
    delayMinUnits: 20,
    delayMeanUnits: 20,
    firstTickUnits: { n1: rng.intBetween(0, 999), n2: rng.intBetween(0, 999), n3: rng.intBetween(0, 999) },
  });
  const first = c.runUntilAgreement({ ticksMax: 5 * T });
  assert.ok(first, `seed ${seed}: no first leader`);
  c.runUntil(c.nowUnits + rng.intBetween(T * unitsPerTick, (T + 4) * unitsPerTick));
  const killedAt = c.nowUnits;
  c.crash(first.leaderId, closesLinks);
  const survivors = c.ids.filter((id) => id !== first.leaderId);
  const second = c.runUntilAgreement({ ticksMax: 10 * T, among: survivors });
  assert.ok(second, `seed ${seed}: no new leader`);
  return { seed, ticks: (c.nowUnits - killedAt) / unitsPerTick };
}

function worst(runs: Failover[]): Failover {
  return runs.reduce((a, b) => (b.ticks > a.ticks ? b : a));
}

for (const preset of Object.keys(presets) as Preset[]) {
  const T = presets[preset].electionTimeoutTicks;

  test(`sim: failover: ${preset}: with the killed leader's links closing, a new leader within T+3 ticks on every seed`, () => {
    const runs = Array.from({ length: seeds }, (_, i) => failover(preset, `${preset}-closed-${i}`, true));
    const slowest = worst(runs);
    // Campaign T+1 ticks after the last heartbeat (so at most T+1 after the kill), then two round trips.
    assert.ok(slowest.ticks <= T + 3, `seed ${slowest.seed}: ${slowest.ticks} ticks`);
  });

  test(`sim: failover: ${preset}: without the hint, simultaneous timeouts never cost a second election round`, () => {
    const runs = Array.from({ length: seeds }, (_, i) => failover(preset, `${preset}-silent-${i}`, false));
    const slowest = worst(runs);
    // The latest randomized timeout is 2T-1 ticks after the last heartbeat; a split vote would add T more.
    assert.ok(slowest.ticks <= 2 * T + 1, `seed ${slowest.seed}: ${slowest.ticks} ticks`);
  });
}
