import assert from "node:assert/strict";
import { test } from "node:test";
import { backupsToKeep } from "../../../src/core/backup_retention.ts";

const at = (iso: string) => ({ id: iso, createdMs: Date.parse(iso) });

test("retention keeps the newest N, the newest per day and per ISO week, and nothing else", () => {
  // Two backups a day at 03:00 and 15:00 from Monday 2026-11-02 to Sunday 2026-11-29 (4 ISO weeks).
  const backups = [];
  for (let day = 2; day <= 29; day++) {
    const date = `2026-11-${String(day).padStart(2, "0")}`;
    backups.push(at(`${date}T03:00:00.000Z`), at(`${date}T15:00:00.000Z`));
  }
  const kept = backupsToKeep(backups, { last: 3, daily: 4, weekly: 3 });
  assert.deepEqual(
    [...kept].sort(),
    [
      "2026-11-15T15:00:00.000Z", // newest of week 46 (Sunday)
      "2026-11-22T15:00:00.000Z", // newest of week 47
      "2026-11-26T15:00:00.000Z", // daily: 26th to 29th
      "2026-11-27T15:00:00.000Z",
      "2026-11-28T15:00:00.000Z",
      "2026-11-29T03:00:00.000Z", // last 3
      "2026-11-29T15:00:00.000Z", // last, daily, and week 48
    ].sort(),
  );
});

test("retention across a year boundary uses ISO weeks, and an empty policy keeps nothing", () => {
  // 2026-12-31 is a Thursday (week 53 of 2026); 2027-01-04 is the Monday of 2027-W1.
  const backups = [
    at("2026-12-31T10:00:00.000Z"),
    at("2027-01-03T10:00:00.000Z"),
    at("2027-01-04T10:00:00.000Z"),
  ];
  assert.deepEqual([...backupsToKeep(backups, { last: 0, daily: 0, weekly: 2 })].sort(), [
    "2027-01-03T10:00:00.000Z",
    "2027-01-04T10:00:00.000Z",
  ]);
  assert.equal(backupsToKeep(backups, { last: 0, daily: 0, weekly: 0 }).size, 0);
});
