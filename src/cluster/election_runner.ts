// The shell around the pure election core: owns the core, a monotonic ticker and the drain loop.
// Drain order (see src/core/election_types.ts): persist hardState (fsync) → send messages → emit events →
// advance. Everything here is synchronous, so inputs arriving from the mesh are simply stepped in turn;
// nothing can interleave with a drain.
import { randomBytes } from "node:crypto";
import { performance } from "node:perf_hooks";
import type { Logger } from "pino";
import { Election, type ProposeResult } from "../core/election.ts";
import type {
  ElectionConfig,
  ElectionEvent,
  ElectionMessage,
  ElectionStatus,
  MembershipStatus,
} from "../core/election_types.ts";
import type { LeaderContact } from "../core/grants.ts";
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
  /** Monotonic ms for the contacts votes carry (src/core/grants.ts); performance.now() by default. */
  now?: () => number;
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
  private readonly tickMs: number;
  private readonly now: () => number;
  /** The granted votes of the newest campaign: null for a vote that carried no contacts (an older peer). */
  private votes: { term: Term; contacts: Map<NodeId, LeaderContact | null> } = {
    term: -1,
    contacts: new Map(),
  };
  /** What the votes that made this node leader said (null: a vote without contacts), per won term. */
  private won: { term: Term; contacts: LeaderContact[] | null } | null = null;
  /** Leader: callers waiting for a condition on the core (checked after every drain). */
  private waiters: Array<{ holds: () => boolean; resolve: (held: boolean) => void }> = [];

  constructor(options: ElectionRunnerOptions) {
    this.selfId = options.config.selfId;
    this.store = options.store;
    this.mesh = options.mesh;
    this.logger = options.logger;
    this.vouches = options.vouches;
    this.tickMs = options.tickMs;
    this.now = options.now ?? (() => performance.now());
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

  /**
   * Leader: the contacts of the votes that elected it in `term`, its own included (src/core/grants.ts), or
   * null when some vote carried none, or this node did not win `term`.
   */
  contactsWhenWon(term: Term): readonly LeaderContact[] | null {
    return this.won?.term === term ? this.won.contacts : null;
  }

  /** Leader: advertise `tailMs` in its heartbeats (a larger one goes out at once). */
  setGrantTailMs(tailMs: number): void {
    this.ticker.catchUp();
    this.core.setGrantTailMs(Math.ceil(tailMs));
    this.drain();
  }

  /** Leader: the largest advertised tail a quorum acknowledged this term, or null. */
  acknowledgedGrantTailMs(): number | null {
    return this.core.acknowledgedGrantTailMs();
  }

  /** Resolves true once a quorum acknowledged a tail of `tailMs`, false after `timeoutMs` or losing the lead. */
  grantTailAcknowledged(tailMs: number, timeoutMs: number): Promise<boolean> {
    return this.leaderUntil(() => (this.core.acknowledgedGrantTailMs() ?? -1) >= tailMs, timeoutMs);
  }

  /**
   * Leader: whether a quorum acknowledged a heartbeat sent less than `ticks` ago (a window within the lease
   * that a caller acts in: see src/core/grants.ts).
   */
  leaseFresherThan(ticks: number): boolean {
    this.ticker.catchUp();
    this.drain();
    const age = this.core.leaseAgeTicks();
    return age !== null && age < ticks;
  }

  /** Leader: a heartbeat round now, and true once its answers make leaseFresherThan(ticks) hold. */
  freshenLease(ticks: number, timeoutMs: number): Promise<boolean> {
    if (this.leaseFresherThan(ticks)) return Promise.resolve(true);
    this.core.heartbeatNow();
    this.drain();
    return this.leaderUntil(() => {
      const age = this.core.leaseAgeTicks();
      return age !== null && age < ticks;
    }, timeoutMs);
  }

  /** True once `holds` does (checked after every drain), false after `timeoutMs` or when no longer leader. */
  private leaderUntil(holds: () => boolean, timeoutMs: number): Promise<boolean> {
    if (holds()) return Promise.resolve(true);
    return new Promise((resolve) => {
      const waiter = { holds, resolve };
      this.waiters.push(waiter);
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        resolve(false);
      }, timeoutMs);
      timer.unref();
      waiter.resolve = (held) => {
        clearTimeout(timer);
        resolve(held);
      };
    });
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
    if (decoded.message.type === "vote-response") this.noteVote(from, decoded.message);
    this.core.step({ from, to: this.selfId, message: decoded.message });
    this.drain();
    if (decoded.message.type === "heartbeat") this.vouches?.vouched(from, decoded.vouchedPeers);
  }

  /** A granted vote's contacts, on this node's clock (see src/core/grants.ts). */
  private noteVote(from: NodeId, vote: Extract<ElectionMessage, { type: "vote-response" }>): void {
    // A late vote of an earlier campaign must not wipe those of this one.
    if (!vote.granted || vote.term < this.votes.term) return;
    if (this.votes.term !== vote.term) this.votes = { term: vote.term, contacts: new Map() };
    const heardMsAgo = vote.leaderHeardMsAgo;
    this.votes.contacts.set(
      from,
      heardMsAgo === undefined ? null : { atMs: this.now(), heardMsAgo, tailMs: vote.grantTailMs ?? null },
    );
  }

  /**
   * Won `term`: its own contacts as they stand now (the moment it won) and those of every vote the core
   * counted; null when one of those carried none or never reached this shell.
   */
  private noteWon(term: Term): void {
    const own = this.core.contactsWhenWon();
    if (own === null) return;
    const contacts: LeaderContact[] = [
      { atMs: this.now(), heardMsAgo: this.ticksAgoMs(own.leaderHeardTicksAgo), tailMs: own.grantTailMs },
    ];
    let complete = true;
    for (const voter of own.grantedBy) {
      const contact = this.votes.term === term ? this.votes.contacts.get(voter) : undefined;
      if (contact === undefined || contact === null) complete = false;
      else contacts.push(contact);
    }
    this.won = { term, contacts: complete ? contacts : null };
  }

  /** `ticks` whole ticks ago is at least this many ms ago: a tick boundary may have passed just after. */
  private ticksAgoMs(ticks: number): number {
    return Math.max(0, ticks - 1) * this.tickMs;
  }

  /** A vote leaves with its contacts in ms: peers' ticks may differ in length. */
  private wireForm(message: ElectionMessage): ElectionMessage {
    if (message.type !== "vote-response" || message.leaderHeardTicksAgo === undefined) return message;
    const { leaderHeardTicksAgo, ...rest } = message;
    return { ...rest, leaderHeardMsAgo: Math.floor(this.ticksAgoMs(leaderHeardTicksAgo)) };
  }

  private settleWaiters(): void {
    if (this.waiters.length === 0) return;
    const leading = this.core.status().role === "leader";
    const waiting = this.waiters;
    this.waiters = [];
    for (const waiter of waiting) {
      if (!leading) waiter.resolve(false);
      else if (waiter.holds()) waiter.resolve(true);
      else this.waiters.push(waiter);
    }
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
            encodeElectionMessage(this.wireForm(envelope.message), vouchedPeers),
          );
        }
        for (const event of ready.events) this.logEvent(event);
        if (ready.softState?.role === "leader") this.noteWon(ready.fencingTerm);
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
    this.settleWaiters();
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
