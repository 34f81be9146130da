// The shell around the pure failure detector (src/core/health.ts): a timer feeds it one tick per firing
// and reports how late the firing was (so a stalled event loop raises awareness instead of accusing
// peers), pings go out on the mesh channel "health" to the peers the detector says are due (those silent
// for a heartbeat interval), any frame from a peer counts as hearing from it (the mesh counts them; each
// tick reads the counts), and drained transitions become typed events.
//
// Vouches: a follower hears the leader in every heartbeat, but nothing from the other followers, and
// pinging each of them five times a second was most of what an idle follower did (bench/idle.ts). So the
// leader's heartbeats list the peers it heard lately (heardLately) and a follower counts that as hearing
// from them (vouched): no follower-to-follower pings while a leader is heard. The price: a follower learns
// of a peer's death up to about two heartbeat intervals after the leader stopped hearing it, and a link
// between two followers that silently drops is noticed by the mesh keepalive (a few seconds), not by the
// detector; a vouch never revives a suspect peer (src/core/health.ts). Without a leader, pings resume.
import { performance } from "node:perf_hooks";
import type { Logger } from "pino";
import { type HealthConfig, HealthDetector, PeerState } from "../core/health.ts";
import type { NodeId } from "../core/types.ts";
import type { MeshApi, SendResult } from "../mesh/index.ts";
import { type MonotonicTicker, SafeEmitter, Ticker } from "../shell/index.ts";
import {
  decodeHealthMessage,
  encodeHealthMessage,
  HEALTH_CHANNEL,
  type HealthMessage,
} from "./health_wire.ts";

export interface HealthTimings {
  /** Length of one detector tick; the durations below must be whole multiples of it. */
  tickMs: number;
  heartbeatIntervalMs: number;
  /** Heartbeat intervals of silence before a peer is suspect. */
  suspectAfterMissed: number;
  /** Silence before a peer is down; longer than suspectAfterMissed × heartbeatIntervalMs. */
  downAfterMs: number;
  /** Lifeguard bound: timeouts stretch up to this factor while this node runs late (default 8). */
  awarenessMax?: number;
}

/** memberlist's AwarenessMaxMultiplier: a node that keeps stalling waits at most 8× longer to accuse. */
export const awarenessMaxDefault = 8;

/**
 * Converts milliseconds to detector ticks, once. Durations must be whole numbers of ticks (the config
 * loader refuses others, see src/config/timings.ts); anything else here is a bug and throws.
 */
export function healthConfigFromTimings(peers: readonly NodeId[], timings: HealthTimings): HealthConfig {
  const ticks = (key: "heartbeatIntervalMs" | "downAfterMs"): number => {
    const count = timings[key] / timings.tickMs;
    if (!Number.isInteger(count) || count < 1) {
      throw new RangeError(`${key} (${timings[key]}) is not a whole number of ${timings.tickMs} ms ticks`);
    }
    return count;
  };
  return {
    peers,
    heartbeatIntervalTicks: ticks("heartbeatIntervalMs"),
    suspectAfterMissed: timings.suspectAfterMissed,
    downAfterTicks: ticks("downAfterMs"),
    awarenessMax: timings.awarenessMax ?? awarenessMaxDefault,
  };
}

export interface HealthChange {
  peer: NodeId;
  from: PeerState;
  to: PeerState;
}

export interface HealthEventMap extends Record<string, unknown[]> {
  "peer:alive": [change: HealthChange];
  "peer:suspect": [change: HealthChange];
  "peer:down": [change: HealthChange];
}

const eventForState = {
  alive: "peer:alive",
  suspect: "peer:suspect",
  down: "peer:down",
} as const satisfies Record<PeerState, keyof HealthEventMap>;

export interface HealthPeerStatus {
  id: NodeId;
  state: PeerState;
  /** Last measured round trip, ms; null until the first pong. */
  rttMs: number | null;
  /** Smoothed round trip (RFC 6298 weights, 1/8 per sample), ms. */
  rttSmoothedMs: number | null;
  /** Date.now() when the peer was last heard; null if never. */
  lastHeardMs: number | null;
}

export type HealthMesh = Pick<MeshApi, "send" | "onMessage" | "on" | "framesReceived">;

export interface HealthRunnerOptions {
  mesh: HealthMesh;
  selfId: NodeId;
  /** Watched peers, never selfId. */
  peers: readonly NodeId[];
  timings: HealthTimings;
  logger: Logger;
  /** The agent's shared ticker; one of its own by default. */
  ticker?: Ticker;
}

interface PeerContact {
  rttMs: number | null;
  rttSmoothedMs: number | null;
  lastHeardMs: number | null;
  /** Logged when it changes, so an unreachable peer costs one log line, not one per heartbeat. */
  lastSendResult: SendResult;
  /** performance.now() of the last ping sent to the peer. */
  pingedAtMs: number;
  /** mesh.framesReceived(peer) at the last tick: a change since means the peer was heard. */
  framesSeen: number;
  /** mesh.framesReceived(peer) at the last heardLately() call. */
  framesVouched: number;
  /** performance.now() when heardLately() last saw new frames from the peer. */
  framesVouchedAtMs: number;
}

const rttSmoothingWeight = 1 / 8;
/**
 * A peer whose other traffic keeps it from being pinged (the election's heartbeats) is still pinged this
 * often, so its round-trip time stays fresh (shown in status only). Messages are most of an idle agent's
 * CPU (bench/idle.ts), so not often.
 */
const rttPingIntervalMs = 5_000;
/** An agent with no peers has nothing to detect; within the ticker's catch-up bound. */
const sleepTicksMaxPeerless = 1_000;

export class HealthRunner {
  private readonly mesh: HealthMesh;
  private readonly tickMs: number;
  private readonly heartbeatIntervalTicks: number;
  private readonly heartbeatIntervalMs: number;
  private readonly logger: Logger;
  private readonly detector: HealthDetector;
  private readonly selfId: NodeId;
  private peerIds: readonly NodeId[];
  private readonly emitter: SafeEmitter<HealthEventMap>;
  private readonly contacts = new Map<NodeId, PeerContact>();
  private readonly ticks: MonotonicTicker;
  /** The ticks while started; null while stopped. */
  private timer: MonotonicTicker | null = null;
  private pingSeq = 0;
  /** The peers the heartbeat being received vouches for, until the detector has caught up (vouched). */
  private vouchesPending: { from: NodeId; peers: readonly NodeId[] } | null = null;

  constructor(options: HealthRunnerOptions) {
    if (options.peers.includes(options.selfId))
      throw new RangeError(`peers include selfId ${options.selfId}`);
    this.mesh = options.mesh;
    this.tickMs = options.timings.tickMs;
    // Riding along: checked whenever the agent's timer wakes anyway (the leader's heartbeat rounds, which
    // also count as its pings: heartbeatsSent), so an idle leader's detector never wakes it alone. On a
    // follower each heartbeat received catches it up (vouched) and moves its next check past the next
    // heartbeat; Node still wakes the process at the check's first time (see Ticker.postpone).
    this.ticks = (options.ticker ?? new Ticker()).every(
      this.tickMs,
      (count, lateMs) => this.onTimer(count, lateMs),
      { ridesAlong: true },
    );
    this.logger = options.logger;
    const config = healthConfigFromTimings(options.peers, options.timings);
    this.heartbeatIntervalTicks = config.heartbeatIntervalTicks;
    this.heartbeatIntervalMs = options.timings.heartbeatIntervalMs;
    this.detector = new HealthDetector(config);
    this.selfId = options.selfId;
    this.peerIds = [...options.peers];
    this.emitter = new SafeEmitter(options.logger);
    this.addContacts(options.peers);
    this.mesh.onMessage(HEALTH_CHANNEL, (from, payload) => this.receive(from, payload));
    this.mesh.on("link:down", (peer) => this.onLinkDown(peer));
    this.mesh.on("link:up", (peer) => this.onLinkUp(peer));
  }

  start(): void {
    if (this.timer) return;
    // Frames from before the start are not news.
    for (const [peer, contact] of this.contacts) contact.framesSeen = this.mesh.framesReceived(peer);
    this.timer = this.ticks;
    this.ticks.start();
    this.sendPingsDue();
    this.sleep();
  }

  /** The membership changed: watch these peers from now on (new ones are pinged at once). */
  setPeers(peers: readonly NodeId[]): void {
    const wanted = peers.filter((peer) => peer !== this.selfId);
    for (const peer of this.contacts.keys()) if (!wanted.includes(peer)) this.contacts.delete(peer);
    this.addContacts(wanted.filter((peer) => !this.contacts.has(peer)));
    this.peerIds = [...wanted];
    this.detector.setPeers(wanted);
    if (this.timer !== null) {
      this.sendPingsDue();
      this.sleep();
    }
  }

  private addContacts(peers: readonly NodeId[]): void {
    for (const peer of peers) {
      this.contacts.set(peer, {
        rttMs: null,
        rttSmoothedMs: null,
        lastHeardMs: null,
        lastSendResult: "sent",
        pingedAtMs: Number.NEGATIVE_INFINITY,
        framesSeen: this.mesh.framesReceived(peer),
        framesVouched: this.mesh.framesReceived(peer),
        framesVouchedAtMs: Number.NEGATIVE_INFINITY,
      });
    }
  }

  /** Stops pinging and answering; state is kept for peers() and a later start(). */
  stop(): void {
    this.timer?.stop();
    this.timer = null;
  }

  on<E extends keyof HealthEventMap>(event: E, listener: (...args: HealthEventMap[E]) => void): () => void {
    return this.emitter.on(event, listener);
  }

  peers(): HealthPeerStatus[] {
    return this.detector.peerStates().map(({ peer, state }) => {
      const contact = this.contacts.get(peer);
      return {
        id: peer,
        state,
        rttMs: contact?.rttMs ?? null,
        rttSmoothedMs: contact?.rttSmoothedMs ?? null,
        lastHeardMs: contact?.lastHeardMs ?? null,
      };
    });
  }

  /**
   * The peers this node heard within the last heartbeat interval (frames counted by the mesh since the last
   * call, or seen by a call less than an interval ago) and that its detector holds alive: what a leader
   * vouches for in its heartbeats. Reads counters only: safe to call in the middle of an election drain.
   */
  heardLately(): NodeId[] {
    const heard: NodeId[] = [];
    if (this.timer === null) return heard;
    const nowMs = performance.now();
    for (let i = 0; i < this.peerIds.length; i++) {
      const peer = this.peerIds[i] as NodeId;
      const contact = this.contacts.get(peer);
      if (contact === undefined) continue;
      const frames = this.mesh.framesReceived(peer);
      if (frames !== contact.framesVouched) {
        contact.framesVouched = frames;
        contact.framesVouchedAtMs = nowMs;
      }
      if (
        nowMs - contact.framesVouchedAtMs < this.heartbeatIntervalMs &&
        this.detector.stateOf(peer) === PeerState.Alive
      )
        heard.push(peer);
    }
    return heard;
  }

  /**
   * A heartbeat from `from`, which heard these peers lately: alive ones need no ping from here. The process
   * is awake for it anyway, so the detector catches up first: its ticks then count before the vouch, and
   * its next timer wake-up moves past the next heartbeat.
   */
  vouched(from: NodeId, peers: readonly NodeId[]): void {
    if (this.timer === null || !this.contacts.has(from)) return;
    this.vouchesPending = { from, peers };
    // Taken with the traffic (noteTraffic) if a tick was due, so before any ping is decided; else now.
    this.ticks.catchUp();
    this.takeVouches();
  }

  /**
   * This node, leading, sent heartbeats to these peers: they answer each one, so they count as pings and
   * the detector need not wake before the next round for them. Without this a leader's detector, which
   * reads the answers only at its next wake-up, woke on its own between every two rounds (bench/idle.ts).
   */
  heartbeatsSent(to: readonly NodeId[]): void {
    if (this.timer === null) return;
    // Ticks that passed before the heartbeats went out count before them.
    this.ticks.catchUp();
    for (let i = 0; i < to.length; i++) this.detector.probed(to[i] as NodeId);
    this.sleep();
  }

  private takeVouches(): void {
    const pending = this.vouchesPending;
    if (pending === null) return;
    this.vouchesPending = null;
    for (let i = 0; i < pending.peers.length; i++) {
      const peer = pending.peers[i] as NodeId;
      if (peer !== this.selfId && peer !== pending.from) this.detector.vouchedFor(peer);
    }
  }

  /** Lifeguard score: 0 while this node runs on time; timeouts are stretched by (score + 1). */
  awarenessScore(): number {
    return this.detector.awarenessScore;
  }

  /**
   * `count` ticks passed since the last call: those up to the planned wake-up (the detector said nothing
   * could happen before it, see sleep()) tick the detector; those after it are lateness, not silence.
   * Early (lateMs < 0: riding along, see the constructor), the last tick boundary lies before some of the
   * frames just read, so they are heard after it instead of before.
   */
  private onTimer(count: number, lateMs: number): void {
    const lateTicks = Math.max(0, Math.floor(lateMs / this.tickMs));
    const onTimeTicks = Math.max(1, count - lateTicks);
    for (let i = 1; i < onTimeTicks; i++) this.detector.tick();
    if (lateTicks > 0) {
      // Warn only past a whole heartbeat interval (peers then missed a heartbeat); jitter stays at debug.
      const level = lateTicks >= this.heartbeatIntervalTicks ? "warn" : "debug";
      this.logger[level]({ lateMs: Math.round(lateMs), lateTicks }, "health timer ran late");
      this.detector.reportLateness(lateTicks);
    }
    if (lateMs < 0) {
      this.detector.tick();
      this.noteTraffic();
    } else {
      this.noteTraffic();
      this.detector.tick();
    }
    this.sendPingsDue();
    this.publishTransitions();
    this.sleep();
  }

  /**
   * Sleeps until the detector could next decide, at most a heartbeat interval: frames from a peer are
   * read at wake-ups only, and the ticks slept count as silence before them (so a peer is heard, at the
   * latest, as at the tick before the wake-up; a peer dies no more than heartbeatIntervalTicks - 2 ticks
   * later than with a wake-up every tick). No peers: only a long sleep.
   */
  private sleep(): void {
    const ticksMax = this.peerIds.length === 0 ? sleepTicksMaxPeerless : this.heartbeatIntervalTicks;
    this.ticks.wakeAfter(Math.min(this.detector.ticksUntilDecision(), ticksMax));
  }

  /**
   * Any frame from a peer since the last tick, on any channel, is as good as a pong for liveness, so a peer
   * that sends other traffic (an election leader's heartbeats, their responses, store traffic) is not
   * pinged. One-way traffic is enough: a peer that hears nothing from us pings us itself. Read before the
   * tick, a frame that arrived since the last one counts as it did when every frame reported itself: the
   * silence it ends is the one this tick would add to. The vouches of a heartbeat being received count
   * with the frames, before any ping is decided.
   */
  private noteTraffic(): void {
    // Indexed loops: this runs at every heartbeat and should allocate nothing (no iterators).
    for (let i = 0; i < this.peerIds.length; i++) {
      const peer = this.peerIds[i] as NodeId;
      const contact = this.contacts.get(peer);
      if (contact !== undefined) this.notePeerTraffic(peer, contact);
    }
    this.takeVouches();
  }

  /** Frames from `peer` since the last look: it was heard. */
  private notePeerTraffic(peer: NodeId, contact: PeerContact): void {
    const frames = this.mesh.framesReceived(peer);
    if (frames === contact.framesSeen) return;
    contact.framesSeen = frames;
    this.detector.heardFrom(peer);
    contact.lastHeardMs = Date.now();
  }

  private sendPingsDue(): void {
    const nowMs = performance.now();
    let ping: Uint8Array | null = null;
    for (let i = 0; i < this.peerIds.length; i++) {
      const peer = this.peerIds[i] as NodeId;
      const contact = this.contacts.get(peer);
      if (!contact) continue;
      // takePingDue first: reading it consumes it, also when the rtt ping goes out anyway.
      const due = this.detector.takePingDue(peer);
      if (!due && nowMs - contact.pingedAtMs < rttPingIntervalMs) continue;
      if (ping === null) {
        this.pingSeq += 1;
        ping = encodeHealthMessage({ type: "ping", seq: this.pingSeq, sentAtMs: nowMs });
      }
      contact.pingedAtMs = nowMs;
      // Not retried: the next due ping is the retry, so an unreachable peer costs one send per interval.
      const result = this.mesh.send(peer, HEALTH_CHANNEL, ping);
      if (result !== contact.lastSendResult)
        this.logger.debug({ peer, result }, "health ping send result changed");
      contact.lastSendResult = result;
    }
  }

  private receive(from: NodeId, payload: Uint8Array): void {
    if (!this.timer) return;
    const decoded = decodeHealthMessage(payload);
    if (!decoded.ok) {
      this.logger.warn({ peer: from, reason: decoded.reason }, "dropped health message");
      return;
    }
    const message = decoded.message;
    // Answer any authenticated node (a liveness probe costs nothing); only watched peers feed the detector.
    if (message.type === "ping") this.answer(from, message);
    const contact = this.contacts.get(from);
    if (!contact || !this.detector.heardFrom(from)) {
      this.logger.debug({ peer: from }, "health traffic from an unwatched node");
      return;
    }
    contact.lastHeardMs = Date.now();
    if (message.type === "pong") this.measureRoundTrip(from, contact, message);
    this.publishTransitions();
  }

  private answer(from: NodeId, ping: HealthMessage): void {
    const pong = encodeHealthMessage({ type: "pong", seq: ping.seq, sentAtMs: ping.sentAtMs });
    this.mesh.send(from, HEALTH_CHANNEL, pong);
  }

  private measureRoundTrip(from: NodeId, contact: PeerContact, pong: HealthMessage): void {
    const rttMs = performance.now() - pong.sentAtMs;
    if (pong.seq > this.pingSeq || rttMs < 0) {
      this.logger.warn({ peer: from, seq: pong.seq }, "pong echoes a ping this node never sent");
      return;
    }
    contact.rttMs = rttMs;
    contact.rttSmoothedMs =
      contact.rttSmoothedMs === null
        ? rttMs
        : contact.rttSmoothedMs + rttSmoothingWeight * (rttMs - contact.rttSmoothedMs);
  }

  /** A new link: measure its round trip on the next tick, not at the next 5 s refresh. */
  private onLinkUp(peer: NodeId): void {
    const contact = this.contacts.get(peer);
    if (!contact) return;
    contact.pingedAtMs = Number.NEGATIVE_INFINITY;
    if (this.timer) this.ticks.wakeAfter(1);
  }

  private onLinkDown(peer: NodeId): void {
    if (!this.timer) return;
    // Frames that came before the link closed are noted now, as heard before the loss: left to the next
    // tick, they would read as news and make the peer alive again, and its failover would wait for the
    // whole silence timeout after that tick instead of counting from the loss.
    const contact = this.contacts.get(peer);
    if (contact !== undefined) this.notePeerTraffic(peer, contact);
    this.detector.linkDown(peer);
    this.publishTransitions();
  }

  private publishTransitions(): void {
    for (const { peer, from, to, silentTicks } of this.detector.drainTransitions()) {
      this.logger.info(
        { peer, from, to, silentMs: silentTicks * this.tickMs, awarenessScore: this.detector.awarenessScore },
        `peer ${to}`,
      );
      this.emitter.emit(eventForState[to], { peer, from, to });
    }
  }
}
