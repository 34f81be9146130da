// Heartbeat failure detector: pure and tick-driven. Each peer goes alive → suspect → down as its silence
// grows, and back to alive on any authenticated traffic from it. The shell (src/cluster/health_runner.ts)
// feeds ticks, traffic and measured event-loop lateness, pings the peers this core says are due, and
// publishes the drained transitions.
//
// Pings piggyback on other traffic (as SWIM and memberlist do): any frame from a peer is a heartbeat, and a
// peer is pinged only once it has been silent for a heartbeat interval, then once per interval while it
// stays silent. A ping tells the peer that we live and its pong tells us, so on a link with no other
// traffic the side whose silence reaches the interval first pings and the other side stays quiet: one
// exchange per interval, not one per side; a link that carries election heartbeats needs no pings.
// Between followers, the leader's heartbeats vouch for the peers the leader heard lately (vouchedFor), so
// an idle cluster's followers need not ping each other at all; a vouch keeps an alive peer alive, never
// revives a suspect one.
//
// Timing contract (awareness score 0, timers on time): silence is counted in ticks since the peer was last
// heard; a live peer is heard at least once per heartbeat interval (it is pinged then). A peer becomes
// suspect on the tick where its silence reaches
//   suspectAfterTicks = suspectAfterMissed × heartbeatIntervalTicks
// and down on the tick where it reaches downAfterTicks. Traffic arrives between ticks, so with tick length
// T the down transition happens between (downAfterTicks − 1)·T and downAfterTicks·T after the last message
// from the peer. Defaults (T = 50 ms, heartbeat 5 ticks, 3 missed, down 20 ticks): suspect after 15 ticks
// (700–750 ms), down after 20 ticks (950–1000 ms) — a peer that dies is down within 1 s of its last
// heartbeat, hence within 1 s of its death. Both thresholds are multiplied by (awareness score + 1).
//
// Local stalls (why reportLateness() does not advance silence): when this node's event loop is starved
// (GC pause, CPU contention, SIGSTOP), wall time passes but the node hears nothing, because it reads
// nothing. Peers' heartbeats sent meanwhile sit unread in socket buffers, and Node runs the late timer
// before it polls those sockets, so counting the missed ticks as silence would convert our own stall into
// accusations of every peer at once. Worse, the cause (an overloaded host) may have starved the peers too.
// So silence only grows on tick(), one per timer firing in which this node actually ran; the ticks it
// missed are reported as lateness, which raises the awareness score (stretching every timeout while the
// node is evidently unreliable) and makes a ping to every peer due at once so that they hear from us
// promptly.
// The price: a peer that really died during our stall is declared down later, by at most the stall length
// times the awareness factor — a slow node must not be the one that accuses.
import { Awareness, latenessPenalty } from "./awareness.ts";
import type { ConfigProblem, NodeId } from "./types.ts";

export const PeerState = {
  Alive: "alive",
  Suspect: "suspect",
  Down: "down",
} as const;
export type PeerState = (typeof PeerState)[keyof typeof PeerState];

export interface HealthConfig {
  /** The peers to watch (never this node itself). */
  peers: readonly NodeId[];
  /** A peer silent this many ticks is pinged (again every as many ticks while it stays silent). */
  heartbeatIntervalTicks: number;
  /** Heartbeat intervals of silence before a peer is suspect. */
  suspectAfterMissed: number;
  /** Ticks of silence before a peer is down; more than the suspect threshold. */
  downAfterTicks: number;
  /** Lifeguard bound: timeouts stretch by at most this factor while this node is slow. */
  awarenessMax: number;
}

export interface PeerHealth {
  peer: NodeId;
  state: PeerState;
  /** Ticks counted since the peer was last heard (local stalls excluded). */
  silentTicks: number;
}

/** The detector's own record of a peer: its public health plus when it was last pinged. */
interface PeerTrack extends PeerHealth {
  /** Ticks since this node last pinged the peer. */
  ticksSincePing: number;
  /** A ping to the peer is due (silent for an interval, at start, or after a late wake-up). */
  pingDue: boolean;
}

export interface HealthTransition {
  peer: NodeId;
  from: PeerState;
  to: PeerState;
  silentTicks: number;
}

function positiveInteger(value: number): boolean {
  return Number.isInteger(value) && value >= 1;
}

/** `[]` means the config is usable. */
export function validateHealthConfig(config: HealthConfig): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  for (const key of [
    "heartbeatIntervalTicks",
    "suspectAfterMissed",
    "downAfterTicks",
    "awarenessMax",
  ] as const) {
    if (!positiveInteger(config[key]))
      problems.push({ key, message: `must be an integer >= 1, got ${config[key]}` });
  }
  if (new Set(config.peers).size !== config.peers.length) {
    problems.push({ key: "peers", message: "lists a peer more than once" });
  }
  const suspectAfterTicks = config.suspectAfterMissed * config.heartbeatIntervalTicks;
  if (problems.length === 0 && config.downAfterTicks <= suspectAfterTicks) {
    problems.push({
      key: "downAfterTicks",
      message: `must exceed suspectAfterMissed × heartbeatIntervalTicks (${suspectAfterTicks}), got ${config.downAfterTicks}`,
    });
  }
  return problems;
}

const noTransitions: readonly HealthTransition[] = Object.freeze([]);

export class HealthDetector {
  private readonly heartbeatIntervalTicks: number;
  private readonly suspectAfterTicks: number;
  private readonly downAfterTicks: number;
  private readonly awareness: Awareness;
  private readonly peerHealth = new Map<NodeId, PeerTrack>();
  private transitions: HealthTransition[] = [];
  // The tick that follows a lateness report is the late wake-up itself, not an on-time tick.
  private lateSinceLastTick = false;

  constructor(config: HealthConfig) {
    const problems = validateHealthConfig(config);
    if (problems.length > 0) {
      throw new RangeError(
        `invalid health config: ${problems.map((p) => `${p.key} ${p.message}`).join("; ")}`,
      );
    }
    this.heartbeatIntervalTicks = config.heartbeatIntervalTicks;
    this.suspectAfterTicks = config.suspectAfterMissed * config.heartbeatIntervalTicks;
    this.downAfterTicks = config.downAfterTicks;
    this.awareness = new Awareness({
      awarenessMax: config.awarenessMax,
      // One point per on-time heartbeat interval: the node stays lenient about as long as it was stalled.
      decayEveryTicks: config.heartbeatIntervalTicks,
    });
    this.setPeers(config.peers);
  }

  /**
   * The peers to watch from now on (membership changed). Peers kept keep their state; new ones start alive
   * with no silence, so one that never shows up goes suspect, then down, on schedule, and are pinged at once
   * so they hear from this node as soon as it knows them; dropped ones are forgotten.
   */
  setPeers(peers: readonly NodeId[]): void {
    const wanted = new Set(peers);
    for (const peer of this.peerHealth.keys()) if (!wanted.has(peer)) this.peerHealth.delete(peer);
    for (const peer of wanted) {
      if (this.peerHealth.has(peer)) continue;
      this.peerHealth.set(peer, {
        peer,
        state: PeerState.Alive,
        silentTicks: 0,
        ticksSincePing: 0,
        pingDue: true,
      });
    }
  }

  /** One tick of local time during which this node ran. */
  tick(): void {
    if (!this.lateSinceLastTick) this.awareness.tickOnTime();
    this.lateSinceLastTick = false;
    const suspectAfterTicks = this.awareness.scaleTimeoutTicks(this.suspectAfterTicks);
    const downAfterTicks = this.awareness.scaleTimeoutTicks(this.downAfterTicks);
    for (const health of this.peerHealth.values()) {
      health.silentTicks += 1;
      health.ticksSincePing += 1;
      if (
        health.silentTicks >= this.heartbeatIntervalTicks &&
        health.ticksSincePing >= this.heartbeatIntervalTicks
      ) {
        health.pingDue = true;
      }
      if (health.state === PeerState.Alive && health.silentTicks >= suspectAfterTicks) {
        this.transition(health, PeerState.Suspect);
      }
      if (health.state === PeerState.Suspect && health.silentTicks >= downAfterTicks) {
        this.transition(health, PeerState.Down);
      }
    }
  }

  /**
   * A lower bound on the ticks until tick() can decide anything (a ping due, a transition) if nothing is
   * heard meanwhile: at least 1; Infinity with no peers. Thresholds are taken unscaled, since the
   * awareness score can fall during those ticks.
   */
  ticksUntilDecision(): number {
    let ticks = Number.POSITIVE_INFINITY;
    for (const health of this.peerHealth.values()) {
      if (health.pingDue) return 1;
      const pingInTicks = this.heartbeatIntervalTicks - Math.min(health.silentTicks, health.ticksSincePing);
      ticks = Math.min(ticks, pingInTicks);
      if (health.state === PeerState.Alive)
        ticks = Math.min(ticks, this.suspectAfterTicks - health.silentTicks);
      if (health.state === PeerState.Suspect)
        ticks = Math.min(ticks, this.downAfterTicks - health.silentTicks);
    }
    return Math.max(1, ticks);
  }

  /** Authenticated traffic from a peer (a ping, a pong or any other frame). False if the peer is not watched. */
  heardFrom(peer: NodeId): boolean {
    const health = this.peerHealth.get(peer);
    if (!health) return false;
    if (health.state !== PeerState.Alive) this.transition(health, PeerState.Alive);
    health.silentTicks = 0;
    return true;
  }

  /**
   * Another node (the leader, in its heartbeats) heard `peer` lately: as good as hearing from it ourselves,
   * but only while the peer is alive here. A suspect or down peer needs direct evidence (a frame from it),
   * so a peer whose link to this node broke goes suspect and down on schedule however often others vouch
   * for it. False if the peer is not watched or not alive.
   */
  vouchedFor(peer: NodeId): boolean {
    const health = this.peerHealth.get(peer);
    if (health?.state !== PeerState.Alive) return false;
    health.silentTicks = 0;
    return true;
  }

  /** A watched peer's state; undefined if the peer is not watched. */
  stateOf(peer: NodeId): PeerState | undefined {
    return this.peerHealth.get(peer)?.state;
  }

  /**
   * The shell found its timer `lateTicks` whole ticks late: this node did not run for that long. The missed
   * ticks do not count as peer silence (see the header); they raise the awareness score instead.
   */
  reportLateness(lateTicks: number): void {
    if (lateTicks === 0) return;
    this.awareness.raise(latenessPenalty(lateTicks, this.heartbeatIntervalTicks));
    this.lateSinceLastTick = true;
    for (const health of this.peerHealth.values()) health.pingDue = true;
  }

  /**
   * The mesh lost its link to a peer. Only a hint: an alive peer becomes suspect at once (nothing can
   * arrive from it until the link returns) but never down. Links also drop for reasons that say nothing
   * about the peer's health — a local socket reset, a keepalive that expired while this node was the one
   * stalled, a middlebox idle timeout — and usually come back within the reconnect backoff; `down` drives
   * failover, so it must keep one meaning: the peer was silent for the whole (scaled) timeout.
   */
  linkDown(peer: NodeId): void {
    const health = this.peerHealth.get(peer);
    if (health?.state === PeerState.Alive) this.transition(health, PeerState.Suspect);
  }

  /**
   * This node sent `peer` a frame that demands an answer (a leader's election heartbeat): as good as a
   * ping, so no ping is due to it for another interval. A leader that heartbeats every follower more often
   * than the interval never pings them, and its detector never needs a wake-up of its own for it.
   */
  probed(peer: NodeId): void {
    const health = this.peerHealth.get(peer);
    if (health === undefined) return;
    health.pingDue = false;
    health.ticksSincePing = 0;
  }

  /**
   * True when the shell should ping `peer` now: at start, right after a late wake-up, and once per heartbeat
   * interval while the peer is silent (heard from it within the interval: no ping). Reading it consumes it.
   */
  takePingDue(peer: NodeId): boolean {
    const health = this.peerHealth.get(peer);
    if (!health?.pingDue) return false;
    health.pingDue = false;
    health.ticksSincePing = 0;
    return true;
  }

  /** Transitions since the last drain, in the order they happened; one shared empty array when none. */
  drainTransitions(): readonly HealthTransition[] {
    // Drained on every frame received: an empty drain must not allocate.
    if (this.transitions.length === 0) return noTransitions;
    const drained = this.transitions;
    this.transitions = [];
    return drained;
  }

  peerStates(): PeerHealth[] {
    return [...this.peerHealth.values()].map(({ peer, state, silentTicks }) => ({
      peer,
      state,
      silentTicks,
    }));
  }

  get awarenessScore(): number {
    return this.awareness.score;
  }

  private transition(health: PeerTrack, to: PeerState): void {
    this.transitions.push({ peer: health.peer, from: health.state, to, silentTicks: health.silentTicks });
    health.state = to;
  }
}
