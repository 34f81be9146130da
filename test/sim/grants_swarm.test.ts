// Service grants under random leader changes, moves, delays, losses, cuts, late timers and clock rates 1 %
// apart, new leaders' windows bounded by their votes' contacts: no two nodes ever run the service at once
// (test/sim/grants_swarm.ts). Seeds from GRANTS_SIM_SEED
// (one history) or a fresh base each run, printed with any failure.
import assert from "node:assert/strict";
import { test } from "node:test";
import { runGrantsHistory } from "./grants_swarm.ts";

const seeds = 200;

test(`sim: service grants: never two owners at once (${seeds} histories of 2 minutes)`, () => {
  const fixed = process.env.GRANTS_SIM_SEED;
  const base = fixed ?? `g${Date.now().toString(36)}`;
  const histories = fixed ? 1 : seeds;
  let runs = 0;
  let leaderChanges = 0;
  let bounded = 0;
  for (let i = 0; i < histories; i++) {
    const seed = fixed ?? `${base}-${i}`;
    const result = runGrantsHistory(seed);
    runs += result.runs.length;
    leaderChanges += result.leaderChanges;
    bounded += result.boundedWindows;
  }
  // Not vacuous: the service ran, moved and survived leader changes.
  assert.ok(runs > histories, `${runs} runs in ${histories} histories (base ${base})`);
  assert.ok(leaderChanges > histories, `${leaderChanges} leader changes (base ${base})`);
  if (!fixed) assert.ok(bounded > histories, `${bounded} windows bounded by votes (base ${base})`);
});
