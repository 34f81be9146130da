import assert from "node:assert/strict";
import { test } from "node:test";
import { MonotonicTicker } from "../../../src/cluster/monotonic_ticker.ts";

function fakeTicker(catchUpTicksMax?: number) {
  let nowMs = 1_000;
  const delivered: number[] = [];
  const ticker = new MonotonicTicker({
    tickMs: 50,
    onTicks: (count) => delivered.push(count),
    now: () => nowMs,
    ...(catchUpTicksMax === undefined ? {} : { catchUpTicksMax }),
  });
  return { ticker, delivered, advance: (ms: number) => (nowMs += ms) };
}

test("monotonic ticker: a stall is delivered as the ticks it covered, before any input is handled", () => {
  const { ticker, delivered, advance } = fakeTicker();
  ticker.start();
  try {
    advance(49);
    ticker.catchUp();
    assert.deepEqual(delivered, []);
    advance(1);
    ticker.catchUp();
    advance(300); // a 300 ms stall: six ticks due at once
    ticker.catchUp();
    ticker.catchUp(); // nothing new
    assert.deepEqual(delivered, [1, 6]);
  } finally {
    ticker.stop();
  }
});

test("monotonic ticker: a very long stall is bounded and the clock does not fall behind", () => {
  const { ticker, delivered, advance } = fakeTicker(100);
  ticker.start();
  try {
    advance(60_000);
    ticker.catchUp();
    advance(50);
    ticker.catchUp();
    assert.deepEqual(delivered, [100, 1]);
  } finally {
    ticker.stop();
  }
});

test("monotonic ticker: nothing is delivered while stopped", () => {
  const { ticker, delivered, advance } = fakeTicker();
  advance(500);
  ticker.catchUp();
  assert.deepEqual(delivered, []);
  assert.throws(() => new MonotonicTicker({ tickMs: 0, onTicks: () => undefined }), RangeError);
});
