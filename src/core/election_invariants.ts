// Safety properties of one node's election state, checked after every input (asserts stay on).
import type { NodeId, Role, Term } from "./types.ts";

export interface ElectionSnapshot {
  term: Term;
  votedFor: NodeId | null;
  role: Role;
  leaderId: NodeId | null;
  fencingTerm: Term;
}

export interface ElectionIdentity {
  selfId: NodeId;
  isWitness: boolean;
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
  if (identity.isWitness && after.role !== "follower") violations.push(`witness became ${after.role}`);
  if (after.fencingTerm !== after.term) {
    violations.push(`fencing term ${after.fencingTerm} differs from term ${after.term}`);
  }
  return violations;
}
