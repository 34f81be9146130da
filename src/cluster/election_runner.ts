// The shell around the pure election core: owns the core, a monotonic ticker and the drain loop.
// Drain order (see src/core/election_types.ts): persist hardState (fsync) → send messages → emit events →
// advance. Everything here is synchronous, so inputs arriving from the mesh are simply stepped in turn;
// nothing can interleave with a drain.
import { randomBytes } from "node:crypto";
import type { Logger } from "pino";
import { Election, type ProposeResult } from "../core/election.ts";
import type {
  ElectionConfig,
  ElectionEvent,
  ElectionStatus,
  MembershipStatus,
} from "../core/election_types.ts";
import type { MembershipChange } from "../core/membership.ts";
import { Prng } from "../core/prng.ts";
import type { NodeId, Role, Term } from "../core/types.ts";
import type { MeshApi } from "../mesh/index.ts";
import { type MonotonicTicker, SafeEmitter, Ticker } from "../shell/index.ts";
import type { HardStateStore } from "./hard_state_store.ts";
import {
  decodeElectionMessage,
  ELECTION_CHANNEL,
  encodeElectionMessage,
  encodeVouchedPeers,
} from "./wire.ts";

export interface ElectionRunnerEventMap extends Record<string, unknown[]> {
  "leader:changed": [leaderId: NodeId | null, term: Term];
  "role:changed": [role: Role, term: Term];
  /** The list held, its committed version or this node's standing changed. */
  "membership:changed": [status: MembershipStatus];
}

export interface ElectionRunnerOptions {
  config: ElectionConfig;
  store: HardStateStore;
  mesh: Pick<MeshApi, "send" | "onMessage">;
  logger: Logger;
  tickMs: number;
  /** Seed for randomized timeouts; fresh randomness by default. */
  seed?: string;
  /** The agent's shared ticker; a ticker of its own by default. */
  ticker?: Ticker;
  /** What heartbeats carry for the failure detectors (see HealthRunner); none by default. */
  vouches?: HeartbeatVouches;
}

/**
 * The failure detector's side of the heartbeats: a leader vouches in each round for the peers it heard
 * lately, and a follower takes what a heartbeat vouches for. The election core never sees either.
 */
export interface HeartbeatVouches {
  /** Asked once per round of heartbeats. */
  heardLately(): readonly NodeId[];
  /** Every heartbeat received, after the core stepped it; `peers` may be empty. */
  vouched(from: NodeId, peers: readonly NodeId[]): void;
  /** Heartbeats went to these peers, each of which answers them (so they probe it as a ping would). */
  heartbeatsSent(to: readonly NodeId[]): void;
}

/** Longest sleep between timer wake-ups (a witness's core never needs one): within the catch-up bound. */
const sleepTicksMax = 1_000;

export class ElectionRunner {
  readonly events: SafeEmitter<ElectionRunnerEventMap>;
  private readonly core: Election;
  private readonly store: HardStateStore;
  private readonly mesh: Pick<MeshApi, "send" | "onMessage">;
  private readonly logger: Logger;
  private readonly ticker: MonotonicTicker;
  private readonly selfId: NodeId;
  private lastLeader: NodeId | null = null;
  private lastRole: Role;
  private lastMembershipEpoch: number;
  private draining = false;
  private readonly vouches: HeartbeatVouches | undefined;

  constructor(options: ElectionRunnerOptions) {
    this.selfId = options.config.selfId;
    this.store = options.store;
    this.mesh = options.mesh;
    this.logger = options.logger;
    this.vouches = options.vouches;
    this.events = new SafeEmitter(options.logger);
    const persisted = this.store.load();
    const rng = new Prng(options.seed ?? randomBytes(8).toString("hex"));
    this.core = new Election(options.config, persisted, rng);
    this.lastRole = this.core.status().role;
    this.lastMembershipEpoch = this.core.membershipEpoch;
    this.ticker = (options.ticker ?? new Ticker()).every(options.tickMs, (count) => {
      for (let i = 0; i < count; i++) this.core.tick();
      this.drain();
    });
    this.logger.info({ term: persisted.term, votedFor: persisted.votedFor }, "election state loaded");
    this.mesh.onMessage(ELECTION_CHANNEL, (from, payload) => this.receive(from, payload));
  }

  start(): void {
    this.ticker.start();
    this.drain();
  }

  stop(): void {
    this.ticker.stop();
  }

  status(): ElectionStatus {
    this.ticker.catchUp();
    this.drain();
    return this.core.status();
  }

  campaign(): void {
    this.ticker.catchUp();
    this.core.campaign();
    this.drain();
  }

  transferLeadership(to: NodeId): void {
    this.ticker.catchUp();
    this.core.transferLeadership(to);
    this.drain();
  }

  membership(): MembershipStatus {
    return this.core.membership();
  }

  /** Leader only: start one membership change; its commit shows as a "membership:changed" event. */
  propose(change: MembershipChange): ProposeResult {
    this.ticker.catchUp();
    const result = this.core.proposeMembership(change);
    this.drain();
    return result;
  }

  /** The mesh link to `peer` closed: a hint that lets a follower replace a dead leader sooner. */
  peerDisconnected(peer: NodeId): void {
    this.ticker.catchUp();
    this.core.peerDisconnected(peer);
    this.drain();
  }

  private receive(from: NodeId, payload: Uint8Array): void {
    const decoded = decodeElectionMessage(payload);
    if (!decoded.ok) {
      this.logger.warn({ peer: from, reason: decoded.reason }, "dropped election message");
      return;
    }
    // Time first: a node that slept through its lease must notice before it acts on a message.
    this.ticker.catchUp();
    this.core.step({ from, to: this.selfId, message: decoded.message });
    this.drain();
    if (decoded.message.type === "heartbeat") this.vouches?.vouched(from, decoded.vouchedPeers);
  }

  /**
   * Persist → send → log → advance, until the core has nothing more. Listeners run only after the loop,
   * when no Ready is outstanding, so a listener that reads status() (or a nested drain) cannot break the
   * ready()/advance() pairing.
   */
  private drain(): void {
    if (this.draining) return;
    this.draining = true;
    const changes: Array<() => void> = [];
    const heartbeatsTo: NodeId[] = [];
    try {
      while (this.core.hasReady()) {
        const ready = this.core.ready();
        if (ready.hardState) this.store.save(ready.hardState);
        let vouchedPeers: Uint8Array | undefined;
        for (const envelope of ready.messages) {
          if (envelope.message.type === "heartbeat" && this.vouches) {
            vouchedPeers ??= encodeVouchedPeers(this.vouches.heardLately());
            heartbeatsTo.push(envelope.to);
          }
          this.mesh.send(
            envelope.to,
            ELECTION_CHANNEL,
            encodeElectionMessage(envelope.message, vouchedPeers),
          );
        }
        for (const event of ready.events) this.logEvent(event);
        if (ready.softState)
          changes.push(
            ...this.softStateChanges(ready.softState.role, ready.softState.leaderId, ready.fencingTerm),
          );
        this.core.advance(ready);
      }
    } finally {
      this.draining = false;
    }
    if (heartbeatsTo.length > 0) this.vouches?.heartbeatsSent(heartbeatsTo);
    // Ticks before the core's next timer only count: sleep through them (inputs catch up first).
    this.ticker.wakeAfter(Math.min(this.core.ticksUntilTimer(), sleepTicksMax));
    if (this.core.membershipEpoch !== this.lastMembershipEpoch) {
      this.lastMembershipEpoch = this.core.membershipEpoch;
      const membership = this.core.membership();
      changes.push(() => this.events.emit("membership:changed", membership));
    }
    for (const emit of changes) emit();
  }

  private softStateChanges(role: Role, leaderId: NodeId | null, term: Term): Array<() => void> {
    const changes: Array<() => void> = [];
    if (role !== this.lastRole) {
      this.lastRole = role;
      changes.push(() => this.events.emit("role:changed", role, term));
    }
    if (leaderId !== this.lastLeader) {
      this.lastLeader = leaderId;
      changes.push(() => this.events.emit("leader:changed", leaderId, term));
    }
    return changes;
  }

  private logEvent(event: ElectionEvent): void {
    const { type, ...fields } = event;
    if (type === "role-changed") {
      const { role, leaderId, ...rest } = fields as Extract<ElectionEvent, { type: "role-changed" }>;
      this.logger.info({ ...rest, leader: leaderId }, `became ${role}`);
    } else if (type === "membership-mismatch" || type === "removed") {
      this.logger.warn(
        fields,
        type === "removed" ? "removed from the cluster membership" : "membership mismatch",
      );
    } else if (type === "membership-adopted" || type === "membership-committed") {
      this.logger.info(fields, type.replace("-", " "));
    } else {
      this.logger[type === "lease-lost" ? "warn" : "debug"](fields, `election ${type}`);
    }
  }
}
