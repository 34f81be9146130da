// The shells' drain loop around a Ready-style core (etcd raft's caller loop): while the core has a Ready,
// take it, run its effects in the shell's order, advance. Guarded against re-entry: an effect that feeds
// the core again (a listener, a synchronous reply) only queues input, which the running loop picks up.

/** The part of a pure core the loop drives (src/core/election.ts, src/core/store_sync.ts). */
export interface ReadyCore<R> {
  hasReady(): boolean;
  ready(): R;
  advance(ready: R): void;
}

/**
 * Runs a Ready's effects before advance(); a returned function runs right after advance() (inputs that
 * answer the Ready, such as a failed persist, must not be stepped while it is outstanding).
 */
export type ReadyHandler<R> = (ready: R) => undefined | (() => void);

/** One input yields a few Readies; a core that keeps producing them is stuck in a loop (a bug). */
export const readiesPerDrainMax = 10_000;

export class DrainLoop<R> {
  private readonly core: ReadyCore<R>;
  private readonly handle: ReadyHandler<R>;
  private draining = false;

  constructor(core: ReadyCore<R>, handle: ReadyHandler<R>) {
    this.core = core;
    this.handle = handle;
  }

  /** Drains the core; false when called from inside a drain (the outer loop picks the new input up). */
  run(): boolean {
    if (this.draining) return false;
    this.draining = true;
    try {
      for (let readies = 0; this.core.hasReady(); readies++) {
        if (readies === readiesPerDrainMax) throw new Error(`drain did not settle after ${readies} Readies`);
        const ready = this.core.ready();
        const afterAdvance = this.handle(ready);
        this.core.advance(ready);
        afterAdvance?.();
      }
    } finally {
      this.draining = false;
    }
    return true;
  }
}
