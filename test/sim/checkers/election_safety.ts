// Election safety, checked after every simulator event against the whole history:
//   1. at most one leader per term, ever (a term -> leader map that outlives crashes);
//   2. fencing terms never go backwards on a node, across restarts;
//   3. a node that still believes it leads while a leader of a newer term exists has leaseValid === false
//      (its fencing token must already be refused by its own lease check);
//   4. witnesses never lead, and only a leader reports a valid lease;
// and, at every send, the durability contract behind them: a message leaves only once its term is on
// disk, a granted vote only once the vote is, and no node grants two candidates in one term even across
// restarts.
import type { ElectionMessage, ElectionStatus, HardState } from "../../../src/core/election_types.ts";
import type { Envelope, NodeId, Term } from "../../../src/core/types.ts";

export class SafetyViolationError extends Error {
  override name = "SafetyViolationError";
  readonly invariant: string;

  constructor(invariant: string, detail: string) {
    super(`${invariant}: ${detail}`);
    this.invariant = invariant;
  }
}

export class ElectionSafetyChecker {
  private readonly witnesses: ReadonlySet<NodeId>;
  private readonly leaderByTerm = new Map<Term, NodeId>();
  private readonly fencingTermByNode = new Map<NodeId, Term>();
  private readonly voteByVoterTerm = new Map<string, NodeId>();

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

  /** The statuses of all live nodes after one event. */
  checkAfterEvent(statuses: readonly ElectionStatus[]): void {
    let newestLeaderTerm = 0;
    for (const s of statuses) {
      if (s.role !== "leader") {
        if (s.leaseValid)
          throw new SafetyViolationError("lease-only-when-leading", `${s.selfId} is ${s.role} with a lease`);
        continue;
      }
      if (this.witnesses.has(s.selfId)) {
        throw new SafetyViolationError("witness-never-leads", `witness ${s.selfId} leads term ${s.term}`);
      }
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

  /** Terms that have had a leader (for transcripts and tests). */
  get termsWithLeader(): number {
    return this.leaderByTerm.size;
  }
}
