// Safety properties of one node's election state, checked after every input (asserts stay on).
import type { NodeId, Role, Term } from "./types.ts";

export interface ElectionSnapshot {
  term: Term;
  votedFor: NodeId | null;
  role: Role;
  leaderId: NodeId | null;
  fencingTerm: Term;
  /** A voting member of the membership it holds (not a witness, learner or removed node). */
  canLead: boolean;
  nowTicks: number;
  /** Tick at which it last heard a leader's heartbeat, granted a vote or led. */
  lastLeaderTicks: number;
  /** The newest term whose leader's tail it heard (or led in), and the largest such tail (null: none). */
  heardTail: { term: Term; ms: number | null } | null;
  /** Leader: the tail it advertises in this term (null: none yet); null on other roles. */
  advertMs: number | null;
  /** Leader: the largest advertised tail a quorum acknowledged in this term. */
  acknowledgedTailMs: number | null;
}

export interface ElectionIdentity {
  selfId: NodeId;
}

/** Violations between the state before and after one input; [] when all hold. */
export function checkElectionInvariants(
  identity: ElectionIdentity,
  before: ElectionSnapshot,
  after: ElectionSnapshot,
): string[] {
  const violations: string[] = [];
  if (after.term < before.term) violations.push(`term decreased from ${before.term} to ${after.term}`);
  if (after.term === before.term && before.votedFor !== null && after.votedFor !== before.votedFor) {
    violations.push(`vote in term ${after.term} changed from ${before.votedFor} to ${after.votedFor}`);
  }
  if (after.role === "leader" && after.leaderId !== identity.selfId) {
    violations.push(`leader but leaderId is ${after.leaderId}`);
  }
  if ((after.role === "leader" || after.role === "candidate") && after.votedFor !== identity.selfId) {
    violations.push(`${after.role} in term ${after.term} without its own vote`);
  }
  if (!after.canLead && after.role !== "follower") {
    violations.push(`${after.role} without being a voting member`);
  }
  if (after.fencingTerm !== after.term) {
    violations.push(`fencing term ${after.fencingTerm} differs from term ${after.term}`);
  }
  violations.push(...checkContactInvariants(before, after));
  return violations;
}

/** What votes report about earlier leaders must only ever over-estimate how recent and long they were. */
function checkContactInvariants(before: ElectionSnapshot, after: ElectionSnapshot): string[] {
  const violations: string[] = [];
  if (after.lastLeaderTicks < before.lastLeaderTicks || after.lastLeaderTicks > after.nowTicks) {
    violations.push(
      `last leader contact moved from tick ${before.lastLeaderTicks} to ${after.lastLeaderTicks}`,
    );
  }
  const heard = after.heardTail;
  const was = before.heardTail;
  if (heard !== null && heard.term > after.term) {
    violations.push(`heard a tail of term ${heard.term}, ahead of term ${after.term}`);
  }
  if (was !== null && (heard === null || heard.term < was.term)) {
    violations.push(`the heard tail went back from term ${was.term}`);
  }
  if (was !== null && heard !== null && heard.term === was.term && was.ms !== null) {
    if (heard.ms === null || heard.ms < was.ms) violations.push(`the tail heard in term ${was.term} shrank`);
  }
  if (after.role !== "leader" && (after.advertMs !== null || after.acknowledgedTailMs !== null)) {
    violations.push(`${after.role} advertising a tail`);
  }
  const sameLeadership = before.role === "leader" && after.role === "leader" && before.term === after.term;
  if (sameLeadership && before.advertMs !== null && (after.advertMs ?? -1) < before.advertMs) {
    violations.push(`advertised tail shrank in term ${after.term}`);
  }
  if (
    after.acknowledgedTailMs !== null &&
    (after.advertMs === null || after.acknowledgedTailMs > after.advertMs)
  ) {
    violations.push(`acknowledged tail ${after.acknowledgedTailMs} above the advertised ${after.advertMs}`);
  }
  return violations;
}
