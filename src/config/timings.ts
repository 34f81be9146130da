// Cluster timings: presets derived from one base, cross-field rules, and the one conversion from
// milliseconds (config, shells) to logical ticks (cores).
//
// Rounding rule: there is none. Every duration must be a whole multiple of tick_ms, otherwise the
// configuration is refused with the nearest valid values in the message; so the ticks the cores see are
// exactly what the operator wrote.

export const TimingsPreset = { Lan: "lan", Fast: "fast", Wan: "wan", Local: "local" } as const;
export type TimingsPreset = (typeof TimingsPreset)[keyof typeof TimingsPreset];

export interface Timings {
  tickMs: number;
  heartbeatIntervalMs: number;
  suspectAfterMissed: number;
  downAfterMs: number;
  electionTimeoutMs: number;
  leaderHeartbeatMs: number;
  leaseMs: number;
}

export interface TimingTicks {
  tickMs: number;
  heartbeatIntervalTicks: number;
  suspectAfterMissed: number;
  downAfterTicks: number;
  electionTimeoutTicks: number;
  leaderHeartbeatTicks: number;
  leaseTicks: number;
}

/** A rule a set of timings breaks; `key` is the YAML field under `timings`. */
export interface TimingsProblem {
  key: keyof Timings;
  message: string;
}

/** The YAML spelling of every field, for messages and the loader. */
export const timingsYamlKeys = {
  tickMs: "tick_ms",
  heartbeatIntervalMs: "heartbeat_interval_ms",
  suspectAfterMissed: "suspect_after_missed",
  downAfterMs: "down_after_ms",
  electionTimeoutMs: "election_timeout_ms",
  leaderHeartbeatMs: "leader_heartbeat_ms",
  leaseMs: "lease_ms",
} as const satisfies Record<keyof Timings, string>;

/** The lease must end before any follower could vote for someone else, with 10 % slack for clock rate. */
export const leaseFractionMax = 0.9;

/**
 * One data centre, sub-millisecond RTT. Targets: failover median <= 1 s after `kill -9` of the leader,
 * and no flapping while a node is CPU-starved for 300 ms.
 */
export function lanTimings(): Timings {
  return {
    // Fine enough that every timeout below is >= 2 ticks of resolution, coarse enough to cost nothing idle.
    tickMs: 50,
    // Failure-detector pings, only on links that carry nothing else for this long; above the leader's
    // heartbeat, so the links it keeps busy (and the peers it vouches for) are never pinged.
    heartbeatIntervalMs: 250,
    // 3 missed intervals (750 ms) before "suspect": one lost packet or a short GC pause is not a suspicion.
    suspectAfterMissed: 3,
    // "down" after 1 s: beyond the 300 ms stall we must ride out, and > 3 * 250 ms so suspect comes first.
    downAfterMs: 1000,
    // Followers campaign after [700, 1400) ms of silence. 700 > 200 ms leader heartbeat + 300 ms stall, with
    // 200 ms to spare, so a starved leader is not deposed. When the leader's link closes (kill -9) the
    // first survivor campaigns 750 ms (T + 1 tick) after the last heartbeat instead.
    electionTimeoutMs: 700,
    // 3.5 heartbeats per election timeout: losing 3 in a row is needed to trigger a spurious election.
    // Every message wakes two processes, and wake-ups are most of an idle agent's CPU (bench/idle.ts):
    // 200 ms rather than 100 costs failover 50 ms at the median.
    leaderHeartbeatMs: 200,
    // 550 <= 0.9 * (700 - 50): the lease ends before the earliest follower may vote elsewhere, and it
    // outlasts a 300 ms stall that starts up to 200 ms after the last acknowledged heartbeat.
    leaseMs: 550,
  };
}

/**
 * A low-latency LAN where failover speed matters more than long stalls: a new leader 350-450 ms after
 * `kill -9` of the leader (lan: 550-750 ms), riding out a 200 ms stall (lan: 300 ms). Same tick and
 * failure detector as lan; the leader heartbeats four times as often.
 */
export function fastTimings(): Timings {
  return {
    ...lanTimings(),
    // A survivor campaigns 450 ms (T + 1 tick) after the last heartbeat when the leader's link closes,
    // otherwise after [400, 800) ms of silence: > 50 ms heartbeat + 200 ms stall, with 150 ms to spare.
    electionTimeoutMs: 400,
    // Every tick, so a stalled leader's last acknowledged heartbeat is at most 50 ms older than the stall.
    leaderHeartbeatMs: 50,
    // 300 <= 0.9 * (400 - 50): the lease ends before any vote elsewhere, with 10 % for clock rates after
    // rounding to ticks; it outlasts a 200 ms stall after a heartbeat 50 ms before it.
    leaseMs: 300,
  };
}

/** Several sites, RTT up to ~150 ms and occasional loss bursts: everything five times slower. */
export function wanTimings(): Timings {
  return {
    ...lanTimings(),
    // Coarser ticks: every WAN duration is a multiple of 100 ms.
    tickMs: 100,
    // One ping per second per peer crosses sites cheaply; 3 missed = 3 s before suspect.
    heartbeatIntervalMs: 1000,
    // Suspect after 3 s, down after 5 s: rides out a multi-second route flap.
    downAfterMs: 5000,
    // 3 s covers several RTTs plus a loss burst; failover stays within a few seconds.
    electionTimeoutMs: 3000,
    // 6 heartbeats per election timeout, as on LAN.
    leaderHeartbeatMs: 500,
    // 2500 <= 0.9 * (3000 - 100).
    leaseMs: 2500,
  };
}

/** One machine (tests, demos): loopback RTT, so everything may be much faster than LAN. */
export function localTimings(): Timings {
  return {
    ...lanTimings(),
    // 10 ms ticks: timer resolution of a busy test machine.
    tickMs: 10,
    heartbeatIntervalMs: 50,
    // Suspect after 150 ms, down after 250 ms.
    downAfterMs: 250,
    // Election in [200, 400) ms: fast tests, still > 6 leader heartbeats.
    electionTimeoutMs: 200,
    leaderHeartbeatMs: 30,
    // 150 <= 0.9 * (200 - 10).
    leaseMs: 150,
  };
}

export function presetTimings(preset: TimingsPreset): Timings {
  switch (preset) {
    case "lan":
      return lanTimings();
    case "fast":
      return fastTimings();
    case "wan":
      return wanTimings();
    case "local":
      return localTimings();
  }
}

/** Every rule a set of timings breaks; [] = usable. */
export function validateTimings(t: Timings): TimingsProblem[] {
  const problems: TimingsProblem[] = [];
  const durations = [
    "heartbeatIntervalMs",
    "downAfterMs",
    "electionTimeoutMs",
    "leaderHeartbeatMs",
    "leaseMs",
  ];
  for (const key of durations as (keyof Timings)[]) {
    const ms = t[key];
    if (ms % t.tickMs !== 0) {
      const lower = Math.floor(ms / t.tickMs) * t.tickMs;
      const nearest = lower === 0 ? `${t.tickMs}` : `${lower} or ${lower + t.tickMs}`;
      problems.push({ key, message: `${ms} is not a multiple of tick_ms (${t.tickMs}); use ${nearest}` });
    }
  }
  // A follower may vote elsewhere as soon as one tick short of election_timeout_ms after a heartbeat (its
  // ticker's phase), so the lease is bounded by that, less the clock-rate margin.
  const leaseMsMax = leaseFractionMax * (t.electionTimeoutMs - t.tickMs);
  if (t.leaseMs > leaseMsMax) {
    problems.push({
      key: "leaseMs",
      message: `must be <= ${leaseFractionMax} * (election_timeout_ms - tick_ms) (${leaseMsMax}), so a leader's lease ends before a follower may vote elsewhere`,
    });
  }
  if (t.leaseMs <= t.leaderHeartbeatMs) {
    problems.push({
      key: "leaseMs",
      message: `must be > leader_heartbeat_ms (${t.leaderHeartbeatMs}), or the lease lapses between heartbeats`,
    });
  }
  if (t.leaderHeartbeatMs * 2 > t.electionTimeoutMs) {
    problems.push({
      key: "leaderHeartbeatMs",
      message: `must be <= election_timeout_ms / 2 (${t.electionTimeoutMs / 2}), or one lost heartbeat starts an election`,
    });
  }
  if (t.suspectAfterMissed * t.heartbeatIntervalMs >= t.downAfterMs) {
    problems.push({
      key: "downAfterMs",
      message: `must be > suspect_after_missed * heartbeat_interval_ms (${t.suspectAfterMissed * t.heartbeatIntervalMs}), so a peer is suspect before it is down`,
    });
  }
  return problems;
}

/** Converts once, for the cluster shell. Timings must have passed validateTimings. */
export function toTicks(t: Timings): TimingTicks {
  const ticks = (ms: number): number => {
    const count = ms / t.tickMs;
    if (!Number.isInteger(count) || count < 1) throw new Error(`${ms} ms is not a whole number of ticks`);
    return count;
  };
  return {
    tickMs: t.tickMs,
    heartbeatIntervalTicks: ticks(t.heartbeatIntervalMs),
    suspectAfterMissed: t.suspectAfterMissed,
    downAfterTicks: ticks(t.downAfterMs),
    electionTimeoutTicks: ticks(t.electionTimeoutMs),
    leaderHeartbeatTicks: ticks(t.leaderHeartbeatMs),
    leaseTicks: ticks(t.leaseMs),
  };
}
