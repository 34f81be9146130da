import assert from "node:assert/strict";
import { test } from "node:test";
import { Prng } from "../../../src/core/prng.ts";
import { randomizedTicks, Timeout } from "../../../src/core/timeout.ts";

test("timeout: fires after afterTicks and stays fired until reset", () => {
  const timeout = new Timeout("heartbeat", 3);
  timeout.tick();
  timeout.tick();
  assert.equal(timeout.fired(), false);
  timeout.tick();
  assert.equal(timeout.fired(), true);
  timeout.tick();
  assert.equal(timeout.elapsedTicks, 3, "saturates");
  timeout.reset();
  assert.equal(timeout.fired(), false);
  assert.equal(timeout.afterTicks, 3);
});

test("timeout: expire() fires at once", () => {
  const timeout = new Timeout("lease-window", 10);
  timeout.expire();
  assert.equal(timeout.fired(), true);
});

test("timeout: randomized resets cover exactly [T, 2T-1]", () => {
  const rng = new Prng("timeout-range");
  const timeout = new Timeout("election", 5);
  const seen = new Set<number>();
  for (let i = 0; i < 500; i++) {
    timeout.resetRandomized(rng, 1);
    assert.equal(timeout.elapsedTicks, 0);
    seen.add(timeout.afterTicks);
  }
  assert.deepEqual(
    [...seen].sort((a, b) => a - b),
    [5, 6, 7, 8, 9],
  );
});

test("timeout: more draws skew late inside the same range", () => {
  const mean = (draws: number) => {
    const rng = new Prng(`timeout-draws-${draws}`);
    let sum = 0;
    for (let i = 0; i < 2000; i++) {
      const ticks = randomizedTicks(rng, 10, draws);
      assert.ok(ticks >= 10 && ticks <= 19);
      sum += ticks;
    }
    return sum / 2000;
  };
  const [one, two, four] = [mean(1), mean(2), mean(4)];
  assert.ok(one < two && two < four, `${one} ${two} ${four}`);
  assert.throws(() => randomizedTicks(new Prng(1), 10, 0), RangeError);
});

test("timeout: attempts count retries until cleared; resets keep them", () => {
  const rng = new Prng("timeout-attempts");
  const timeout = new Timeout("election", 4);
  timeout.retryRandomized(rng, 1);
  timeout.retryRandomized(rng, 1);
  timeout.resetRandomized(rng, 1);
  assert.equal(timeout.attempts, 2);
  timeout.clearAttempts();
  assert.equal(timeout.attempts, 0);
});

test("timeout: baseTicks must be a positive integer", () => {
  assert.throws(() => new Timeout("bad", 0), RangeError);
  assert.throws(() => new Timeout("bad", 1.5), RangeError);
});

test("timeout: retarget() moves the deadline and keeps the ticks already elapsed", () => {
  const timeout = new Timeout("election", 10);
  for (let i = 0; i < 4; i++) timeout.tick();
  timeout.retarget(5);
  assert.equal(timeout.fired(), false);
  timeout.tick();
  assert.equal(timeout.fired(), true);
  timeout.retarget(20);
  assert.equal(timeout.fired(), false, "a later deadline un-fires it");
  assert.throws(() => timeout.retarget(0), RangeError);
});
