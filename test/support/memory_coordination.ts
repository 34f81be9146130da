// The grant part of Coordination in memory, for tests of what stands on it (the service runner): one
// leader's GrantLedger, every node asking it directly on one shared clock. The test decides who leads, in
// which term, and whether the leader answers at all; answers come back on a later turn, like a reply.
import type {
  Coordination,
  FenceCheck,
  GrantAsk,
  HeldGrant,
  LeadershipView,
} from "../../src/cluster/coordination.ts";
import {
  CoordinationUnavailableError,
  GrantRefusedError,
  NotLeaderError,
} from "../../src/cluster/coordination_errors.ts";
import { type Grant, GrantLedger, holderDeadlineMs } from "../../src/core/grants.ts";
import { type NodeId, Role } from "../../src/core/types.ts";

export type MemoryGrants = Pick<Coordination, "leadership" | "acquireGrant" | "releaseGrant" | "checkFence">;

export class MemoryCoordination {
  readonly leaseMs: number;
  private readonly now: () => number;
  private leaderId: NodeId | null;
  private term: number;
  private ledger: GrantLedger;
  private readonly assigned = new Map<string, NodeId>();
  /** While false, requests to the leader are never answered (they time out after `timeoutMs`). */
  answering = true;
  /** Answers come this late (virtual ms); 0: on the next turn. */
  replyDelayMs = 0;
  readonly timeoutMs = 1_000;

  constructor(options: {
    leaderId: NodeId;
    term: number;
    leaseMs: number;
    now: () => number;
    settled?: boolean;
  }) {
    this.leaseMs = options.leaseMs;
    this.now = options.now;
    this.leaderId = options.leaderId;
    this.term = options.term;
    // Settled: the leader took over long ago, so no earlier grant can be live.
    const since = options.settled === false ? this.now() : this.now() - 10 * options.leaseMs;
    this.ledger = new GrantLedger({ term: this.term, leaderSinceMs: since, leaseMs: this.leaseMs });
  }

  /** A new leader in a new term: a fresh ledger, assignments kept (its placement decides the same). */
  changeLeader(leaderId: NodeId): void {
    this.leaderId = leaderId;
    this.term += 1;
    this.ledger = new GrantLedger({ term: this.term, leaderSinceMs: this.now(), leaseMs: this.leaseMs });
  }

  assign(service: string, owner: NodeId | null): void {
    if (this.ledger.holder(service, this.now())?.owner !== owner) this.ledger.revoke(service);
    if (owner === null) this.assigned.delete(service);
    else this.assigned.set(service, owner);
  }

  holder(service: string): Grant | null {
    return this.ledger.holder(service, this.now());
  }

  freeAtMs(service: string): number {
    return this.ledger.freeAtMs(service, this.now());
  }

  /** The view and calls one node has. */
  node(id: NodeId): MemoryGrants {
    return {
      leadership: (): LeadershipView => ({
        leaderId: this.leaderId,
        term: this.term,
        role: this.leaderId === id ? Role.Leader : Role.Follower,
        leaseValid: this.leaderId === id,
      }),
      acquireGrant: (service, ask) => this.acquire(id, service, ask),
      releaseGrant: async (grant) => {
        await this.reply();
        this.ledger.released(grant.service, id, grant.fence, this.now());
      },
      checkFence: (held): FenceCheck => {
        const remainingMs = held.deadlineMs - this.now();
        return remainingMs > 0 ? { ok: true, remainingMs } : { ok: false, reason: "the grant ran out" };
      },
    };
  }

  private async acquire(id: NodeId, service: string, ask: GrantAsk = {}): Promise<HeldGrant> {
    const sentAtMs = this.now();
    await this.reply();
    if (this.leaderId === null) throw new NotLeaderError(null, `cannot acquire ${service}`);
    if (this.assigned.get(service) !== id)
      throw new GrantRefusedError(`${service} is not assigned to ${id}`, null);
    const answer = this.ledger.request(service, id, this.now(), ask.current, ask.leaseMs);
    if (!answer.ok) {
      const retryInMs = answer.retryAtMs === null ? null : answer.retryAtMs - this.now();
      throw new GrantRefusedError(answer.reason, retryInMs);
    }
    return {
      grant: answer.grant,
      deadlineMs: holderDeadlineMs(sentAtMs, answer.grant.leaseMs),
      continueOnly: answer.continueOnly,
    };
  }

  /** A turn later, or never while the leader does not answer (then a timeout after timeoutMs). */
  private reply(): Promise<void> {
    if (this.answering && this.replyDelayMs > 0) {
      return new Promise((resolve) => setTimeout(resolve, this.replyDelayMs));
    }
    if (this.answering) return new Promise((resolve) => setImmediate(resolve));
    return new Promise((_, reject) =>
      setTimeout(() => reject(new CoordinationUnavailableError("the leader did not answer")), this.timeoutMs),
    );
  }
}
