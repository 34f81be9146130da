// Lifeguard self-awareness (the idea of memberlist's awareness.go): a local health score that rises when
// this node has evidence that it is itself slow (its event loop ran late) and decays while it runs on
// time. Failure-detection timeouts are multiplied by (score + 1), so a starved node stretches its own
// patience instead of accusing healthy peers of the silence it caused. Pure: no clocks, no I/O.

/** A timeout stretched by the local health score: `baseTicks * (score + 1)`. */
export function scaleTimeoutTicks(baseTicks: number, score: number): number {
  if (!Number.isInteger(baseTicks) || baseTicks < 0) throw new RangeError(`baseTicks: ${baseTicks}`);
  if (!Number.isInteger(score) || score < 0) throw new RangeError(`score: ${score}`);
  return baseTicks * (score + 1);
}

/** The score kept in [0, awarenessMax - 1], so timeouts stretch by at most `awarenessMax` times. */
export function clampAwarenessScore(score: number, awarenessMax: number): number {
  return Math.min(Math.max(score, 0), awarenessMax - 1);
}

/**
 * How much one late wake-up raises the score: one point per heartbeat interval the stall touched (each is
 * a heartbeat this node failed to send on time, the local analogue of Lifeguard's missed nack).
 */
export function latenessPenalty(lateTicks: number, heartbeatIntervalTicks: number): number {
  if (!Number.isInteger(lateTicks) || lateTicks < 0) throw new RangeError(`lateTicks: ${lateTicks}`);
  return Math.ceil(lateTicks / heartbeatIntervalTicks);
}

export interface AwarenessConfig {
  /** Timeouts stretch by at most this factor; the score stays below it. */
  awarenessMax: number;
  /** On-time ticks needed to take one point off the score. */
  decayEveryTicks: number;
}

export class Awareness {
  private readonly awarenessMax: number;
  private readonly decayEveryTicks: number;
  private currentScore = 0;
  private onTimeTicks = 0;

  constructor(config: AwarenessConfig) {
    if (!Number.isInteger(config.awarenessMax) || config.awarenessMax < 1) {
      throw new RangeError(`awarenessMax must be an integer >= 1, got ${config.awarenessMax}`);
    }
    if (!Number.isInteger(config.decayEveryTicks) || config.decayEveryTicks < 1) {
      throw new RangeError(`decayEveryTicks must be an integer >= 1, got ${config.decayEveryTicks}`);
    }
    this.awarenessMax = config.awarenessMax;
    this.decayEveryTicks = config.decayEveryTicks;
  }

  get score(): number {
    return this.currentScore;
  }

  /** Evidence of local slowness; restarts the on-time streak that decay needs. */
  raise(points: number): void {
    this.currentScore = clampAwarenessScore(this.currentScore + points, this.awarenessMax);
    this.onTimeTicks = 0;
  }

  /** One tick that ran on time: every `decayEveryTicks` of them in a row take one point off. */
  tickOnTime(): void {
    this.onTimeTicks += 1;
    if (this.onTimeTicks < this.decayEveryTicks) return;
    this.onTimeTicks = 0;
    this.currentScore = clampAwarenessScore(this.currentScore - 1, this.awarenessMax);
  }

  scaleTimeoutTicks(baseTicks: number): number {
    return scaleTimeoutTicks(baseTicks, this.currentScore);
  }
}
