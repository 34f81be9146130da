// Turns wall-clock intervals into logical ticks for the cores. setInterval does not catch up after the
// event loop stalls (GC pause, CPU starvation, SIGSTOP); a leader that slept through its lease must see
// those ticks before it decides anything. So ticks are counted from a monotonic clock, and shells call
// catchUp() before feeding any input, not only when the timer fires.
import { performance } from "node:perf_hooks";

export interface MonotonicTickerOptions {
  tickMs: number;
  /** Called with the number of logical ticks that became due (>= 1); more than 1 means the loop was late. */
  onTicks: (count: number) => void;
  /** Upper bound on ticks delivered in one catch-up; a longer stall delivers this many (all timers fire). */
  catchUpTicksMax?: number;
  now?: () => number;
}

export class MonotonicTicker {
  private readonly tickMs: number;
  private readonly onTicks: (count: number) => void;
  private readonly catchUpTicksMax: number;
  private readonly now: () => number;
  private startedAtMs = 0;
  private ticksDelivered = 0;
  private timer: NodeJS.Timeout | null = null;

  constructor(options: MonotonicTickerOptions) {
    if (!(options.tickMs > 0)) throw new RangeError(`tickMs must be > 0, got ${options.tickMs}`);
    this.tickMs = options.tickMs;
    this.onTicks = options.onTicks;
    this.catchUpTicksMax = options.catchUpTicksMax ?? 10_000;
    this.now = options.now ?? (() => performance.now());
  }

  start(): void {
    if (this.timer) return;
    this.startedAtMs = this.now();
    this.ticksDelivered = 0;
    this.timer = setInterval(() => this.catchUp(), this.tickMs);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  get running(): boolean {
    return this.timer !== null;
  }

  /** Delivers every tick that is due by now. Safe to call at any time, from any input path. */
  catchUp(): void {
    if (!this.timer) return;
    const due = Math.floor((this.now() - this.startedAtMs) / this.tickMs) - this.ticksDelivered;
    if (due <= 0) return;
    const deliver = Math.min(due, this.catchUpTicksMax);
    // What exceeds the bound is skipped so the counter does not fall behind forever.
    this.ticksDelivered += due;
    this.onTicks(deliver);
  }
}
