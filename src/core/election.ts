// Raft-style leader election without a log, as a pure state machine in the shape of etcd raft's RawNode:
// inputs are tick(), step(envelope) and local intents (campaign, transferLeadership); outputs are
// batched in a Ready (hardState to fsync first, then messages, events). The caller's loop is described
// in election_types.ts.
//
// Safety of the leader lease. The leader may act while a quorum (itself counting as "now") has
// acknowledged a heartbeat sent less than leaseTicks ago. A voter that heard the leader, granted a vote
// or restarted with a term ignores pre-votes and votes for a newer term during the next
// electionTimeoutTicks (T). Since leaseTicks <= 0.9*T, any new quorum forms only after the old lease
// ended, so a leader that still believes itself leader while a newer leader exists has lost its lease.
// Only a transfer (the leader gives up its lease first) bypasses the voters' window.
//
// Priorities. Lower-priority members draw their randomized election timeout as the latest of several
// draws in [T, 2T-1], so higher priorities tend to win races; afterwards the leader hands leadership to
// the highest-priority member that has answered heartbeats without a gap for T ticks, if that member's
// priority is strictly higher than its own (equal priorities never move leadership).
//
// Contacts (for src/core/grants.ts, which has the argument). Every node notes the tick it last heard a
// leader's heartbeat of its term, granted a vote, or stopped leading (its start, before any), and the tail
// the newest leader it heard advertised (an opaque number the leader's shell sets; the largest of that
// term). A granted vote carries both; a leader counts how much of its advert a quorum acknowledged.
//
// Ties. Members are ranked by priority, then id. A follower told that its link to the leader closed
// (peerDisconnected) campaigns T+1 ticks after it last heard the leader, the earliest moment every voter
// that heard the same heartbeat has left its lease window, plus two ticks per member ranked above it, so
// survivors never fire together. Timeouts drawn in whole ticks still tie at random; a pre-candidate then
// refuses the pre-vote of a lower-ranked one for the same term, so one of them wins instead of both.
// Neither rule grants a vote sooner: safety rests on the voters' lease window alone.
//
// Membership (see membership.ts, membership_view.ts). The voter set is versioned cluster state, and the
// core treats it as Raft treats a log holding only configuration entries: each node holds one list and
// the term of the leader it took it from, ordered by (term, version) like a log's last entry. A leader
// takes its own list as of its term on winning (Raft's no-op entry); followers take the leader's list, and
// its term, from heartbeats before they answer them. Voters refuse candidates whose list is older, so a
// leader always holds every list a quorum took. A leader changes the list only once a quorum of it answered
// with it in the leader's own term (Ongaro's fix for leader changes during a change), one node at a time
// and one change at a time, and counts votes and its lease over its newest list at once. Consecutive voter
// sets differ by one node, so every two quorums that can elect or keep a leader in one term intersect.
import { validateElectionConfig } from "./election_config.ts";
import { ElectionConfigError, ElectionInvariantError } from "./election_errors.ts";
import { checkElectionInvariants, type ElectionSnapshot } from "./election_invariants.ts";
import type {
  ElectionConfig,
  ElectionEvent,
  ElectionMessage,
  ElectionReady,
  ElectionStatus,
  HardState,
  MembershipStatus,
  SoftState,
} from "./election_types.ts";
import { LeaderLease } from "./leader_lease.ts";
import {
  applyMembershipChange,
  compareMembership,
  demotedFromLeading,
  type Membership,
  type MembershipChange,
  type MembershipSummary,
  membershipHash,
  sortedMembership,
  validateMembership,
} from "./membership.ts";
import { MembershipView } from "./membership_view.ts";
import type { Prng } from "./prng.ts";
import { quorumSize, quorumValue, VoteResult, voteResult } from "./quorum.ts";
import { Timeout } from "./timeout.ts";
import { type Envelope, type NodeId, Role, type Term } from "./types.ts";

export { validateElectionConfig };

/**
 * A leader's own contacts as they stood when it won (see Contacts), and the voters whose granted votes
 * elected it: the shell needs every one of their contacts to bound its predecessors' grants.
 */
export interface WonWith {
  leaderHeardTicksAgo: number;
  grantTailMs: number | null;
  grantedBy: NodeId[];
}

/** Cap on extra timeout draws for low priorities: enough bias without pushing everyone to 2T-1. */
const priorityDrawsExtraMax = 3;

type VoteRequest = Extract<ElectionMessage, { type: "pre-vote" | "vote" }>;
type WithoutSummary<M> = M extends { membership: MembershipSummary } ? Omit<M, "membership"> : M;
/** A message before send() stamps this node's membership summary on it. */
type Outgoing = WithoutSummary<ElectionMessage>;

export type ProposeResult = { ok: true; version: number } | { ok: false; reason: string };

/** The configured peer list as the bootstrap membership (version 1), or null for a joining node. */
function bootstrapMembership(config: ElectionConfig): Membership | null {
  if (config.join === true) return null;
  const voter = (id: string, role: "member" | "witness") => ({
    id,
    address: config.addresses?.[id] ?? "",
    role,
    priority: config.priorities[id] ?? 0,
    voting: true,
    autoPromote: false,
  });
  return sortedMembership(1, [
    ...config.members.map((id) => voter(id, "member")),
    ...config.witnesses.map((id) => voter(id, "witness")),
  ]);
}

export class Election {
  private readonly config: ElectionConfig;
  private readonly rng: Prng;
  private readonly selfId: NodeId;
  private readonly view: MembershipView;
  private timeoutDraws = 1;
  /** Leader: the hash each node last answered a heartbeat of this term with. */
  private readonly heldByPeer = new Map<NodeId, string>();
  /** Leader: its list's version until a quorum holds it in this term; then null (changes allowed). */
  private pendingVersion: number | null = null;
  /** Leader: nodes the pending change removes, told of their removal once it commits. */
  private departing: NodeId[] = [];
  private committedVersion = 0;
  /** Bumped whenever membership() would answer differently (see membershipEpoch). */
  private membershipEpochValue = 0;
  private readonly mismatchesReported = new Set<string>();

  private term: Term;
  private votedFor: NodeId | null;
  private role: Role = Role.Follower;
  private leaderId: NodeId | null = null;
  private nowTicks = 0;

  private readonly electionTimer: Timeout;
  private readonly heartbeatTimer: Timeout;
  /** Not fired: this node honours a lease (heard the leader, granted a vote or restarted < T ago). */
  private readonly leaseWindow: Timeout;

  private readonly granted = new Set<NodeId>();
  private readonly rejected = new Set<NodeId>();
  /** Tick at which the current vote requests were sent; dates a won election's first lease. */
  private campaignTicks = 0;
  private lease: LeaderLease | null = null;
  /** Tick it last heard a leader's heartbeat, granted a vote or led (Contacts). */
  private lastLeaderTicks = 0;
  /** The newest term whose leader's tail it heard (or led in) and the largest tail of it; null: none. */
  private heardTail: { term: Term; ms: number | null } | null = null;
  /** Leader: the tail advertised in its heartbeats this term (null: none yet). */
  private advertMs: number | null = null;
  /** Leader: from which heartbeat seq on each advertised tail went out, in order. */
  private advertSince: Array<{ seq: number; ms: number }> = [];
  /** Leader: the largest tail each voter acknowledged this term. */
  private readonly acknowledgedTail = new Map<NodeId, number>();
  /** Leader: its own contacts when it won (its vote counts towards the inherited bound too). */
  private wonWith: WonWith | null = null;

  private stepRole: (from: NodeId, message: ElectionMessage) => void;
  private tickRole: () => void;

  private readonly messages: Envelope<ElectionMessage>[] = [];
  private readonly events: ElectionEvent[] = [];
  private persisted: HardState;
  private published: SoftState;
  private readyInFlight: ElectionReady | null = null;
  private checked: ElectionSnapshot;

  constructor(config: ElectionConfig, persisted: HardState, rng: Prng) {
    const problems = validateElectionConfig(config);
    if (problems.length > 0) throw new ElectionConfigError(problems);
    if (!Number.isInteger(persisted.term) || persisted.term < 0) {
      throw new RangeError(`persisted term must be an integer >= 0, got ${persisted.term}`);
    }
    if (persisted.membership !== undefined) {
      const invalid = validateMembership(persisted.membership.config);
      if (invalid.length > 0) throw new ElectionConfigError(invalid);
    }
    this.config = config;
    this.rng = rng;
    this.selfId = config.selfId;
    this.view = new MembershipView(config.selfId, bootstrapMembership(config), persisted.membership);
    this.membershipChanged();
    this.term = persisted.term;
    this.votedFor = persisted.votedFor;
    this.persisted = { ...persisted };
    this.published = { role: this.role, leaderId: this.leaderId };

    const electionTimeoutTicks = config.electionTimeoutTicks;
    this.electionTimer = new Timeout("election", electionTimeoutTicks);
    this.electionTimer.resetRandomized(rng, this.timeoutDraws);
    this.heartbeatTimer = new Timeout("heartbeat", config.heartbeatIntervalTicks);
    this.leaseWindow = new Timeout("lease-window", electionTimeoutTicks);
    // A node with a term may have acknowledged a lease before it restarted: honour it for T ticks.
    if (persisted.term === 0) this.leaseWindow.expire();

    this.stepRole = this.stepFollower;
    this.tickRole = this.tickElection;
    this.checked = this.snapshot();
  }

  tick(): void {
    this.nowTicks++;
    this.tickRole();
    this.assertInvariants();
  }

  step(envelope: Envelope<ElectionMessage>): void {
    if (envelope.to !== this.selfId) {
      throw new RangeError(`message for ${envelope.to} stepped into ${this.selfId}`);
    }
    // Anyone authenticated may speak (a leader elected under a newer list, a node joining): the rules below
    // decide what a message from outside our list can do.
    if (envelope.from === this.selfId) return;
    this.stepMessage(envelope.from, envelope.message);
    this.assertInvariants();
  }

  /**
   * Start an election now (pre-vote first when enabled). Ignored on leaders and witnesses, and while this
   * node honours a lease: its own vote would help unseat a leader that still counts on it (move
   * leadership with transferLeadership on the leader instead).
   */
  campaign(): void {
    if (!this.view.canLead() || this.role === Role.Leader || this.inLease()) return;
    this.startCampaign("campaign requested");
    this.assertInvariants();
  }

  /**
   * The transport's link to `peer` closed (a killed process's sockets close at once, a live one redials).
   * A hint, trusted for nothing but timing: when `peer` is this follower's leader, its election timeout
   * becomes fastTimeoutTicks instead of a random draw, so it campaigns as soon as the leader's lease has
   * provably lapsed (in rank order with the other survivors) unless a heartbeat comes first.
   */
  peerDisconnected(peer: NodeId): void {
    if (this.role === Role.Follower && this.view.canLead() && peer === this.leaderId) {
      this.electionTimer.retarget(this.fastTimeoutTicks(peer));
    }
    this.assertInvariants();
  }

  /** Hand leadership to member `to` (timeout-now, then step down). Ignored unless leader. */
  transferLeadership(to: NodeId): void {
    if (this.role !== Role.Leader || to === this.selfId || !this.view.leaderEligible.includes(to)) return;
    this.transferTo(to, "transfer requested");
    this.assertInvariants();
  }

  /**
   * Leader only: advertise `ms` as its tail in every heartbeat of this term from now on (see Contacts); a
   * larger value than before goes out at once. Ignored elsewhere, and when not larger.
   */
  setGrantTailMs(ms: number): void {
    if (!(Number.isSafeInteger(ms) && ms >= 0))
      throw new RangeError(`a tail must be an integer >= 0, got ${ms}`);
    if (this.role !== Role.Leader || (this.advertMs !== null && ms <= this.advertMs)) return;
    this.advertMs = ms;
    this.broadcastHeartbeat();
    this.assertInvariants();
  }

  /**
   * Leader only (with checkQuorum): ticks since it sent the heartbeat (or vote request) its lease rests on,
   * the newest one a quorum acknowledged; null elsewhere. A shell may act on a shorter window than the lease.
   */
  leaseAgeTicks(): number | null {
    if (this.role !== Role.Leader || this.lease === null || !this.config.checkQuorum) return null;
    return this.nowTicks - (this.lease.expiresAtTicks(this.nowTicks) - this.config.leaseTicks);
  }

  /** Leader only: send a heartbeat round now (its answers renew the lease sooner); ignored elsewhere. */
  heartbeatNow(): void {
    if (this.role !== Role.Leader) return;
    this.broadcastHeartbeat();
    this.assertInvariants();
  }

  /** Leader only: the largest advertised tail a quorum (itself included) acknowledged this term, or null. */
  acknowledgedGrantTailMs(): number | null {
    if (this.role !== Role.Leader || this.advertMs === null) return null;
    const values = this.view.voters.map((voter) =>
      voter === this.selfId
        ? (this.advertMs as number)
        : (this.acknowledgedTail.get(voter) ?? Number.NEGATIVE_INFINITY),
    );
    const value = quorumValue(values);
    return Number.isFinite(value) ? value : null;
  }

  /**
   * Leader only: its own contacts as they stood when it won (ticks before winning), for the bound on its
   * predecessors' grants; null elsewhere.
   */
  contactsWhenWon(): WonWith | null {
    return this.role === Role.Leader ? this.wonWith : null;
  }

  /**
   * Leader only: make the next membership version from one change and start replicating it. Refused while
   * a change is in flight (or this leader's list is not yet held by a quorum in its term), and for changes
   * that would take this leader out of the voting members: hand leadership over first.
   */
  proposeMembership(change: MembershipChange): ProposeResult {
    if (this.role !== Role.Leader) return { ok: false, reason: "not the leader" };
    if (this.pendingVersion !== null) {
      return { ok: false, reason: `membership v${this.pendingVersion} is not yet held by a quorum; retry` };
    }
    if (demotedFromLeading(change) === this.selfId) {
      return { ok: false, reason: `${this.selfId} leads: hand leadership to another member first` };
    }
    const current = this.view.config;
    if (current === null) throw new Error("leader without a membership");
    const result = applyMembershipChange(current, change);
    if (!result.ok) return result;
    const kept = new Set(result.next.nodes.map((n) => n.id));
    this.departing = current.nodes.map((n) => n.id).filter((n) => !kept.has(n));
    this.view.adopt(result.next, this.term);
    this.membershipChanged();
    this.pendingVersion = result.next.version;
    this.membershipEpochValue++;
    this.lease?.setVoters(this.view.voters);
    this.events.push({
      type: "membership-adopted",
      term: this.term,
      version: result.next.version,
      hash: this.view.hash,
      from: this.selfId,
    });
    this.broadcastHeartbeat();
    // A leader that is the only voter holds a quorum of its own: nothing to wait for.
    this.commitIfHeld();
    this.assertInvariants();
    return { ok: true, version: result.next.version };
  }

  /**
   * Changes whenever membership() would answer differently in its list, standing, committed or pending
   * version: a shell polls this cheap number after each drain instead of building the status.
   */
  get membershipEpoch(): number {
    return this.membershipEpochValue;
  }

  membership(): MembershipStatus {
    return {
      standing: this.view.standing(),
      summary: this.view.summary(),
      config: this.view.config,
      committedVersion: this.committedVersion,
      pendingVersion: this.role === Role.Leader ? this.pendingVersion : null,
    };
  }

  hasReady(): boolean {
    return (
      this.messages.length > 0 || this.events.length > 0 || this.hardStateChanged() || this.softStateChanged()
    );
  }

  /** The pending outputs; call advance() with it before the next ready(). */
  ready(): ElectionReady {
    if (this.readyInFlight !== null) throw new Error("ready() called again before advance()");
    const ready: ElectionReady = {
      messages: [...this.messages],
      events: [...this.events],
      fencingTerm: this.term,
    };
    if (this.hardStateChanged()) ready.hardState = this.hardState();
    if (this.softStateChanged()) ready.softState = { role: this.role, leaderId: this.leaderId };
    this.readyInFlight = ready;
    return ready;
  }

  /** The caller persisted, sent and emitted everything in `ready`. */
  advance(ready: ElectionReady): void {
    if (ready !== this.readyInFlight) throw new Error("advance() with a Ready that ready() did not return");
    this.messages.splice(0, ready.messages.length);
    this.events.splice(0, ready.events.length);
    if (ready.hardState) this.persisted = ready.hardState;
    if (ready.softState) this.published = ready.softState;
    this.readyInFlight = null;
  }

  /**
   * A lower bound on the ticks until one can act (send, change role or publish state): the ticks before
   * it only count, so a shell may deliver them later in one batch (before any other input) instead of
   * waking for each. At least 1; Infinity when no tick ever acts (a witness, a leader that is the only
   * voter).
   */
  ticksUntilTimer(): number {
    if (this.role !== Role.Leader) {
      if (!this.campaigns()) return Number.POSITIVE_INFINITY;
      return Math.max(1, this.electionTimer.afterTicks - this.electionTimer.elapsedTicks);
    }
    // A higher-priority member may turn healthy at any tick and be handed the lead.
    const own = this.priorityOf(this.selfId);
    if (this.view.leaderEligible.some((member) => this.priorityOf(member) > own)) return 1;
    // Alone: its heartbeats reach no one and its own acknowledgement keeps its lease.
    if ((this.view.config?.nodes.length ?? 1) <= 1) return Number.POSITIVE_INFINITY;
    let ticks = this.heartbeatTimer.afterTicks - this.heartbeatTimer.elapsedTicks;
    // The lease only lengthens as ticks pass without acknowledgements (this node's own send counts).
    if (this.config.checkQuorum) ticks = Math.min(ticks, this.leaseRemainingTicks());
    return Math.max(1, ticks);
  }

  status(): ElectionStatus {
    const remainingTicks = this.leaseRemainingTicks();
    return {
      selfId: this.selfId,
      role: this.role,
      term: this.term,
      leaderId: this.leaderId,
      votedFor: this.votedFor,
      leaseValid: remainingTicks > 0,
      leaseRemainingTicks: remainingTicks,
      membership: this.membership(),
    };
  }

  // --- inputs ------------------------------------------------------------------------------------

  private stepMessage(from: NodeId, message: ElectionMessage): void {
    if (message.type !== "timeout-now") this.observeMembership(from, message);
    if (message.term > this.term) {
      if (!this.acceptNewerTerm(from, message)) return;
    } else if (message.term < this.term) {
      this.answerStale(from, message);
      return;
    }
    if (message.type === "pre-vote" || message.type === "vote") this.answerVoteRequest(from, message);
    else this.stepRole(from, message);
  }

  /** A message from a newer term: false when it must be dropped without changing anything. */
  private acceptNewerTerm(from: NodeId, message: ElectionMessage): boolean {
    switch (message.type) {
      case "pre-vote":
      case "vote": {
        const transfer = message.type === "vote" && message.transfer;
        if (!transfer && this.inLease()) {
          const holder = this.leaderId === null ? "a leader this node may have voted for" : this.leaderId;
          this.rejectVote(message, from, `in the lease window of ${holder}`);
          // A refused pre-vote is answered with our term: that changes nothing for a sender ahead of us,
          // and tells a pre-candidate of our term that we refused it, so it yields a tie (contestsPreVote).
          if (message.type === "pre-vote") {
            this.send(from, { type: "pre-vote-response", term: this.term, granted: false });
          }
          return false;
        }
        // A pre-vote asks about a future term and never changes ours.
        if (message.type === "vote") this.becomeFollower(message.term, null, `vote request from ${from}`);
        return true;
      }
      case "pre-vote-response":
        // A grant carries the term we would campaign in; only a rejection reports a newer term.
        if (!message.granted) this.becomeFollower(message.term, null, `pre-vote rejected by ${from}`);
        return message.granted;
      case "heartbeat":
        this.becomeFollower(message.term, from, `heartbeat from ${from}`);
        return true;
      default:
        this.becomeFollower(message.term, null, `${message.type} from ${from}`);
        return true;
    }
  }

  /** A message from an older term: tell its sender our term where that makes it step down. */
  private answerStale(from: NodeId, message: ElectionMessage): void {
    switch (message.type) {
      case "heartbeat":
        this.send(from, { type: "heartbeat-response", term: this.term, seq: message.seq });
        return;
      case "pre-vote":
      case "vote":
        this.rejectVote(message, from, `stale term ${message.term}`);
        this.send(from, { type: `${message.type}-response`, term: this.term, granted: false });
        return;
      default:
        return;
    }
  }

  /** Raft's vote rule (no log to compare): one vote per term; a pre-vote for a newer term is free. */
  private answerVoteRequest(from: NodeId, request: VoteRequest): void {
    const preVote = request.type === "pre-vote";
    // A removed node gives no vote, unless the candidate holds a newer list (one that may add it back).
    const newer = compareMembership(request.membership, this.view.summary()) > 0;
    const refusal = this.view.standing() === "removed" && !newer ? "removed from the membership" : null;
    const membershipRefusal = refusal ?? this.view.voteRefusal(request.membership);
    if (membershipRefusal !== null) {
      this.rejectVote(request, from, membershipRefusal);
      this.send(from, { type: `${request.type}-response`, term: this.term, granted: false });
      return;
    }
    if (preVote && !newer && this.contestsPreVote(from, request.term)) {
      this.rejectVote(request, from, `pre-campaigning for term ${request.term}, ranked above ${from}`);
      this.send(from, { type: "pre-vote-response", term: this.term, granted: false });
      return;
    }
    const canVote =
      this.votedFor === from ||
      (this.votedFor === null && this.leaderId === null) ||
      (preVote && request.term > this.term);
    if (!canVote) {
      const reason = this.votedFor !== null ? `voted for ${this.votedFor}` : `leader ${this.leaderId} known`;
      this.rejectVote(request, from, reason);
      this.send(from, { type: `${request.type}-response`, term: this.term, granted: false });
      return;
    }
    // What this vote reports is the contact before it: the vote itself only dates the candidate's lease.
    const contacts = this.contacts();
    if (!preVote) {
      this.votedFor = from;
      this.lastLeaderTicks = this.nowTicks;
      this.electionTimer.resetRandomized(this.rng, this.timeoutDraws);
      // The candidate dates its first lease from its request, so honour it as if it were leader.
      this.leaseWindow.reset();
      // A vote binds: a pre-candidate that voted must not go on to win its own campaign past the lease it
      // just granted (sim seed 122247: two leaders, the older with a valid lease).
      if (this.role === Role.PreCandidate) this.becomeFollower(this.term, null, `voted for ${from}`);
    }
    this.events.push({ type: "vote-granted", term: request.term, to: from, preVote });
    if (preVote) this.send(from, { type: "pre-vote-response", term: request.term, granted: true });
    else this.send(from, { type: "vote-response", term: request.term, granted: true, ...contacts });
  }

  private rejectVote(request: VoteRequest, from: NodeId, reason: string): void {
    const preVote = request.type === "pre-vote";
    this.events.push({ type: "vote-rejected", term: request.term, to: from, preVote, reason });
  }

  private stepFollower(from: NodeId, message: ElectionMessage): void {
    if (message.type === "heartbeat") {
      if (this.leaderId !== from) this.becomeFollower(this.term, from, `heartbeat from ${from}`);
      this.electionTimer.resetRandomized(this.rng, this.timeoutDraws);
      this.electionTimer.clearAttempts();
      this.leaseWindow.reset();
      this.lastLeaderTicks = this.nowTicks;
      this.hearTail(message.grantTailMs ?? null);
      this.followLeaderMembership(from, message);
      this.send(from, { type: "heartbeat-response", term: this.term, seq: message.seq });
    } else if (message.type === "timeout-now" && this.view.canLead()) {
      this.electionTimer.resetRandomized(this.rng, this.timeoutDraws);
      this.becomeCandidate(true, `timeout-now from ${from}`);
    }
  }

  private stepPreCandidate(from: NodeId, message: ElectionMessage): void {
    if (message.type === "heartbeat") {
      this.becomeFollower(this.term, from, `heartbeat from ${from}`);
      this.stepFollower(from, message);
    } else if (message.type === "pre-vote-response") {
      // Grants name the next term; a rejection from a voter in our own term arrives with our term.
      if (message.granted && message.term !== this.term + 1) return;
      this.poll(from, message.granted);
    }
  }

  private stepCandidate(from: NodeId, message: ElectionMessage): void {
    if (message.type === "heartbeat") {
      this.becomeFollower(this.term, from, `heartbeat from ${from}`);
      this.stepFollower(from, message);
    } else if (message.type === "vote-response") {
      this.poll(from, message.granted);
    }
  }

  private stepLeader(from: NodeId, message: ElectionMessage): void {
    if (message.type !== "heartbeat-response") return;
    this.lease?.acknowledged(from, message.seq);
    this.acknowledgeTail(from, message.seq);
    this.heldByPeer.set(from, message.membership.hash);
    this.commitIfHeld();
  }

  // --- contacts (see the header) -------------------------------------------------------------------

  /** What a granted vote carries. */
  private contacts(): { leaderHeardTicksAgo: number; grantTailMs?: number } {
    const ticksAgo = this.nowTicks - this.lastLeaderTicks;
    const ms = this.heardTail?.ms ?? null;
    return { leaderHeardTicksAgo: ticksAgo, ...(ms === null ? {} : { grantTailMs: ms }) };
  }

  /** A heartbeat of this term's leader advertised `ms` (null: none): keep the largest of the newest term. */
  private hearTail(ms: number | null): void {
    const heard = this.heardTail;
    if (heard === null || heard.term < this.term) {
      this.heardTail = { term: this.term, ms };
    } else if (heard.term === this.term && ms !== null && (heard.ms === null || ms > heard.ms)) {
      this.heardTail = { term: this.term, ms };
    }
  }

  /** `from` answered heartbeat `seq`: it holds the tail that heartbeat carried (or a larger one). */
  private acknowledgeTail(from: NodeId, seq: number): void {
    let ms: number | null = null;
    for (const since of this.advertSince) if (since.seq <= seq) ms = since.ms;
    if (ms === null) return;
    if (ms > (this.acknowledgedTail.get(from) ?? Number.NEGATIVE_INFINITY))
      this.acknowledgedTail.set(from, ms);
  }

  // --- membership --------------------------------------------------------------------------------

  /** Before bootstrap: every announcement counts towards (or against) agreement on the configured list. */
  private observeMembership(from: NodeId, message: Exclude<ElectionMessage, { type: "timeout-now" }>): void {
    const seen = this.view.observe(from, message.membership);
    if (seen.kind === "mismatch") {
      const key = `${from} ${message.membership.term} ${message.membership.version} ${message.membership.hash}`;
      if (this.mismatchesReported.has(key)) return;
      this.mismatchesReported.add(key);
      this.events.push({ type: "membership-mismatch", term: this.term, peer: from, detail: seen.detail });
      return;
    }
    if (seen.kind !== "agreed") return;
    this.membershipChanged();
    const summary = this.view.summary();
    this.events.push({
      type: "membership-adopted",
      term: this.term,
      version: summary.version,
      hash: summary.hash,
      from: "bootstrap",
    });
    // The node whose exchange completed the agreement campaigns at once; the rest take the list from its
    // pre-vote (a peer that took the list saw everyone announce it).
    const follower = this.role === Role.Follower && this.view.canLead();
    if (message.type === "pre-vote-response" && follower && !this.inLease()) {
      this.startCampaign("bootstrap list agreed");
    }
  }

  /** A follower takes the leader's list (or confirms ours as of its term) before answering its heartbeat. */
  private followLeaderMembership(
    from: NodeId,
    heartbeat: Extract<ElectionMessage, { type: "heartbeat" }>,
  ): void {
    if (heartbeat.committed > this.committedVersion) {
      this.committedVersion = heartbeat.committed;
      this.membershipEpochValue++;
    }
    const config = heartbeat.config;
    // Within one term the leader's lists only grow: a late heartbeat must not roll us back to an older one
    // after we answered holding the newer (the leader may have counted that answer towards a commit).
    const held = this.view.config;
    const stale =
      held !== null && this.view.term === this.term && config !== undefined && config.version <= held.version;
    if (config !== undefined && !stale && membershipHash(config) !== this.view.hash) {
      if (validateMembership(config).length > 0) return;
      const wasRemoved = this.view.standing() === "removed";
      this.view.adopt(config, this.term);
      this.membershipChanged();
      this.events.push({
        type: "membership-adopted",
        term: this.term,
        version: config.version,
        hash: this.view.hash,
        from,
      });
      if (this.view.standing() === "removed" && !wasRemoved) {
        this.events.push({ type: "removed", term: this.term, version: config.version });
      }
    } else if (heartbeat.membership.hash === this.view.hash) {
      this.view.confirm(this.term);
    }
  }

  /** Leader: the pending list is held by a quorum of its voters in this term, so it is committed. */
  private commitIfHeld(): void {
    if (this.pendingVersion === null) return;
    const voters = this.view.voters;
    const hash = this.view.hash;
    const holding = voters.filter((v) => v === this.selfId || this.heldByPeer.get(v) === hash).length;
    if (holding < quorumSize(voters.length)) return;
    this.committedVersion = this.pendingVersion;
    this.pendingVersion = null;
    this.membershipEpochValue++;
    this.events.push({ type: "membership-committed", term: this.term, version: this.committedVersion });
    // The nodes this change removed hear no more heartbeats: tell them once, with the list that drops them.
    const config = this.view.config;
    for (const node of this.departing) {
      this.send(node, {
        type: "heartbeat",
        term: this.term,
        seq: 0,
        committed: this.committedVersion,
        ...(config === null ? {} : { config }),
      });
    }
    this.departing = [];
  }

  /** What depends on the list: timeout bias by priority rank. */
  private membershipChanged(): void {
    this.membershipEpochValue++;
    this.timeoutDraws = 1 + Math.min(priorityDrawsExtraMax, this.priorityRank());
  }

  /** Whether this node's election timer does anything: members campaign, bootstrapping nodes announce. */
  private campaigns(): boolean {
    return this.view.canLead() || this.view.standing() === "bootstrapping";
  }

  /** Bootstrapping: announce our list to every bootstrap voter (a pre-vote nobody can grant yet). */
  private announceBootstrap(): void {
    this.electionTimer.resetRandomized(this.rng, this.timeoutDraws);
    for (const peer of this.view.bootstrapPeers()) this.send(peer, { type: "pre-vote", term: this.term + 1 });
  }

  private poll(from: NodeId, granted: boolean): void {
    if (this.granted.has(from) || this.rejected.has(from)) return;
    (granted ? this.granted : this.rejected).add(from);
    this.actOnPoll();
  }

  private actOnPoll(): void {
    const result = voteResult(this.view.voters, this.granted, this.rejected);
    if (result === VoteResult.Lost) this.becomeFollower(this.term, null, `${this.role} lost the vote`);
    if (result !== VoteResult.Won) return;
    if (this.role === Role.Candidate) {
      this.becomeLeader();
      return;
    }
    this.electionTimer.resetRandomized(this.rng, this.timeoutDraws);
    this.becomeCandidate(false, "pre-vote won");
  }

  // --- time --------------------------------------------------------------------------------------

  /** Followers and candidates: campaign when no leader was heard for the randomized timeout. */
  private tickElection(): void {
    this.leaseWindow.tick();
    if (!this.campaigns()) return;
    this.electionTimer.tick();
    if (!this.electionTimer.fired()) return;
    if (this.view.canLead()) this.startCampaign("election timeout");
    else this.announceBootstrap();
  }

  /** Leader: give up when the lease ran out, heartbeat on schedule, hand over to a higher priority. */
  private tickHeartbeat(): void {
    if (this.config.checkQuorum && this.leaseRemainingTicks() === 0) {
      this.events.push({ type: "lease-lost", term: this.term });
      this.becomeFollower(this.term, null, "lease lost: no quorum acknowledged recent heartbeats");
      return;
    }
    this.heartbeatTimer.tick();
    if (this.heartbeatTimer.fired()) this.broadcastHeartbeat();
    const successor = this.preferredSuccessor();
    if (successor !== null) this.transferTo(successor, `${successor} has a higher priority and is healthy`);
  }

  private broadcastHeartbeat(): void {
    const lease = this.lease;
    if (lease === null) throw new Error("leader without a lease tracker");
    const seq = lease.heartbeatSent(this.nowTicks);
    const config = this.view.config;
    const hash = this.view.hash;
    const committed = this.committedVersion;
    const advert = this.advertMs;
    const last = this.advertSince[this.advertSince.length - 1];
    if (advert !== null && last?.ms !== advert) this.advertSince.push({ seq, ms: advert });
    const tail = advert === null ? {} : { grantTailMs: advert };
    for (const node of this.view.others()) {
      // The whole list goes only to nodes that have not answered holding it in this term.
      const attach = this.heldByPeer.get(node) !== hash && config !== null;
      const heartbeat = { type: "heartbeat", term: this.term, seq, committed, ...tail } as const;
      this.send(node, { ...heartbeat, ...(attach ? { config } : {}) });
    }
    this.heartbeatTimer.reset();
  }

  // --- transitions -------------------------------------------------------------------------------

  /** Counts campaigns since a leader was last heard: the attempt number goes into the role-change reason. */
  private startCampaign(reason: string): void {
    this.electionTimer.retryRandomized(this.rng, this.timeoutDraws);
    const attemptReason = `${reason} (attempt ${this.electionTimer.attempts})`;
    if (this.config.preVote) this.becomePreCandidate(attemptReason);
    else this.becomeCandidate(false, attemptReason);
  }

  private becomeFollower(term: Term, leaderId: NodeId | null, reason: string): void {
    const wasLeader = this.role === Role.Leader;
    if (wasLeader) {
      // It led until now: its own term's tail is the newest it knows.
      this.lastLeaderTicks = this.nowTicks;
      this.heardTail = { term: this.term, ms: this.advertMs };
      this.advertMs = null;
      this.advertSince = [];
      this.acknowledgedTail.clear();
      this.wonWith = null;
    }
    this.setTerm(term, reason);
    this.stepRole = this.stepFollower;
    this.tickRole = this.tickElection;
    this.electionTimer.resetRandomized(this.rng, this.timeoutDraws);
    this.lease = null;
    // A leader that steps down relinquishes its lease: nothing left for this node to honour.
    if (wasLeader) this.leaseWindow.expire();
    this.setRole(Role.Follower, leaderId, reason);
  }

  private becomePreCandidate(reason: string): void {
    this.assertPromotable(Role.PreCandidate);
    this.stepRole = this.stepPreCandidate;
    this.tickRole = this.tickElection;
    this.setRole(Role.PreCandidate, null, reason);
    this.openPoll();
    for (const voter of this.otherVoters()) this.send(voter, { type: "pre-vote", term: this.term + 1 });
    this.actOnPoll();
  }

  private becomeCandidate(transfer: boolean, reason: string): void {
    this.assertPromotable(Role.Candidate);
    this.setTerm(this.term + 1, reason);
    this.votedFor = this.selfId;
    this.stepRole = this.stepCandidate;
    this.tickRole = this.tickElection;
    this.setRole(Role.Candidate, null, reason);
    this.openPoll();
    this.campaignTicks = this.nowTicks;
    for (const voter of this.otherVoters()) this.send(voter, { type: "vote", term: this.term, transfer });
    this.actOnPoll();
  }

  private becomeLeader(): void {
    if (this.role !== Role.Candidate) throw new Error(`${this.role} cannot become leader`);
    this.stepRole = this.stepLeader;
    this.tickRole = this.tickHeartbeat;
    const own = this.contacts();
    this.wonWith = {
      leaderHeardTicksAgo: own.leaderHeardTicksAgo,
      grantTailMs: own.grantTailMs ?? null,
      grantedBy: [...this.granted].filter((id) => id !== this.selfId).sort(),
    };
    this.advertMs = null;
    this.advertSince = [];
    this.acknowledgedTail.clear();
    // Raft's no-op: our list becomes ours as of this term, and no change until a quorum holds it so.
    this.view.confirm(this.term);
    this.heldByPeer.clear();
    this.departing = [];
    this.pendingVersion = this.view.config?.version ?? null;
    this.membershipEpochValue++;
    this.lease = new LeaderLease({
      selfId: this.selfId,
      voters: this.view.voters,
      leaseTicks: this.config.leaseTicks,
      streakGapTicksMax: 2 * this.config.heartbeatIntervalTicks,
      campaignTicks: this.campaignTicks,
      grantedBy: this.granted,
    });
    this.setRole(Role.Leader, this.selfId, `won the vote in term ${this.term}`);
    this.broadcastHeartbeat();
    this.commitIfHeld();
  }

  private transferTo(to: NodeId, reason: string): void {
    this.events.push({ type: "transfer-started", term: this.term, to });
    this.send(to, { type: "timeout-now", term: this.term });
    this.becomeFollower(this.term, null, `leadership handed to ${to}: ${reason}`);
  }

  private assertPromotable(role: Role): void {
    if (!this.view.canLead())
      throw new Error(`${this.selfId} (${this.view.standing()}) cannot become ${role}`);
    if (this.role === Role.Leader) throw new Error(`leader cannot become ${role}`);
  }

  private openPoll(): void {
    this.granted.clear();
    this.rejected.clear();
    this.granted.add(this.selfId);
  }

  private setTerm(term: Term, reason: string): void {
    if (term < this.term) throw new Error(`term would decrease from ${this.term} to ${term}`);
    if (term === this.term) return;
    this.events.push({ type: "term-changed", term, from: this.term, reason });
    this.term = term;
    this.votedFor = null;
  }

  private setRole(role: Role, leaderId: NodeId | null, reason: string): void {
    if (role === this.role && leaderId === this.leaderId) return;
    // membership() reports a pending version only while leading.
    if (role !== this.role) this.membershipEpochValue++;
    this.role = role;
    this.leaderId = leaderId;
    this.events.push({ type: "role-changed", term: this.term, role, leaderId, reason });
  }

  // --- queries -----------------------------------------------------------------------------------

  /** Whether this node refuses to help elect anyone newer (only with checkQuorum, as in Raft). */
  private inLease(): boolean {
    if (!this.config.checkQuorum) return false;
    if (this.role === Role.Leader) return this.leaseRemainingTicks() > 0;
    return !this.leaseWindow.fired();
  }

  /** Without checkQuorum voters honour no lease, so a leader can promise none. */
  private leaseRemainingTicks(): number {
    if (this.lease === null || !this.config.checkQuorum) return 0;
    return Math.max(0, this.lease.expiresAtTicks(this.nowTicks) - this.nowTicks);
  }

  private preferredSuccessor(): NodeId | null {
    const lease = this.lease;
    if (lease === null) return null;
    let best: NodeId | null = null;
    let bestPriority = this.priorityOf(this.selfId);
    for (const member of this.view.leaderEligible) {
      const priority = this.priorityOf(member);
      if (member === this.selfId || priority <= bestPriority) continue;
      if (!lease.isHealthy(member, this.nowTicks, this.config.electionTimeoutTicks)) continue;
      best = member;
      bestPriority = priority;
    }
    return best;
  }

  /**
   * A tie between two pre-candidates for one term: the higher-ranked refuses the other's pre-vote, unless
   * that one has already refused ours (then only it can still win this round).
   */
  private contestsPreVote(from: NodeId, term: Term): boolean {
    return (
      this.role === Role.PreCandidate &&
      term === this.term + 1 &&
      this.outranks(this.selfId, from) &&
      !this.rejected.has(from)
    );
  }

  /**
   * T+1 ticks: the leader was last heard T+1 tick boundaries ago, so every voter that heard that heartbeat
   * within one tick of us has seen T boundaries and left its lease window. Two more ticks per member that
   * ranks above us (the lost leader aside): tickers differ in phase by under one tick, so two ranks never
   * fire within one round trip. Capped at the longest randomized timeout, 2T-1.
   */
  private fastTimeoutTicks(lost: NodeId): number {
    const T = this.config.electionTimeoutTicks;
    const above = this.view.leaderEligible.filter(
      (m) => m !== lost && m !== this.selfId && this.outranks(m, this.selfId),
    ).length;
    return Math.min(2 * T - 1, T + 1 + 2 * above);
  }

  /** Members in order of priority, then id: `a` before `b`. */
  private outranks(a: NodeId, b: NodeId): boolean {
    const pa = this.priorityOf(a);
    const pb = this.priorityOf(b);
    return pa > pb || (pa === pb && a < b);
  }

  /** How many distinct member priorities are above ours (0 for the highest). */
  private priorityRank(): number {
    const own = this.priorityOf(this.selfId);
    const higher = new Set(this.view.leaderEligible.map((m) => this.priorityOf(m)).filter((p) => p > own));
    return higher.size;
  }

  private priorityOf(id: NodeId): number {
    return this.view.priorityOf(id);
  }

  private otherVoters(): NodeId[] {
    return this.view.voters.filter((voter) => voter !== this.selfId);
  }

  private send(to: NodeId, message: Outgoing): void {
    const stamped =
      message.type === "timeout-now"
        ? message
        : ({ ...message, membership: this.view.summary() } as ElectionMessage);
    this.messages.push({ from: this.selfId, to, message: stamped });
  }

  private hardState(): HardState {
    const membership = this.view.persistedForm();
    return { term: this.term, votedFor: this.votedFor, ...(membership === undefined ? {} : { membership }) };
  }

  /** Asked at every hasReady(): compares fields instead of building the persisted form. */
  private hardStateChanged(): boolean {
    const held = this.persisted.membership;
    return (
      this.term !== this.persisted.term ||
      this.votedFor !== this.persisted.votedFor ||
      this.view.config !== (held?.config ?? null) ||
      (this.view.config !== null && this.view.term !== held?.term)
    );
  }

  private softStateChanged(): boolean {
    return this.role !== this.published.role || this.leaderId !== this.published.leaderId;
  }

  private snapshot(): ElectionSnapshot {
    return {
      term: this.term,
      votedFor: this.votedFor,
      role: this.role,
      leaderId: this.leaderId,
      fencingTerm: this.term,
      canLead: this.view.canLead(),
      nowTicks: this.nowTicks,
      lastLeaderTicks: this.lastLeaderTicks,
      heardTail: this.heardTail,
      advertMs: this.advertMs,
      acknowledgedTailMs: this.acknowledgedGrantTailMs(),
    };
  }

  private assertInvariants(): void {
    const after = this.snapshot();
    const identity = { selfId: this.selfId };
    const violations = checkElectionInvariants(identity, this.checked, after);
    if (violations.length > 0) throw new ElectionInvariantError(this.selfId, violations);
    this.checked = after;
  }
}
