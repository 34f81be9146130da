// A small typed event emitter: a listener that throws is logged, never fatal to the emitter.
import type { Logger } from "pino";

type Listener<A extends unknown[]> = (...args: A) => void;

export class SafeEmitter<M extends { [K in keyof M]: unknown[] }> {
  private readonly listeners = new Map<keyof M, Listener<never[]>[]>();
  private readonly logger: Logger;

  constructor(logger: Logger) {
    this.logger = logger;
  }

  on<E extends keyof M>(event: E, listener: Listener<M[E]>): void {
    const list = this.listeners.get(event) ?? [];
    list.push(listener as unknown as Listener<never[]>);
    this.listeners.set(event, list);
  }

  emit<E extends keyof M>(event: E, ...args: M[E]): void {
    for (const listener of this.listeners.get(event) ?? []) {
      try {
        (listener as unknown as Listener<M[E]>)(...args);
      } catch (error) {
        this.logger.error({ event: String(event), err: error }, "event listener threw");
      }
    }
  }
}
