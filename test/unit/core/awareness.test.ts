import assert from "node:assert/strict";
import { test } from "node:test";
import {
  Awareness,
  clampAwarenessScore,
  latenessPenalty,
  scaleTimeoutTicks,
} from "../../../src/core/awareness.ts";

test("awareness: scaleTimeoutTicks multiplies by score + 1", () => {
  const table: [baseTicks: number, score: number, expected: number][] = [
    [12, 0, 12],
    [12, 1, 24],
    [20, 7, 160],
    [0, 5, 0],
    [1, 3, 4],
  ];
  for (const [baseTicks, score, expected] of table) {
    assert.equal(scaleTimeoutTicks(baseTicks, score), expected, `scale(${baseTicks}, ${score})`);
  }
});

test("awareness: scaleTimeoutTicks refuses negative or fractional inputs", () => {
  assert.throws(() => scaleTimeoutTicks(-1, 0), RangeError);
  assert.throws(() => scaleTimeoutTicks(1.5, 0), RangeError);
  assert.throws(() => scaleTimeoutTicks(4, -1), RangeError);
});

test("awareness: clampAwarenessScore keeps the score in [0, awarenessMax - 1]", () => {
  const table: [score: number, awarenessMax: number, expected: number][] = [
    [-3, 8, 0],
    [0, 8, 0],
    [5, 8, 5],
    [7, 8, 7],
    [8, 8, 7],
    [100, 8, 7],
    [3, 1, 0],
  ];
  for (const [score, awarenessMax, expected] of table) {
    assert.equal(clampAwarenessScore(score, awarenessMax), expected, `clamp(${score}, ${awarenessMax})`);
  }
});

test("awareness: latenessPenalty is one point per heartbeat interval the stall touched", () => {
  const table: [lateTicks: number, heartbeatIntervalTicks: number, expected: number][] = [
    [0, 4, 0],
    [1, 4, 1],
    [4, 4, 1],
    [5, 4, 2],
    [6, 4, 2], // 300 ms stall at 50 ms ticks
    [30, 2, 15],
  ];
  for (const [lateTicks, heartbeatIntervalTicks, expected] of table) {
    assert.equal(
      latenessPenalty(lateTicks, heartbeatIntervalTicks),
      expected,
      `${lateTicks}/${heartbeatIntervalTicks}`,
    );
  }
});

test("awareness: score rises on lateness and saturates at awarenessMax - 1", () => {
  const awareness = new Awareness({ awarenessMax: 8, decayEveryTicks: 4 });
  assert.equal(awareness.score, 0);
  awareness.raise(2);
  assert.equal(awareness.score, 2);
  assert.equal(awareness.scaleTimeoutTicks(12), 36);
  awareness.raise(100);
  assert.equal(awareness.score, 7);
  assert.equal(awareness.scaleTimeoutTicks(20), 160);
});

test("awareness: score decays one point per decayEveryTicks on-time ticks, never below 0", () => {
  const awareness = new Awareness({ awarenessMax: 8, decayEveryTicks: 4 });
  awareness.raise(2);
  const scores: number[] = [];
  for (let i = 0; i < 12; i++) {
    awareness.tickOnTime();
    scores.push(awareness.score);
  }
  assert.deepEqual(scores, [2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0, 0]);
});

test("awareness: lateness restarts the on-time streak that decay needs", () => {
  const awareness = new Awareness({ awarenessMax: 8, decayEveryTicks: 4 });
  awareness.raise(1);
  for (let i = 0; i < 3; i++) awareness.tickOnTime();
  awareness.raise(1);
  for (let i = 0; i < 3; i++) awareness.tickOnTime();
  assert.equal(awareness.score, 2, "two streaks of 3 on-time ticks must not decay anything");
  awareness.tickOnTime();
  assert.equal(awareness.score, 1);
});

test("awareness: impossible configs are refused", () => {
  assert.throws(() => new Awareness({ awarenessMax: 0, decayEveryTicks: 4 }), RangeError);
  assert.throws(() => new Awareness({ awarenessMax: 8, decayEveryTicks: 0 }), RangeError);
  assert.throws(() => new Awareness({ awarenessMax: 2.5, decayEveryTicks: 4 }), RangeError);
});
