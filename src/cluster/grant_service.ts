// Service grants over the mesh, for the built-in election (src/core/grants.ts has the rules and why they
// are safe). The leader keeps a GrantLedger for its term and the assignments its placement made, and
// answers "grants" requests; any node (the leader too, without the network) asks the leader for the
// grants of the services assigned to it, and counts each one's deadline from when it sent the request.
// With the election's contacts (GrantElection) a new leader's inherited window ends when its voters prove
// it does, and it advertises the tail of its own grants before issuing them.
import { performance } from "node:perf_hooks";
import type { Logger } from "pino";
import {
  clockMarginDefault,
  type Grant,
  type GrantAnswer,
  GrantLedger,
  holderDeadlineMs,
  inheritedBound,
  type LeaderContact,
  renewalPeriodMs,
} from "../core/grants.ts";
import type { NodeId, Term } from "../core/types.ts";
import { decodeJsonPayload, encodeJsonPayload, type MeshApi } from "../mesh/index.ts";
import type { FenceCheck, GrantAsk, HeldGrant, LeadershipView } from "./coordination.ts";
import { CoordinationUnavailableError, GrantRefusedError, NotLeaderError } from "./coordination_errors.ts";
import {
  GRANTS_CHANNEL,
  type GrantRequest,
  type GrantWireAnswer,
  type GrantWireRefusal,
  grantAnswerSchema,
  grantRequestSchema,
} from "./grant_wire.ts";

/** The election's side of the grants (ElectionRunner implements it; see src/core/grants.ts). */
export interface GrantElection {
  /**
   * The leader answers grant requests only while a quorum acknowledged a heartbeat it sent less than this
   * long ago (ms, at most its lease): the part of the tail it advertises beyond its longest grant.
   */
  answerWindowMs: number;
  /** Leader: a quorum acknowledged a heartbeat sent within answerWindowMs. */
  fresh(): boolean;
  /** Leader: a heartbeat round now; true once fresh() holds, false after `timeoutMs` or losing the lead. */
  freshen(timeoutMs: number): Promise<boolean>;
  /** The contacts of the votes that elected this node in `term`, or null (unknown: the widest window). */
  contactsWhenWon(term: Term): readonly LeaderContact[] | null;
  /** Advertise this tail in the leader's heartbeats from now on (a larger one goes out at once). */
  advertise(tailMs: number): void;
  /** The largest advertised tail a quorum acknowledged this term, or null. */
  acknowledgedTailMs(): number | null;
  /** True once a quorum acknowledged `tailMs`; false after `timeoutMs` or when leadership was lost. */
  tailAcknowledged(tailMs: number, timeoutMs: number): Promise<boolean>;
}

export interface GrantServiceOptions {
  selfId: NodeId;
  mesh: Pick<MeshApi, "request" | "onRequest">;
  /** The election's current view (read at every request). */
  leadership: () => LeadershipView;
  /** The longest a grant or a renewal lasts: what one is given when its asker names no lease. */
  leaseMs: number;
  logger: Logger;
  /**
   * How long a request to the leader may take before it counts as unanswered; one renewal period of the
   * lease asked for by default, so a request stuck on a leader that died never delays the claim to the next.
   */
  requestTimeoutMs?: number;
  /** Monotonic ms; performance.now() by default (the election's contacts must use the same clock). */
  now?: () => number;
  /**
   * The election's contacts and adverts. Without, a new leader's inherited window is always a whole
   * lease × (1 + margin) from its start (and it advertises nothing, so neither is its successors').
   */
  election?: GrantElection;
}

export class GrantService {
  private readonly options: GrantServiceOptions;
  private readonly now: () => number;
  private ledger: GrantLedger | null = null;
  /** Leader: where placement wants each service (absent: nowhere). */
  private readonly assigned = new Map<string, NodeId>();
  private readonly unsubscribe: () => void;

  constructor(options: GrantServiceOptions) {
    this.options = options;
    this.now = options.now ?? (() => performance.now());
    this.unsubscribe = options.mesh.onRequest(GRANTS_CHANNEL, (from, payload) => this.serve(from, payload));
  }

  stop(): void {
    this.unsubscribe();
    this.ledger = null;
  }

  /**
   * The election's view changed: a node that now leads in a new term starts a ledger (empty, with the
   * inherited window from now); one that no longer leads drops its ledger and assignments.
   */
  leadershipChanged(view: LeadershipView = this.options.leadership()): void {
    if (view.role !== "leader") {
      if (this.ledger !== null) this.options.logger.info({ term: this.ledger.term }, "grant ledger dropped");
      this.ledger = null;
      this.assigned.clear();
      return;
    }
    if (this.ledger?.term === view.term) return;
    const election = this.options.election;
    const contacts = election?.contactsWhenWon(view.term) ?? null;
    const leaderSinceMs = this.now();
    this.ledger = new GrantLedger({
      term: view.term,
      leaderSinceMs,
      leaseMs: this.options.leaseMs,
      inherited: contacts === null ? null : inheritedBound(contacts, clockMarginDefault),
      ...(election === undefined ? {} : { leaderLeaseMs: election.answerWindowMs }),
    });
    this.assigned.clear();
    election?.advertise(this.ledger.tailMs());
    const windowMs = Math.round(this.ledger.inheritedUntilMs - leaderSinceMs);
    this.options.logger.info(
      { term: view.term, inheritedWindowMs: windowMs, contacts: contacts !== null },
      "grant ledger started",
    );
  }

  /** Leader: `service` should run on `owner` (null: nowhere); another holder's grant is no longer renewed. */
  assign(service: string, owner: NodeId | null): void {
    const ledger = this.leaderLedger("assign a service");
    const current = ledger.holder(service, this.now());
    if (current !== null && current.owner !== owner) ledger.revoke(service);
    if (owner === null) this.assigned.delete(service);
    else this.assigned.set(service, owner);
  }

  /** Leader: where each service is assigned. */
  assignments(): ReadonlyMap<string, NodeId> {
    return this.assigned;
  }

  /** Leader: every grant that may be live; [] elsewhere. */
  grants(): Grant[] {
    return this.ledger?.grants(this.now()) ?? [];
  }

  /** Leader: when `service` may go to a new owner (ms from now; 0 when it is free). */
  freeInMs(service: string): number {
    const ledger = this.leaderLedger("ask when a service is free");
    const now = this.now();
    return Math.max(0, ledger.freeAtMs(service, now) - now);
  }

  /** Ask the leader for `service`'s grant, or to keep `ask.current`, the one held (Coordination.acquireGrant). */
  async acquire(service: string, ask: GrantAsk = {}): Promise<HeldGrant> {
    const sentAtMs = this.now();
    const { current, leaseMs } = ask;
    const request: GrantRequest = {
      kind: "acquire",
      service,
      ...(current ? { current } : {}),
      ...(leaseMs === undefined ? {} : { leaseMs }),
    };
    const answer = await this.ask(request, leaseMs ?? this.options.leaseMs);
    if (answer.kind === "refused") throw refusalError(answer);
    if (answer.kind !== "granted")
      throw new CoordinationUnavailableError(`a ${answer.kind} answer to acquire`);
    return {
      grant: answer.grant,
      deadlineMs: holderDeadlineMs(sentAtMs, answer.grant.leaseMs, clockMarginDefault),
      continueOnly: answer.continueOnly,
    };
  }

  /**
   * Tell the leader this node stopped the service held under `grant`, so it may go elsewhere at once. A
   * grant the leader no longer holds (lapsed, or of an earlier leader) needs no release: that resolves too.
   */
  async release(grant: Grant): Promise<void> {
    const answer = await this.ask(
      { kind: "release", service: grant.service, fence: grant.fence },
      grant.leaseMs,
    );
    if (answer.kind === "refused") throw refusalError(answer);
  }

  /** Right before a driver acts: is the grant still live on this node's clock? */
  checkFence(held: HeldGrant): FenceCheck {
    const remainingMs = held.deadlineMs - this.now();
    if (remainingMs > 0) return { ok: true, remainingMs };
    return {
      ok: false,
      reason: `the grant of ${held.grant.service} ran out ${Math.round(-remainingMs)} ms ago`,
    };
  }

  /** `leaseMs`: the lease in question, whose renewal period bounds the wait for an answer. */
  private async ask(request: GrantRequest, leaseMs: number): Promise<GrantWireAnswer> {
    const leader = this.options.leadership().leaderId;
    if (leader === null) throw new NotLeaderError(null, `cannot ${request.kind} ${request.service}`);
    if (leader === this.options.selfId) return await this.answer(leader, request);
    let response: Uint8Array;
    try {
      response = await this.options.mesh.request(leader, GRANTS_CHANNEL, encodeJsonPayload(request), {
        timeoutMs: this.options.requestTimeoutMs ?? renewalPeriodMs(leaseMs),
      });
    } catch (error) {
      throw new CoordinationUnavailableError(`leader ${leader} did not answer: ${(error as Error).message}`, {
        cause: error,
      });
    }
    const decoded = decodeJsonPayload(response, grantAnswerSchema);
    if (!decoded.ok) throw new CoordinationUnavailableError(`leader ${leader}: ${decoded.reason}`);
    return decoded.value;
  }

  private async serve(from: NodeId, payload: Uint8Array): Promise<Uint8Array> {
    const decoded = decodeJsonPayload(payload, grantRequestSchema);
    if (!decoded.ok) {
      this.options.logger.warn({ peer: from, reason: decoded.reason }, "dropped grant request");
      return encodeJsonPayload(refusal("refused", `bad request: ${decoded.reason}`, null, null));
    }
    return encodeJsonPayload(await this.answer(from, decoded.value));
  }

  /**
   * The leader's answer. One that needs a heartbeat round first (the last acknowledged one is older than the
   * answer window, or a quorum has yet to acknowledge a longer tail) waits for it, then is decided afresh.
   */
  private async answer(from: NodeId, request: GrantRequest): Promise<GrantWireAnswer> {
    const first = this.answerNow(from, request);
    if (first.kind !== "pending") return first;
    const askedMs = request.kind === "acquire" ? (request.leaseMs ?? this.options.leaseMs) : 0;
    await first.until(renewalPeriodMs(askedMs) / 2);
    return settled(this.answerNow(from, request));
  }

  /**
   * The leader's answer to `from`: only under a valid lease (a grant, within the answer window of it), and
   * only for services assigned to it.
   */
  private answerNow(from: NodeId, request: GrantRequest): GrantWireAnswer | PendingAnswer {
    const view = this.options.leadership();
    if (view.role !== "leader" || !view.leaseValid) {
      const leaderId = view.leaderId === this.options.selfId ? null : view.leaderId;
      return refusal("not-leader", "this node does not lead under a valid lease", leaderId, null);
    }
    this.leadershipChanged(view);
    const ledger = this.ledger as GrantLedger;
    const now = this.now();
    if (request.kind === "release") {
      if (ledger.released(request.service, from, request.fence, now)) {
        this.options.logger.info({ service: request.service, peer: from }, "grant released");
      }
      return { kind: "released" };
    }
    // A claim of a service this leader has not placed yet is adopted where it runs (placement may move it
    // later); refusing it would stop a healthy service at every leader change.
    const claim = request.current !== undefined && request.current.term < ledger.term;
    if (claim && !this.assigned.has(request.service)) {
      this.assigned.set(request.service, from);
    }
    const assignedTo = this.assigned.get(request.service);
    if (assignedTo !== from) {
      const where = assignedTo === undefined ? "not assigned to any node" : `assigned to ${assignedTo}`;
      return refusal("refused", `${request.service} is ${where}`, null, null);
    }
    const election = this.options.election;
    if (election !== undefined && !election.fresh()) {
      const reason = "no heartbeat acknowledged within the answer window";
      return { kind: "pending", reason, until: (timeoutMs) => election.freshen(timeoutMs) };
    }
    const acknowledged = election?.acknowledgedTailMs() ?? Number.POSITIVE_INFINITY;
    const answer = ledger.request(request.service, from, now, request.current, request.leaseMs, acknowledged);
    if (election !== undefined && !answer.ok && answer.tailMs !== undefined) {
      const tailMs = answer.tailMs;
      election.advertise(ledger.tailMs());
      return { kind: "pending", reason: answer.reason, until: (t) => election.tailAcknowledged(tailMs, t) };
    }
    return wireAnswer(answer, now);
  }

  private leaderLedger(what: string): GrantLedger {
    const view = this.options.leadership();
    if (view.role !== "leader") throw new NotLeaderError(view.leaderId, `cannot ${what}`);
    this.leadershipChanged(view);
    return this.ledger as GrantLedger;
  }
}

/** Not yet: a heartbeat round must be acknowledged first (`until` waits for it, up to a timeout). */
interface PendingAnswer {
  kind: "pending";
  reason: string;
  until: (timeoutMs: number) => Promise<boolean>;
}

/** Still pending after the wait: the asker tries again later, and a holder keeps what it holds. */
function settled(answer: GrantWireAnswer | PendingAnswer): GrantWireAnswer {
  if (answer.kind !== "pending") return answer;
  return refusal("unavailable", `${answer.reason}: ask again`, null, null);
}

function wireAnswer(answer: GrantAnswer, nowMs: number): GrantWireAnswer {
  if (answer.ok) return { kind: "granted", grant: answer.grant, continueOnly: answer.continueOnly };
  const retryInMs = answer.retryAtMs === null ? null : Math.max(0, answer.retryAtMs - nowMs);
  return refusal("refused", answer.reason, null, retryInMs);
}

function refusal(
  why: GrantWireRefusal["refusal"],
  reason: string,
  leaderId: NodeId | null,
  retryInMs: number | null,
): GrantWireRefusal {
  return { kind: "refused", refusal: why, reason, leaderId, retryInMs };
}

function refusalError(answer: GrantWireRefusal): Error {
  if (answer.refusal === "not-leader") return new NotLeaderError(answer.leaderId, answer.reason);
  if (answer.refusal === "unavailable") return new CoordinationUnavailableError(answer.reason);
  return new GrantRefusedError(answer.reason, answer.retryInMs);
}
