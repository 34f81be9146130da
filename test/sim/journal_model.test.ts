// The journal's delivery and apply path under duplicates, reordering, redelivery, queue outages and kills
// (test/sim/journal_model.ts): complete, once in effect, in order per lane. Seeds from JOURNAL_SIM_SEED (one
// history) or a fresh base each run, printed with any failure.
import assert from "node:assert/strict";
import { test } from "node:test";
import { runJournalModel } from "./journal_model.ts";

const seeds = 300;

test(`sim: journal: every entry applied everywhere once in effect, in order per lane (${seeds} histories)`, () => {
  const fixed = process.env.JOURNAL_SIM_SEED;
  const base = fixed ?? `j${Date.now().toString(36)}`;
  const histories = fixed ? 1 : seeds;
  let kills = 0;
  let deadLetters = 0;
  let deliveries = 0;
  let entries = 0;
  for (let i = 0; i < histories; i++) {
    const result = runJournalModel(fixed ?? `${base}-${i}`);
    kills += result.kills;
    deadLetters += result.deadLetters;
    deliveries += result.deliveries;
    entries += result.entries;
  }
  // Not vacuous: receivers were killed, poisoned entries were given up, and deliveries repeated.
  assert.ok(kills > histories, `${kills} kills (base ${base})`);
  assert.ok(deadLetters > 0, `no dead letters (base ${base})`);
  assert.ok(deliveries > 2 * entries, `${deliveries} deliveries of ${entries} entries (base ${base})`);
});
