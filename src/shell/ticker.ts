// The agent's one timer. Cores count logical ticks; setInterval does not catch up after the event loop
// stalls (GC pause, CPU starvation, SIGSTOP), and a leader that slept through its lease must see those
// ticks before it decides anything. So each subscriber's ticks are counted from a monotonic clock, and a
// shell calls catchUp() before feeding any input, not only when the timer fires. One timer fans out to
// every subscriber, each at its own period: it sleeps until the earliest one is due. Subscribers tick on
// one grid (multiples of their period from the ticker's creation), so those of one period share a wake-up,
// and a subscriber with nothing to do for a while says so (wakeAfter) instead of being woken every tick.
// A subscriber for which early is as good as on time (a failure detector that only must not be late) rides
// along: it gets its passed ticks whenever the timer wakes for another one, so its own wake-ups, each a
// whole process wake-up for one check, mostly never happen. Wake-ups are most of an idle agent's CPU.
import { performance } from "node:perf_hooks";

/** One subscriber's ticks: started, stopped, and caught up on demand. */
export interface MonotonicTicker {
  start(): void;
  stop(): void;
  readonly running: boolean;
  /** Delivers every tick that is due by now. Safe to call at any time, from any input path. */
  catchUp(): void;
  /**
   * The timer need not deliver before `ticks` more ticks are due (>= 1): nothing of the subscriber's
   * fires sooner. catchUp() still delivers every due tick, so its count stays exact; the hint lasts until
   * the next delivery.
   */
  wakeAfter(ticks: number): void;
}

/** The timer functions the ticker arms; tests pass a manual scheduler. */
export interface TickerTimers {
  setTimeout(callback: () => void, delayMs: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface TickerOptions {
  now?: () => number;
  timers?: TickerTimers;
}

export interface TickSubscriptionOptions {
  /** Upper bound on ticks delivered in one catch-up; a longer stall delivers this many (all timers fire). */
  catchUpTicksMax?: number;
  /** Deliver the ticks passed (>= 1) whenever the timer fires for another subscriber, even before wakeAfter. */
  ridesAlong?: boolean;
}

const realTimers: TickerTimers = {
  setTimeout: (callback, delayMs) => setTimeout(callback, delayMs),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

const catchUpTicksMaxDefault = 10_000;

export class Ticker {
  private readonly now: () => number;
  private readonly timers: TickerTimers;
  private readonly running = new Set<TickSubscription>();
  private timer: unknown = null;
  /** When the armed timer fires (monotonic ms). */
  private timerDueMs = Number.POSITIVE_INFINITY;
  private firing = false;
  /** Origin of the grid every subscriber ticks on. */
  private readonly originMs: number;

  constructor(options: TickerOptions = {}) {
    this.now = options.now ?? (() => performance.now());
    this.timers = options.timers ?? realTimers;
    this.originMs = this.now();
  }

  /**
   * A subscriber called with the number of ticks of `periodMs` that became due (>= 1; more than 1 means
   * the loop was late, or it slept) and how late it came: ms past the tick it was due at (after wakeAfter,
   * the tick it asked for; negative when an input caught it up before that). Nothing is delivered until
   * its start().
   */
  every(
    periodMs: number,
    onTicks: (count: number, lateMs: number) => void,
    options: TickSubscriptionOptions = {},
  ): MonotonicTicker {
    if (!(periodMs > 0)) throw new RangeError(`periodMs must be > 0, got ${periodMs}`);
    return new TickSubscription(
      this,
      periodMs,
      onTicks,
      options.catchUpTicksMax ?? catchUpTicksMaxDefault,
      options.ridesAlong ?? false,
    );
  }

  /** Subscribers currently started. */
  get subscriberCount(): number {
    return this.running.size;
  }

  /** @internal */
  nowMs(): number {
    return this.now();
  }

  /** @internal The first grid point of `periodMs` at or after now. */
  gridStartMs(periodMs: number): number {
    return this.originMs + Math.ceil((this.now() - this.originMs) / periodMs) * periodMs;
  }

  /** @internal A subscriber's next due time may have moved earlier. */
  rearm(): void {
    this.arm();
  }

  /**
   * @internal A subscriber's next due time moved later: if the timer would now fire for nobody, it is set
   * for the first one due instead. Node still wakes the process at the first time (its libuv timer never
   * moves later), but that wake-up runs nothing; only a deadline that stays put saves the wake-up itself.
   */
  postpone(): void {
    if (this.firing || this.timer === null || this.timerDueMs >= this.firstDueMs()) return;
    this.disarm();
    this.arm();
  }

  /** @internal */
  add(subscription: TickSubscription): void {
    this.running.add(subscription);
    this.arm();
  }

  /** @internal */
  remove(subscription: TickSubscription): void {
    this.running.delete(subscription);
    // The timer may have been armed for this one: sleep until the next subscriber is due instead.
    this.disarm();
    this.arm();
  }

  private fire(): void {
    this.timer = null;
    this.timerDueMs = Number.POSITIVE_INFINITY;
    this.firing = true;
    try {
      // A copy: a subscriber may stop itself or another one while ticks go out.
      // Only those due, and those riding along: one asleep (wakeAfter) keeps sleeping when it shares a firing.
      const nowMs = this.now();
      for (const subscription of [...this.running]) {
        if (subscription.nextDueMs() <= nowMs || subscription.ridesAlong) subscription.catchUp();
      }
    } finally {
      this.firing = false;
    }
    this.arm();
  }

  /** Sleeps until the earliest subscriber is due (re-armed only when that moved earlier; see postpone). */
  private arm(): void {
    if (this.firing || this.running.size === 0) return;
    const dueMs = this.firstDueMs();
    if (this.timer !== null && this.timerDueMs <= dueMs) return;
    this.disarm();
    // Timers have millisecond resolution: rounding up never wakes before anything is due.
    const delayMs = Math.max(1, Math.ceil(dueMs - this.now()));
    this.timerDueMs = dueMs;
    this.timer = this.timers.setTimeout(() => this.fire(), delayMs);
  }

  private firstDueMs(): number {
    let dueMs = Number.POSITIVE_INFINITY;
    for (const subscription of this.running) dueMs = Math.min(dueMs, subscription.nextDueMs());
    return dueMs;
  }

  private disarm(): void {
    if (this.timer !== null) this.timers.clearTimeout(this.timer);
    this.timer = null;
    this.timerDueMs = Number.POSITIVE_INFINITY;
  }
}

class TickSubscription implements MonotonicTicker {
  private readonly ticker: Ticker;
  private readonly periodMs: number;
  private readonly onTicks: (count: number, lateMs: number) => void;
  private readonly catchUpTicksMax: number;
  readonly ridesAlong: boolean;
  private startedAtMs = 0;
  private ticksCounted = 0;
  /** No timer delivery before this tick (wakeAfter); 0 = the next one. */
  private wakeAtTick = 0;
  private started = false;

  constructor(
    ticker: Ticker,
    periodMs: number,
    onTicks: (count: number, lateMs: number) => void,
    catchUpTicksMax: number,
    ridesAlong: boolean,
  ) {
    this.ticker = ticker;
    this.periodMs = periodMs;
    this.onTicks = onTicks;
    this.catchUpTicksMax = catchUpTicksMax;
    this.ridesAlong = ridesAlong;
  }

  get running(): boolean {
    return this.started;
  }

  start(): void {
    if (this.started) return;
    this.started = true;
    // On the shared grid: the first tick comes one to two periods after the start, never sooner.
    this.startedAtMs = this.ticker.gridStartMs(this.periodMs);
    this.ticksCounted = 0;
    this.wakeAtTick = 0;
    this.ticker.add(this);
  }

  stop(): void {
    if (!this.started) return;
    this.started = false;
    this.ticker.remove(this);
  }

  private ticksPassed(nowMs: number): number {
    return Math.floor((nowMs - this.startedAtMs) / this.periodMs);
  }

  nextDueMs(): number {
    return this.startedAtMs + Math.max(this.ticksCounted + 1, this.wakeAtTick) * this.periodMs;
  }

  wakeAfter(ticks: number): void {
    if (!(Number.isInteger(ticks) && ticks >= 1)) throw new RangeError(`wakeAfter: bad ticks ${ticks}`);
    // Counted from the last tick boundary passed, delivered or not (a caller need not catch up first).
    const passed = Math.max(this.ticksCounted, this.ticksPassed(this.ticker.nowMs()));
    const oldDueMs = this.nextDueMs();
    this.wakeAtTick = passed + ticks;
    if (!this.started) return;
    const dueMs = this.nextDueMs();
    if (dueMs < oldDueMs) this.ticker.rearm();
    else if (dueMs > oldDueMs) this.ticker.postpone();
  }

  catchUp(): void {
    if (!this.started) return;
    const nowMs = this.ticker.nowMs();
    const due = this.ticksPassed(nowMs) - this.ticksCounted;
    if (due <= 0) return;
    const lateMs = nowMs - this.nextDueMs();
    // What exceeds the bound is skipped so the counter does not fall behind forever.
    this.ticksCounted += due;
    this.wakeAtTick = 0;
    this.onTicks(Math.min(due, this.catchUpTicksMax), lateMs);
  }
}
