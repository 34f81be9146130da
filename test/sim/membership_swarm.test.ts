import assert from "node:assert/strict";
import { test } from "node:test";
import type { ElectionMessage } from "../../src/core/election_types.ts";
import type { Envelope } from "../../src/core/types.ts";
import { SafetyViolationError } from "./checkers/election_safety.ts";
import type { ElectionFactory } from "./cluster.ts";
import type { ElectionCore } from "./drain.ts";
import { runMembershipHistory } from "./membership_swarm.ts";
import { realElection, SwarmFailureError } from "./swarm.ts";

const swarmSeeds = 400;

test("sim: membership swarm: 400 seeded histories of changes under faults keep safety and converge", (t) => {
  const startedMs = performance.now();
  let accepted = 0;
  let committed = 0;
  for (let seed = 0; seed < swarmSeeds; seed++) {
    const r = runMembershipHistory(String(seed));
    accepted += r.changesAccepted;
    committed = Math.max(committed, r.committedVersion);
  }
  const elapsedMs = performance.now() - startedMs;
  t.diagnostic(`${swarmSeeds} histories in ${elapsedMs.toFixed(0)} ms, ${accepted} changes accepted`);
  assert.ok(accepted > swarmSeeds, "the leaders were hardly ever asked for a change");
  assert.ok(committed > 10, `no history committed more than v${committed}`);
});

test("sim: membership swarm: a seed replays to the identical transcript, its failure names the replay", () => {
  const transcript = (seed: string) => {
    const lines: string[] = [];
    runMembershipHistory(seed, { log: (line) => lines.push(line) });
    return lines;
  };
  const first = transcript("11");
  assert.ok(first.some((line) => / propose .*: ok v/.test(line)));
  assert.deepEqual(transcript("11"), first);
  const broken: ElectionFactory = () => {
    throw new Error("no core");
  };
  assert.throws(
    () => runMembershipHistory("5", { createElection: broken }),
    (error) =>
      error instanceof SwarmFailureError && /npm run sim -- --membership --seed 5/.test(error.message),
  );
});

/** A real core whose incoming messages pass through `rewrite` first (a deliberately broken rule). */
function rewriting(
  rewrite: (core: ElectionCore, message: ElectionMessage) => ElectionMessage,
): ElectionFactory {
  return (config, persisted, rng) => {
    const core = realElection(config, persisted, rng);
    const step = core.step.bind(core);
    core.step = (envelope: Envelope<ElectionMessage>) =>
      step({ ...envelope, message: rewrite(core, envelope.message) });
    return core;
  };
}

/**
 * Runs seeds until one breaks a safety rule; returns that violation. A broken core may also stall a history
 * (a liveness failure) first: that seed is passed over, since the claim is that safety is caught.
 */
function firstFailure(createElection: ElectionFactory, seedsMax: number): unknown {
  for (let seed = 0; seed < seedsMax; seed++) {
    try {
      runMembershipHistory(`mutant-${seed}`, { createElection });
    } catch (error) {
      assert.ok(error instanceof SwarmFailureError);
      if (error.cause instanceof SafetyViolationError) {
        return error.cause;
      }
    }
  }
  assert.fail(`no seed out of ${seedsMax} caught the broken core`);
}

test("sim: membership swarm: catches voters that grant candidates holding an older list", () => {
  const blind = rewriting((core, m) =>
    m.type === "pre-vote" || m.type === "vote" ? { ...m, membership: core.status().membership.summary } : m,
  );
  const cause = firstFailure(blind, 400);
  assert.ok(cause instanceof SafetyViolationError, String(cause));
  assert.match(cause.invariant, /committed-never-lost|one-leader-per-term|stale-leader-lease/);
});

test("sim: membership swarm: catches a leader that counts every heartbeat answer as holding its list", () => {
  const credulous = rewriting((core, m) =>
    m.type === "heartbeat-response" ? { ...m, membership: core.status().membership.summary } : m,
  );
  const cause = firstFailure(credulous, 1000);
  assert.ok(cause instanceof SafetyViolationError, String(cause));
  assert.match(cause.invariant, /committed-never-lost|one-leader-per-term|stale-leader-lease/);
});
