// One node's view of the membership for the election core: the list it holds (and from which leader's term),
// the bootstrap agreement before it holds any, and what that makes it (voter, learner, removed, ...).
//
// Bootstrapping is safe only if no two nodes can start from different lists: a node takes its configured
// list as version 1 only once every voter in that list has announced the same list (or once a peer that
// already took it, after seeing everyone, announces it), as etcd refuses a mismatched initial cluster.

import type { MembershipStanding, PersistedMembership } from "./election_types.ts";
import {
  compareMembership,
  findMember,
  leaderEligibleIds,
  type Membership,
  type MembershipSummary,
  membershipHash,
  noMembershipHash,
  voterIds,
} from "./membership.ts";
import type { NodeId, Term } from "./types.ts";

export type BootstrapObservation =
  | { kind: "none" }
  | { kind: "agreed"; peer: NodeId }
  | { kind: "mismatch"; detail: string };

export class MembershipView {
  private readonly selfId: NodeId;
  private readonly bootstrap: Membership | null;
  private readonly bootstrapHash: string;
  /** Bootstrap voters that announced our list. */
  private readonly agreedPeers = new Set<NodeId>();
  private current: Membership | null = null;
  private currentTerm: Term = 0;
  private currentHash = noMembershipHash;
  private voterList: readonly NodeId[] = [];
  private eligibleList: readonly NodeId[] = [];

  constructor(selfId: NodeId, bootstrap: Membership | null, persisted: PersistedMembership | undefined) {
    this.selfId = selfId;
    this.bootstrap = bootstrap;
    this.bootstrapHash = bootstrap === null ? noMembershipHash : membershipHash(bootstrap);
    if (persisted !== undefined) this.adopt(persisted.config, persisted.term);
    // A cluster of one has no one to agree with.
    else if (bootstrap !== null && voterIds(bootstrap).every((id) => id === selfId)) this.adopt(bootstrap, 0);
  }

  get config(): Membership | null {
    return this.current;
  }

  get term(): Term {
    return this.currentTerm;
  }

  get hash(): string {
    return this.currentHash;
  }

  /** Voters (members and witnesses that vote) of the list held; none before bootstrap. */
  get voters(): readonly NodeId[] {
    return this.voterList;
  }

  /** Voting members: the nodes that may lead. */
  get leaderEligible(): readonly NodeId[] {
    return this.eligibleList;
  }

  /** Nodes a leader heartbeats: every node in the list but itself, learners included. */
  others(): NodeId[] {
    return (this.current?.nodes ?? []).map((n) => n.id).filter((id) => id !== this.selfId);
  }

  /** What this node announces. Before bootstrap: version 0 and the hash of the list it proposes. */
  summary(): MembershipSummary {
    if (this.current !== null) {
      return { version: this.current.version, hash: this.currentHash, term: this.currentTerm };
    }
    return { version: 0, hash: this.bootstrapHash, term: 0 };
  }

  standing(): MembershipStanding {
    if (this.current === null) return this.bootstrap === null ? "joining" : "bootstrapping";
    const self = findMember(this.current, this.selfId);
    if (self === undefined) return "removed";
    return self.voting ? "voter" : "learner";
  }

  canLead(): boolean {
    return this.eligibleList.includes(this.selfId);
  }

  /** -Infinity for nodes outside the list: they rank below everyone. */
  priorityOf(id: NodeId): number {
    const list = this.current ?? this.bootstrap;
    return (list === null ? undefined : findMember(list, id))?.priority ?? Number.NEGATIVE_INFINITY;
  }

  /** Bootstrap voters to exchange lists with while bootstrapping. */
  bootstrapPeers(): NodeId[] {
    if (this.current !== null || this.bootstrap === null) return [];
    return voterIds(this.bootstrap).filter((id) => id !== this.selfId);
  }

  persistedForm(): PersistedMembership | undefined {
    return this.current === null ? undefined : { config: this.current, term: this.currentTerm };
  }

  /** Take `config` as of the leader of `term`; false when nothing changed. */
  adopt(config: Membership, term: Term): boolean {
    const hash = membershipHash(config);
    if (hash === this.currentHash && term === this.currentTerm) return false;
    this.current = config;
    this.currentTerm = term;
    this.currentHash = hash;
    this.voterList = voterIds(config);
    this.eligibleList = leaderEligibleIds(config);
    return true;
  }

  /** A leader of `term` holds our list: it is now ours as of that term (Raft's no-op entry). */
  confirm(term: Term): boolean {
    if (term <= this.currentTerm || this.current === null) return false;
    this.currentTerm = term;
    return true;
  }

  /** What a peer's announcement means for a node still bootstrapping; adopts the list once agreed. */
  observe(peer: NodeId, announced: MembershipSummary): BootstrapObservation {
    if (this.current !== null || this.bootstrap === null) return { kind: "none" };
    if (announced.term > 0) {
      return {
        kind: "mismatch",
        detail: `${peer} belongs to a running cluster (membership v${announced.version}); this node is not in it: add it with tandem member add, or start it with --join`,
      };
    }
    const listed = voterIds(this.bootstrap).includes(peer);
    if (announced.hash !== this.bootstrapHash) {
      if (!listed && announced.hash === noMembershipHash) return { kind: "none" };
      return {
        kind: "mismatch",
        detail: `${peer} proposes a different bootstrap list (hash ${announced.hash}, ours ${this.bootstrapHash}): every node's peers must list the same cluster; no election until they do`,
      };
    }
    if (!listed) return { kind: "none" };
    this.agreedPeers.add(peer);
    const everyone = this.bootstrapPeers().every((id) => this.agreedPeers.has(id));
    if (announced.version !== 1 && !everyone) return { kind: "none" };
    this.adopt(this.bootstrap, 0);
    return { kind: "agreed", peer };
  }

  /**
   * Why this node must not vote for a candidate holding `candidate`; null when it may. Raft's up-to-date
   * rule on (term, version), a conflicting list of one (term, version) refused too, and nothing granted
   * before this node holds a list unless the candidate belongs to a running cluster.
   */
  voteRefusal(candidate: MembershipSummary): string | null {
    if (this.current === null) {
      return candidate.term > 0 ? null : "no membership agreed yet";
    }
    const own = this.summary();
    const order = compareMembership(candidate, own);
    if (order < 0) {
      return `candidate's membership v${candidate.version} (term ${candidate.term}) is older than ours v${own.version} (term ${own.term})`;
    }
    if (order === 0 && candidate.hash !== own.hash) return `conflicting membership v${own.version}`;
    return null;
  }
}
