import assert from "node:assert/strict";
import { test } from "node:test";
import {
  type HealthConfig,
  HealthDetector,
  type HealthTransition,
  PeerState,
  validateHealthConfig,
} from "../../../src/core/health.ts";
import { Prng } from "../../../src/core/prng.ts";

// The runner's defaults in ticks of 50 ms: heartbeat 200 ms, suspect after 3 missed, down after 1 s.
const defaults: HealthConfig = {
  peers: ["n2", "n3"],
  heartbeatIntervalTicks: 4,
  suspectAfterMissed: 3,
  downAfterTicks: 20,
  awarenessMax: 8,
};
const tickMs = 50;

type Observed = HealthTransition & { tick: number };

/** Runs `count` ticks, calling `beforeTick(i)` first (1-based), and records transitions with their tick. */
function run(
  detector: HealthDetector,
  count: number,
  beforeTick: (tick: number) => void = () => {},
): Observed[] {
  const observed: Observed[] = [];
  for (let tick = 1; tick <= count; tick++) {
    beforeTick(tick);
    detector.tick();
    for (const transition of detector.drainTransitions()) observed.push({ ...transition, tick });
  }
  return observed;
}

/** n3 heartbeats every interval (shifted by `offsetTicks`); only n2 is under test. */
function n3Heartbeats(detector: HealthDetector, offsetTicks = 0): (tick: number) => void {
  return (tick) => {
    if ((tick + offsetTicks) % defaults.heartbeatIntervalTicks === 0) detector.heardFrom("n3");
  };
}

test("health: validateHealthConfig accepts the defaults and names each impossible key", () => {
  assert.deepEqual(validateHealthConfig(defaults), []);
  const table: [change: Partial<HealthConfig>, key: string][] = [
    [{ heartbeatIntervalTicks: 0 }, "heartbeatIntervalTicks"],
    [{ suspectAfterMissed: 1.5 }, "suspectAfterMissed"],
    [{ downAfterTicks: -1 }, "downAfterTicks"],
    [{ awarenessMax: 0 }, "awarenessMax"],
    [{ downAfterTicks: 12 }, "downAfterTicks"], // not beyond the suspect threshold (3 × 4)
    [{ peers: ["n2", "n2"] }, "peers"],
  ];
  for (const [change, key] of table) {
    const problems = validateHealthConfig({ ...defaults, ...change });
    assert.deepEqual(
      problems.map((p) => p.key),
      [key],
      JSON.stringify(change),
    );
  }
  assert.throws(() => new HealthDetector({ ...defaults, downAfterTicks: 12 }), RangeError);
});

test("health: silence: suspect on tick 12, down on tick 20 with the defaults", () => {
  const detector = new HealthDetector(defaults);
  const observed = run(detector, 40, n3Heartbeats(detector));
  assert.deepEqual(observed, [
    { peer: "n2", from: PeerState.Alive, to: PeerState.Suspect, silentTicks: 12, tick: 12 },
    { peer: "n2", from: PeerState.Suspect, to: PeerState.Down, silentTicks: 20, tick: 20 },
  ]);
  assert.deepEqual(detector.peerStates(), [
    { peer: "n2", state: PeerState.Down, silentTicks: 40 },
    { peer: "n3", state: PeerState.Alive, silentTicks: 1 },
  ]);
});

test("health: a peer that dies is down within 1 s of its last heartbeat with the defaults", () => {
  const detector = new HealthDetector(defaults);
  // n2 heartbeats until tick 40, then dies; its last message arrived just before tick 40.
  const observed = run(detector, 100, (tick) => {
    n3Heartbeats(detector)(tick);
    if (tick <= 40 && tick % 4 === 0) detector.heardFrom("n2");
  });
  const down = observed.find((o) => o.peer === "n2" && o.to === PeerState.Down);
  assert.ok(down);
  // Heard between ticks 39 and 40, down on tick 59: (59 - 40) × 50 ms < elapsed <= (59 - 39) × 50 ms.
  assert.equal(down.tick, 59);
  assert.ok((down.tick - 39) * tickMs <= 1000);
});

test("health: heard again: suspect and down peers come back alive", () => {
  const detector = new HealthDetector(defaults);
  run(detector, 14, n3Heartbeats(detector));
  assert.equal(detector.peerStates()[0]?.state, PeerState.Suspect);
  assert.equal(detector.heardFrom("n2"), true);
  assert.deepEqual(detector.drainTransitions(), [
    { peer: "n2", from: PeerState.Suspect, to: PeerState.Alive, silentTicks: 14 },
  ]);
  run(detector, 25, n3Heartbeats(detector));
  assert.equal(detector.peerStates()[0]?.state, PeerState.Down);
  detector.heardFrom("n2");
  assert.deepEqual(detector.drainTransitions(), [
    { peer: "n2", from: PeerState.Down, to: PeerState.Alive, silentTicks: 25 },
  ]);
  assert.deepEqual(detector.peerStates()[0], { peer: "n2", state: PeerState.Alive, silentTicks: 0 });
});

test("health: a vouch keeps an alive peer alive and unpinged, and never revives a suspect one", () => {
  const detector = new HealthDetector(defaults);
  // n2 never sends anything itself; the leader vouches for it every 2 ticks.
  const vouches = (tick: number) => {
    n3Heartbeats(detector)(tick);
    if (tick % 2 === 0) assert.equal(detector.vouchedFor("n2"), true);
  };
  detector.takePingDue("n2"); // the start-up ping
  const pinged: number[] = [];
  const observed = run(detector, 40, (tick) => {
    vouches(tick);
    if (detector.takePingDue("n2")) pinged.push(tick);
  });
  assert.deepEqual(observed, []);
  assert.deepEqual(pinged, [], "a vouched peer is not pinged");
  // The link to n2 drops: suspect at once, and vouches no longer count; down on schedule (20 ticks).
  detector.linkDown("n2");
  assert.equal(detector.stateOf("n2"), PeerState.Suspect);
  const afterLinkDown = run(detector, 20, (tick) => {
    n3Heartbeats(detector)(tick);
    assert.equal(detector.vouchedFor("n2"), false);
  });
  assert.deepEqual(
    afterLinkDown.map(({ peer, to }) => `${peer} ${to}`),
    ["n2 suspect", "n2 down"],
  );
  // Only direct evidence brings it back.
  assert.equal(detector.vouchedFor("n2"), false);
  assert.equal(detector.stateOf("n2"), PeerState.Down);
  detector.heardFrom("n2");
  assert.equal(detector.stateOf("n2"), PeerState.Alive);
  assert.equal(detector.vouchedFor("n9"), false, "an unwatched node");
  assert.equal(detector.stateOf("n9"), undefined);
});

test("health: on random inputs, only a peer's own frames revive it, and silence between evidence decides", () => {
  const seeds = 300;
  for (let seed = 1; seed <= seeds; seed++) {
    const rng = new Prng(`vouch-${seed}`);
    const detector = new HealthDetector({ ...defaults, peers: ["n2"] });
    // Ticks since the last evidence the detector may count: a frame, or a vouch while alive.
    let silence = 0;
    for (let tick = 1; tick <= 400; tick++) {
      const input = rng.intBetween(0, 9);
      const stateBefore = detector.stateOf("n2");
      if (input === 0) {
        detector.heardFrom("n2");
        detector.drainTransitions(); // the one path back to alive
        silence = 0;
      } else if (input <= 3) {
        const took = detector.vouchedFor("n2");
        assert.equal(took, stateBefore === PeerState.Alive, `seed ${seed} tick ${tick}`);
        if (took) silence = 0;
        assert.deepEqual(detector.drainTransitions(), [], `seed ${seed} tick ${tick}: a vouch moved a state`);
      } else if (input === 4 && rng.chance(0.1)) {
        detector.linkDown("n2");
      }
      detector.tick();
      silence += 1;
      for (const transition of detector.drainTransitions()) {
        if (transition.to === PeerState.Alive)
          assert.fail(`seed ${seed} tick ${tick}: revived outside heardFrom`);
      }
      const state = detector.stateOf("n2");
      if (state === PeerState.Alive)
        assert.ok(silence < 12, `seed ${seed} tick ${tick}: alive after ${silence}`);
      if (silence >= defaults.downAfterTicks)
        assert.equal(state, PeerState.Down, `seed ${seed} tick ${tick}: ${silence} silent ticks`);
    }
  }
});

test("health: heardFrom an unwatched node changes nothing", () => {
  const detector = new HealthDetector(defaults);
  assert.equal(detector.heardFrom("n9"), false);
  assert.deepEqual(detector.drainTransitions(), []);
  assert.equal(detector.peerStates().length, 2);
});

test("health: a 300 ms local stall produces no transition", () => {
  const detector = new HealthDetector(defaults);
  const heartbeats = () => {
    detector.heardFrom("n2");
    detector.heardFrom("n3");
  };
  // Worst case: the heartbeats due at tick 20 were lost, so both peers are 7 ticks silent when the stall
  // hits after tick 23 (a wall-clock detector would reach 7 + 6 + 1 = 14 ≥ 12 on waking up).
  assert.deepEqual(
    run(detector, 23, (tick) => tick % 4 === 0 && tick !== 20 && heartbeats()),
    [],
  );
  // 6 ticks missed. The same host starved the peers; their heartbeats, due at once after their own late
  // wake-up, arrive right after our wake-up tick, then every interval.
  detector.reportLateness(300 / tickMs);
  assert.deepEqual(
    run(detector, 40, (tick) => tick % 4 === 2 && heartbeats()),
    [],
  );
  assert.deepEqual(
    detector.peerStates().map((p) => p.state),
    [PeerState.Alive, PeerState.Alive],
  );
});

test("health: a stall longer than the down timeout accuses nobody when the node wakes up", () => {
  const detector = new HealthDetector(defaults);
  run(detector, 3);
  // 2 s without running; a detector counting wall time would declare both peers down on the next tick.
  detector.reportLateness(2000 / tickMs);
  assert.deepEqual(run(detector, 1), []);
  assert.deepEqual(
    detector.peerStates().map((p) => [p.peer, p.state, p.silentTicks]),
    [
      ["n2", PeerState.Alive, 4],
      ["n3", PeerState.Alive, 4],
    ],
  );
  // Their heartbeats, queued during the stall, are read right after the wake-up tick.
  detector.heardFrom("n2");
  detector.heardFrom("n3");
  assert.deepEqual(detector.drainTransitions(), []);
});

test("health: lateness stretches the thresholds of a peer that stays silent", () => {
  const detector = new HealthDetector(defaults);
  // n2 has been silent 10 ticks (two heartbeats lost) when a 300 ms stall hits: score 2.
  run(detector, 10, n3Heartbeats(detector));
  detector.reportLateness(6);
  assert.equal(detector.awarenessScore, 2);
  const observed = run(detector, 20, n3Heartbeats(detector, 10));
  // Without awareness n2 would be suspect on the second tick after waking (silence 12). The wake-up tick is
  // not on time; then the score decays one point per 4 on-time ticks (ticks 5 and 9), so the suspect
  // threshold is 36, then 24, then 12 ticks: suspect at silence 19.
  assert.deepEqual(
    observed.map((o) => [o.tick, o.to, o.silentTicks]),
    [
      [9, PeerState.Suspect, 19],
      [10, PeerState.Down, 20],
    ],
  );
});

test("health: sustained lateness saturates the score and keeps a starved node from accusing", () => {
  const detector = new HealthDetector(defaults);
  // Every timer firing is 2 ticks late: one point per firing, and no on-time streak to decay it.
  const observed = run(detector, 90, () => detector.reportLateness(2));
  assert.equal(detector.awarenessScore, 7);
  // Thresholds stretched 8×: suspect at 96 ticks of silence, not 12.
  assert.deepEqual(observed, []);
  assert.deepEqual(
    run(detector, 6, () => detector.reportLateness(2)).map((o) => [o.tick, o.to, o.silentTicks]),
    [
      [6, PeerState.Suspect, 96],
      [6, PeerState.Suspect, 96],
    ],
  );
});

test("health: alive → suspect → down in one tick as the score decays, in order", () => {
  const config: HealthConfig = {
    peers: ["n2"],
    heartbeatIntervalTicks: 2,
    suspectAfterMissed: 2,
    downAfterTicks: 5,
    awarenessMax: 4,
  };
  const detector = new HealthDetector(config);
  // Score held at 3 (thresholds 16/20) while silence reaches 14.
  assert.deepEqual(
    run(detector, 14, () => detector.reportLateness(1)),
    [],
  );
  // Second on-time tick: score 2, thresholds 12/15, silence 16 crosses both.
  assert.deepEqual(run(detector, 2), [
    { peer: "n2", from: PeerState.Alive, to: PeerState.Suspect, silentTicks: 16, tick: 2 },
    { peer: "n2", from: PeerState.Suspect, to: PeerState.Down, silentTicks: 16, tick: 2 },
  ]);
});

test("health: linkDown makes an alive peer suspect but never down before the timeout", () => {
  const detector = new HealthDetector(defaults);
  run(detector, 2, n3Heartbeats(detector));
  detector.linkDown("n2");
  assert.deepEqual(detector.drainTransitions(), [
    { peer: "n2", from: PeerState.Alive, to: PeerState.Suspect, silentTicks: 2 },
  ]);
  detector.linkDown("n2");
  assert.deepEqual(detector.drainTransitions(), [], "a repeated hint changes nothing");
  const observed = run(detector, 30, n3Heartbeats(detector, 2));
  assert.deepEqual(observed, [
    { peer: "n2", from: PeerState.Suspect, to: PeerState.Down, silentTicks: 20, tick: 18 },
  ]);
  detector.linkDown("n2");
  assert.deepEqual(detector.drainTransitions(), []);
});

/** The peers a detector pings on this tick, in config order. */
function pingsDue(detector: HealthDetector, peers: readonly string[] = defaults.peers): string[] {
  return peers.filter((peer) => detector.takePingDue(peer));
}

test("health: pings: every peer at start, then only a peer silent for an interval, once per interval", () => {
  const detector = new HealthDetector(defaults);
  const pinged: [tick: number, peer: string][] = [];
  for (let tick = 0; tick <= 13; tick++) {
    if (tick > 0) detector.tick();
    // n3's other traffic (election heartbeats) arrives every 2 ticks; n2 stays silent.
    if (tick % 2 === 1) detector.heardFrom("n3");
    for (const peer of pingsDue(detector)) pinged.push([tick, peer]);
  }
  assert.deepEqual(pinged, [
    [0, "n2"],
    [0, "n3"],
    [4, "n2"],
    [8, "n2"],
    [12, "n2"],
  ]);
  assert.equal(detector.takePingDue("n2"), false, "reading consumes it");
  assert.equal(detector.takePingDue("n9"), false, "an unwatched node is never due");
});

test("health: pings: a peer heard within the interval is not pinged; one silent since is, on time", () => {
  const detector = new HealthDetector(defaults);
  pingsDue(detector);
  const pinged: [tick: number, peer: string][] = [];
  for (let tick = 1; tick <= 12; tick++) {
    detector.tick();
    // n2 is heard up to tick 6, then goes silent: silent 4 ticks on tick 10.
    if (tick <= 6) detector.heardFrom("n2");
    detector.heardFrom("n3");
    for (const peer of pingsDue(detector)) pinged.push([tick, peer]);
  }
  assert.deepEqual(pinged, [[10, "n2"]]);
});

test("health: pings: every peer is due right after a late wake-up", () => {
  const detector = new HealthDetector(defaults);
  pingsDue(detector);
  detector.tick();
  detector.heardFrom("n2");
  detector.heardFrom("n3");
  assert.deepEqual(pingsDue(detector), []);
  detector.reportLateness(1);
  assert.deepEqual(pingsDue(detector), ["n2", "n3"]);
  assert.deepEqual(pingsDue(detector), []);
});

test("health: pings: two peers with no other traffic exchange one ping per interval, not one each", () => {
  // a and b tick at the same rate, b half a tick after a; a ping and its pong arrive before the next tick.
  const a = new HealthDetector({ ...defaults, peers: ["b"] });
  const b = new HealthDetector({ ...defaults, peers: ["a"] });
  const pings = { a: 0, b: 0 };
  const exchange = (from: "a" | "b") => {
    pings[from] += 1;
    (from === "a" ? b : a).heardFrom(from); // the ping
    (from === "a" ? a : b).heardFrom(from === "a" ? "b" : "a"); // the pong
  };
  const ticks = 400;
  for (let tick = 0; tick < ticks; tick++) {
    if (tick > 0) a.tick();
    if (a.takePingDue("b")) exchange("a");
    if (tick > 0) b.tick();
    if (b.takePingDue("a")) exchange("b");
  }
  // Each side pinging on its own would send 2 × 400 / 4 = 200 pings. One exchange per interval: a message
  // arrives between ticks, so silence reaches 4 ticks 3 to 4 tick lengths after it, hence 100 to 134 pings.
  const total = pings.a + pings.b;
  const interval = defaults.heartbeatIntervalTicks;
  assert.ok(total >= ticks / interval && total <= ticks / (interval - 1) + 1, `${total} pings`);
  assert.ok(pings.a > 0 && pings.b > 0, "both sides ping, taking turns");
  assert.deepEqual([...a.drainTransitions(), ...b.drainTransitions()], []);
  assert.ok(
    [...a.peerStates(), ...b.peerStates()].every((p) => p.silentTicks <= defaults.heartbeatIntervalTicks),
  );
});

test("health: ticksUntilDecision: no tick before the one it names pings or transitions, on random inputs", () => {
  let seed = 7;
  const random = () => {
    seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
    return seed / 2 ** 31;
  };
  const detector = new HealthDetector(defaults);
  let quietTicks = 0;
  for (let tick = 1; tick <= 5_000; tick++) {
    for (const peer of defaults.peers) if (random() < 0.08) detector.heardFrom(peer);
    if (random() < 0.01) detector.reportLateness(Math.floor(random() * 30));
    if (random() < 0.01) detector.linkDown(defaults.peers[Math.floor(random() * 2)] ?? "n2");
    detector.drainTransitions();
    const untilDecision = detector.ticksUntilDecision();
    detector.tick();
    const transitions = detector.drainTransitions().length;
    const pings = defaults.peers.filter((peer) => detector.takePingDue(peer)).length;
    if (untilDecision > 1) {
      quietTicks += 1;
      assert.equal(transitions + pings, 0, `tick ${tick} decided, ${untilDecision} ticks early`);
    }
  }
  assert.ok(quietTicks > 1_000, `only ${quietTicks} quiet ticks: the bound is too tight to be useful`);
  assert.equal(new HealthDetector({ ...defaults, peers: [] }).ticksUntilDecision(), Number.POSITIVE_INFINITY);
});
