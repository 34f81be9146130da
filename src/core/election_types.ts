// The election core's contract: configuration, durable state, wire messages and the Ready batch.
// The state machine itself lives in election.ts; shells (src/cluster) and the simulator (test/sim)
// program against these types only.
//
// The caller's loop (same order in the shell and in the simulator):
//   1. feed inputs: tick() on every logical tick, step(envelope) for each received message;
//   2. while hasReady(): r = ready();
//        persist r.hardState (fsync) BEFORE any message leaves — a restarted node must never vote twice
//        in one term;
//        send r.messages; emit r.events; then advance(r).

import type { Membership, MembershipSummary } from "./membership.ts";
import type { ConfigProblem, Envelope, NodeId, Role, Term } from "./types.ts";

export type { ConfigProblem, Envelope, Membership, MembershipSummary, NodeId, Role, Term };

export interface ElectionConfig {
  selfId: NodeId;
  // The bootstrap list (tandem.yml's peers): used only while no membership is on disk, and only once every
  // voter in it has announced the same list. Afterwards the cluster's committed membership rules.
  /** Nodes that vote and may lead (includes selfId when self is a member). */
  members: readonly NodeId[];
  /** Nodes that vote but never lead: the tie-breaker of a two-node pair. */
  witnesses: readonly NodeId[];
  /** Priority of every voter (members and witnesses); among healthy members the highest leads. */
  priorities: Readonly<Record<NodeId, number>>;
  /** Address of every voter, carried in the membership; "" when unknown (tests, the simulator). */
  addresses?: Readonly<Record<NodeId, string>>;
  /** A joining node never bootstraps: it waits for a leader whose membership lists it. */
  join?: boolean;
  /** A follower campaigns after a randomized timeout in [T, 2T-1] ticks without hearing a leader. */
  electionTimeoutTicks: number;
  /** The leader sends heartbeats every this many ticks. */
  heartbeatIntervalTicks: number;
  /**
   * How long after the send time of a heartbeat acknowledged by a quorum the leader may act as leader.
   * Must be < electionTimeoutTicks so that the lease ends before any follower would grant a vote.
   */
  leaseTicks: number;
  preVote: boolean;
  checkQuorum: boolean;
}

/** What must be on disk before messages leave. */
export interface HardState {
  term: Term;
  votedFor: NodeId | null;
  /** The membership this node holds and the term of the leader it took it from; absent before bootstrap. */
  membership?: PersistedMembership;
}

export interface PersistedMembership {
  config: Membership;
  term: Term;
}

export const emptyHardState: HardState = Object.freeze({ term: 0, votedFor: null });

/** Plain JSON-serialisable data; the shell schema-checks it on receipt (src/cluster/wire.ts). */
/** Every message but timeout-now carries its sender's membership summary (`membership`). */
export type ElectionMessage =
  /** "Would you vote for me in `term`?" Sent with term = current+1; does not change anyone's term. */
  | { type: "pre-vote"; term: Term; membership: MembershipSummary }
  | { type: "pre-vote-response"; term: Term; granted: boolean; membership: MembershipSummary }
  /** `transfer`: campaign started by leadership transfer; voters ignore their leader lease for it. */
  | { type: "vote"; term: Term; transfer: boolean; membership: MembershipSummary }
  /**
   * A granted vote carries the voter's contacts (see "Contacts" in election.ts): `leaderHeardTicksAgo`,
   * whole ticks since it last heard a leader's heartbeat, granted a vote or led (since it started, if never);
   * `grantTailMs`, the largest tail the newest leader it heard advertised, when that leader advertised one.
   * Peers' ticks may differ in length, so the shell sends the ticks as `leaderHeardMsAgo` (at least that
   * long ago); a received vote carries only that. The core reads none of them on receipt.
   */
  | {
      type: "vote-response";
      term: Term;
      granted: boolean;
      membership: MembershipSummary;
      leaderHeardTicksAgo?: number;
      leaderHeardMsAgo?: number;
      grantTailMs?: number;
    }
  /**
   * From the leader; `seq` is echoed so the leader can date the lease from the send time. `committed`: the
   * newest membership version a quorum holds; `config`: the whole membership, sent until the follower
   * reports holding it.
   */
  | {
      type: "heartbeat";
      term: Term;
      seq: number;
      membership: MembershipSummary;
      committed: number;
      config?: Membership;
      /** Opaque to the election: the tail the leader's shell advertises (setGrantTailMs); none before. */
      grantTailMs?: number;
    }
  | { type: "heartbeat-response"; term: Term; seq: number; membership: MembershipSummary }
  /** From the leader to the chosen successor: campaign now (leadership transfer). */
  | { type: "timeout-now"; term: Term };

export type ElectionMessageType = ElectionMessage["type"];

/** Things worth a log line or a simulator transcript line; never needed for correctness. */
export type ElectionEvent =
  | { type: "role-changed"; term: Term; role: Role; leaderId: NodeId | null; reason: string }
  | { type: "term-changed"; term: Term; from: Term; reason: string }
  | { type: "vote-granted"; term: Term; to: NodeId; preVote: boolean }
  | { type: "vote-rejected"; term: Term; to: NodeId; preVote: boolean; reason: string }
  | { type: "lease-lost"; term: Term }
  | { type: "transfer-started"; term: Term; to: NodeId }
  /** This node took a membership version (bootstrap agreed, from a leader, or proposed as leader). */
  | { type: "membership-adopted"; term: Term; version: number; hash: string; from: NodeId | "bootstrap" }
  | { type: "membership-committed"; term: Term; version: number }
  /** A peer announced a list this node cannot agree with; logged once per peer and list. */
  | { type: "membership-mismatch"; term: Term; peer: NodeId; detail: string }
  /** The membership this node holds no longer lists it: it stops campaigning and voting. */
  | { type: "removed"; term: Term; version: number };

export interface SoftState {
  role: Role;
  leaderId: NodeId | null;
}

export interface ElectionReady {
  /** Present when term or vote changed: persist (fsync) before sending messages. */
  hardState?: HardState;
  /** Present when role or known leader changed. */
  softState?: SoftState;
  messages: Envelope<ElectionMessage>[];
  events: ElectionEvent[];
  /** The current term: the fencing token for anything this node coordinates as leader. */
  fencingTerm: Term;
}

export interface ElectionStatus {
  selfId: NodeId;
  role: Role;
  term: Term;
  leaderId: NodeId | null;
  votedFor: NodeId | null;
  /** Leader only: true while a quorum has acknowledged a heartbeat sent within the last leaseTicks. */
  leaseValid: boolean;
  /** Leader only: ticks until the lease ends (0 when not leader or expired). */
  leaseRemainingTicks: number;
  membership: MembershipStatus;
}

/**
 * Where this node stands: `bootstrapping` (no membership yet; waiting for every bootstrap voter to show the
 * same list), `joining` (no membership; waiting for a leader that lists it), `voter`, `learner`, `removed`.
 */
export type MembershipStanding = "bootstrapping" | "joining" | "voter" | "learner" | "removed";

export interface MembershipStatus {
  standing: MembershipStanding;
  summary: MembershipSummary;
  /** The membership this node holds (null before bootstrap or join). */
  config: Membership | null;
  /** The newest version known to be held by a quorum (the leader's count, or its word in heartbeats). */
  committedVersion: number;
  /** Leader only: a proposed version not yet held by a quorum of its voters. */
  pendingVersion: number | null;
}
