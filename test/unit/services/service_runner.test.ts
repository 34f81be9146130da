import assert from "node:assert/strict";
import { performance } from "node:perf_hooks";
import { type TestContext, test } from "node:test";
import { pino } from "pino";
import { renewalPeriodMs, stopBudgetMs } from "../../../src/core/grants.ts";
import type { Driver, DriverContext, DriverStatus } from "../../../src/services/exec_driver.ts";
import {
  type RunnerReport,
  ServiceRunner,
  serviceLeaseMs,
  startRetryMs,
} from "../../../src/services/service_runner.ts";
import { MemoryCoordination } from "../../support/memory_coordination.ts";
import { serviceConfig } from "../../support/service_config.ts";

const leaseMs = 2000;

/** Virtual time: timers, Date and performance.now move only when the test runs time, 1 ms per step. */
class VirtualTime {
  private readonly t: TestContext;
  nowMs = 1_000_000;

  constructor(t: TestContext) {
    this.t = t;
    t.mock.timers.enable({ apis: ["setTimeout", "Date"], now: 1_700_000_000_000 });
    t.mock.method(performance, "now", () => this.nowMs);
  }

  async run(ms: number): Promise<void> {
    for (let i = 0; i < ms; i++) {
      this.nowMs += 1;
      this.t.mock.timers.tick(1);
      for (let j = 0; j < 4; j++) await new Promise((resolve) => setImmediate(resolve));
    }
  }

  async until(what: string, predicate: () => boolean, limitMs = 30_000): Promise<void> {
    for (let waited = 0; !predicate(); waited++) {
      if (waited >= limitMs) assert.fail(`no ${what} after ${limitMs} virtual ms`);
      await this.run(1);
    }
  }
}

/** A driver that records what it was asked, at which virtual time and under which fence. */
class RecordingDriver implements Driver {
  readonly kind: string;
  readonly calls: string[] = [];
  startFails = false;
  stopFails = false;
  statusAnswer: DriverStatus = "unknown";
  private readonly time: VirtualTime;

  constructor(kind: string, time: VirtualTime) {
    this.kind = kind;
    this.time = time;
  }

  async start(context: DriverContext): Promise<boolean> {
    this.calls.push(`start ${context.node} ${context.fence} @${this.time.nowMs}`);
    return !this.startFails;
  }

  async stop(context: DriverContext): Promise<boolean> {
    this.calls.push(`stop ${context.node} ${context.fence} @${this.time.nowMs}`);
    return !this.stopFails;
  }

  async status(context: DriverContext): Promise<DriverStatus> {
    this.calls.push(`status ${context.node} ${context.fence} @${this.time.nowMs}`);
    return this.statusAnswer;
  }
}

function setup(
  t: TestContext,
  options: { health?: () => boolean; stopMustSucceed?: boolean; runnerLeaseMs?: number } = {},
) {
  const time = new VirtualTime(t);
  const health = options.health;
  const stopMustSucceed = options.stopMustSucceed ?? false;
  const coordination = new MemoryCoordination({ leaderId: "n1", term: 4, leaseMs, now: () => time.nowMs });
  const drivers = [new RecordingDriver("ip", time), new RecordingDriver("app", time)];
  const reports: RunnerReport[] = [];
  const runner = new ServiceRunner({
    service:
      health === undefined
        ? serviceConfig("web", { stopMustSucceed })
        : serviceConfig("web", {
            health: {
              check: { type: "exec", argv: ["true"] },
              intervalMs: 1000,
              timeoutMs: 500,
              failures: 3,
            },
          }),
    ...(health === undefined
      ? {}
      : { healthCheck: async () => (health() ? { ok: true, detail: "" } : { ok: false, detail: "down" }) }),
    nodeId: "n2",
    drivers,
    coordination: coordination.node("n2"),
    leaseMs: options.runnerLeaseMs ?? leaseMs,
    logger: pino({ level: "silent" }),
    onReport: (report) => reports.push(report),
  });
  t.after(() => runner.close());
  const states = () => reports.map((r) => r.state);
  return { time, coordination, drivers, runner, reports, states };
}

test("service runner: assigned here, it takes the grant, starts the drivers in order and keeps the grant", async (t) => {
  const { time, coordination, drivers, runner, states } = setup(t);
  coordination.assign("web", "n2");
  runner.assigned(true);
  await time.until("running", () => runner.report().state === "running");
  assert.deepEqual(states(), ["starting", "running"]);
  assert.equal(runner.report().fence, "4.1");
  assert.match(drivers[0]?.calls[0] ?? "", /^start n2 4\.1 /);
  assert.match(drivers[1]?.calls[0] ?? "", /^start n2 4\.1 /);
  await time.run(10 * leaseMs);
  assert.equal(runner.report().state, "running", "renewed for ten leases");
  assert.equal(coordination.holder("web")?.owner, "n2");
});

test("service runner: unassigned, it stops the drivers in reverse and releases the grant", async (t) => {
  const { time, coordination, drivers, runner } = setup(t);
  coordination.assign("web", "n2");
  runner.assigned(true);
  await time.until("running", () => runner.report().state === "running");
  coordination.assign("web", "n3");
  runner.assigned(false);
  await time.until("stopped", () => runner.report().state === "stopped");
  assert.match(drivers[1]?.calls[1] ?? "", /^stop n2 4\.1 /);
  assert.match(drivers[0]?.calls[1] ?? "", /^stop n2 4\.1 /);
  const stoppedApp = Number(/@(\d+)/.exec(drivers[1]?.calls[1] ?? "")?.[1]);
  const stoppedIp = Number(/@(\d+)/.exec(drivers[0]?.calls[1] ?? "")?.[1]);
  assert.ok(stoppedApp <= stoppedIp, "app stopped before ip");
  assert.equal(coordination.holder("web"), null, "released: free at once");
});

test("service runner: cut off from the leader, it stops before the leader may give the service elsewhere", async (t) => {
  const { time, coordination, drivers, runner } = setup(t);
  coordination.assign("web", "n2");
  runner.assigned(true);
  await time.until("running", () => runner.report().state === "running");
  coordination.answering = false;
  const freeAtMs = coordination.freeAtMs("web");
  await time.until("stopped", () => runner.report().state === "stopped");
  const stopped = drivers.map((d) => Number(/@(\d+)/.exec(d.calls.at(-1) ?? "")?.[1]));
  for (const at of stopped) {
    assert.ok(at < freeAtMs, `stopped at ${at}, the leader could move it at ${freeAtMs}`);
    // Woken at the stop budget itself, not at the next renewal tick past it (up to a period less).
    assert.ok(freeAtMs - at >= stopBudgetMs(leaseMs), `stopped only ${freeAtMs - at} ms before the lapse`);
  }
  assert.equal(runner.report().detail, "grant ran out");
});

test("service runner: a refused renewal (moved elsewhere) stops it at once", async (t) => {
  const { time, coordination, runner } = setup(t);
  coordination.assign("web", "n2");
  runner.assigned(true);
  await time.until("running", () => runner.report().state === "running");
  coordination.assign("web", "n3"); // the table has not reached n2 yet: only the renewal tells it
  const before = time.nowMs;
  await time.until("stopped", () => runner.report().state === "stopped");
  assert.ok(time.nowMs - before <= renewalPeriodMs(leaseMs) + 10, `stopped ${time.nowMs - before} ms later`);
  assert.equal(runner.report().detail, "grant not renewed");
});

test("service runner: a failed start undoes the drivers started, releases, and retries later", async (t) => {
  const { time, coordination, drivers, runner, states } = setup(t);
  const [ip, app] = drivers;
  assert.ok(ip && app);
  app.startFails = true;
  coordination.assign("web", "n2");
  runner.assigned(true);
  await time.until("failed", () => runner.report().state === "failed");
  assert.deepEqual(states(), ["starting", "failed"]);
  assert.match(runner.report().detail, /app start failed/);
  assert.match(ip.calls[1] ?? "", /^stop n2 4\.1/);
  assert.equal(coordination.holder("web"), null);
  app.startFails = false;
  const failedAt = time.nowMs;
  await time.until("running", () => runner.report().state === "running");
  assert.ok(time.nowMs - failedAt >= startRetryMs - 1, "not retried before startRetryMs");
});

test("service runner: after a leader change its claim is adopted and the service keeps running", async (t) => {
  const { time, coordination, drivers, runner } = setup(t);
  coordination.assign("web", "n2");
  runner.assigned(true);
  await time.until("running", () => runner.report().state === "running");
  coordination.changeLeader("n3");
  await time.run(3 * leaseMs);
  assert.equal(runner.report().state, "running");
  assert.equal(coordination.holder("web")?.owner, "n2");
  assert.deepEqual(coordination.holder("web")?.fence, { term: 5, seq: 1 });
  assert.equal(drivers[1]?.calls.length, 1, "never restarted");
});

test("service runner: at start, what an earlier run left is stopped, outside any grant", async (t) => {
  const { drivers, runner } = setup(t);
  const [ip, app] = drivers;
  assert.ok(ip && app);
  ip.statusAnswer = "stopped";
  app.statusAnswer = "running";
  await runner.probe();
  assert.deepEqual(
    [...app.calls, ...ip.calls].map((c) => c.replace(/ @\d+$/, "")),
    ["status n2 0.0", "stop n2 0.0", "status n2 0.0"],
  );
});

test("service runner: a grant answered too late to leave time for a stop is not started under", async (t) => {
  const { time, coordination, drivers, runner, reports } = setup(t);
  coordination.assign("web", "n2");
  // Answered with less than the stop budget left of the holder's 0.98 lease.
  coordination.replyDelayMs = leaseMs - stopBudgetMs(leaseMs) + 100;
  runner.assigned(true);
  await time.until("given up", () => reports.some((r) => r.state === "stopped"));
  assert.deepEqual(
    reports.map((r) => r.state),
    ["starting", "stopped"],
  );
  assert.match(runner.report().detail, /too little of its grant left/);
  assert.deepEqual(drivers[0]?.calls, []);
  coordination.replyDelayMs = 0;
  await time.until("running", () => runner.report().state === "running");
});

test("service runner: a health check failing `failures` times in a row reports it unhealthy; one pass, healthy", async (t) => {
  let passes = true;
  const { time, coordination, runner, reports } = setup(t, { health: () => passes });
  coordination.assign("web", "n2");
  runner.assigned(true);
  await time.until("running", () => runner.report().state === "running");
  await time.run(5_000);
  assert.equal(runner.report().healthy, true);
  const since = runner.report().sinceMs;
  passes = false;
  await time.run(2_500);
  assert.equal(runner.report().healthy, true, "two failures of three: still healthy");
  await time.until("unhealthy", () => !runner.report().healthy, 1_500);
  assert.equal(runner.report().state, "running", "it keeps running until the leader moves it");
  assert.match(runner.report().detail, /health check failing: down/);
  assert.equal(runner.report().sinceMs, since, "a verdict is not a state change");
  passes = true;
  await time.until("healthy again", () => runner.report().healthy, 1_500);
  assert.deepEqual(
    reports.map((r) => [r.state, r.healthy]),
    [
      ["starting", true],
      ["running", true],
      ["running", false],
      ["running", true],
    ],
  );
});

test("service runner: a failed stop is reported; with stop_must_succeed the grant is kept to lapse and the stop retried", async (t) => {
  const plain = setup(t);
  plain.coordination.assign("web", "n2");
  plain.runner.assigned(true);
  await plain.time.until("running", () => plain.runner.report().state === "running");
  const [, plainApp] = plain.drivers;
  if (plainApp) plainApp.stopFails = true;
  plain.coordination.assign("web", "n3");
  plain.runner.assigned(false);
  await plain.time.until("stopped", () => plain.runner.report().state === "stopped");
  assert.match(plain.runner.report().detail, /assigned elsewhere; app stop failed/);
  assert.equal(plain.coordination.holder("web"), null, "released: it may move at once");
});

test("service runner: with stop_must_succeed a failed stop holds on to the grant until it lapses, then retries until it succeeds", async (t) => {
  const { time, coordination, drivers, runner } = setup(t, { stopMustSucceed: true });
  coordination.assign("web", "n2");
  runner.assigned(true);
  await time.until("running", () => runner.report().state === "running");
  const [, app] = drivers;
  assert.ok(app);
  app.stopFails = true;
  coordination.assign("web", "n3");
  runner.assigned(false);
  await time.until("stop-failed", () => runner.report().state === "stop-failed");
  assert.match(runner.report().detail, /app stop failed; retried every 10 s/);
  assert.equal(coordination.holder("web")?.owner, "n2", "not released: the grant only lapses");
  const stops = () => app.calls.filter((c) => c.startsWith("stop")).length;
  await time.run(startRetryMs + 100);
  assert.equal(stops(), 2, "retried once after startRetryMs");
  assert.equal(runner.report().state, "stop-failed");
  app.stopFails = false;
  await time.until("stopped", () => runner.report().state === "stopped", startRetryMs + 1_000);
  assert.equal(runner.report().detail, "stop succeeded on a retry");
});

test("service runner: its grants last the lease it asks for (failover_after_ms, at most the cluster's)", async (t) => {
  assert.equal(serviceLeaseMs({ failoverAfterMs: 1000 }, leaseMs), 1000);
  assert.equal(serviceLeaseMs({ failoverAfterMs: 3000 }, leaseMs), leaseMs);
  const { time, coordination, drivers, runner } = setup(t, { runnerLeaseMs: 1000 });
  coordination.assign("web", "n2");
  runner.assigned(true);
  await time.until("running", () => runner.report().state === "running");
  assert.equal(coordination.holder("web")?.leaseMs, 1000);
  await time.run(10 * 1000);
  assert.equal(runner.report().state, "running", "renewed for ten of its leases");
  coordination.answering = false;
  const freeAtMs = coordination.freeAtMs("web");
  const cutAt = time.nowMs;
  await time.until("stopped", () => runner.report().state === "stopped");
  const stoppedAt = Number(/@(\d+)/.exec(drivers[0]?.calls.at(-1) ?? "")?.[1]);
  assert.ok(stoppedAt < freeAtMs, "stopped before its own lease lapsed on the leader");
  assert.ok(freeAtMs - cutAt <= 1000 * 1.02, `the leader may move it ${freeAtMs - cutAt} ms after the cut`);
});

test("service runner: refused while an earlier grant lapses, it asks again when that grant lapses", async (t) => {
  const { time, coordination, drivers, runner } = setup(t);
  coordination.assign("web", "n3");
  await coordination.node("n3").acquireGrant("web");
  coordination.assign("web", "n2"); // n3's grant is no longer renewed; it lapses on the leader's clock
  const freeAtMs = coordination.freeAtMs("web");
  runner.assigned(true);
  await time.until("running", () => runner.report().state === "running", 3 * leaseMs);
  const startedAt = Number(/@(\d+)/.exec(drivers[0]?.calls[0] ?? "")?.[1]);
  assert.ok(startedAt >= freeAtMs, "not before the lapse");
  // Without the leader's hint it would ask again only at its next renewal period.
  assert.ok(startedAt - freeAtMs <= 20, `started ${startedAt - freeAtMs} ms after the lapse`);
});
