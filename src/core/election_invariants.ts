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
  return violations;
}
