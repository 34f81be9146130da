// The timer functions the materialiser's parts use (hook debounce and timeout, resync retry), injected so
// tests can fire them by hand instead of sleeping.

export interface MaterialiseTimers {
  setTimeout(callback: () => void, delayMs: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const realTimers: MaterialiseTimers = {
  setTimeout: (callback, delayMs) => setTimeout(callback, delayMs),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};
