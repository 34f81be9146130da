// A small typed event emitter: a listener that throws is logged, never fatal to the emitter (an election
// drain or a link's read loop must not be interrupted half-way). Shared by the shells of every folder.
import type { Logger } from "pino";

type AnyListener = (...args: unknown[]) => void;

export class SafeEmitter<M extends { [K in keyof M]: unknown[] }> {
  private readonly listeners = new Map<keyof M, AnyListener[]>();
  private readonly logger: Logger;

  constructor(logger: Logger) {
    this.logger = logger;
  }

  /** Returns the function that removes this listener. */
  on<E extends keyof M>(event: E, listener: (...args: M[E]) => void): () => void {
    const list = this.listeners.get(event) ?? [];
    const stored = listener as unknown as AnyListener;
    list.push(stored);
    this.listeners.set(event, list);
    return () => {
      const index = list.indexOf(stored);
      if (index >= 0) list.splice(index, 1);
    };
  }

  emit<E extends keyof M>(event: E, ...args: M[E]): void {
    // A copy: a listener that unsubscribes while we iterate must not make us skip the next one.
    for (const listener of [...(this.listeners.get(event) ?? [])]) {
      try {
        listener(...args);
      } catch (error) {
        this.logger.error({ event: String(event), err: error }, "event listener threw");
      }
    }
  }
}
