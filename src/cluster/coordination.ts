// The small interface the rest of Tandem uses to ask "who leads, under which fencing term?".
// The built-in election implements it (cluster.ts); a fleet past ~50 nodes will point the same interface
// at an external etcd cluster, so nothing outside src/cluster reaches into the election's internals.
import type { FencingToken, Grant } from "../core/grants.ts";
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

/** A grant this node holds, as its holder counts it. */
export interface HeldGrant {
  grant: Grant;
  /** On this node's monotonic clock (performance.now()): the service must have stopped by then. */
  deadlineMs: number;
  /** Adopted by a new leader: keeps a running service going, never starts one (src/core/grants.ts). */
  continueOnly: boolean;
}

/** What a node asks the leader for when it asks for a grant. */
export interface GrantAsk {
  /** The grant held, to renew it (or claim it from a new leader); none for a fresh grant. */
  current?: FencingToken;
  /** How long a fresh or claimed grant should last; the leader caps it (none: the cluster's longest). */
  leaseMs?: number;
}

/** The check right before a driver acts: the grant is live, for this much longer. */
export type FenceCheck = { ok: true; remainingMs: number } | { ok: false; reason: string };

/** A capability's answer when the leader asks whether a learner caught up with it (the leader's id). */
export type CatchUpCheck = (leader: NodeId) => { caughtUp: boolean; detail: string };

/** A member as this node's failure detector sees it. */
export interface MemberLiveness {
  id: NodeId;
  /** 0 while heard (this node itself always); otherwise ms since it was last heard (Infinity: never). */
  unreachableMs: number;
}

export interface Coordination {
  leadership(): LeadershipView;
  /** The cluster's members as this node holds them, learners included; empty before bootstrap or join. */
  members(): readonly MemberSpec[];
  /** Every member this node holds, with how long each has been unreachable from here. */
  memberLiveness(): MemberLiveness[];
  /**
   * Leader: `service` should run on `owner` (null: nowhere); a grant held elsewhere is not renewed, so it
   * lapses. Rejects with NotLeaderError.
   */
  assignService(service: string, owner: NodeId | null): Promise<void>;
  /** Leader: the grants that may be live; [] on other nodes. */
  grants(): readonly Grant[];
  /**
   * Ask the leader for `service`'s grant (`ask.current`: none), or to keep the one this node holds
   * (`ask.current`: its token; one of an earlier leader's is a claim, src/core/grants.ts). Rejects with
   * NotLeaderError, GrantRefusedError or CoordinationUnavailableError.
   */
  acquireGrant(service: string, ask?: GrantAsk): Promise<HeldGrant>;
  /** The service held under `grant` stopped on this node: the leader may give it elsewhere at once. */
  releaseGrant(grant: Grant): Promise<void>;
  /** Synchronous, right before a driver acts: is the grant still live on this node's clock? */
  checkFence(held: HeldGrant): FenceCheck;
  /** A learner becomes a voter only once every check says it caught up with the leader. */
  addCatchUpCheck(check: CatchUpCheck): void;
  on<E extends keyof CoordinationEventMap>(
    event: E,
    listener: (...args: CoordinationEventMap[E]) => void,
  ): () => void;
}
