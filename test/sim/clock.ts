// Virtual time. The simulation runs on one global clock counted in units (unitsPerTick units = one nominal
// tick); each node owns a NodeClock whose logical ticks fall every `periodUnits`, which differs from node
// to node (drift) and starts at its own phase. So two nodes never agree exactly on how long N ticks last,
// which is what a leader lease must survive.
//
// Drift bound: |drift| <= clockDriftMax = 2%. The election assumes leaseTicks <= 0.9 * electionTimeoutTicks:
// a leader's lease measured on a fast clock, against a follower's vote refusal measured on a slow clock,
// stays safe while (1 - d) / (1 + d) >= 0.9, i.e. d <= ~5.2%. 2% leaves room for tick quantisation.

/** Global units per nominal tick: fine enough that drift of a fraction of a percent is representable. */
export const unitsPerTick = 1000;
/** Largest relative clock rate error the swarm draws (either sign). */
export const clockDriftMax = 0.02;

export interface NodeClockOptions {
  /** Relative rate error: +0.01 means this node's ticks come 1% slower (its period is 1% longer). */
  drift: number;
  /** Global time of this clock's first tick. */
  firstTickUnits: number;
}

export class NodeClock {
  readonly periodUnits: number;
  /** Global time of the next logical tick. */
  nextTickUnits: number;
  /** Logical ticks delivered so far (the node's own notion of elapsed time). */
  ticks = 0;

  constructor(options: NodeClockOptions) {
    if (Math.abs(options.drift) > clockDriftMax + 1e-9) {
      throw new RangeError(`drift ${options.drift} outside ±${clockDriftMax}`);
    }
    this.periodUnits = Math.round(unitsPerTick * (1 + options.drift));
    this.nextTickUnits = options.firstTickUnits;
  }

  /**
   * Counts the ticks that are due by `nowUnits` and schedules the next one: more than 1 means the node
   * was stalled and catches up in one batch, as the shell's MonotonicTicker does.
   */
  takeDue(nowUnits: number): number {
    if (nowUnits < this.nextTickUnits) return 0;
    const due = Math.floor((nowUnits - this.nextTickUnits) / this.periodUnits) + 1;
    this.nextTickUnits += due * this.periodUnits;
    this.ticks += due;
    return due;
  }

  /** A restarted process starts a fresh ticker at the moment it boots. */
  restartAt(nowUnits: number): void {
    this.nextTickUnits = nowUnits + this.periodUnits;
  }
}
