// Reconnect backoff: grows exponentially from min, stays within [min, max], jittered, and resets.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Prng } from "../../../src/core/prng.ts";
import { ReconnectBackoff } from "../../../src/mesh/backoff.ts";

describe("backoff", () => {
  it("backoff: delays stay within [min, min * 2^attempt] capped at max", () => {
    const backoff = new ReconnectBackoff({ delayMsMin: 50, delayMsMax: 2000, rng: new Prng(1) });
    for (let attempt = 0; attempt < 40; attempt++) {
      const delayMs = backoff.nextDelayMs();
      assert.ok(delayMs >= 50, `attempt ${attempt}: ${delayMs} >= min`);
      assert.ok(
        delayMs <= Math.min(2000, 50 * 2 ** attempt),
        `attempt ${attempt}: ${delayMs} within ceiling`,
      );
    }
  });

  it("backoff: full jitter spreads delays once the ceiling is reached", () => {
    const backoff = new ReconnectBackoff({ delayMsMin: 50, delayMsMax: 2000, rng: new Prng("spread") });
    const delays = Array.from({ length: 200 }, () => backoff.nextDelayMs()).slice(10);
    assert.ok(Math.min(...delays) < 500 && Math.max(...delays) > 1500, "delays cover the range");
  });

  it("backoff: reset brings the next delay back to the first step", () => {
    const backoff = new ReconnectBackoff({ delayMsMin: 50, delayMsMax: 2000, rng: new Prng(3) });
    for (let i = 0; i < 10; i++) backoff.nextDelayMs();
    backoff.reset();
    assert.equal(backoff.nextDelayMs(), 50, "first attempt after reset waits exactly min");
  });
});
