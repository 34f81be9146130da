import assert from "node:assert/strict";
import { test } from "node:test";
import { NodeClock, unitsPerTick } from "./clock.ts";
import { EventQueue } from "./event_queue.ts";

test("sim: clock: drift stretches or shrinks a node's tick period", () => {
  const slow = new NodeClock({ drift: 0.02, firstTickUnits: 0 });
  const fast = new NodeClock({ drift: -0.02, firstTickUnits: 0 });
  assert.equal(slow.periodUnits, 1020);
  assert.equal(fast.periodUnits, 980);
  slow.takeDue(100 * unitsPerTick);
  fast.takeDue(100 * unitsPerTick);
  assert.equal(slow.ticks, 99);
  assert.equal(fast.ticks, 103);
});

test("sim: clock: drift beyond the stated bound is refused", () => {
  assert.throws(() => new NodeClock({ drift: 0.05, firstTickUnits: 0 }), RangeError);
});

test("sim: clock: a stalled node gets every missed tick at once, then its schedule resumes", () => {
  const clock = new NodeClock({ drift: 0, firstTickUnits: 500 });
  assert.equal(clock.takeDue(499), 0);
  assert.equal(clock.takeDue(500), 1);
  assert.equal(clock.takeDue(10_700), 10);
  assert.equal(clock.nextTickUnits, 11_500);
});

test("sim: event queue: earliest first, ties in insertion order", () => {
  const queue = new EventQueue<string>();
  for (const [at, item] of [
    [5, "c"],
    [1, "a"],
    [5, "d"],
    [3, "b"],
    [1, "a2"],
  ] as const)
    queue.push(at, item);
  const out: string[] = [];
  for (let item = queue.pop(); item !== undefined; item = queue.pop()) out.push(item);
  assert.deepEqual(out, ["a", "a2", "b", "c", "d"]);
  assert.equal(queue.peekUnits(), Number.POSITIVE_INFINITY);
});
