// Election safety, checked after every simulator event against the whole history:
//   1. at most one leader per term, ever (a term -> leader map that outlives crashes);
//   2. fencing terms never go backwards on a node, across restarts;
//   3. a node that still believes it leads while a leader of a newer term exists has leaseValid === false
//      (its fencing token must already be refused by its own lease check);
//   4. witnesses never lead, and only a leader reports a valid lease;
//   5. a node that is not a voting member of the list it holds is never (pre-)candidate or leader;
//   6. committed memberships are never lost (Raft's leader completeness, for the list): once a leader
//      reports version v committed while holding hash h, every leader of that term or a later one holds
//      version >= v, and any of them holding version v holds h;
// every node is checked whatever list it holds (spares, added and removed nodes alike); and, at every send, the durability contract behind them: a message leaves only once its term is on
// disk, a granted vote only once the vote is, and no node grants two candidates in one term even across
// restarts.
import type {
  ElectionEvent,
  ElectionMessage,
  ElectionStatus,
  HardState,
} from "../../../src/core/election_types.ts";
import type { MemberSpec, Membership } from "../../../src/core/membership.ts";
import type { Envelope, NodeId, Term } from "../../../src/core/types.ts";

export class SafetyViolationError extends Error {
  override name = "SafetyViolationError";
  readonly invariant: string;

  constructor(invariant: string, detail: string) {
    super(`${invariant}: ${detail}`);
    this.invariant = invariant;
  }
}

/** A membership version a leader reported held by a quorum of its voters. */
export interface CommittedMembership {
  version: number;
  hash: string;
  term: Term;
  leaderId: NodeId;
  config: Membership | null;
}

export class ElectionSafetyChecker {
  /** The configured witnesses: what a node holding no list yet is judged by. */
  private readonly witnesses: ReadonlySet<NodeId>;
  private readonly leaderByTerm = new Map<Term, NodeId>();
  private readonly fencingTermByNode = new Map<NodeId, Term>();
  private readonly voteByVoterTerm = new Map<string, NodeId>();
  private readonly committedByVersion = new Map<number, CommittedMembership>();

  constructor(witnesses: readonly NodeId[]) {
    this.witnesses = new Set(witnesses);
  }

  /** Every Ready's fencing term, in drain order. */
  observeFencingTerm(id: NodeId, term: Term): void {
    const previous = this.fencingTermByNode.get(id) ?? 0;
    if (term < previous) {
      throw new SafetyViolationError("fencing-monotonic", `${id} fencing term went ${previous} -> ${term}`);
    }
    this.fencingTermByNode.set(id, term);
  }

  /** Every message as it leaves its node, with that node's durable state at that instant. */
  observeSend(envelope: Envelope<ElectionMessage>, durable: HardState): void {
    const m = envelope.message;
    // Pre-votes (and grants of them) name a future term on purpose; everything else speaks for a term
    // the sender must already have on disk.
    const futureTerm = m.type === "pre-vote" || (m.type === "pre-vote-response" && m.granted);
    if (!futureTerm && m.term > durable.term) {
      throw new SafetyViolationError(
        "term-durable",
        `${envelope.from} sent ${m.type} for term ${m.term} with term ${durable.term} on disk`,
      );
    }
    if (m.type !== "vote-response" || !m.granted) return;
    const voter = envelope.from;
    if (durable.term !== m.term || durable.votedFor !== envelope.to) {
      throw new SafetyViolationError(
        "vote-durable",
        `${voter} granted term ${m.term} to ${envelope.to} but disk holds term ${durable.term} vote ${durable.votedFor}`,
      );
    }
    const key = `${voter}@${m.term}`;
    const earlier = this.voteByVoterTerm.get(key);
    if (earlier !== undefined && earlier !== envelope.to) {
      throw new SafetyViolationError(
        "one-vote-per-term",
        `${voter} voted ${earlier} and ${envelope.to} in term ${m.term}`,
      );
    }
    this.voteByVoterTerm.set(key, envelope.to);
  }

  /** Every Ready's events, with the status of the node that emitted them. */
  observeEvents(id: NodeId, events: readonly ElectionEvent[], status: ElectionStatus): void {
    for (const e of events) {
      if (e.type !== "membership-committed") continue;
      const held = status.membership.summary;
      if (held.version !== e.version) {
        throw new SafetyViolationError(
          "committed-held",
          `${id} reported v${e.version} committed in term ${e.term} while holding v${held.version}`,
        );
      }
      const earlier = this.committedByVersion.get(e.version);
      if (earlier !== undefined && earlier.hash !== held.hash) {
        throw new SafetyViolationError(
          "committed-never-lost",
          `v${e.version} committed as ${earlier.hash} by ${earlier.leaderId} in term ${earlier.term} and as ${held.hash} by ${id} in term ${e.term}`,
        );
      }
      if (earlier === undefined) {
        this.committedByVersion.set(e.version, {
          version: e.version,
          hash: held.hash,
          term: e.term,
          leaderId: id,
          config: status.membership.config,
        });
      }
    }
  }

  /** The statuses of all live nodes after one event. */
  checkAfterEvent(statuses: readonly ElectionStatus[]): void {
    let newestLeaderTerm = 0;
    for (const s of statuses) {
      if (s.role !== "leader") {
        if (s.leaseValid)
          throw new SafetyViolationError("lease-only-when-leading", `${s.selfId} is ${s.role} with a lease`);
        if (s.role !== "follower" && !this.votingMember(s)) {
          throw new SafetyViolationError(
            "non-voter-campaigns",
            `${s.selfId} (${describeSelf(s)}) is ${s.role}`,
          );
        }
        continue;
      }
      if (this.isWitness(s)) {
        throw new SafetyViolationError("witness-never-leads", `witness ${s.selfId} leads term ${s.term}`);
      }
      if (!this.votingMember(s)) {
        throw new SafetyViolationError(
          "non-voter-campaigns",
          `${s.selfId} (${describeSelf(s)}) leads term ${s.term}`,
        );
      }
      this.checkCommittedHeld(s);
      const known = this.leaderByTerm.get(s.term);
      if (known !== undefined && known !== s.selfId) {
        throw new SafetyViolationError(
          "one-leader-per-term",
          `${known} and ${s.selfId} both led term ${s.term}`,
        );
      }
      this.leaderByTerm.set(s.term, s.selfId);
      if (s.term > newestLeaderTerm) newestLeaderTerm = s.term;
    }
    for (const s of statuses) {
      if (s.role === "leader" && s.term < newestLeaderTerm && s.leaseValid) {
        throw new SafetyViolationError(
          "stale-leader-lease",
          `${s.selfId} leads term ${s.term} with a valid lease (${s.leaseRemainingTicks} ticks left) while term ${newestLeaderTerm} has a leader`,
        );
      }
    }
  }

  /** The newest membership version any leader reported committed, or undefined before any. */
  get newestCommitted(): CommittedMembership | undefined {
    let newest: CommittedMembership | undefined;
    for (const c of this.committedByVersion.values())
      if (newest === undefined || c.version > newest.version) newest = c;
    return newest;
  }

  /** Terms that have had a leader (for transcripts and tests). */
  get termsWithLeader(): number {
    return this.leaderByTerm.size;
  }

  /** A leader holds every list committed in its term or before, and the same list at each version. */
  private checkCommittedHeld(s: ElectionStatus): void {
    const held = s.membership.summary;
    for (const c of this.committedByVersion.values()) {
      if (c.term > s.term) continue;
      if (held.version < c.version) {
        throw new SafetyViolationError(
          "committed-never-lost",
          `${s.selfId} leads term ${s.term} holding v${held.version}, but v${c.version} was committed in term ${c.term}`,
        );
      }
      if (held.version === c.version && held.hash !== c.hash) {
        throw new SafetyViolationError(
          "committed-never-lost",
          `${s.selfId} leads term ${s.term} holding v${held.version} as ${held.hash}, committed in term ${c.term} as ${c.hash}`,
        );
      }
    }
  }

  /** Whether the node is a voting member of the list it holds (without a list: as configured). */
  private votingMember(s: ElectionStatus): boolean {
    const self = ownEntry(s);
    if (self === null) return s.membership.standing === "voter" && !this.witnesses.has(s.selfId);
    return self?.voting === true && self.role === "member";
  }

  private isWitness(s: ElectionStatus): boolean {
    const self = ownEntry(s);
    return self === null ? this.witnesses.has(s.selfId) : self?.role === "witness";
  }
}

/** The node's entry in the list it holds; null when it holds none, undefined when the list omits it. */
function ownEntry(s: ElectionStatus): MemberSpec | null | undefined {
  const list = s.membership.config;
  return list === null ? null : list.nodes.find((n) => n.id === s.selfId);
}

function describeSelf(s: ElectionStatus): string {
  const self = ownEntry(s);
  const v = s.membership.summary.version;
  if (self === null) return s.membership.standing;
  if (self === undefined) return `not in its list v${v}`;
  return `${self.voting ? "voting" : "learner"} ${self.role} in its list v${v}`;
}
