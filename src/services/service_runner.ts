// One service on this node: runs it while the leader's latest table assigns it here and a live grant
// covers it, and stops it before the grant can lapse on the leader (src/core/grants.ts says why that is in
// time). Driver steps (start, stop) run one at a time, each after a fence check; renewals run on their own
// timer beside them, so a slow start never costs the grant, and that timer also wakes the runner when the
// grant reaches its stop budget.
// Every state change is reported (to the leader, by the caller).
//
//   stopped ──assigned, grant──▶ starting ──drivers up──▶ running
//      ▲  ▲                          │ a driver failed       │ unassigned, renewal refused,
//      │  └─ (retry) ◀── failed ◀────┘                       │ or the deadline near
//      └────────────────────────────── stopping ◀────────────┘
//                                          │ a stop failed, with stop_must_succeed
//                                          ▼
//                                     stop-failed ──(stop retried until it succeeds)──▶ stopped
import type { Logger } from "pino";
import {
  type Coordination,
  CoordinationUnavailableError,
  GrantRefusedError,
  type HeldGrant,
  NotLeaderError,
} from "../cluster/index.ts";
import type { ServiceConfig } from "../config/index.ts";
import { formatFence, renewalPeriodMs, stopBudgetMs } from "../core/grants.ts";
import type { NodeId } from "../core/types.ts";
import { type CommandOutcome, runCommand } from "../shell/index.ts";
import type { Driver, DriverContext } from "./exec_driver.ts";
import { driverEnv } from "./exec_driver.ts";
import { type CheckResult, HealthMonitor } from "./health_check.ts";
import { ServiceLog, type ServiceLogLine } from "./service_log.ts";

export type RunnerState = "stopped" | "starting" | "running" | "stopping" | "failed" | "stop-failed";

export interface RunnerReport {
  state: RunnerState;
  /** The grant it runs under ("term.seq"), when it holds one. */
  fence: string | null;
  /** Date.now() of the last state change. */
  sinceMs: number;
  /** Why, for operators: a refusal, a failed driver, a failing health check. */
  detail: string;
  /** While running: false once its health check failed `failures` times in a row; else true. */
  healthy: boolean;
}

export interface RunnerTimers {
  setTimeout(callback: () => void, delayMs: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface ServiceRunnerOptions {
  service: ServiceConfig;
  nodeId: NodeId;
  drivers: readonly Driver[];
  coordination: Pick<Coordination, "leadership" | "acquireGrant" | "releaseGrant" | "checkFence">;
  /**
   * The lease its grants ask for (serviceLeaseMs: its failover_after_ms, at most the cluster's): renewals
   * go out five times per lease, and stopping starts with two of those periods left (src/core/grants.ts).
   */
  leaseMs: number;
  logger: Logger;
  onReport: (report: RunnerReport) => void;
  timers?: RunnerTimers;
  /** Wall clock for reports; Date.now by default. */
  wallClock?: () => number;
  /** The health check itself; the configured one by default (tests pass their own). */
  healthCheck?: (context: DriverContext) => Promise<CheckResult>;
  /** Records what operators see in the event stream: driver runs and their results, health verdicts. */
  onEvent?: (kind: "driver" | "health" | "action", fields: Record<string, unknown>) => void;
}

/** An action run where the service runs, or why it was not. */
export type ActionResult =
  | ({ ok: true; fence: string } & CommandOutcome)
  | { ok: false; reason: string; notHere?: boolean };

/**
 * The lease a service's grants ask for: its failover_after_ms, at most the cluster's longest grant. A lost
 * owner's grant must have lapsed before the service can start elsewhere, so a longer lease would hold a
 * failover back past failover_after_ms; a shorter one asks for renewals more often for nothing.
 */
export function serviceLeaseMs(service: Pick<ServiceConfig, "failoverAfterMs">, maxLeaseMs: number): number {
  return Math.min(service.failoverAfterMs, maxLeaseMs);
}

/** After a failed start, the same node tries again no sooner than this (the leader may move it first). */
export const startRetryMs = 10_000;

const nodeTimers: RunnerTimers = {
  setTimeout: (callback, delayMs) => setTimeout(callback, delayMs),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

export class ServiceRunner {
  private readonly options: ServiceRunnerOptions;
  private readonly timers: RunnerTimers;
  private readonly logger: Logger;
  private assignedHere = false;
  private held: HeldGrant | null = null;
  private state: RunnerState = "stopped";
  private failedAtMs = Number.NEGATIVE_INFINITY;
  /** The renewal was refused: the leader moved the service; stop at once. */
  private revoked = false;
  private working: Promise<void> | null = null;
  /** With stop_must_succeed, the grant its stop failed under: the stop is retried with it. */
  private failedStop: DriverContext | null = null;
  private again = false;
  /** Wakes reconcile: for a retry, or while stopped and assigned. */
  private timer: unknown = null;
  /** Renews the held grant every quarter lease. */
  private renewTimer: unknown = null;
  private renewing = false;
  /** The leader's hint with its last refusal: the grant can be had in this many ms; null: no hint. */
  private retryInMs: number | null = null;
  private closed = false;
  /** Runs the service's health check while it runs here; null without one. */
  private readonly health: HealthMonitor | null;
  /** Output of its commands here, for `tandem service logs`. */
  private readonly log = new ServiceLog();

  constructor(options: ServiceRunnerOptions) {
    this.options = options;
    this.timers = options.timers ?? nodeTimers;
    this.logger = options.logger.child({ service: options.service.name });
    const config = options.service.health;
    this.health =
      config === null
        ? null
        : new HealthMonitor({
            config,
            timers: this.timers,
            logger: this.logger,
            onChange: (healthy, detail) => {
              this.options.onEvent?.("health", { service: this.name, healthy, detail });
              this.log.add("health", "tandem", healthy ? "healthy again" : detail);
              this.setState(this.state, detail);
            },
            ...(options.healthCheck === undefined ? {} : { check: options.healthCheck }),
          });
  }

  get name(): string {
    return this.options.service.name;
  }

  report(): RunnerReport {
    return this.lastReport;
  }

  /**
   * At start, before this node reports its services: whatever an earlier run of the agent left behind
   * (killed without stopping its services) is stopped, since no grant covers it now. A driver that cannot
   * tell (no status command) is stopped too: stop commands are meant to be idempotent.
   */
  async probe(): Promise<void> {
    const context = { service: this.name, node: this.options.nodeId, fence: "0.0" };
    for (const driver of [...this.options.drivers].reverse()) {
      const status = await driver.status(context);
      if (status === "stopped") continue;
      this.logger.info({ driver: driver.kind, status }, "stopping what may be left from an earlier run");
      if (!(await driver.stop(context))) this.logger.warn({ driver: driver.kind }, "stop failed at start");
    }
  }

  /** Lines of output kept here after `seq`. */
  logLines(seq: number): { lines: ServiceLogLine[]; next: number } {
    return this.log.after(seq);
  }

  /**
   * Runs an action of the service here, under its grant, with `args` appended: only while it runs here
   * and the grant holds (the fence checked right before, as before a driver step).
   */
  async runAction(name: string, args: readonly string[]): Promise<ActionResult> {
    const action = this.options.service.actions[name];
    if (action === undefined) return { ok: false, reason: `${this.name} has no action ${name}` };
    const held = this.held;
    const fence = held === null ? null : this.options.coordination.checkFence(held);
    if (held === null || this.state !== "running" || fence === null || !fence.ok) {
      return { ok: false, reason: `${this.name} does not run on ${this.options.nodeId}`, notHere: true };
    }
    const context = this.context(held);
    const outcome = await runCommand([...action.run, ...args], {
      env: driverEnv(context),
      timeoutMs: action.timeoutMs,
    });
    this.log.addOutcome(`action ${name}`, outcome);
    this.options.onEvent?.("action", {
      service: this.name,
      action: name,
      exitCode: outcome.exitCode,
      timedOut: outcome.timedOut,
      fence: context.fence,
    });
    return { ok: true, fence: context.fence, ...outcome };
  }

  /** The leader's latest table: is the service assigned to this node? */
  assigned(here: boolean): void {
    if (here === this.assignedHere) return;
    this.assignedHere = here;
    if (here) this.failedAtMs = Number.NEGATIVE_INFINITY;
    this.kick();
  }

  /**
   * A new leader: claim the held grant from it now rather than at the next renewal tick, since the time
   * left before this node must stop (half a lease after the last answered renewal) is about an election.
   */
  leaderChanged(): void {
    if (this.held !== null && !this.closed) void this.renew(this.held);
  }

  /** Stops the service if it runs here (agent shutdown), then stays stopped. */
  async close(): Promise<void> {
    this.assignedHere = false;
    this.kick();
    while (this.working !== null) await this.working;
    this.closed = true;
    this.clearTimer();
    this.stopRenewing();
    this.health?.stop();
  }

  private lastReport: RunnerReport = {
    state: "stopped",
    fence: null,
    sinceMs: Date.now(),
    detail: "",
    healthy: true,
  };

  private setState(state: RunnerState, detail = ""): void {
    const healthy = this.health?.isHealthy ?? true;
    const last = this.lastReport;
    const fence = this.held === null ? null : formatFence(this.held.grant.fence);
    if (state === this.state && detail === last.detail && healthy === last.healthy && fence === last.fence) {
      return;
    }
    if (state === "running" && this.state !== "running" && this.held !== null) {
      this.health?.start(this.context(this.held));
    } else if (state !== "running") this.health?.stop();
    this.state = state;
    this.lastReport = {
      state,
      fence,
      // A verdict of the health check is not a state change: "since" stays.
      sinceMs: state === last.state ? last.sinceMs : (this.options.wallClock ?? Date.now)(),
      detail,
      healthy: this.health?.isHealthy ?? true,
    };
    this.logger.info(
      { state, detail, fence: this.lastReport.fence, healthy: this.lastReport.healthy },
      `service ${state}`,
    );
    this.options.onReport(this.lastReport);
  }

  /** Runs reconcile now, or once more after the current run. */
  private kick(): void {
    if (this.closed) return;
    if (this.working !== null) {
      this.again = true;
      return;
    }
    // On a later turn, so `working` is set before the loop can finish and clear it.
    this.working = Promise.resolve().then(() => this.reconcileLoop());
  }

  private async reconcileLoop(): Promise<void> {
    try {
      do {
        this.again = false;
        await this.reconcile();
      } while (this.again);
    } catch (error) {
      this.logger.error({ err: error }, "service runner failed");
    } finally {
      this.working = null;
      this.schedule();
    }
  }

  private async reconcile(): Promise<void> {
    if (this.state === "running") {
      if (this.assignedHere && !this.revoked && !this.nearDeadline()) return;
      const why = !this.assignedHere
        ? "assigned elsewhere"
        : this.revoked
          ? "grant not renewed"
          : "grant ran out";
      await this.stop(why);
      return;
    }
    if (this.state === "stop-failed") {
      if (this.elapsedSinceFailure() >= startRetryMs) await this.retryStop();
      return;
    }
    if (!this.assignedHere) return;
    if (this.state === "failed" && this.elapsedSinceFailure() < startRetryMs) return;
    await this.acquireAndStart();
  }

  private async acquireAndStart(): Promise<void> {
    let held: HeldGrant;
    try {
      // No claim: an adopted grant (continueOnly) only ever answers a claim, so this one may start.
      held = await this.options.coordination.acquireGrant(this.name, { leaseMs: this.options.leaseMs });
      this.retryInMs = null;
    } catch (error) {
      // A grant elsewhere lapses then: ask again right after (schedule), not a renewal period later.
      this.retryInMs = error instanceof GrantRefusedError ? error.retryInMs : null;
      this.setState(
        this.state === "failed" ? "failed" : "stopped",
        `waiting for its grant: ${describe(error)}`,
      );
      return;
    }
    this.held = held;
    this.revoked = false;
    this.startRenewing();
    this.setState("starting");
    const context = this.context(held);
    const started: Driver[] = [];
    for (const driver of this.options.drivers) {
      const cannot = this.cannotStartUnder(held);
      const ok = cannot === null && (await driver.start(context));
      if (cannot === null) this.driverRan(driver, "start", ok, context);
      if (!ok) {
        await this.stopDrivers(started, context);
        this.held = null;
        this.stopRenewing();
        await this.release(held);
        // Only a driver that failed counts as a failed start (the leader then passes this node over).
        if (cannot !== null) this.setState("stopped", cannot);
        else {
          this.failedAtMs = performance.now();
          this.setState("failed", `${driver.kind} start failed`);
        }
        return;
      }
      started.push(driver);
    }
    this.setState("running");
  }

  /** Why no further start step may run under `held` now, or null. */
  private cannotStartUnder(held: HeldGrant): string | null {
    const fence = this.options.coordination.checkFence(held);
    if (!fence.ok) return fence.reason;
    // A step begun within the stop budget could outlast the grant: stopping must fit in what is left.
    if (fence.remainingMs <= stopBudgetMs(held.grant.leaseMs)) return "too little of its grant left to start";
    if (this.revoked) return "grant not renewed";
    if (!this.assignedHere) return "assigned elsewhere";
    return null;
  }

  private startRenewing(): void {
    this.stopRenewing();
    this.scheduleRenewTick();
  }

  /** The next renewal period, or the moment the held grant reaches its stop budget if that comes first. */
  private scheduleRenewTick(): void {
    let delayMs = renewalPeriodMs(this.options.leaseMs);
    const held = this.held;
    const fence = held === null ? null : this.options.coordination.checkFence(held);
    if (held !== null && fence !== null) {
      const untilBudgetMs = fence.ok ? fence.remainingMs - stopBudgetMs(held.grant.leaseMs) : 0;
      delayMs = Math.max(0, Math.min(delayMs, untilBudgetMs));
    }
    this.renewTimer = this.timers.setTimeout(() => this.renewTick(), delayMs);
  }

  private stopRenewing(): void {
    if (this.renewTimer !== null) this.timers.clearTimeout(this.renewTimer);
    this.renewTimer = null;
  }

  /** Every renewal period while a grant is held: stop if the stop budget is reached, else renew. */
  private renewTick(): void {
    this.renewTimer = null;
    if (this.held === null || this.closed) return;
    if (this.nearDeadline()) {
      this.renewTimer = this.timers.setTimeout(() => this.renewTick(), renewalPeriodMs(this.options.leaseMs));
      this.kick();
      return;
    }
    this.scheduleRenewTick();
    if (!this.renewing) void this.renew(this.held);
  }

  private async renew(held: HeldGrant): Promise<void> {
    this.renewing = true;
    try {
      // After a leader change the same request is a claim: the new leader learns of the grant from it.
      const renewed = await this.options.coordination.acquireGrant(this.name, {
        current: held.grant.fence,
        leaseMs: this.options.leaseMs,
      });
      // Only the grant it was asked for: a service stopped meanwhile is not extended.
      if (this.held !== held) return;
      this.held = renewed;
      // A new leader's claim answer carries a token of its term: the report shows what drivers now get.
      if (this.state === "running") this.setState("running", this.lastReport.detail);
    } catch (error) {
      if (error instanceof GrantRefusedError) {
        if (this.held === held) this.revoked = true;
        this.logger.warn({ reason: error.message }, "grant renewal refused");
        this.kick();
      } else if (!(error instanceof NotLeaderError || error instanceof CoordinationUnavailableError)) {
        this.logger.error({ err: error }, "grant renewal failed");
      }
    } finally {
      this.renewing = false;
    }
  }

  private async stop(why: string): Promise<void> {
    const held = this.held;
    this.setState("stopping", why);
    const context = held === null ? null : this.context(held);
    const failed = context === null ? [] : await this.stopDrivers(this.options.drivers, context);
    this.held = null;
    this.stopRenewing();
    this.revoked = false;
    if (failed.length > 0 && this.options.service.stopMustSucceed && context !== null) {
      // Not released: the grant lapses by itself, and the leader starts it nowhere while this is reported.
      this.failedStop = context;
      this.failedAtMs = performance.now();
      this.setState(
        "stop-failed",
        `${failed.join(", ")} stop failed; retried every ${startRetryMs / 1000} s`,
      );
      return;
    }
    if (held !== null) await this.release(held);
    this.setState("stopped", failed.length === 0 ? why : `${why}; ${failed.join(", ")} stop failed`);
  }

  /** stop_must_succeed: the failed stop again, every startRetryMs, until every driver stops. */
  private async retryStop(): Promise<void> {
    const context = this.failedStop;
    if (context === null) return;
    const failed = await this.stopDrivers(this.options.drivers, context);
    if (failed.length === 0) {
      this.failedStop = null;
      this.setState("stopped", "stop succeeded on a retry");
      return;
    }
    this.failedAtMs = performance.now();
    this.setState(
      "stop-failed",
      `${failed.join(", ")} stop failed again; retried every ${startRetryMs / 1000} s`,
    );
  }

  /** Stops each driver in reverse order; returns the kinds whose stop failed. */
  private async stopDrivers(drivers: readonly Driver[], context: DriverContext): Promise<string[]> {
    const failed: string[] = [];
    for (const driver of [...drivers].reverse()) {
      const ok = await driver.stop(context);
      this.driverRan(driver, "stop", ok, context);
      if (ok) continue;
      failed.push(driver.kind);
      this.logger.warn({ driver: driver.kind }, "stop failed; the service may still run here");
    }
    return failed;
  }

  private driverRan(driver: Driver, step: "start" | "stop", ok: boolean, context: DriverContext): void {
    this.options.onEvent?.("driver", {
      service: this.name,
      driver: driver.kind,
      step,
      ok,
      fence: context.fence,
    });
  }

  private async release(held: HeldGrant): Promise<void> {
    try {
      await this.options.coordination.releaseGrant(held.grant);
    } catch (error) {
      // Not fatal: the grant lapses by itself.
      this.logger.debug({ reason: describe(error) }, "grant release not delivered");
    }
  }

  /** The stop budget reached: stop now, so the service is down before the leader may give it elsewhere. */
  private nearDeadline(): boolean {
    const held = this.held;
    if (held === null) return true;
    const fence = this.options.coordination.checkFence(held);
    return !fence.ok || fence.remainingMs <= stopBudgetMs(held.grant.leaseMs);
  }

  private elapsedSinceFailure(): number {
    return performance.now() - this.failedAtMs;
  }

  /**
   * Assigned here but not running: wake for the next try (a renewal period, or sooner when the leader said
   * the grant is free sooner; the retry after a failure).
   */
  private schedule(): void {
    this.clearTimer();
    if (this.closed) return;
    let delayMs: number | null = null;
    if ((this.state === "failed" && this.assignedHere) || this.state === "stop-failed") {
      delayMs = Math.max(0, startRetryMs - this.elapsedSinceFailure());
    } else if (this.state === "stopped" && this.assignedHere) {
      delayMs = Math.min(renewalPeriodMs(this.options.leaseMs), this.retryInMs ?? Number.POSITIVE_INFINITY);
    }
    if (delayMs === null) return;
    this.timer = this.timers.setTimeout(() => {
      this.timer = null;
      this.kick();
    }, delayMs);
  }

  private clearTimer(): void {
    if (this.timer !== null) this.timers.clearTimeout(this.timer);
    this.timer = null;
  }

  private context(held: HeldGrant): DriverContext {
    return {
      service: this.name,
      node: this.options.nodeId,
      fence: formatFence(held.grant.fence),
      output: (step, outcome) => this.log.addOutcome(step, outcome),
    };
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
