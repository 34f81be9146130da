import assert from "node:assert/strict";
import { performance } from "node:perf_hooks";
import { type TestContext, test } from "node:test";
import { pino } from "pino";
import {
  type HealthChange,
  HealthRunner,
  type HealthTimings,
  healthConfigFromTimings,
} from "../../../src/cluster/health_runner.ts";
import {
  decodeHealthMessage,
  encodeHealthMessage,
  HEALTH_CHANNEL,
} from "../../../src/cluster/health_wire.ts";
import { lanTimings } from "../../../src/config/timings.ts";
import { Ticker, type TickerTimers } from "../../../src/shell/index.ts";
import { type MemoryMeshApi, MemoryNetwork } from "../../support/memory_mesh.ts";

// The LAN defaults (50/200/1000 ms, 3 missed: tick : heartbeat : down = 1 : 4 : 20) scaled down 5×.
const lan = lanTimings();
const scale = 5;
const timings: HealthTimings = {
  tickMs: lan.tickMs / scale,
  heartbeatIntervalMs: lan.heartbeatIntervalMs / scale,
  suspectAfterMissed: lan.suspectAfterMissed,
  downAfterMs: lan.downAfterMs / scale,
};

/**
 * Virtual time for one test: the runners' timers, Date.now() and performance.now() move only when the test
 * runs time, 1 ms at a time, and the in-memory mesh delivers (setImmediate, left real) after every step. So
 * a loaded machine changes nothing, and a stall is exactly as long as the test says.
 */
class VirtualTime {
  private readonly t: TestContext;
  private monotonicMs = 1_000;
  /** Virtual ms run so far. */
  elapsedMs = 0;

  constructor(t: TestContext) {
    this.t = t;
    t.mock.timers.enable({ apis: ["setInterval", "setTimeout", "Date"], now: 1_700_000_000_000 });
    t.mock.method(performance, "now", () => this.monotonicMs);
  }

  async run(ms: number): Promise<void> {
    for (let step = 0; step < ms; step++) {
      this.monotonicMs += 1;
      this.elapsedMs += 1;
      this.t.mock.timers.tick(1);
      await deliveries();
    }
  }

  /** Runs time until `predicate` holds; fails after `timeoutMs` of virtual time. */
  async runUntil(what: string, predicate: () => boolean, timeoutMs = 10_000): Promise<void> {
    await deliveries();
    for (let waited = 0; !predicate(); waited++) {
      if (waited >= timeoutMs) assert.fail(`no ${what} after ${timeoutMs} virtual ms`);
      await this.run(1);
    }
  }

  /** The whole process stops for `ms`: no timer fires and nothing is delivered, then the clock has moved. */
  stall(ms: number): void {
    this.monotonicMs += ms;
  }
}

/** Lets every message in flight on the in-memory mesh land, and the answers they cause. */
async function deliveries(): Promise<void> {
  for (let i = 0; i < 4; i++) await new Promise((resolve) => setImmediate(resolve));
}

interface LogLine {
  level: number;
  msg: string;
  [key: string]: unknown;
}

function capturingLogger(): { logger: pino.Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const logger = pino(
    { level: "debug" },
    { write: (line: string) => lines.push(JSON.parse(line) as LogLine) },
  );
  return { logger, lines };
}

interface Harness {
  network: MemoryNetwork;
  meshes: Map<string, MemoryMeshApi>;
  runners: Map<string, HealthRunner>;
  changes: Map<string, HealthChange[]>;
  logs: Map<string, LogLine[]>;
  /** Each runner's ticker, on timers that count its wake-ups as Node would have them (libuvTimers). */
  tickers: Map<string, Ticker>;
  wakeUps: Map<string, number>;
}

/**
 * Timers as Node runs them, for counting wake-ups: Node arms one libuv timer for its earliest JS timer
 * and never moves it later, so a timer cleared before its time (a ticker postponing) still wakes the
 * process then. Looks the mocked globals up at each call, so the test's virtual time drives them.
 */
function libuvTimers(onWakeUp: () => void): TickerTimers {
  const live = new Map<object, { dueMs: number; callback: () => void }>();
  let uvDueMs = Number.POSITIVE_INFINITY;
  let uvHandle: ReturnType<typeof setTimeout> | undefined;
  const armUv = (dueMs: number): void => {
    if (dueMs >= uvDueMs) return;
    clearTimeout(uvHandle);
    uvDueMs = dueMs;
    uvHandle = setTimeout(wake, Math.max(0, dueMs - Date.now()));
  };
  const wake = (): void => {
    uvDueMs = Number.POSITIVE_INFINITY;
    onWakeUp();
    for (const [handle, timer] of [...live]) {
      if (timer.dueMs > Date.now()) continue;
      live.delete(handle);
      timer.callback();
    }
    for (const timer of live.values()) armUv(timer.dueMs);
  };
  return {
    setTimeout: (callback, delayMs) => {
      const handle = {};
      live.set(handle, { dueMs: Date.now() + delayMs, callback });
      armUv(Date.now() + delayMs);
      return handle;
    },
    clearTimeout: (handle) => live.delete(handle as object),
  };
}

/** Runners for `ids`, each watching every other id in `watched` (default: all of ids), all linked. */
function harness(t: TestContext, ids: string[], watched: string[] = ids): Harness {
  const network = new MemoryNetwork();
  const meshes = new Map(watched.map((id) => [id, network.join(id)]));
  const h: Harness = {
    network,
    meshes,
    runners: new Map(),
    changes: new Map(),
    logs: new Map(),
    tickers: new Map(),
    wakeUps: new Map(),
  };
  for (const id of ids) {
    const { logger, lines } = capturingLogger();
    const mesh = meshes.get(id);
    assert.ok(mesh);
    h.wakeUps.set(id, 0);
    const ticker = new Ticker({
      timers: libuvTimers(() => h.wakeUps.set(id, (h.wakeUps.get(id) ?? 0) + 1)),
    });
    h.tickers.set(id, ticker);
    const runner = new HealthRunner({
      mesh,
      selfId: id,
      peers: watched.filter((p) => p !== id),
      timings,
      logger,
      ticker,
    });
    const changes: HealthChange[] = [];
    for (const event of ["peer:alive", "peer:suspect", "peer:down"] as const) {
      runner.on(event, (change) => changes.push(change));
    }
    h.runners.set(id, runner);
    h.changes.set(id, changes);
    h.logs.set(id, lines);
  }
  network.connectAll();
  t.after(() => {
    for (const runner of h.runners.values()) runner.stop();
    network.close();
  });
  return h;
}

function runner(h: Harness, id: string): HealthRunner {
  const r = h.runners.get(id);
  assert.ok(r);
  return r;
}

function bothHaveRtt(h: Harness): boolean {
  return [runner(h, "a"), runner(h, "b")].every((r) => r.peers().every((p) => p.rttSmoothedMs !== null));
}

test("health runner: two runners see each other alive with a round-trip time", async (t) => {
  const time = new VirtualTime(t);
  const h = harness(t, ["a", "b"]);
  const before = Date.now();
  for (const r of h.runners.values()) r.start();
  await time.runUntil("rtt on both sides", () => bothHaveRtt(h));
  for (const id of ["a", "b"]) {
    const [peer] = runner(h, id).peers();
    assert.ok(peer);
    assert.equal(peer.id, id === "a" ? "b" : "a");
    assert.equal(peer.state, "alive");
    assert.ok(peer.rttMs !== null && peer.rttMs >= 0, `rtt ${peer.rttMs}`);
    assert.ok(peer.rttSmoothedMs !== null && peer.rttSmoothedMs >= 0);
    assert.ok(peer.lastHeardMs !== null && peer.lastHeardMs >= before && peer.lastHeardMs <= Date.now());
  }
  assert.deepEqual(h.changes.get("a"), []);
});

test("health runner: a silenced peer goes suspect, then down, then alive when it speaks again", async (t) => {
  const time = new VirtualTime(t);
  const h = harness(t, ["a", "b"]);
  for (const r of h.runners.values()) r.start();
  await time.runUntil("rtt on both sides", () => bothHaveRtt(h));
  const mutedAtMs = time.elapsedMs;
  h.network.setMuted("b", true);
  const changes = h.changes.get("a") ?? [];
  await time.runUntil("b down", () => changes.some((c) => c.to === "down"));
  const downAfterMs = time.elapsedMs - mutedAtMs;
  // b was last heard at most one heartbeat interval before the mute, and down needs (20 − 1) silent ticks.
  assert.ok(
    downAfterMs >= timings.downAfterMs - timings.heartbeatIntervalMs - timings.tickMs,
    `${downAfterMs}`,
  );
  assert.deepEqual(changes, [
    { peer: "b", from: "alive", to: "suspect" },
    { peer: "b", from: "suspect", to: "down" },
  ]);
  h.network.setMuted("b", false);
  await time.runUntil("b alive", () => changes.length === 3);
  assert.deepEqual(changes[2], { peer: "b", from: "down", to: "alive" });
  assert.deepEqual(h.changes.get("b"), [], "a kept talking, b accused nobody");
});

test("health runner: a 300 ms event-loop stall of both runners causes no transition", async (t) => {
  const time = new VirtualTime(t);
  const h = harness(t, ["a", "b"]);
  for (const r of h.runners.values()) r.start();
  await time.runUntil("rtt on both sides", () => bothHaveRtt(h));
  // 300 ms is 1.5× the scaled down timeout: counted as silence, it would make each runner declare the other down.
  time.stall(300);
  await time.run(timings.downAfterMs);
  assert.deepEqual(h.changes.get("a"), []);
  assert.deepEqual(h.changes.get("b"), []);
  for (const id of ["a", "b"]) {
    assert.ok(
      h.logs.get(id)?.some((l) => l.msg === "health timer ran late" && (l.lateTicks as number) >= 25),
      `${id} measured the stall`,
    );
    assert.equal(runner(h, id).peers()[0]?.state, "alive");
  }
});

test("health runner: link:down makes a peer suspect at once, not down, and it recovers on reconnect", async (t) => {
  const time = new VirtualTime(t);
  const h = harness(t, ["a", "b"]);
  for (const r of h.runners.values()) r.start();
  await time.runUntil("rtt on both sides", () => bothHaveRtt(h));
  h.network.disconnect("a", "b");
  assert.deepEqual(h.changes.get("a"), [{ peer: "b", from: "alive", to: "suspect" }]);
  h.network.connect("a", "b");
  await time.runUntil("b alive again", () => h.changes.get("a")?.length === 2);
  assert.deepEqual(h.changes.get("a")?.[1], { peer: "b", from: "suspect", to: "alive" });
  assert.ok(!h.changes.get("a")?.some((c) => c.to === "down"));
});

test("health runner: frames that came before a link closed do not make the peer alive again after it", async (t) => {
  const time = new VirtualTime(t);
  const h = harness(t, ["a", "b"]);
  for (const r of h.runners.values()) r.start();
  await time.runUntil("rtt on both sides", () => bothHaveRtt(h));
  await time.run(timings.tickMs);
  // A frame from b, then the link closes before a's next tick notes it (a peer killed mid-conversation).
  h.meshes.get("b")?.send("a", "election", new Uint8Array([1]));
  await deliveries();
  h.network.disconnect("a", "b");
  const lostAt = time.elapsedMs;
  await time.runUntil("b down", () => h.changes.get("a")?.some((c) => c.to === "down") === true);
  assert.deepEqual(
    h.changes.get("a")?.map((c) => c.to),
    ["suspect", "down"],
    "not alive again in between",
  );
  // Down after the timeout counted from the loss (within a tick), not from a tick after it.
  assert.ok(time.elapsedMs - lostAt <= timings.downAfterMs + timings.tickMs, `${time.elapsedMs - lostAt} ms`);
});

test("health runner: garbage from a peer is logged and ignored", async (t) => {
  const time = new VirtualTime(t);
  // x is watched by a but runs no detector: the test speaks for it.
  const h = harness(t, ["a"], ["a", "x"]);
  const x = h.meshes.get("x");
  assert.ok(x);
  const received: string[] = [];
  x.onMessage(HEALTH_CHANNEL, (_from, payload) => {
    const decoded = decodeHealthMessage(payload);
    if (decoded.ok) received.push(decoded.message.type);
  });
  runner(h, "a").start();
  const garbage = [
    new TextEncoder().encode("not json"),
    encodeHealthMessage({ type: "ping", seq: 1, sentAtMs: 0 }).slice(0, 5),
    new TextEncoder().encode(JSON.stringify({ type: "ping", seq: -1, sentAtMs: 0 })),
    new Uint8Array(10_000),
  ];
  for (const payload of garbage) x.send("a", HEALTH_CHANNEL, payload);
  const dropped = () => h.logs.get("a")?.filter((l) => l.msg === "dropped health message").length;
  await time.runUntil("garbage logged", () => dropped() === 4);
  // (Each frame still shows that x's process and link live: the mesh counts it for the detector.)
  assert.ok(!received.includes("pong"), "garbage is not answered");
  // The same path with a valid ping: heard, and answered.
  x.send("a", HEALTH_CHANNEL, encodeHealthMessage({ type: "ping", seq: 1, sentAtMs: 0 }));
  await time.runUntil("pong to x", () => received.includes("pong"));
  assert.notEqual(runner(h, "a").peers()[0]?.lastHeardMs, null);
});

test("health runner: a throwing listener is logged and the others still run", async (t) => {
  const time = new VirtualTime(t);
  const h = harness(t, ["a", "b"]);
  const a = runner(h, "a");
  a.on("peer:suspect", () => {
    throw new Error("listener bug");
  });
  const seen: HealthChange[] = [];
  a.on("peer:suspect", (change) => seen.push(change));
  for (const r of h.runners.values()) r.start();
  await time.runUntil("rtt on both sides", () => bothHaveRtt(h));
  h.network.disconnect("a", "b");
  assert.deepEqual(seen, [{ peer: "b", from: "alive", to: "suspect" }]);
  assert.ok(h.logs.get("a")?.some((l) => l.msg === "event listener threw" && l.level === 50));
});

test("health runner: an unreachable peer costs one ping per heartbeat interval, none after stop", async (t) => {
  const time = new VirtualTime(t);
  const h = harness(t, ["a", "c"]);
  h.network.disconnect("a", "c");
  const a = runner(h, "a");
  a.start();
  await time.run(10 * timings.heartbeatIntervalMs);
  a.stop();
  const pings = h.network.sendCount("a", "c", HEALTH_CHANNEL);
  // One at start, then one per interval: 10 or 11 depending on where the last interval ends.
  assert.ok(pings >= 10 && pings <= 11, `${pings} pings in 10 heartbeat intervals`);
  assert.equal(h.logs.get("a")?.filter((l) => l.msg === "health ping send result changed").length, 1);
  await time.run(3 * timings.heartbeatIntervalMs);
  assert.equal(h.network.sendCount("a", "c", HEALTH_CHANNEL), pings);
});

test("health runner: timings convert to ticks exactly; impossible ones are refused", () => {
  assert.deepEqual(healthConfigFromTimings(["b"], lan), {
    peers: ["b"],
    heartbeatIntervalTicks: 5,
    suspectAfterMissed: 3,
    downAfterTicks: 20,
    awarenessMax: 8,
  });
  const mesh = new MemoryNetwork().join("a");
  const { logger } = capturingLogger();
  const table: [change: Partial<HealthTimings>, peers: string[]][] = [
    [{ tickMs: 0 }, ["b"]],
    [{ heartbeatIntervalMs: 45 }, ["b"]], // 4.5 ticks
    [{ downAfterMs: 120 }, ["b"]], // 12 ticks: not beyond suspect (3 × 4)
    [{ suspectAfterMissed: 0 }, ["b"]],
    [{ awarenessMax: 0 }, ["b"]],
    [{}, ["a", "b"]], // watching itself
  ];
  for (const [change, peers] of table) {
    assert.throws(
      () => new HealthRunner({ mesh, selfId: "a", peers, timings: { ...timings, ...change }, logger }),
      RangeError,
      JSON.stringify(change),
    );
  }
});

test("health runner: a frame on any channel counts as liveness and replaces most pings", async (t) => {
  const time = new VirtualTime(t);
  const h = harness(t, ["a", "b"]);
  for (const r of h.runners.values()) r.start();
  await time.runUntil("rtt on both sides", () => bothHaveRtt(h));
  const b = h.meshes.get("b");
  assert.ok(b);
  // b stops pinging and answering pings, but its other traffic keeps reaching a (a leader's heartbeats).
  runner(h, "b").stop();
  const pingsBefore = h.network.sendCount("a", "b", HEALTH_CHANNEL);
  const windowMs = 12 * timings.heartbeatIntervalMs; // 480 ms: 2.4 down timeouts at this scale
  for (let elapsedMs = 0; elapsedMs < windowMs; elapsedMs += timings.tickMs) {
    b.send("a", "election", new Uint8Array([1]));
    await time.run(timings.tickMs);
  }
  assert.equal(runner(h, "a").peers()[0]?.state, "alive", "traffic alone keeps b alive");
  assert.deepEqual(h.changes.get("a"), []);
  // Without the traffic a pings every interval (12 pings here); with it, only to refresh the rtt (5 s).
  assert.ok(h.network.sendCount("a", "b", HEALTH_CHANNEL) - pingsBefore <= 1);
  // The same silence without that traffic: b is suspect.
  await time.runUntil("b suspect", () => h.changes.get("a")?.some((c) => c.to === "suspect") === true);
});

test("health runner: a link that comes up gets its round trip measured at once, despite other traffic", async (t) => {
  const time = new VirtualTime(t);
  const h = harness(t, ["a", "b"]);
  h.network.disconnect("a", "b"); // the runners start before the mesh has linked them, as in the agent
  for (const r of h.runners.values()) r.start();
  await time.run(2 * timings.heartbeatIntervalMs);
  h.network.connect("a", "b");
  const a = h.meshes.get("a");
  const b = h.meshes.get("b");
  assert.ok(a && b);
  // Election traffic both ways keeps each side heard, so no ping is due for liveness.
  const rttRefreshMs = 5_000;
  const traffic = setInterval(() => {
    a.send("b", "election", new Uint8Array([1]));
    b.send("a", "election", new Uint8Array([1]));
  }, timings.tickMs);
  t.after(() => clearInterval(traffic));
  await time.runUntil("rtt on both sides", () => bothHaveRtt(h), rttRefreshMs / 2);
  assert.deepEqual(h.changes.get("a"), []);
  // Woken early for the ping, the runners did not take the early wake-up for a late one.
  assert.deepEqual([runner(h, "a").awarenessScore(), runner(h, "b").awarenessScore()], [0, 0]);
});

test("health runner: while peers are heard it wakes once per decision, not every tick", async (t) => {
  const time = new VirtualTime(t);
  const h = harness(t, ["a", "b"]);
  for (const r of h.runners.values()) r.start();
  await time.runUntil("rtt on both sides", () => bothHaveRtt(h));
  const a = h.meshes.get("a");
  const b = h.meshes.get("b");
  assert.ok(a && b);
  const traffic = setInterval(() => {
    a.send("b", "election", new Uint8Array([1]));
    b.send("a", "election", new Uint8Array([1]));
  }, timings.tickMs);
  t.after(() => clearInterval(traffic));
  const wakeUpsBefore = h.wakeUps.get("a") ?? 0;
  const windowTicks = 100;
  await time.run(windowTicks * timings.tickMs);
  const wakeUps = (h.wakeUps.get("a") ?? 0) - wakeUpsBefore;
  // Heard at every wake-up, a peer's next decision (a ping) is a heartbeat interval less one tick away.
  const ticksPerWakeUp = healthConfigFromTimings(["b"], timings).heartbeatIntervalTicks - 1;
  assert.ok(wakeUps <= windowTicks / ticksPerWakeUp + 1, `${wakeUps} wake-ups in ${windowTicks} ticks`);
  assert.deepEqual(h.changes.get("a"), []);
  // Silence is still counted tick by tick: the same runner notices b going quiet.
  clearInterval(traffic);
  runner(h, "b").stop();
  await time.runUntil("b down", () => h.changes.get("a")?.some((c) => c.to === "down") === true);
});

test("health runner: followers vouched for by the leader's heartbeats do not ping each other; a dead one still goes down", async (t) => {
  const time = new VirtualTime(t);
  const h = harness(t, ["l", "f", "g"]);
  for (const r of h.runners.values()) r.start();
  const l = h.meshes.get("l");
  const f = h.meshes.get("f");
  const g = h.meshes.get("g");
  assert.ok(l && f && g);
  let gAnswers = true;
  // The election's part, as ElectionRunner plays it: l heartbeats with its vouches, f and g answer.
  const leaderHeartbeatMs = lan.leaderHeartbeatMs / scale;
  const heartbeats = setInterval(() => {
    const vouched = runner(h, "l").heardLately();
    for (const [id, mesh] of [
      ["f", f],
      ["g", g],
    ] as const) {
      l.send(id, "election", new Uint8Array([5]));
      runner(h, id).vouched("l", vouched);
      if (id === "f" || gAnswers) mesh.send("l", "election", new Uint8Array([6]));
    }
  }, leaderHeartbeatMs);
  t.after(() => clearInterval(heartbeats));
  await time.run(10 * timings.heartbeatIntervalMs);
  assert.deepEqual(runner(h, "l").heardLately().sort(), ["f", "g"]);
  const pings = () =>
    h.network.sendCount("f", "g", HEALTH_CHANNEL) + h.network.sendCount("g", "f", HEALTH_CHANNEL);
  const pingsBefore = pings();
  const windowMs = 25 * timings.heartbeatIntervalMs; // 1 s: 25 pings each way without the vouches
  await time.run(windowMs);
  assert.ok(pings() - pingsBefore <= 2, `${pings() - pingsBefore} follower pings in ${windowMs} ms`);
  for (const id of ["l", "f", "g"]) assert.deepEqual(h.changes.get(id), [], id);
  // g dies: l stops hearing it and stops vouching for it, and f declares it down by its own silence.
  gAnswers = false;
  h.network.setMuted("g", true);
  const diedAtMs = time.elapsedMs;
  await time.runUntil("f sees g down", () => h.changes.get("f")?.some((c) => c.to === "down") === true);
  assert.ok(!runner(h, "l").heardLately().includes("g"));
  assert.deepEqual(h.changes.get("f"), [
    { peer: "g", from: "alive", to: "suspect" },
    { peer: "g", from: "suspect", to: "down" },
  ]);
  // Later than l by at most the vouch's reach (an interval, seen at the next heartbeat) and the last
  // vouch's delivery: never sooner than the detector's own timeout.
  const downAfterMs = time.elapsedMs - diedAtMs;
  assert.ok(downAfterMs >= timings.downAfterMs - timings.heartbeatIntervalMs, `${downAfterMs}`);
  assert.ok(
    downAfterMs <= timings.downAfterMs + 2 * timings.heartbeatIntervalMs + leaderHeartbeatMs,
    `${downAfterMs}`,
  );
  // A vouch for a peer that is not alive here changes nothing: only g's own frames bring it back.
  runner(h, "f").vouched("l", ["g"]);
  assert.equal(
    runner(h, "f")
      .peers()
      .find((p) => p.id === "g")?.state,
    "down",
  );
});

// Each phase of the rounds against the detector's own schedule: in some (rounds starting 5 to 7 ticks
// after the detector), without heartbeatsSent it locks into waking between every two rounds.
for (let offsetTicks = 0; offsetTicks < 10; offsetTicks++) {
  test(`health runner: a leader's heartbeats count as its pings, so its detector wakes only on its rounds (rounds ${offsetTicks} ticks in)`, async (t) => {
    const time = new VirtualTime(t);
    const h = harness(t, ["l", "f", "g"]);
    for (const r of h.runners.values()) r.start();
    const l = h.meshes.get("l");
    const ticker = h.tickers.get("l");
    assert.ok(l && ticker);
    // The election's rounds, as ElectionRunner runs them: on l's ticker, one every leaderHeartbeatMs; f and
    // g answer each heartbeat.
    const ticksPerRound = lan.leaderHeartbeatMs / lan.tickMs;
    let rounds = 0;
    const round = ticker.every(timings.tickMs, () => {
      rounds += 1;
      const vouched = runner(h, "l").heardLately();
      for (const id of ["f", "g"]) {
        l.send(id, "election", new Uint8Array([5]));
        runner(h, id).vouched("l", vouched);
        h.meshes.get(id)?.send("l", "election", new Uint8Array([6]));
      }
      runner(h, "l").heartbeatsSent(["f", "g"]);
      round.wakeAfter(ticksPerRound);
    });
    await time.run(offsetTicks * timings.tickMs);
    round.start();
    t.after(() => round.stop());
    await time.run(10 * timings.heartbeatIntervalMs);
    const roundsBefore = rounds;
    const wakeUpsBefore = h.wakeUps.get("l") ?? 0;
    const pings = () =>
      h.network.sendCount("l", "f", HEALTH_CHANNEL) + h.network.sendCount("l", "g", HEALTH_CHANNEL);
    const pingsBefore = pings();
    await time.run(25 * timings.heartbeatIntervalMs);
    const roundCount = rounds - roundsBefore;
    const wakeUps = (h.wakeUps.get("l") ?? 0) - wakeUpsBefore;
    // Without heartbeatsSent the detector, which reads the answers only when it next wakes, may take its own
    // wake-up between every two rounds for them (62 wake-ups for 31 rounds), as idle leaders did.
    assert.ok(roundCount >= 25, `${roundCount} rounds`);
    assert.ok(wakeUps <= roundCount + 1, `${wakeUps} wake-ups for ${roundCount} rounds`);
    assert.equal(pings(), pingsBefore, "the heartbeats are the leader's pings");
    for (const id of ["l", "f", "g"]) assert.deepEqual(h.changes.get(id), [], id);
  });
}
