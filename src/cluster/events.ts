// Typed events with a safe emit: a throwing listener is logged, never allowed to break the caller
// (the election drain loop must not be interrupted half-way).
import type { Logger } from "pino";

type AnyListener = (...args: unknown[]) => void;

export class SafeEmitter<EventMap extends Record<string, unknown[]>> {
  private readonly listeners = new Map<keyof EventMap, AnyListener[]>();
  private readonly logger: Logger;

  constructor(logger: Logger) {
    this.logger = logger;
  }

  on<E extends keyof EventMap>(event: E, listener: (...args: EventMap[E]) => void): () => void {
    const list = this.listeners.get(event) ?? [];
    const stored = listener as unknown as AnyListener;
    list.push(stored);
    this.listeners.set(event, list);
    return () => {
      const index = list.indexOf(stored);
      if (index >= 0) list.splice(index, 1);
    };
  }

  emit<E extends keyof EventMap>(event: E, ...args: EventMap[E]): void {
    for (const listener of [...(this.listeners.get(event) ?? [])]) {
      try {
        listener(...args);
      } catch (error) {
        this.logger.error({ err: error, event: String(event) }, "event listener threw");
      }
    }
  }
}
