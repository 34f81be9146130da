// Reconnect delays: exponential growth from min, capped at max, with full jitter so that peers that lost
// each other at the same moment do not redial in lockstep.
import type { Prng } from "../core/prng.ts";

export class ReconnectBackoff {
  private readonly delayMsMin: number;
  private readonly delayMsMax: number;
  private readonly rng: Prng;
  private attempts = 0;

  constructor(options: { delayMsMin: number; delayMsMax: number; rng: Prng }) {
    this.delayMsMin = options.delayMsMin;
    this.delayMsMax = options.delayMsMax;
    this.rng = options.rng;
  }

  /** The delay before the next attempt, uniform in [min, min(max, min * 2^attempts)]. */
  nextDelayMs(): number {
    const ceilingMs = Math.min(this.delayMsMax, this.delayMsMin * 2 ** Math.min(this.attempts, 30));
    this.attempts += 1;
    return this.rng.intBetween(this.delayMsMin, Math.max(this.delayMsMin, Math.floor(ceilingMs)));
  }

  /** After a successful handshake the next loss redials quickly again. */
  reset(): void {
    this.attempts = 0;
  }
}
