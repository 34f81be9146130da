// Hybrid logical clock (Kulkarni et al.): timestamps that follow physical time but never go backwards and
// always exceed every timestamp this node has seen, so a write issued after seeing another write orders
// after it even when the clocks disagree. Pure: the caller passes the wall clock reading.
import type { Hlc } from "./store_types.ts";

export class ClockSkewError extends Error {
  override name = "ClockSkewError";
}

export function compareHlc(a: Hlc, b: Hlc): -1 | 0 | 1 {
  if (a.wallMs !== b.wallMs) return a.wallMs < b.wallMs ? -1 : 1;
  if (a.counter !== b.counter) return a.counter < b.counter ? -1 : 1;
  return 0;
}

/** Whole non-negative numbers only: NaN or fractions from a peer would corrupt every later comparison. */
function isHlc(t: Hlc): boolean {
  return Number.isSafeInteger(t.wallMs) && t.wallMs >= 0 && Number.isSafeInteger(t.counter) && t.counter >= 0;
}

export class HybridClock {
  private last: Hlc;
  /** A remote timestamp further ahead of our wall clock than this is refused (a broken peer clock). */
  readonly skewMsMax: number;

  constructor(options: { skewMsMax: number; last?: Hlc }) {
    if (!(options.skewMsMax > 0)) throw new RangeError(`skewMsMax must be > 0, got ${options.skewMsMax}`);
    this.skewMsMax = options.skewMsMax;
    this.last = options.last ?? { wallMs: 0, counter: 0 };
  }

  /** The latest timestamp issued or observed. */
  peek(): Hlc {
    return { ...this.last };
  }

  /** A new timestamp for a local event, strictly greater than every earlier one. */
  now(nowWallMs: number): Hlc {
    // NaN would poison the clock for good (Math.max(x, NaN) is NaN): a caller bug.
    if (!Number.isFinite(nowWallMs)) throw new RangeError(`now: wall clock reading ${nowWallMs}`);
    const wallMs = Math.max(this.last.wallMs, Math.floor(nowWallMs));
    const counter = wallMs === this.last.wallMs ? this.last.counter + 1 : 0;
    this.last = { wallMs, counter };
    return this.peek();
  }

  /**
   * Folds in a timestamp received from a peer so that later local events order after it.
   * Throws ClockSkewError (and changes nothing) when the peer is more than skewMsMax ahead, RangeError when
   * the timestamp is not two whole non-negative numbers.
   */
  observe(remote: Hlc, nowWallMs: number): void {
    if (!isHlc(remote)) throw new RangeError(`observe: malformed timestamp ${JSON.stringify(remote)}`);
    if (remote.wallMs - nowWallMs > this.skewMsMax) {
      throw new ClockSkewError(
        `remote clock is ${remote.wallMs - nowWallMs} ms ahead of ours (limit ${this.skewMsMax} ms)`,
      );
    }
    if (compareHlc(remote, this.last) > 0) this.last = { wallMs: remote.wallMs, counter: remote.counter };
  }
}
