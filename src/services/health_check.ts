// A service's health check on its owner: an exec command (exit 0) or an HTTP GET (2xx), each with a timeout,
// run every intervalMs while the service runs there, one at a time. `failures` failures in a row make it
// unhealthy (the leader then moves the service as from a dead owner); one success makes it healthy again.
import type { Logger } from "pino";
import type { HealthCheckConfig } from "../config/index.ts";
import { commandSucceeded, runCommand } from "../shell/index.ts";
import type { DriverContext } from "./exec_driver.ts";
import { driverEnv } from "./exec_driver.ts";

export interface CheckResult {
  ok: boolean;
  /** Why it failed, for the log and the service's report; empty when ok. */
  detail: string;
}

/** One run of the check. Never rejects. */
export async function runHealthCheck(
  config: HealthCheckConfig,
  context: DriverContext,
): Promise<CheckResult> {
  const check = config.check;
  if (check.type === "exec") {
    const outcome = await runCommand(check.argv, { env: driverEnv(context), timeoutMs: config.timeoutMs });
    if (commandSucceeded(outcome)) return { ok: true, detail: "" };
    const detail = outcome.timedOut
      ? `timed out after ${config.timeoutMs} ms`
      : (outcome.error ?? `exit ${outcome.exitCode ?? outcome.signal}`);
    return { ok: false, detail: `${check.argv[0]}: ${detail}` };
  }
  try {
    const response = await fetch(check.url, {
      signal: AbortSignal.timeout(config.timeoutMs),
      redirect: "manual",
      headers: { "user-agent": "tandem-health-check" },
    });
    // The body is not read: drop it so the connection is freed.
    await response.body?.cancel();
    if (response.status >= 200 && response.status < 300) return { ok: true, detail: "" };
    return { ok: false, detail: `GET ${check.url}: ${response.status}` };
  } catch (error) {
    const timedOut = error instanceof Error && error.name === "TimeoutError";
    const reason = timedOut ? `timed out after ${config.timeoutMs} ms` : describeFetchError(error);
    return { ok: false, detail: `GET ${check.url}: ${reason}` };
  }
}

function describeFetchError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  // undici wraps the socket error ("fetch failed"); its cause says what happened (ECONNREFUSED, ...).
  const cause = (error as { cause?: unknown }).cause;
  return cause instanceof Error ? cause.message : error.message;
}

export interface HealthTimers {
  setTimeout(callback: () => void, delayMs: number): unknown;
  clearTimeout(handle: unknown): void;
}

/**
 * Runs the check every intervalMs between start() and stop(), and calls onChange when the verdict changes
 * (healthy after one success, unhealthy after `failures` in a row). Starts out healthy: a service just
 * started gets one interval before its first check.
 */
export class HealthMonitor {
  private readonly config: HealthCheckConfig;
  private readonly timers: HealthTimers;
  private readonly logger: Logger;
  private readonly onChange: (healthy: boolean, detail: string) => void;
  private readonly check: (context: DriverContext) => Promise<CheckResult>;
  private timer: unknown = null;
  private context: DriverContext | null = null;
  private failuresInARow = 0;
  private healthy = true;
  /** Bumped by start/stop: a check that finishes after them is ignored. */
  private generation = 0;

  constructor(options: {
    config: HealthCheckConfig;
    timers: HealthTimers;
    logger: Logger;
    onChange: (healthy: boolean, detail: string) => void;
    /** The check itself; runHealthCheck by default (tests pass their own). */
    check?: (context: DriverContext) => Promise<CheckResult>;
  }) {
    this.config = options.config;
    this.timers = options.timers;
    this.logger = options.logger;
    this.onChange = options.onChange;
    this.check = options.check ?? ((context) => runHealthCheck(options.config, context));
  }

  get isHealthy(): boolean {
    return this.healthy;
  }

  start(context: DriverContext): void {
    this.stop();
    this.context = context;
    this.schedule(this.generation);
  }

  stop(): void {
    this.generation += 1;
    if (this.timer !== null) this.timers.clearTimeout(this.timer);
    this.timer = null;
    this.context = null;
    this.failuresInARow = 0;
    this.healthy = true;
  }

  private schedule(generation: number): void {
    this.timer = this.timers.setTimeout(() => {
      this.timer = null;
      void this.runOnce(generation);
    }, this.config.intervalMs);
  }

  private async runOnce(generation: number): Promise<void> {
    const context = this.context;
    if (context === null) return;
    const result = await this.check(context);
    if (generation !== this.generation) return;
    if (result.ok) {
      this.failuresInARow = 0;
      if (!this.healthy) {
        this.healthy = true;
        this.logger.info("health check passes again");
        this.onChange(true, "");
      }
    } else {
      this.failuresInARow += 1;
      this.logger.warn(
        { failures: this.failuresInARow, of: this.config.failures, reason: result.detail },
        "health check failed",
      );
      if (this.healthy && this.failuresInARow >= this.config.failures) {
        this.healthy = false;
        this.onChange(false, `health check failing: ${result.detail}`);
      }
    }
    this.schedule(generation);
  }
}
