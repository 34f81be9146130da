import assert from "node:assert/strict";
import { test } from "node:test";
import { openRestoreWindow } from "../../../src/services/restore_window.ts";

const at = (iso: string) => Date.parse(iso);

test("restore window: open from each cron start for its length, with one id per opening", () => {
  const nightly = { cron: "0 2 * * *", lengthMs: 3_600_000, timezone: "UTC" };
  assert.equal(openRestoreWindow(nightly, at("2026-12-06T01:59:59.999Z")), null);
  assert.equal(openRestoreWindow(nightly, at("2026-12-06T02:00:00.000Z")), "2026-12-06T02:00:00.000Z");
  assert.equal(openRestoreWindow(nightly, at("2026-12-06T02:59:59.999Z")), "2026-12-06T02:00:00.000Z");
  assert.equal(openRestoreWindow(nightly, at("2026-12-06T03:00:00.000Z")), null);
  assert.equal(openRestoreWindow(nightly, at("2026-12-07T02:30:00.000Z")), "2026-12-07T02:00:00.000Z");
});

test("restore window: the pattern is read in its time zone", () => {
  const berlin = { cron: "0 2 * * *", lengthMs: 1_800_000, timezone: "Europe/Berlin" };
  // Winter: 02:00 in Berlin is 01:00 UTC; summer: 00:00 UTC.
  assert.equal(openRestoreWindow(berlin, at("2026-12-06T01:10:00Z")), "2026-12-06T01:00:00.000Z");
  assert.equal(openRestoreWindow(berlin, at("2026-12-06T02:10:00Z")), null);
  assert.equal(openRestoreWindow(berlin, at("2026-07-06T00:10:00Z")), "2026-07-06T00:00:00.000Z");
});

test("restore window: across daylight-saving changes each day opens at most once", () => {
  const berlin = { cron: "30 2 * * *", lengthMs: 600_000, timezone: "Europe/Berlin" };
  for (const day of ["2026-03-28", "2026-03-29", "2026-03-30", "2026-10-24", "2026-10-25", "2026-10-26"]) {
    const openings = new Set<string>();
    const start = at(`${day}T00:00:00Z`) - 2 * 3_600_000;
    for (let t = start; t < start + 24 * 3_600_000; t += 60_000) {
      const id = openRestoreWindow(berlin, t);
      if (id !== null) openings.add(id);
    }
    assert.ok(openings.size <= 1, `${day}: ${[...openings].join(", ")}`);
    // On the day clocks go forward, 02:30 does not exist in Berlin; on every other day it opens.
    if (day !== "2026-03-29") assert.equal(openings.size, 1, day);
  }
});
