// Stops what was started, in reverse order of start (graphile/worker's shutdown): a composition pushes a
// stop after each part comes up, so a start that fails part-way unwinds exactly what exists, and a normal
// shutdown is the same unwind. A stop that throws is logged; the parts below it are still stopped.
import type { Logger } from "pino";

interface Entry {
  name: string;
  stop: () => unknown;
}

export class ShutdownStack {
  private readonly logger: Logger;
  private readonly entries: Entry[] = [];
  private unwinding: Promise<void> | null = null;

  constructor(logger: Logger) {
    this.logger = logger;
  }

  /** Registers the stop of a part that has just started. */
  push(name: string, stop: () => unknown): void {
    if (this.unwinding !== null) throw new Error(`cannot add ${name}: the stack is unwinding`);
    this.entries.push({ name, stop });
  }

  /** Names of the started parts, in start order. */
  get names(): string[] {
    return this.entries.map((e) => e.name);
  }

  /** Stops every part, last started first, each awaited before the next; idempotent. */
  unwind(): Promise<void> {
    this.unwinding ??= this.stopAll();
    return this.unwinding;
  }

  private async stopAll(): Promise<void> {
    for (let entry = this.entries.pop(); entry !== undefined; entry = this.entries.pop()) {
      try {
        await entry.stop();
        this.logger.debug({ part: entry.name }, "stopped");
      } catch (error) {
        this.logger.error({ err: error, part: entry.name }, "stop failed; stopping the rest");
      }
    }
  }
}
