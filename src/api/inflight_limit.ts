// At most `inflightMax` requests served at once. Beyond it the caller answers 429 with Retry-After instead
// of queueing: a queue would only hide overload behind growing latency and memory.

export class InflightLimit {
  readonly inflightMax: number;
  private inflight = 0;

  constructor(inflightMax: number) {
    if (!Number.isSafeInteger(inflightMax) || inflightMax <= 0) {
      throw new RangeError(`inflightMax must be a positive integer, got ${inflightMax}`);
    }
    this.inflightMax = inflightMax;
  }

  get count(): number {
    return this.inflight;
  }

  /** Takes a slot; returns the release function (idempotent), or null when every slot is taken. */
  tryAcquire(): (() => void) | null {
    if (this.inflight >= this.inflightMax) return null;
    this.inflight++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.inflight--;
    };
  }
}
