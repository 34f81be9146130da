import assert from "node:assert/strict";
import { test } from "node:test";
import { emptyHardState } from "../../src/core/election_types.ts";
import { SafetyViolationError } from "./checkers/election_safety.ts";
import type { ElectionFactory } from "./cluster.ts";
import { PartitionSymmetry } from "./network.ts";
import { scenarioCluster } from "./scenario_cluster.ts";
import { leaderWithin, ticksUntil } from "./scenario_wait.ts";
import { realElection, runHistory, SwarmFailureError } from "./swarm.ts";

const swarmSeeds = 2000;

test("sim: swarm: 2000 seeded histories keep election safety and converge after healing", (t) => {
  const startedMs = performance.now();
  let events = 0;
  for (let seed = 0; seed < swarmSeeds; seed++) events += runHistory(String(seed)).events;
  const elapsedMs = performance.now() - startedMs;
  const perSecond = (swarmSeeds / (elapsedMs / 1000)).toFixed(0);
  t.diagnostic(`${swarmSeeds} histories, ${events} events in ${elapsedMs.toFixed(0)} ms: ${perSecond}/s`);
});

test("sim: swarm: a seed replays to the identical transcript", () => {
  const transcript = (seed: string) => {
    const lines: string[] = [];
    runHistory(seed, { log: (line) => lines.push(line), logMessages: true });
    return lines;
  };
  const first = transcript("7");
  assert.ok(first.length > 300);
  assert.deepEqual(transcript("7"), first);
  assert.notDeepEqual(transcript("8"), first);
});

test("sim: swarm: a failure names its seed and the replay command", () => {
  const error = new SwarmFailureError("42", "no leader");
  assert.match(error.message, /seed=42/);
  assert.match(error.message, /npm run sim -- --seed 42/);
});

test("sim: scenario: two members + witness: the survivor leads after the leader crashes, with the witness's vote", () => {
  const c = scenarioCluster({ members: 2, witnesses: 1 });
  const first = leaderWithin(c, 40);
  assert.notEqual(first.leaderId, "n3");
  c.crash(first.leaderId);
  const survivor = first.leaderId === "n1" ? "n2" : "n1";
  const second = leaderWithin(c, 60);
  assert.equal(second.leaderId, survivor);
  assert.ok(second.term > first.term);
  const { term, votedFor } = c.durableState("n3");
  assert.deepEqual({ term, votedFor }, { term: second.term, votedFor: survivor });
});

test("sim: scenario: partitioned leader: the minority steps down when its lease ends, the majority elects", () => {
  const c = scenarioCluster({ members: 5 });
  const first = leaderWithin(c, 50);
  const majority = c.ids.filter((id) => id !== first.leaderId);
  c.network.partition([first.leaderId], PartitionSymmetry.Symmetric);
  const stepDownTicks = ticksUntil(c, 30, () => c.status(first.leaderId)?.role !== "leader");
  // Lease (9) plus the heartbeat interval (2) the last acknowledged heartbeat may predate the cut by.
  assert.ok(stepDownTicks <= 9 + 2 + 1, `stepped down after ${stepDownTicks} ticks`);
  assert.equal(c.leaderAgreement(majority), null, "no new leader before the old lease ended");
  const second = leaderWithin(c, 60, { among: majority });
  assert.ok(second.term > first.term);
  assert.notEqual(c.status(first.leaderId)?.role, "leader");
  c.network.heal();
  const healed = leaderWithin(c, 40);
  assert.deepEqual(healed, second, "the old leader rejoins as a follower without disrupting");
});

test("sim: scenario: one-way partition: a leader nobody hears is replaced, and then follows the new leader", () => {
  const c = scenarioCluster({ members: 3 });
  const first = leaderWithin(c, 50);
  // Outbound cut only: the old leader still hears everyone.
  c.network.partition([first.leaderId], PartitionSymmetry.OneWay);
  const second = leaderWithin(c, 80, { accept: (a) => a.term > first.term });
  assert.notEqual(second.leaderId, first.leaderId);
  assert.ok(second.term > first.term);
  assert.equal(c.status(first.leaderId)?.leaderId, second.leaderId);
});

test("sim: scenario: one-way partition: a leader that hears no acknowledgements steps down; its pre-votes disrupt nobody after healing", () => {
  const c = scenarioCluster({ members: 3 });
  const first = leaderWithin(c, 50);
  const others = c.ids.filter((id) => id !== first.leaderId);
  for (const id of others) c.network.cut(id, first.leaderId);
  ticksUntil(c, 15, () => c.status(first.leaderId)?.role !== "leader");
  const second = leaderWithin(c, 80, { among: others, accept: (a) => a.term > first.term });
  c.runTicks(60);
  // Cut off, the old leader campaigns, but pre-vote keeps its term from rising.
  assert.ok((c.status(first.leaderId)?.term ?? 0) <= second.term);
  c.network.heal();
  c.runTicks(30);
  assert.deepEqual(c.leaderAgreement(), second);
});

test("sim: scenario: clock skew: a slow-clock leader's lease ends before fast-clock followers elect anew", () => {
  // Worst direction within the ±2% bound: the leader's ticks last longer, the followers' shorter, and the
  // lease is as long as allowed (0.9 * T). The checker fails the run if both leaders ever hold a lease.
  for (let seed = 0; seed < 40; seed++) {
    const c = scenarioCluster({
      seed: `skew-${seed}`,
      members: 3,
      drifts: { n1: 0.02, n2: -0.02, n3: -0.02 },
      electionTimeoutTicks: 10,
      leaseTicks: 9,
      heartbeatIntervalTicks: 1,
      delayMinUnits: 0,
      delayMeanUnits: 50,
    });
    c.campaign("n1");
    const first = leaderWithin(c, 20);
    assert.equal(first.leaderId, "n1");
    c.runTicks(seed % 7);
    c.network.partition(["n1"], PartitionSymmetry.Symmetric);
    let stepDownUnits = Number.POSITIVE_INFINITY;
    ticksUntil(c, 60, () => {
      if (c.status("n1")?.role !== "leader") stepDownUnits = Math.min(stepDownUnits, c.nowUnits);
      return (c.leaderAgreement(["n2", "n3"])?.term ?? 0) > first.term;
    });
    assert.ok(
      stepDownUnits <= c.nowUnits,
      `seed ${seed}: old leader still leads when the new one is elected`,
    );
  }
});

test("sim: scenario: a stalled leader wakes after its lease, catches up its ticks and follows the new leader", () => {
  const c = scenarioCluster({ members: 3 });
  const first = leaderWithin(c, 50);
  c.pause(first.leaderId, 40);
  const others = c.ids.filter((id) => id !== first.leaderId);
  const second = leaderWithin(c, 38, { among: others, accept: (a) => a.term > first.term });
  assert.notEqual(second.leaderId, first.leaderId);
  c.runTicks(10);
  assert.deepEqual(leaderWithin(c, 20), second);
});

test("sim: scenario: priorities: leadership moves to the healthy highest-priority member", () => {
  const c = scenarioCluster({ members: 3, priorities: { n1: 0, n2: 1, n3: 2 } });
  c.campaign("n1");
  assert.equal(leaderWithin(c, 20).leaderId, "n1");
  const final = c.runUntilAgreement({ ticksMax: 60, accept: (a) => a.leaderId === "n3" });
  assert.ok(final, "n3 never took over");
});

test("sim: scenario: torn drain: a vote synced before the crash survives it, a vote only written does not", () => {
  for (const [opsBeforeCrash, durable] of [
    [1, { term: 0, votedFor: null }],
    [2, { term: 1, votedFor: "n1" }],
  ] as const) {
    const c = scenarioCluster({ members: 3, preVote: false });
    c.crashAtDrainStep("n2", opsBeforeCrash);
    c.campaign("n1");
    c.runTicks(1);
    assert.equal(c.isAlive("n2"), false);
    const { term, votedFor } = c.durableState("n2");
    assert.deepEqual({ term, votedFor }, durable);
    c.restart("n2");
    assert.equal(c.status("n2")?.votedFor, durable.votedFor);
  }
});

/** Runs seeds until one fails; returns that failure's cause. */
function firstFailure(createElection: ElectionFactory, seedsMax: number): unknown {
  for (let seed = 0; seed < seedsMax; seed++) {
    try {
      runHistory(`mutant-${seed}`, { createElection });
    } catch (error) {
      assert.ok(error instanceof SwarmFailureError);
      return error.cause;
    }
  }
  assert.fail(`no seed out of ${seedsMax} caught the broken core`);
}

test("sim: swarm: catches a leader whose clock stops (its lease outlives a newer leader)", () => {
  // The bug a shell makes when it stops feeding ticks: the lease is counted in ticks that never come.
  const frozenLeader: ElectionFactory = (config, persisted, rng) => {
    const core = realElection(config, persisted, rng);
    const tick = core.tick.bind(core);
    core.tick = () => {
      if (core.status().role !== "leader") tick();
    };
    return core;
  };
  const cause = firstFailure(frozenLeader, 200);
  assert.ok(cause instanceof SafetyViolationError);
  assert.equal(cause.invariant, "stale-leader-lease");
});

test("sim: swarm: catches a core that boots ignoring its disk", () => {
  const amnesiac: ElectionFactory = (config, _persisted, rng) => realElection(config, emptyHardState, rng);
  const cause = firstFailure(amnesiac, 200);
  assert.ok(cause instanceof SafetyViolationError);
  assert.match(cause.invariant, /fencing-monotonic|one-vote-per-term|one-leader-per-term/);
});
