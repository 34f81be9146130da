import assert from "node:assert/strict";
import { test } from "node:test";
import { Ticker, type TickerTimers } from "../../../src/shell/index.ts";

/** A clock moved by hand and the one timer the ticker arms, fired by hand. */
function manualTicker() {
  let nowMs = 1_000;
  let armed: { callback: () => void; dueMs: number } | null = null;
  let armedCount = 0;
  const timers: TickerTimers = {
    setTimeout: (callback, delayMs) => {
      assert.equal(armed, null, "one timer at a time");
      armedCount += 1;
      armed = { callback, dueMs: nowMs + delayMs };
      return armed;
    },
    clearTimeout: (handle) => {
      if (handle === armed) armed = null;
    },
  };
  const ticker = new Ticker({ now: () => nowMs, timers });
  return {
    ticker,
    advance: (ms: number) => (nowMs += ms),
    /** Moves the clock to the armed timer's due time and fires it. */
    fire: () => {
      const due = armed;
      assert.ok(due, "a timer is armed");
      nowMs = Math.max(nowMs, due.dueMs);
      armed = null;
      due.callback();
    },
    armedDueMs: () => armed?.dueMs ?? null,
    armedCount: () => armedCount,
  };
}

test("ticker: a stall is delivered as the ticks it covered, before any input is handled", () => {
  const { ticker, advance } = manualTicker();
  const delivered: number[] = [];
  const ticks = ticker.every(50, (count) => delivered.push(count));
  ticks.start();
  advance(49);
  ticks.catchUp();
  assert.deepEqual(delivered, []);
  advance(1);
  ticks.catchUp();
  advance(300); // a 300 ms stall: six ticks due at once
  ticks.catchUp();
  ticks.catchUp(); // nothing new
  assert.deepEqual(delivered, [1, 6]);
  ticks.stop();
});

test("ticker: a very long stall is bounded and the clock does not fall behind", () => {
  const { ticker, advance } = manualTicker();
  const delivered: number[] = [];
  const ticks = ticker.every(50, (count) => delivered.push(count), { catchUpTicksMax: 100 });
  ticks.start();
  advance(60_000);
  ticks.catchUp();
  advance(50);
  ticks.catchUp();
  assert.deepEqual(delivered, [100, 1]);
});

test("ticker: nothing is delivered while stopped, and a bad period is refused", () => {
  const { ticker, advance, armedDueMs } = manualTicker();
  const delivered: number[] = [];
  const ticks = ticker.every(50, (count) => delivered.push(count));
  advance(500);
  ticks.catchUp();
  ticks.start();
  ticks.stop();
  advance(500);
  ticks.catchUp();
  assert.deepEqual(delivered, []);
  assert.equal(armedDueMs(), null, "no subscriber, no timer");
  assert.throws(() => ticker.every(0, () => undefined), RangeError);
});

test("ticker: one timer fans out to subscribers of different periods, each when due", () => {
  const { ticker, fire, armedDueMs } = manualTicker();
  const calls: string[] = [];
  const fast = ticker.every(50, (count) => calls.push(`fast×${count}`));
  const slow = ticker.every(250, (count) => calls.push(`slow×${count}`));
  fast.start();
  slow.start();
  assert.equal(ticker.subscriberCount, 2);
  for (let i = 0; i < 5; i++) fire();
  assert.deepEqual(calls, ["fast×1", "fast×1", "fast×1", "fast×1", "fast×1", "slow×1"]);
  fast.stop();
  // Only the slow one is left: the timer sleeps until it is due, not every 50 ms.
  assert.equal(armedDueMs(), 1_000 + 500);
  fire();
  assert.deepEqual(calls.slice(6), ["slow×1"]);
});

test("ticker: after a stall each subscriber gets its own catch-up count from one firing", () => {
  const { ticker, advance, fire } = manualTicker();
  const calls: string[] = [];
  ticker.every(50, (count) => calls.push(`fast×${count}`)).start();
  ticker.every(250, (count) => calls.push(`slow×${count}`)).start();
  advance(1_000); // the timer was due at 50 ms; the loop ran 950 ms late
  fire();
  assert.deepEqual(calls, ["fast×20", "slow×4"]);
});

test("ticker: a subscriber started later does not wait for an earlier, later-due timer", () => {
  const { ticker, armedDueMs, armedCount } = manualTicker();
  ticker.every(3_600_000, () => undefined).start();
  assert.equal(armedDueMs(), 1_000 + 3_600_000);
  ticker.every(50, () => undefined).start();
  assert.equal(armedDueMs(), 1_000 + 50);
  assert.equal(armedCount(), 2);
});

test("ticker: a subscriber that stops another during a firing does not break the fan-out", () => {
  const { ticker, fire } = manualTicker();
  const calls: string[] = [];
  const second = ticker.every(50, () => calls.push("second"));
  ticker
    .every(50, () => {
      calls.push("first");
      second.stop();
    })
    .start();
  second.start();
  fire();
  fire();
  assert.deepEqual(calls, ["first", "first"]);
});

test("ticker: real timers deliver ticks to two subscribers", async () => {
  const ticker = new Ticker();
  const seen = { a: 0, b: 0 };
  const a = ticker.every(5, (count) => (seen.a += count));
  const b = ticker.every(10, (count) => (seen.b += count));
  a.start();
  b.start();
  try {
    while (seen.a < 4 || seen.b < 2) await new Promise((resolve) => setTimeout(resolve, 5));
  } finally {
    a.stop();
    b.stop();
  }
  assert.equal(ticker.subscriberCount, 0);
});

test("ticker: subscribers of one period started apart share one wake-up", () => {
  const { ticker, advance, fire, armedDueMs, armedCount } = manualTicker();
  const calls: string[] = [];
  ticker.every(50, () => calls.push("a")).start();
  advance(17);
  // On the grid: its first tick comes at 1_100 (one to two periods after its start), with a's second.
  ticker.every(50, () => calls.push("b")).start();
  assert.equal(armedDueMs(), 1_050);
  fire();
  assert.deepEqual(calls, ["a"]);
  assert.equal(armedDueMs(), 1_100);
  fire();
  assert.deepEqual(calls, ["a", "a", "b"]);
  for (let i = 0; i < 3; i++) fire();
  assert.equal(calls.length, 3 + 3 * 2, "one firing each period serves both");
  assert.equal(armedCount(), 6, "one timer per period, not one per subscriber");
});

test("ticker: wakeAfter skips the timer's wake-ups, catchUp still counts every tick", () => {
  const { ticker, advance, fire, armedDueMs } = manualTicker();
  const delivered: number[] = [];
  const ticks = ticker.every(50, (count) => {
    delivered.push(count);
    ticks.wakeAfter(4);
  });
  ticks.start();
  assert.equal(armedDueMs(), 1_050);
  ticks.wakeAfter(3);
  assert.equal(armedDueMs(), 1_150, "the hint moved later: so did the timer");
  fire();
  assert.deepEqual(delivered, [3]);
  assert.equal(armedDueMs(), 1_350, "asleep for four more ticks");
  advance(60); // an input arrives meanwhile: time first, so it sees the tick that passed
  ticks.catchUp();
  assert.deepEqual(delivered, [3, 1]);
  assert.equal(armedDueMs(), 1_400, "four ticks from the one just delivered");
  ticks.wakeAfter(1); // something became due sooner: the timer moves earlier
  assert.equal(armedDueMs(), 1_250);
  fire();
  assert.deepEqual(delivered, [3, 1, 1]);
  assert.throws(() => ticks.wakeAfter(0), RangeError);
});

test("ticker: lateMs says how far past the tick it asked for a subscriber was woken", () => {
  const { ticker, advance, fire } = manualTicker();
  const seen: Array<[number, number]> = [];
  const ticks = ticker.every(50, (count, lateMs) => seen.push([count, lateMs]));
  ticks.start();
  ticks.wakeAfter(4);
  fire(); // at tick 4, on time
  advance(30);
  ticks.wakeAfter(2); // due at tick 6 (1_300)
  advance(320); // a stall: the timer fires at 1_550
  fire();
  ticks.wakeAfter(4); // due at tick 15 (1_750)
  advance(55);
  ticks.catchUp(); // an input catches up one tick during the sleep: early, not late
  assert.deepEqual(seen, [
    [4, 0],
    [7, 250],
    [1, -145],
  ]);
});

test("ticker: wakeAfter counts from now, so a wake-up asked for mid-sleep is not late", () => {
  const { ticker, advance, fire, armedDueMs } = manualTicker();
  const seen: Array<[number, number]> = [];
  const ticks = ticker.every(50, (count, lateMs) => {
    seen.push([count, lateMs]);
    ticks.wakeAfter(4);
  });
  ticks.start();
  fire();
  assert.equal(armedDueMs(), 1_250);
  advance(120); // 1_170: two ticks passed undelivered
  ticks.wakeAfter(1); // e.g. a link came up: wake at the next tick, 1_200
  assert.equal(armedDueMs(), 1_200);
  fire();
  assert.deepEqual(seen, [
    [1, 0],
    [3, 0],
  ]);
});

test("ticker: a subscriber riding along is served by the other's wake-ups and never wakes alone", () => {
  const { ticker, advance, fire, armedDueMs, armedCount } = manualTicker();
  const heartbeats: number[] = [];
  const checks: Array<[number, number]> = [];
  const heartbeat = ticker.every(50, (count) => {
    heartbeats.push(count);
    heartbeat.wakeAfter(4);
  });
  const detector = ticker.every(
    50,
    (count, lateMs) => {
      checks.push([count, lateMs]);
      detector.wakeAfter(5);
    },
    { ridesAlong: true },
  );
  heartbeat.start();
  detector.start();
  fire(); // tick 1: both due
  assert.deepEqual(checks, [[1, 0]]);
  for (let i = 0; i < 4; i++) fire(); // ticks 5, 9, 13, 17: the detector rides each, a tick early
  assert.deepEqual(heartbeats, [1, 4, 4, 4, 4]);
  assert.deepEqual(checks.slice(1), [
    [4, -50],
    [4, -50],
    [4, -50],
    [4, -50],
  ]);
  assert.equal(armedCount(), 6, "one timer per heartbeat (and the next one), none for the detector");
  heartbeat.stop(); // no more rides: the detector's own timer serves it, on time
  assert.equal(armedDueMs(), 1_050 + 16 * 50 + 5 * 50);
  fire();
  assert.deepEqual(checks.at(-1), [5, 0]);
  advance(10);
  detector.stop();
});
