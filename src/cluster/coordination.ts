// The small interface the rest of Tandem uses to ask "who leads, under which fencing term?".
// The built-in election implements it (cluster.ts); a fleet past ~50 nodes will point the same interface
// at an external etcd cluster, so nothing outside src/cluster reaches into the election's internals.
import type { MemberSpec } from "../core/membership.ts";
import type { NodeId, Role, Term } from "../core/types.ts";

export interface LeadershipView {
  leaderId: NodeId | null;
  /** The fencing token: hand it to every driver and every write coordinated under this leadership. */
  term: Term;
  role: Role;
  /** Leader only: true while a quorum has acknowledged this leadership recently enough to act on it. */
  leaseValid: boolean;
}

export interface CoordinationEventMap extends Record<string, unknown[]> {
  "leader:changed": [view: LeadershipView];
  /** The membership this node holds changed (a node added, promoted, moved or removed). */
  "members:changed": [members: readonly MemberSpec[]];
}

/** A capability's answer when the leader asks whether a learner caught up with it (the leader's id). */
export type CatchUpCheck = (leader: NodeId) => { caughtUp: boolean; detail: string };

export interface Coordination {
  leadership(): LeadershipView;
  /** The cluster's members as this node holds them, learners included; empty before bootstrap or join. */
  members(): readonly MemberSpec[];
  /** A learner becomes a voter only once every check says it caught up with the leader. */
  addCatchUpCheck(check: CatchUpCheck): void;
  on<E extends keyof CoordinationEventMap>(
    event: E,
    listener: (...args: CoordinationEventMap[E]) => void,
  ): () => void;
}
