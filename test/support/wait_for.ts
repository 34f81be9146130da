// Polls until a probe answers (not undefined), every 100 ms, for a bounded time; on timeout the test fails
// with what it waited for and the dump (agents' logs, files) that explains why.
import assert from "node:assert/strict";

/** Bounds a broken build; a loaded machine may take long to get there. */
export const waitForTimeoutMs = 60_000;

export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  dump: () => string,
  timeoutMs = waitForTimeoutMs,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const value = await probe();
    if (value !== undefined) return value;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  assert.fail(`no ${what} within ${timeoutMs} ms\n${dump()}`);
}
