// Services with the real election, grants, runner and placement loop under crashes, partitions, loss, late
// timers and clock rates 1 % apart (test/sim/services_swarm.ts): never two nodes running one service at once,
// every service running again soon after healing, failback only in an open restore window and once per
// window and leader. Seeds from SERVICES_SIM_SEED (one history) or a fresh base each run, printed with any
// failure.
import assert from "node:assert/strict";
import { test } from "node:test";
import { runServicesHistory } from "./services_swarm.ts";

const seeds = 120;

test(`sim: services with elected leaders: safety, liveness after healing, failback (${seeds} histories)`, async () => {
  const fixed = process.env.SERVICES_SIM_SEED;
  const base = fixed ?? `s${Date.now().toString(36)}`;
  const histories = fixed ? 1 : seeds;
  let runs = 0;
  let terms = 0;
  let crashes = 0;
  let failbacks = 0;
  for (let i = 0; i < histories; i++) {
    const result = await runServicesHistory(fixed ?? `${base}-${i}`);
    runs += result.runs;
    terms += result.leaderTerms;
    crashes += result.crashes;
    failbacks += result.failbacks;
  }
  if (fixed) return;
  // Not vacuous: services ran, leaders changed, nodes crashed, and services went home in their windows.
  assert.ok(runs > 2 * histories, `${runs} runs in ${histories} histories (base ${base})`);
  assert.ok(terms > histories, `${terms} terms with a leader (base ${base})`);
  assert.ok(crashes > histories, `${crashes} crashes (base ${base})`);
  assert.ok(failbacks > 0, `${failbacks} failbacks (base ${base})`);
});
