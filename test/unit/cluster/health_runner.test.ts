import assert from "node:assert/strict";
import { after, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
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
}

const harnesses: Harness[] = [];
after(() => {
  for (const h of harnesses) {
    for (const runner of h.runners.values()) runner.stop();
    h.network.close();
  }
});

/** Runners for `ids`, each watching every other id in `watched` (default: all of ids), all linked. */
function harness(ids: string[], watched: string[] = ids): Harness {
  const network = new MemoryNetwork();
  const meshes = new Map(watched.map((id) => [id, network.join(id)]));
  const h: Harness = { network, meshes, runners: new Map(), changes: new Map(), logs: new Map() };
  for (const id of ids) {
    const { logger, lines } = capturingLogger();
    const mesh = meshes.get(id);
    assert.ok(mesh);
    const runner = new HealthRunner({
      mesh,
      selfId: id,
      peers: watched.filter((p) => p !== id),
      timings,
      logger,
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
  harnesses.push(h);
  return h;
}

async function waitFor(what: string, predicate: () => boolean, timeoutMs = 2000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!predicate()) {
    if (performance.now() > deadline) assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(5);
  }
}

function runner(h: Harness, id: string): HealthRunner {
  const r = h.runners.get(id);
  assert.ok(r);
  return r;
}

function bothHaveRtt(h: Harness): boolean {
  return [runner(h, "a"), runner(h, "b")].every((r) => r.peers().every((p) => p.rttSmoothedMs !== null));
}

test("health runner: two runners see each other alive with a round-trip time", async () => {
  const h = harness(["a", "b"]);
  const before = Date.now();
  for (const r of h.runners.values()) r.start();
  await waitFor("rtt on both sides", () => bothHaveRtt(h));
  for (const id of ["a", "b"]) {
    const [peer] = runner(h, id).peers();
    assert.ok(peer);
    assert.equal(peer.id, id === "a" ? "b" : "a");
    assert.equal(peer.state, "alive");
    assert.ok(peer.rttMs !== null && peer.rttMs >= 0 && peer.rttMs < 1000, `rtt ${peer.rttMs}`);
    assert.ok(peer.rttSmoothedMs !== null && peer.rttSmoothedMs >= 0);
    assert.ok(peer.lastHeardMs !== null && peer.lastHeardMs >= before && peer.lastHeardMs <= Date.now());
  }
  assert.deepEqual(h.changes.get("a"), []);
});

test("health runner: a silenced peer goes suspect, then down, then alive when it speaks again", async () => {
  const h = harness(["a", "b"]);
  for (const r of h.runners.values()) r.start();
  await waitFor("rtt on both sides", () => bothHaveRtt(h));
  const mutedAtMs = performance.now();
  h.network.setMuted("b", true);
  const changes = h.changes.get("a") ?? [];
  await waitFor("b down", () => changes.some((c) => c.to === "down"));
  const downAfterMs = performance.now() - mutedAtMs;
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
  await waitFor("b alive", () => changes.length === 3);
  assert.deepEqual(changes[2], { peer: "b", from: "down", to: "alive" });
  assert.deepEqual(h.changes.get("b"), [], "a kept talking, b accused nobody");
});

test("health runner: a 300 ms event-loop stall of both runners causes no transition", async () => {
  const h = harness(["a", "b"]);
  for (const r of h.runners.values()) r.start();
  await waitFor("rtt on both sides", () => bothHaveRtt(h));
  // 300 ms is 1.5× the scaled down timeout: counted as silence, it would make each runner declare the other down.
  const stallUntilMs = performance.now() + 300;
  while (performance.now() < stallUntilMs) {
    // busy: the process is CPU-starved, no timer or message can run
  }
  await sleep(timings.downAfterMs);
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

test("health runner: link:down makes a peer suspect at once, not down, and it recovers on reconnect", async () => {
  const h = harness(["a", "b"]);
  for (const r of h.runners.values()) r.start();
  await waitFor("rtt on both sides", () => bothHaveRtt(h));
  h.network.disconnect("a", "b");
  assert.deepEqual(h.changes.get("a"), [{ peer: "b", from: "alive", to: "suspect" }]);
  h.network.connect("a", "b");
  await waitFor("b alive again", () => h.changes.get("a")?.length === 2);
  assert.deepEqual(h.changes.get("a")?.[1], { peer: "b", from: "suspect", to: "alive" });
  assert.ok(!h.changes.get("a")?.some((c) => c.to === "down"));
});

test("health runner: garbage from a peer is logged and ignored", async () => {
  // x is watched by a but runs no detector: the test speaks for it.
  const h = harness(["a"], ["a", "x"]);
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
  await waitFor("garbage logged", () => dropped() === 4);
  assert.equal(runner(h, "a").peers()[0]?.lastHeardMs, null, "garbage is not proof of life");
  assert.ok(!received.includes("pong"), "garbage is not answered");
  // The same path with a valid ping: heard, and answered.
  x.send("a", HEALTH_CHANNEL, encodeHealthMessage({ type: "ping", seq: 1, sentAtMs: 0 }));
  await waitFor("pong to x", () => received.includes("pong"));
  assert.notEqual(runner(h, "a").peers()[0]?.lastHeardMs, null);
});

test("health runner: a throwing listener is logged and the others still run", async () => {
  const h = harness(["a", "b"]);
  const a = runner(h, "a");
  a.on("peer:suspect", () => {
    throw new Error("listener bug");
  });
  const seen: HealthChange[] = [];
  a.on("peer:suspect", (change) => seen.push(change));
  for (const r of h.runners.values()) r.start();
  await waitFor("rtt on both sides", () => bothHaveRtt(h));
  h.network.disconnect("a", "b");
  assert.deepEqual(seen, [{ peer: "b", from: "alive", to: "suspect" }]);
  assert.ok(h.logs.get("a")?.some((l) => l.msg === "event listener threw" && l.level === 50));
});

test("health runner: an unreachable peer costs one ping per heartbeat interval, none after stop", async () => {
  const h = harness(["a", "c"]);
  h.network.disconnect("a", "c");
  const a = runner(h, "a");
  const startedAtMs = performance.now();
  a.start();
  await sleep(10 * timings.heartbeatIntervalMs);
  a.stop();
  const elapsedMs = performance.now() - startedAtMs;
  const pings = h.network.sendCount("a", "c", HEALTH_CHANNEL);
  assert.ok(
    pings >= 1 && pings <= elapsedMs / timings.heartbeatIntervalMs + 1,
    `${pings} pings in ${elapsedMs} ms`,
  );
  assert.equal(h.logs.get("a")?.filter((l) => l.msg === "health ping send result changed").length, 1);
  await sleep(3 * timings.heartbeatIntervalMs);
  assert.equal(h.network.sendCount("a", "c", HEALTH_CHANNEL), pings);
});

test("health runner: timings convert to ticks exactly; impossible ones are refused", () => {
  assert.deepEqual(healthConfigFromTimings(["b"], lan), {
    peers: ["b"],
    heartbeatIntervalTicks: 4,
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

test("health wire: decode accepts pings and pongs and refuses everything else", () => {
  const ping = { type: "ping", seq: 7, sentAtMs: 12.5 } as const;
  assert.deepEqual(decodeHealthMessage(encodeHealthMessage(ping)), { ok: true, message: ping });
  const pong = { type: "pong", seq: 7, sentAtMs: 12.5 } as const;
  assert.deepEqual(decodeHealthMessage(encodeHealthMessage(pong)), { ok: true, message: pong });
  const encoder = new TextEncoder();
  const refused = [
    new Uint8Array([0xff, 0xfe]),
    encoder.encode("{"),
    encoder.encode(JSON.stringify({ type: "pang", seq: 1, sentAtMs: 1 })),
    encoder.encode(JSON.stringify({ type: "ping", seq: 1.5, sentAtMs: 1 })),
    encoder.encode(JSON.stringify({ type: "ping", seq: 1, sentAtMs: -1 })),
    encoder.encode(JSON.stringify({ type: "ping", seq: 1, sentAtMs: 1, extra: true })),
    encoder.encode(JSON.stringify({ type: "ping", seq: 1, sentAtMs: 1, pad: "x".repeat(300) })),
  ];
  for (const payload of refused)
    assert.equal(decodeHealthMessage(payload).ok, false, new TextDecoder().decode(payload));
});

test("health runner: other request/response traffic counts as liveness and replaces most pings", async () => {
  const h = harness(["a", "b"]);
  for (const r of h.runners.values()) r.start();
  await waitFor("rtt on both sides", () => bothHaveRtt(h));
  const pingsBefore = h.network.sendCount("a", "b", HEALTH_CHANNEL);
  // b goes quiet on the health channel but its other traffic keeps reaching a (like election responses).
  h.network.setMuted("b", true);
  const windowMs = 12 * timings.heartbeatIntervalMs; // 480 ms: 2.4 down timeouts at this scale
  const startedMs = performance.now();
  while (performance.now() - startedMs < windowMs) {
    runner(h, "a").noteTraffic("b");
    await sleep(timings.tickMs);
  }
  assert.equal(runner(h, "a").peers()[0]?.state, "alive", "traffic alone keeps b alive");
  assert.deepEqual(h.changes.get("a"), []);
  // Without the traffic a pings every interval (12 pings here); with it, only to refresh the rtt (1 s).
  assert.ok(h.network.sendCount("a", "b", HEALTH_CHANNEL) - pingsBefore <= 1);
});
