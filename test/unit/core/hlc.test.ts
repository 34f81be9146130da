import assert from "node:assert/strict";
import { test } from "node:test";
import { ClockSkewError, compareHlc, HybridClock } from "../../../src/core/hlc.ts";
import { Prng } from "../../../src/core/prng.ts";
import type { Hlc } from "../../../src/core/store_types.ts";

const skewMsMax = 60_000;
const baseWallMs = 1_700_000_000_000;

test("hlc: compareHlc orders by wall time, then counter", () => {
  assert.equal(compareHlc({ wallMs: 1, counter: 9 }, { wallMs: 2, counter: 0 }), -1);
  assert.equal(compareHlc({ wallMs: 2, counter: 0 }, { wallMs: 1, counter: 9 }), 1);
  assert.equal(compareHlc({ wallMs: 2, counter: 1 }, { wallMs: 2, counter: 2 }), -1);
  assert.equal(compareHlc({ wallMs: 2, counter: 2 }, { wallMs: 2, counter: 2 }), 0);
});

test("hlc: follows the wall clock when it moves forward", () => {
  const clock = new HybridClock({ skewMsMax });
  assert.deepEqual(clock.now(baseWallMs), { wallMs: baseWallMs, counter: 0 });
  assert.deepEqual(clock.now(baseWallMs), { wallMs: baseWallMs, counter: 1 });
  assert.deepEqual(clock.now(baseWallMs + 5.7), { wallMs: baseWallMs + 5, counter: 0 }, "whole milliseconds");
});

test("hlc: strictly monotonic while the wall clock jumps back and forth", () => {
  const rng = new Prng("hlc-monotonic");
  for (let run = 0; run < 50; run++) {
    const clock = new HybridClock({ skewMsMax });
    let wallMs = baseWallMs;
    let previous: Hlc = clock.peek();
    for (let step = 0; step < 500; step++) {
      const jump = rng.chance(0.2) ? rng.intBetween(-100_000, -1) : rng.intBetween(0, 3);
      wallMs += jump;
      const stamp = clock.now(wallMs + rng.next());
      assert.equal(
        compareHlc(stamp, previous),
        1,
        `step ${step}: ${JSON.stringify(stamp)} after ${JSON.stringify(previous)}`,
      );
      assert.ok(stamp.wallMs >= Math.floor(wallMs), "never behind the wall clock");
      assert.ok(Number.isInteger(stamp.wallMs) && Number.isInteger(stamp.counter));
      previous = stamp;
    }
  }
});

test("hlc: after observe(), every later now() exceeds the remote timestamp", () => {
  const rng = new Prng("hlc-observe");
  for (let round = 0; round < 2000; round++) {
    const clock = new HybridClock({
      skewMsMax,
      last: { wallMs: baseWallMs + rng.intBetween(-10, 10), counter: rng.intBetween(0, 5) },
    });
    const nowWallMs = baseWallMs + rng.intBetween(-20, 20);
    const remote = { wallMs: nowWallMs + rng.intBetween(-1000, skewMsMax), counter: rng.intBetween(0, 1000) };
    clock.observe(remote, nowWallMs);
    assert.ok(compareHlc(clock.peek(), remote) >= 0, "the clock has seen the remote");
    const later = clock.now(nowWallMs + rng.intBetween(-5000, 5));
    assert.equal(compareHlc(later, remote), 1);
  }
});

test("hlc: observing an older timestamp changes nothing", () => {
  const clock = new HybridClock({ skewMsMax });
  const issued = clock.now(baseWallMs);
  clock.observe({ wallMs: baseWallMs - 1, counter: 99 }, baseWallMs);
  assert.deepEqual(clock.peek(), issued);
});

test("hlc: a remote too far ahead is refused and changes nothing", () => {
  const rng = new Prng("hlc-skew");
  for (let round = 0; round < 500; round++) {
    const clock = new HybridClock({ skewMsMax });
    clock.now(baseWallMs);
    const before = clock.peek();
    const remote = {
      wallMs: baseWallMs + skewMsMax + rng.intBetween(1, 10 ** 9),
      counter: rng.intBetween(0, 9),
    };
    assert.throws(
      () => clock.observe(remote, baseWallMs),
      (error: unknown) => {
        assert.ok(error instanceof ClockSkewError);
        assert.equal(error.name, "ClockSkewError");
        return true;
      },
    );
    assert.deepEqual(clock.peek(), before);
    assert.deepEqual(clock.now(baseWallMs), { wallMs: baseWallMs, counter: before.counter + 1 });
  }
  const edge = new HybridClock({ skewMsMax });
  edge.observe({ wallMs: baseWallMs + skewMsMax, counter: 0 }, baseWallMs);
  assert.equal(edge.peek().wallMs, baseWallMs + skewMsMax, "exactly at the limit is accepted");
});

test("hlc: a malformed remote or wall reading is refused and changes nothing", () => {
  const clock = new HybridClock({ skewMsMax });
  const issued = clock.now(baseWallMs);
  const malformed: Hlc[] = [
    { wallMs: Number.NaN, counter: 0 },
    { wallMs: baseWallMs, counter: Number.NaN },
    { wallMs: baseWallMs, counter: -1 },
    { wallMs: baseWallMs + 0.5, counter: 0 },
    { wallMs: -1, counter: 0 },
    { wallMs: baseWallMs, counter: Number.POSITIVE_INFINITY },
  ];
  for (const remote of malformed) {
    assert.throws(() => clock.observe(remote, baseWallMs), RangeError, JSON.stringify(remote));
    assert.deepEqual(clock.peek(), issued);
  }
  assert.throws(() => clock.now(Number.NaN), RangeError);
  assert.throws(() => clock.now(Number.POSITIVE_INFINITY), RangeError);
  assert.deepEqual(clock.peek(), issued);
});

test("hlc: refuses a non-positive skew limit", () => {
  assert.throws(() => new HybridClock({ skewMsMax: 0 }), RangeError);
  assert.throws(() => new HybridClock({ skewMsMax: Number.NaN }), RangeError);
});

test("hlc: resumes after a restart from the persisted high-water mark", () => {
  const first = new HybridClock({ skewMsMax });
  first.now(baseWallMs);
  const persisted = first.now(baseWallMs);
  const restarted = new HybridClock({ skewMsMax, last: persisted });
  assert.equal(
    compareHlc(restarted.now(baseWallMs - 60_000), persisted),
    1,
    "wall clock went back across the restart",
  );
});
