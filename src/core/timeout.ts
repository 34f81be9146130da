// Timers as values (TigerBeetle's Timeout): the owner counts ticks and asks fired(); no clocks, no
// callbacks, so a simulator can replay them exactly.
import type { Prng } from "./prng.ts";

/**
 * A duration in [baseTicks, 2*baseTicks-1], the maximum of `draws` uniform draws. One draw is Raft's
 * randomized election timeout; more draws skew it late while staying in the same range, which is how
 * lower-priority members yield election races to higher-priority ones.
 */
export function randomizedTicks(rng: Prng, baseTicks: number, draws: number): number {
  if (!Number.isInteger(draws) || draws < 1) throw new RangeError(`randomizedTicks: bad draws ${draws}`);
  let ticks = baseTicks;
  for (let i = 0; i < draws; i++) ticks = Math.max(ticks, rng.intBetween(baseTicks, 2 * baseTicks - 1));
  return ticks;
}

export class Timeout {
  readonly name: string;
  readonly baseTicks: number;
  afterTicks: number;
  /** Saturates at afterTicks: a fired timeout stays fired until reset, and counters stay bounded. */
  elapsedTicks = 0;
  /** Retries since clearAttempts() (e.g. campaigns without hearing a leader); resets keep it. */
  attempts = 0;

  constructor(name: string, baseTicks: number) {
    if (!Number.isInteger(baseTicks) || baseTicks < 1) {
      throw new RangeError(`timeout ${name}: baseTicks must be an integer >= 1, got ${baseTicks}`);
    }
    this.name = name;
    this.baseTicks = baseTicks;
    this.afterTicks = baseTicks;
  }

  tick(): void {
    if (this.elapsedTicks < this.afterTicks) this.elapsedTicks++;
  }

  fired(): boolean {
    return this.elapsedTicks >= this.afterTicks;
  }

  /** Start over at exactly baseTicks. */
  reset(): void {
    this.afterTicks = this.baseTicks;
    this.elapsedTicks = 0;
  }

  /** Start over at a random duration in [baseTicks, 2*baseTicks-1] (see randomizedTicks). */
  resetRandomized(rng: Prng, draws: number): void {
    this.afterTicks = randomizedTicks(rng, this.baseTicks, draws);
    this.elapsedTicks = 0;
  }

  /** resetRandomized, counting one more attempt. */
  retryRandomized(rng: Prng, draws: number): void {
    this.attempts++;
    this.resetRandomized(rng, draws);
  }

  /** The thing retried succeeded. */
  clearAttempts(): void {
    this.attempts = 0;
  }

  /** Fire `ticks` after the last reset instead (the ticks elapsed so far still count). */
  retarget(ticks: number): void {
    if (!Number.isInteger(ticks) || ticks < 1)
      throw new RangeError(`timeout ${this.name}: bad ticks ${ticks}`);
    this.afterTicks = ticks;
  }

  /** Mark as fired now, as if the whole duration had passed. */
  expire(): void {
    this.elapsedTicks = this.afterTicks;
  }
}
